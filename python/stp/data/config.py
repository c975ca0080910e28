"""Which statements a run uses and where Mathlib-derived data lives (stp.data)."""

from __future__ import annotations

import msgspec


class DatasetRef(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # A dataset name known to `python -m stp.data info`, optionally restricted to one split.
    name: str
    split: str = ""
    # Replication of seeds/targets in the conjecture re-weighting (the original's `weight`).
    weight: int = 1


class DataConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Statements self-play attacks (paper: LeanWorkbook, deduplicated).
    selfplay: list[DatasetRef] = msgspec.field(
        default_factory=lambda: [DatasetRef(name="lean_workbook")]
    )
    # Lemma dictionary (full name -> statement) built by `python -m stp.extract sft`; empty
    # means <data_dir>/mathlib/lemmas.jsonl.gz.
    lemma_dict: str = ""
    # SFT set for stage 1 and the final re-training; empty = <data_dir>/mathlib/sft.jsonl.gz.
    sft: str = ""
    # Mathlib-only SFT examples re-added in the final re-training.
    sft_mathlib: str = ""
    # Download missing public datasets when online.
    allow_download: bool = True
