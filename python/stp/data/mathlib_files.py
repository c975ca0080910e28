"""The one place the Mathlib-derived files of the data directory are named.

`python -m stp.extract` (run, assemble, verify, sft, sft --from-hf) writes these files and
self-play, the pipeline's input checks and the final re-training read them. Each used to spell the
names itself, so a rename on the producer side would have left a consumer looking for a file that
no longer exists. Every producer and consumer goes through the functions below;
python/tests/test_mathlib_files.py fails when one of these names is written anywhere else in
python/stp.

Layout (`<data_dir>` from `stp.data.config.resolve_data_dir`):

    <data_dir>/mathlib/                         `python -m stp.extract sft [--from-hf]` output
        lemmas.jsonl.gz                         lemma dictionary (full name -> statement)
        sft.jsonl.gz                            SFT set (Stage 1, self-play SFT replay)
        sft-mathlib-only.jsonl.gz               Mathlib-only SFT examples (final re-training)
        eval.jsonl.gz                           held-out proving examples
    <data_dir>/mathlib/extract/                 `python -m stp.extract run` output (default)
        theorems.jsonl.gz                       assembled extraction
        theorems.verified.jsonl.gz              the part that round-trips through Lean
        verify_failures.jsonl.gz                why the rest did not
"""

from __future__ import annotations

from pathlib import Path

from stp import storage

MATHLIB_DIR = "mathlib"
EXTRACT_DIR = "extract"

# Files of the SFT directory (<data_dir>/mathlib unless --out says otherwise).
LEMMAS = "lemmas.jsonl.gz"
SFT = "sft.jsonl.gz"
SFT_MATHLIB_ONLY = "sft-mathlib-only.jsonl.gz"
EVAL = "eval.jsonl.gz"

# Files of the extraction directory (<data_dir>/mathlib/extract unless --out says otherwise).
THEOREMS = "theorems.jsonl.gz"
THEOREMS_VERIFIED = "theorems.verified.jsonl.gz"
VERIFY_FAILURES = "verify_failures.jsonl.gz"

# Every name above; the drift test forbids them as literals outside this module.
FILE_NAMES = (LEMMAS, SFT, SFT_MATHLIB_ONLY, EVAL, THEOREMS, THEOREMS_VERIFIED, VERIFY_FAILURES)


def sft_dir(data_dir: str | Path) -> str:
    """Where `python -m stp.extract sft` writes by default, and where consumers look."""
    return storage.join(str(data_dir), MATHLIB_DIR)


def extract_dir(data_dir: str | Path) -> str:
    """Where `python -m stp.extract run` writes by default."""
    return storage.join(sft_dir(data_dir), EXTRACT_DIR)


def lemmas_path(data_dir: str | Path) -> str:
    return storage.join(sft_dir(data_dir), LEMMAS)


def sft_path(data_dir: str | Path) -> str:
    return storage.join(sft_dir(data_dir), SFT)


def sft_mathlib_only_path(data_dir: str | Path) -> str:
    return storage.join(sft_dir(data_dir), SFT_MATHLIB_ONLY)


# For help texts and messages: the default locations relative to the data directory.
SFT_DIR_HELP = f"<data_dir>/{MATHLIB_DIR}"
EXTRACT_DIR_HELP = f"<data_dir>/{MATHLIB_DIR}/{EXTRACT_DIR}"
