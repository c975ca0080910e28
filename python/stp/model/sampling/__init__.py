"""Samplers: prompts in, n completions each out; statement embeddings for the re-weighting.

`make_sampler` picks the backend named by `sampler_cfg.backend`: "vllm" (GPUs/TPUs, production)
or "hf" (transformers, for CPU tests and the tiny config). Backends import their heavy libraries
only when chosen, so importing this package is cheap and vLLM need not be installed on CPU.
"""

from __future__ import annotations

from stp.errors import UsageError
from stp.model.config import ModelConfig, SamplerConfig
from stp.model.sampling.common import SamplerStats
from stp.model.types import Sampler, SampleRequest

BACKENDS = ("hf", "vllm")

__all__ = ["BACKENDS", "SampleRequest", "Sampler", "SamplerStats", "make_sampler"]


def make_sampler(model_path: str, model_cfg: ModelConfig, sampler_cfg: SamplerConfig) -> Sampler:
    """A sampler for the checkpoint at `model_path` (HF id, local dir or gs:// dir)."""
    if sampler_cfg.backend == "hf":
        from stp.model.sampling.hf import HFSampler

        return HFSampler(model_path, model_cfg, sampler_cfg)
    if sampler_cfg.backend == "vllm":
        from stp.model.sampling.vllm import make_vllm_sampler

        return make_vllm_sampler(model_path, model_cfg, sampler_cfg)
    raise UsageError(f"sampler.backend must be one of {', '.join(BACKENDS)}, "
                     f"got {sampler_cfg.backend!r}")
