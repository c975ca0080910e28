"""The sampler interface every backend (vLLM, transformers on CPU) implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import msgspec
import numpy as np


class SampleRequest(msgspec.Struct, kw_only=True, frozen=True):
    """`n` completions of one prompt. Every request carries its own seed (derived from round,
    statement and sample index) so identical prompts never collapse to identical samples."""

    prompt: str
    seed: int
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 1024
    stop: tuple[str, ...] = ()


@runtime_checkable
class Sampler(Protocol):
    def generate(self, requests: Sequence[SampleRequest]) -> list[list[str]]:
        """Completions for each request, in request order (len(result[i]) == requests[i].n)."""
        ...

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised mean-pooled last-hidden-layer embeddings, shape (len(texts), dim)."""
        ...

    def close(self) -> None: ...
