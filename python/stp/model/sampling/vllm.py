"""vLLM sampler: the production backend on GPUs (and TPUs where vLLM supports them).

Prompts are tokenised and left-truncated here (same rule and counter as the CPU backend) and
handed to the engine as token ids. Every request becomes one engine request with its own
`SamplingParams` (n, temperature, top_p, max_tokens, stop, seed), so per-request seeds are honoured
(the original passed one seed to every request of a call, which repeats samples on GPU).

vLLM derives the seed of sample j of an n-sample request as `seed + j`, so requests with adjacent
seeds would share samples; the request seed is therefore first scrambled by a 64-bit mixer.

Embeddings: vLLM's pooling API needs a second engine started in embedding mode, whose arguments
have changed across releases; instead `embed` loads the checkpoint's transformer backbone with
transformers on the same GPU for the duration of the call and frees it afterwards. That costs one
model load per call (self-play embeds once per round) and needs the memory vLLM left free
(1 - gpu_memory_utilization of the device, about 14 GiB for a 7B model in bfloat16).
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from stp.errors import UsageError
from stp.model.config import ModelConfig, SamplerConfig
from stp.model.sampling.common import (
    SamplerStats,
    completion_budget,
    encode_prompt,
    log,
    resolve_model_path,
)
from stp.model.types import SampleRequest

_MASK62 = (1 << 62) - 1


def engine_seed(seed: int) -> int:
    """SplitMix64 finaliser of the request seed (62 bits so that `+ j` stays a valid seed)."""
    z = (seed + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return (z ^ (z >> 31)) & _MASK62


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as err:
        raise UsageError("sampler.backend='vllm' needs vLLM: pip install 'stp-prover[gpu]' "
                         "(or use --set sampler.backend=\"hf\" on CPU)") from err
    return vllm


def engine_arguments(model_path: str, model_cfg: ModelConfig, sampler_cfg: SamplerConfig
                     ) -> dict[str, Any]:
    """Keyword arguments of `vllm.LLM`: `max_model_len` is the whole context (prompt +
    completion), 1024 in the paper configs as in the original engine."""
    return dict(
        model=model_path,
        tokenizer=resolve_model_path(model_cfg.tokenizer) if model_cfg.tokenizer else None,
        tensor_parallel_size=sampler_cfg.tensor_parallel_size,
        gpu_memory_utilization=sampler_cfg.gpu_memory_utilization,
        max_model_len=model_cfg.max_model_len,
        dtype=model_cfg.dtype,
        seed=0,
    )


class VLLMSampler:
    """One vLLM engine in this process (tensor parallel over `tensor_parallel_size` GPUs)."""

    def __init__(self, model_path: str, model_cfg: ModelConfig, sampler_cfg: SamplerConfig,
                 *, engine_kwargs: dict[str, Any] | None = None) -> None:
        vllm = _import_vllm()
        from stp.model.sampling.hf import load_tokenizer

        self.model_cfg = model_cfg
        self.sampler_cfg = sampler_cfg
        self._embedder: Any = None  # the transformers backbone for embed(), loaded on first use
        self.model_path = resolve_model_path(model_path)
        self.tokenizer = load_tokenizer(self.model_path, model_cfg)
        kwargs = engine_arguments(self.model_path, model_cfg, sampler_cfg)
        kwargs.update(engine_kwargs or {})
        self.llm = vllm.LLM(**kwargs)
        self._SamplingParams = vllm.SamplingParams
        self.stats = SamplerStats()

    def encode_prompt(self, prompt: str) -> list[int]:
        return encode_prompt(self.tokenizer, prompt, self.model_cfg.max_prompt_tokens, self.stats)

    def _params(self, req: SampleRequest, prompt_len: int) -> Any | None:
        budget = completion_budget(req.max_tokens, prompt_len, self.model_cfg.max_model_len)
        if budget <= 0:
            return None
        greedy = req.temperature <= 0.0
        # Older vLLM rejects n > 1 with greedy decoding; n copies of one greedy sample are equal.
        return self._SamplingParams(
            n=1 if greedy else req.n, temperature=max(0.0, req.temperature), top_p=req.top_p, top_k=-1,
            max_tokens=budget, seed=engine_seed(req.seed), stop=list(req.stop) or None,
            include_stop_str_in_output=True, skip_special_tokens=True)

    def generate(self, requests: Sequence[SampleRequest]) -> list[list[str]]:
        results: list[list[str]] = [[] for _ in requests]
        shard = max(1, self.sampler_cfg.shard_size)
        for start in range(0, len(requests), shard):
            prompts, params, where = [], [], []
            for i in range(start, min(start + shard, len(requests))):
                req = requests[i]
                if req.n < 1:
                    raise ValueError(f"SampleRequest.n must be >= 1, got {req.n}")
                self.stats.requests += 1
                ids = self.encode_prompt(req.prompt)
                p = self._params(req, len(ids))
                if p is None:
                    self.stats.no_room_prompts += 1
                    log.warning("prompt of %d tokens leaves no room in max_model_len=%d",
                                len(ids), self.model_cfg.max_model_len)
                    results[i] = [""] * req.n
                    continue
                prompts.append({"prompt_token_ids": ids})
                params.append(p)
                where.append(i)
            if not prompts:
                continue
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
            for i, out in zip(where, outputs, strict=True):
                # vLLM returns the n samples of a request in sample-index order.
                texts = [c.text for c in sorted(out.outputs, key=lambda c: c.index)]
                if len(texts) == 1 and requests[i].n > 1:  # greedy: one sample repeated
                    texts = texts * requests[i].n
                self.stats.completions += len(texts)
                self.stats.completion_tokens += sum(len(c.token_ids) for c in out.outputs)
                results[i] = texts
        return results

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        import torch
        from transformers import AutoModel

        from stp.model.sampling.hf import embed_texts, torch_dtype

        device = "cuda" if torch.cuda.is_available() else "cpu"
        # Loaded once per sampler (a self-play stage embeds ~60K statements 4,096 at a time),
        # freed by close() with the engine.
        if self._embedder is None:
            self._embedder = AutoModel.from_pretrained(
                self.model_path, dtype=torch_dtype(self.model_cfg.dtype, device)).to(device).eval()
        return embed_texts(self._embedder, self.tokenizer, texts, self.sampler_cfg, device)

    def _free_embedder(self) -> None:
        if self._embedder is None:
            return
        self._embedder = None
        gc.collect()
        torch = sys.modules.get("torch")
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()

    def close(self) -> None:
        self._free_embedder()
        llm, self.llm = getattr(self, "llm", None), None
        if llm is None:
            return
        del llm
        gc.collect()
        try:
            from vllm.distributed.parallel_state import cleanup_dist_env_and_memory

            cleanup_dist_env_and_memory()
        except ImportError:  # older/newer vLLM without this helper: freeing the engine suffices
            pass

    def __enter__(self) -> VLLMSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

