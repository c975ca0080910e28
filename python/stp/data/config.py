"""Which statements a run uses and where Mathlib-derived data lives (stp.data)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import msgspec
from msgspec import Meta

from stp.data.lemmas import LemmaVocabulary
from stp.ranges import PositiveInt

DATA_DIR_ENV = "STP_DATA_DIR"
DEFAULT_DATA_DIR = "~/.cache/stp/data"
# The Mathlib-derived file names inside the data directory: stp.data.mathlib_files.


class DatasetRef(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # A dataset name known to `python -m stp.data info`, optionally restricted to one split.
    name: str
    split: str = ""
    # Replication of seeds/targets in the conjecture re-weighting (the original's `weight`).
    weight: PositiveInt = 1


class DataConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Statements self-play attacks (paper: LeanWorkbook, deduplicated); at least one dataset (an
    # empty list fails at load, naming the key).
    selfplay: Annotated[list[DatasetRef], Meta(min_length=1)] = msgspec.field(
        default_factory=lambda: [DatasetRef(name="lean_workbook")]
    )
    # Lemma dictionary (full name -> statement) built by `python -m stp.extract sft`; empty
    # means <data_dir>/mathlib/lemmas.jsonl.gz.
    lemma_dict: str = ""
    # Lemmas seeds are paired with: "tactic" = Mathlib theorems with a tactic proof (the
    # original's ~59.7K), "all" = every extracted theorem, term-mode proofs included.
    lemma_vocabulary: LemmaVocabulary = "tactic"
    # SFT set for Stage 1 when sft.data is empty, and the self-play SFT replay; empty =
    # <data_dir>/mathlib/sft.jsonl.gz.
    sft: str = ""
    # Mathlib-only SFT examples re-added in the final re-training; empty means
    # <data_dir>/mathlib/sft-mathlib-only.jsonl.gz (`python -m stp.extract sft [--from-hf]`).
    sft_mathlib: str = ""
    # Download missing public datasets when online.
    allow_download: bool = True


def resolve_data_dir(configured: str = "", cli_value: str | None = None) -> Path:
    """The data directory: --data-dir, else the config value, else $STP_DATA_DIR, else a cache dir."""
    for candidate in (cli_value, configured, os.environ.get(DATA_DIR_ENV)):
        if candidate:
            return Path(candidate).expanduser()
    return Path(DEFAULT_DATA_DIR).expanduser()
