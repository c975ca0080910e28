"""A pool of vLLM engines as Ray actors: one engine per `tensor_parallel_size` GPUs (or TPU chips).

On a TPU cluster (Ray reports TPU and no GPU) the engines are the TPU build of vLLM (`vllm-tpu`,
the `tpu` extra), which has the same `vllm.LLM` API, so only the resource requested changes.

Requests are split into contiguous slices of near-equal total sample count, one per engine, run
concurrently and re-assembled in request order. Because every request carries its own seed, the
completions do not depend on how requests were split across engines.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stp.cluster import SAMPLER_RESOURCE, TPU_RESOURCE
from stp.errors import UsageError
from stp.model.config import ModelConfig, SamplerConfig
from stp.model.sampling.common import SamplerStats, log
from stp.model.types import SampleRequest


class _Engine:
    """Actor body: a VLLMSampler living in its own process with its own GPUs."""

    def __init__(self, model_path: str, model_cfg: ModelConfig,
                 sampler_cfg: SamplerConfig) -> None:
        from stp.model.sampling.vllm import VLLMSampler

        # Inside an actor that already holds its GPUs, tensor-parallel workers are plain
        # subprocesses; vLLM's Ray executor would try to reserve GPUs a second time.
        extra = {"distributed_executor_backend": "mp"} if sampler_cfg.tensor_parallel_size > 1 else {}
        self.sampler = VLLMSampler(model_path, model_cfg, sampler_cfg, engine_kwargs=extra)

    def generate(self, requests: list[SampleRequest]) -> tuple[list[list[str]], SamplerStats]:
        before = SamplerStats(**vars(self.sampler.stats))
        out = self.sampler.generate(requests)
        after = self.sampler.stats
        delta = SamplerStats(**{k: getattr(after, k) - getattr(before, k) for k in vars(after)})
        return out, delta

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.sampler.embed(texts)


def split_by_samples(requests: Sequence[SampleRequest], parts: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) slices with near-equal sums of n (at most `parts`, none empty)."""
    total = sum(r.n for r in requests)
    bounds: list[tuple[int, int]] = []
    start, acc = 0, 0
    for i, r in enumerate(requests):
        acc += r.n
        if acc * parts >= total * (len(bounds) + 1) and len(bounds) < parts - 1:
            bounds.append((start, i + 1))
            start = i + 1
    if start < len(requests):
        bounds.append((start, len(requests)))
    return bounds


def engine_plan(resources: dict[str, float], tensor_parallel_size: int,
                num_engines: int) -> tuple[str, int]:
    """(accelerator resource, engine count) for a cluster's resources: GPUs when it has any,
    else TPU chips; `num_engines` 0 = as many as the accelerators allow."""
    kind = SAMPLER_RESOURCE
    if resources.get(SAMPLER_RESOURCE, 0) == 0 and resources.get(TPU_RESOURCE, 0) > 0:
        kind = TPU_RESOURCE
    have = int(resources.get(kind, 0))
    count = num_engines or have // tensor_parallel_size
    if count < 1 or count * tensor_parallel_size > have:
        raise UsageError(f"sampler: {count} engine(s) x tensor_parallel_size="
                         f"{tensor_parallel_size} need {max(count, 1) * tensor_parallel_size} "
                         f"{kind}s, the Ray cluster has {have}")
    return kind, count


class RayEnginePool:
    """`Sampler` over several vLLM engine actors (needs a running Ray cluster)."""

    def __init__(self, model_path: str, model_cfg: ModelConfig, sampler_cfg: SamplerConfig) -> None:
        import ray

        tp = sampler_cfg.tensor_parallel_size
        kind, count = engine_plan(ray.cluster_resources(), tp, sampler_cfg.num_engines)
        actor = (ray.remote(num_gpus=tp) if kind == SAMPLER_RESOURCE
                 else ray.remote(resources={kind: tp}))(_Engine)
        # Any: Ray's actor handles expose methods as `.remote` attributes its stubs do not know.
        self._actors: list[Any] = [actor.remote(model_path, model_cfg, sampler_cfg)
                                   for _ in range(count)]
        self.stats = SamplerStats()
        log.info("started %d vLLM engine actor(s), %d %s(s) each", count, tp, kind)

    def generate(self, requests: Sequence[SampleRequest]) -> list[list[str]]:
        import ray

        slices = split_by_samples(requests, len(self._actors))
        refs = [a.generate.remote(list(requests[s:e]))
                for a, (s, e) in zip(self._actors, slices, strict=False)]
        results: list[list[str]] = []
        for out, delta in ray.get(refs):
            results.extend(out)
            for k, v in vars(delta).items():
                setattr(self.stats, k, getattr(self.stats, k) + v)
        return results

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import ray

        if not texts:
            return self._empty_embed()
        parts = min(len(self._actors), len(texts))
        step = -(-len(texts) // parts)
        refs = [self._actors[j].embed.remote(list(texts[j * step:(j + 1) * step]))
                for j in range(parts) if texts[j * step:(j + 1) * step]]
        return np.concatenate(ray.get(refs), axis=0)

    def _empty_embed(self) -> np.ndarray:
        import ray

        return ray.get(self._actors[0].embed.remote([]))

    def close(self) -> None:
        import ray

        for a in getattr(self, "_actors", []):
            ray.kill(a)
        self._actors = []

    def __enter__(self) -> RayEnginePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


