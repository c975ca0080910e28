"""The record types shared by datasets, self-play, training and evaluation."""

from __future__ import annotations

import re

import msgspec

_WHITESPACE = re.compile(r"\s+")


class Statement(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """A formal statement to prove. `statement` is normalised: it ends in `:=` or `:= by`.

    An empty `header` means the default header (the miniF2F/LeanWorkbook convention); ProofNet
    and PutnamBench records carry their own."""

    id: str
    dataset: str
    split: str
    name: str
    statement: str
    header: str = ""
    informal: str = ""
    tags: list[str] = msgspec.field(default_factory=list)


class TrainingExample(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One weighted supervised example: the loss is taken on `target` tokens only."""

    prompt: str
    target: str
    weight: float = 1.0


def statement_key(statement: str, header: str = "") -> tuple[str, str]:
    """Identity of a statement for deduplication: whitespace differences are ignored."""
    return header, _WHITESPACE.sub("", statement)
