"""Samplers: prompts in, n completions each out; statement embeddings for the re-weighting.

`make_sampler` picks the backend named by `sampler_cfg.backend`: "vllm" (GPUs/TPUs, production)
or "hf" (transformers, for CPU tests and the tiny config). Backends import their heavy libraries
only when chosen, so importing this package is cheap and vLLM need not be installed on CPU.
"""

from __future__ import annotations

from typing import assert_never, get_args

from stp.model.config import ModelConfig, SamplerBackend, SamplerConfig
from stp.model.sampling.common import SamplerStats
from stp.model.types import Sampler, SampleRequest

BACKENDS: tuple[SamplerBackend, ...] = get_args(SamplerBackend)

__all__ = ["BACKENDS", "SampleRequest", "Sampler", "SamplerStats", "make_sampler"]


def make_sampler(model_path: str, model_cfg: ModelConfig, sampler_cfg: SamplerConfig) -> Sampler:
    """A sampler for the checkpoint at `model_path` (HF id, local dir or gs:// dir). With
    `model.phase_isolation` on, the backend runs in a phase process that owns the accelerator
    until `close()` (stp.model.phases)."""
    from stp.model.location import check_model
    from stp.model.phases import IsolatedSampler, in_phase_process, isolated

    check_model(model_path)  # a damaged checkpoint: one line naming the file, before any load
    if isolated(model_cfg.phase_isolation) and not in_phase_process():
        return IsolatedSampler(build_backend, model_path, model_cfg, sampler_cfg)
    return build_backend(model_path, model_cfg, sampler_cfg)


def build_backend(model_path: str, model_cfg: ModelConfig, sampler_cfg: SamplerConfig) -> Sampler:
    """The backend named by `sampler.backend`, in this process."""
    if sampler_cfg.backend == "hf":
        from stp.model.sampling.hf import HFSampler

        return HFSampler(model_path, model_cfg, sampler_cfg)
    if sampler_cfg.backend == "vllm":
        return _make_vllm_sampler(model_path, model_cfg, sampler_cfg)
    # `sampler.backend` is a Literal checked at load; a new backend fails mypy here.
    assert_never(sampler_cfg.backend)


def _make_vllm_sampler(model_path: str, model_cfg: ModelConfig,
                       sampler_cfg: SamplerConfig) -> Sampler:
    """An in-process engine, or a Ray pool of engines when Ray is up and more than one is asked
    for (num_engines > 1, or 0 = as many as the cluster's GPUs allow). Decided here, above both
    backends, so the engine (`vllm.py`) and the pool of engines (`ray_pool.py`, whose actors hold
    engines) do not import each other."""
    try:
        import ray

        ray_up = ray.is_initialized()
    except ImportError:
        ray_up = False
    if ray_up and sampler_cfg.num_engines != 1:
        from stp.model.sampling.ray_pool import RayEnginePool

        return RayEnginePool(model_path, model_cfg, sampler_cfg)
    from stp.model.sampling.vllm import VLLMSampler

    return VLLMSampler(model_path, model_cfg, sampler_cfg)
