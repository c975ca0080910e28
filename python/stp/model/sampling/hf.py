"""Transformers sampler: the CPU backend for tests and tiny runs (also works on one GPU).

Each request is generated on its own, after seeding torch with the request's seed, so a request's
completions depend only on (model, prompt, settings, seed) — never on which other requests share
the call. That is the property the self-play loop relies on (the original shared one seed across a
call). Greedy requests (temperature 0) are generated once and repeated n times.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stp.errors import UsageError
from stp.model.config import ModelConfig, ModelDtype, SamplerConfig
from stp.model.sampling.common import (
    SamplerStats,
    completion_budget,
    cut_at_stop,
    encode_prompt,
    log,
    resolve_model_path,
)
from stp.model.types import SampleRequest


def torch_dtype(name: ModelDtype, device: str) -> Any:
    """The torch dtype for `name`; on CPU half precisions become float32 (bfloat16 matmuls are
    several times slower than float32 on most CPUs and float16 is unsupported for some ops)."""
    import torch

    # `model.dtype` is a Literal checked when the config loads.
    if device == "cpu" and name in ("bfloat16", "float16", "auto"):
        return torch.float32
    return "auto" if name == "auto" else getattr(torch, name)


def load_tokenizer(model_path: str, model_cfg: ModelConfig) -> Any:
    """The model's tokenizer (or model_cfg.tokenizer), with a pad token (EOS if it has none, as
    the original did at inference)."""
    from transformers import AutoTokenizer

    source = resolve_model_path(model_cfg.tokenizer) if model_cfg.tokenizer else model_path
    tok = AutoTokenizer.from_pretrained(source)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


class _StopOnStrings:
    """Stopping criterion: a sequence is done once a stop string appears in its new text.

    Only a tail window of tokens is decoded per step (enough bytes to contain any stop string),
    so the check costs O(1) per step rather than re-decoding the whole completion."""

    def __init__(self, tokenizer: Any, stops: Sequence[str], prompt_len: int) -> None:
        self.tokenizer = tokenizer
        self.stops = [s for s in stops if s]
        self.prompt_len = prompt_len
        # A UTF-8 char is at most 4 bytes, a byte-level token at least 1 byte.
        self.window = 4 * max((len(s) for s in self.stops), default=0) + 2

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        start = max(self.prompt_len, input_ids.shape[1] - self.window)
        tails = self.tokenizer.batch_decode(input_ids[:, start:].tolist(),
                                            skip_special_tokens=True)
        flags = [any(s in tail for s in self.stops) for tail in tails]
        done = torch.tensor(flags, dtype=torch.bool, device=input_ids.device)
        return done


class HFSampler:
    """`Sampler` on transformers + torch. `stats` counts requests, tokens and truncations."""

    def __init__(self, model_path: str, model_cfg: ModelConfig, sampler_cfg: SamplerConfig,
                 *, device: str | None = None) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self.model_cfg = model_cfg
        self.sampler_cfg = sampler_cfg
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        local = resolve_model_path(model_path)
        dtype = torch_dtype(model_cfg.dtype, self.device)
        # Any: transformers' stubs type `.to` through a wrapper that rejects a device string.
        self.model: Any
        try:
            self.tokenizer = load_tokenizer(local, model_cfg)
            self.model = AutoModelForCausalLM.from_pretrained(local, dtype=dtype)
        except (OSError, ValueError) as err:
            raise UsageError(f"cannot load model {model_path!r}: {err}") from err
        self.model.to(self.device).eval()
        self.stats = SamplerStats()

    # -- generation ---------------------------------------------------------------------------

    def encode_prompt(self, prompt: str) -> list[int]:
        return encode_prompt(self.tokenizer, prompt, self.model_cfg.max_prompt_tokens, self.stats)

    def generate(self, requests: Sequence[SampleRequest]) -> list[list[str]]:
        return [self._generate_one(req) for req in requests]

    def _generate_one(self, req: SampleRequest) -> list[str]:
        import torch
        from transformers import StoppingCriteriaList

        if req.n < 1:
            raise ValueError(f"SampleRequest.n must be >= 1, got {req.n}")
        self.stats.requests += 1
        ids = self.encode_prompt(req.prompt)
        budget = completion_budget(req.max_tokens, len(ids), self.model_cfg.max_model_len)
        if budget <= 0:
            self.stats.no_room_prompts += 1
            log.warning("prompt of %d tokens leaves no room in max_model_len=%d",
                        len(ids), self.model_cfg.max_model_len)
            return [""] * req.n
        greedy = req.temperature <= 0.0
        kwargs: dict[str, Any] = dict(
            max_new_tokens=budget, pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id, num_return_sequences=1 if greedy else req.n,
            # Override whatever the checkpoint's generation_config says (top_k=50 by default in
            # transformers would silently differ from vLLM's unrestricted sampling).
            do_sample=not greedy, repetition_penalty=1.0,
        )
        if not greedy:
            kwargs.update(temperature=req.temperature, top_p=req.top_p, top_k=0)
        else:
            kwargs.update(temperature=None, top_p=None, top_k=None)
        if req.stop:
            kwargs["stopping_criteria"] = StoppingCriteriaList(
                [_StopOnStrings(self.tokenizer, req.stop, len(ids))])
        input_ids = torch.tensor([ids], device=self.device)
        # A private RNG state per request: the caller's global torch RNG is left untouched.
        devices = [torch.cuda.current_device()] if self.device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices), torch.inference_mode():
            torch.manual_seed(req.seed)
            out = self.model.generate(input_ids=input_ids,
                                      attention_mask=torch.ones_like(input_ids), **kwargs)
        texts = []
        for row in out[:, len(ids):]:
            self.stats.completion_tokens += int((row != self.tokenizer.pad_token_id).sum())
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            texts.append(cut_at_stop(text, req.stop)[0])
        if greedy:
            texts = texts * req.n
        self.stats.completions += len(texts)
        return texts

    # -- embeddings ---------------------------------------------------------------------------

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return embed_texts(self.model, self.tokenizer, texts, self.sampler_cfg, self.device)

    def close(self) -> None:
        self.model = None
        try:
            import torch

            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
        except ImportError:
            pass

    def __enter__(self) -> HFSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def embed_texts(model: Any, tokenizer: Any, texts: Sequence[str], sampler_cfg: SamplerConfig,
                device: str) -> np.ndarray:
    """Mean of the last hidden layer over real (attention-masked) tokens, L2-normalised.

    Right padding keeps every real token at the position it has when embedded alone, so a text's
    vector does not depend on its batch companions (up to float rounding)."""
    import torch

    backbone = getattr(model, "base_model", model)
    batch = max(1, sampler_cfg.embed_batch_size)
    out: list[np.ndarray] = []
    saved_side = tokenizer.padding_side
    tokenizer.padding_side = "right"
    try:
        for start in range(0, len(texts), batch):
            enc = tokenizer(list(texts[start:start + batch]), padding=True, truncation=True,
                            max_length=sampler_cfg.embed_max_tokens, return_tensors="pt")
            enc = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
            with torch.inference_mode():
                hidden = backbone(**enc).last_hidden_state.float()
            mask = enc["attention_mask"].unsqueeze(-1).float()
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            mean = torch.nn.functional.normalize(mean, dim=-1)
            out.append(mean.cpu().numpy().astype(np.float32))
    finally:
        tokenizer.padding_side = saved_side
    if not out:
        dim = int(model.config.hidden_size)
        return np.zeros((0, dim), dtype=np.float32)
    return np.concatenate(out, axis=0)
