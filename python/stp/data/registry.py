"""Every dataset the loaders know: files, splits, public source and licence.

One table is the single source of truth for `load_dataset`, `python -m stp.data info`, the download
code and docs/data.md, so a dataset cannot be loadable but undocumented (or the reverse).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from stp.checkout import checkout_root
from stp.errors import UsageError

# STP's release (MIT), pinned to commit 2b5fe8b. The benchmark files shipped in `data/benchmarks/`
# are byte-identical to `assets/data/` there (their git blob ids below match that commit's tree);
# downloads are checked against the SHA-256 or, where only the blob id is known, the git blob id.
STP_COMMIT = "2b5fe8b6dbc51afae00cba0a06e253270d7f04d4"
STP_REPO_RAW = f"https://raw.githubusercontent.com/kfdong/STP/{STP_COMMIT}/assets/data"
# Where a checkout keeps the shipped benchmark files (relative to the repository root).
SHIPPED_SUBDIR = "data/benchmarks"

Kind = Literal["statements", "examples"]
# "by": every statement ends in `:= by` (tactic mode expected); "term": every statement ends
# in `:=` (the model writes ` by ...` itself). Mixed conventions inside one dataset are defects.
Ending = Literal["by", "term"]


@dataclass(frozen=True)
class DataFile:
    """One file of a dataset. `splits` maps the raw `split` value of a row to our split name;
    rows whose raw split is not listed are an error (never silently dropped)."""

    filename: str
    fmt: Literal["json", "jsonl"]
    splits: dict[str, str]
    url: str = ""
    sha256: str = ""
    # `git hash-object` of the file at STP_COMMIT: the only checksum the release publishes for
    # files too large for us to have hashed (LeanWorkbook); checked after a download.
    git_blob: str = ""
    # True when the repository ships this file in data/benchmarks/ (read from there first).
    shipped: bool = False


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    kind: Kind
    description: str
    licence: str
    source: str
    files: tuple[DataFile, ...] = ()
    ending: Ending = "by"
    # Hugging Face dataset repo for the STP-released sets (downloaded with huggingface_hub).
    hf_repo: str = ""
    hf_splits: tuple[str, ...] = ()
    # Expected statements per split in the published files (checked by the tests, shown by info).
    expected: dict[str, int] = field(default_factory=dict)

    @property
    def splits(self) -> tuple[str, ...]:
        if self.hf_splits:
            return self.hf_splits
        seen: list[str] = []
        for f in self.files:
            for s in f.splits.values():
                if s not in seen:
                    seen.append(s)
        return tuple(seen)


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo(
            name="minif2f",
            kind="statements",
            description="miniF2F (Lean 4 port, as shipped by STP): olympiad and textbook problems",
            licence="MIT (miniF2F, openai/miniF2F; Lean 4 port and STP release also MIT)",
            source="kfdong/STP assets/data/test/miniF2F_lean.json (from the Lean 4 miniF2F port)",
            files=(
                DataFile(
                    "miniF2F_lean.json", "json",
                    {"miniF2F valid": "valid", "miniF2F test": "test"},
                    url=f"{STP_REPO_RAW}/test/miniF2F_lean.json",
                    sha256="c2efde0fbad7d0b2d64ba285e09e55ebf3a6c00d40a3c5ed6cc5b60c0da271af",
                    git_blob="adf77b0b7f0ea8266f1b0da95faa45fee315b324",
                    shipped=True,
                ),
            ),
            ending="by",
            expected={"valid": 244, "test": 244},
        ),
        DatasetInfo(
            name="proofnet",
            kind="statements",
            description="ProofNet: undergraduate pure mathematics (analysis, algebra, topology)",
            licence="MIT (ProofNet, zhangir-azerbayev/ProofNet; Lean 4 port in the STP release)",
            source="kfdong/STP assets/data/test/proofnet.jsonl",
            files=(
                DataFile(
                    "proofnet.jsonl", "jsonl",
                    {"Proofnet valid": "valid", "Proofnet test": "test"},
                    url=f"{STP_REPO_RAW}/test/proofnet.jsonl",
                    sha256="dcb4b03d8cd601e554356d5459f54ef78c710b95ca4ddcf1cd80fc60953b7727",
                    git_blob="0e67b51642289e050d9b00fff3fe2d8e29ac709b",
                    shipped=True,
                ),
            ),
            ending="term",
            expected={"valid": 185, "test": 186},
        ),
        DatasetInfo(
            name="putnam",
            kind="statements",
            description="PutnamBench: Putnam competition problems 1962-2023 (Lean 4 part)",
            licence="Apache-2.0 (Lean 4 and Isabelle parts of trishullab/PutnamBench)",
            source="kfdong/STP assets/data/test/putnam_bench.jsonl (from trishullab/PutnamBench)",
            files=(
                DataFile(
                    "putnam_bench.jsonl", "jsonl", {"putnam bench": "test"},
                    url=f"{STP_REPO_RAW}/test/putnam_bench.jsonl",
                    sha256="5f24612d7e144a495e4278b4bbb3bed30972cd03a55f895cab4c1433f2509388",
                    git_blob="f3501bf5636e669c5a3395233463e2df711c1f4b",
                    shipped=True,
                ),
            ),
            ending="term",
            expected={"test": 644},
        ),
        DatasetInfo(
            name="lean_workbook",
            kind="statements",
            description="Lean Workbook, deduplicated as in STP: the self-play seed statements "
            "(about 89K)",
            licence="Apache-2.0 (internlm/Lean-Workbook); STP's deduplicated copy is MIT",
            source="kfdong/STP assets/data/training/lean_workbook_dedup.json",
            files=(
                DataFile(
                    "lean_workbook_dedup.json", "json", {"lean_workbook": "train"},
                    url=f"{STP_REPO_RAW}/training/lean_workbook_dedup.json",
                    git_blob="8c1d2f0fdc5fbac0277407efc41a7ec72598f717",
                ),
            ),
            ending="by",
        ),
        DatasetInfo(
            name="stp_sft",
            kind="examples",
            description="STP's SFT set (Mathlib-mined examples + Lean Workbook proofs), "
            "{prompt, target}",
            licence="MIT (STP release; see the dataset card)",
            source="https://huggingface.co/datasets/kfdong/STP_Lean_SFT",
            hf_repo="kfdong/STP_Lean_SFT",
            hf_splits=("train", "eval"),
        ),
        DatasetInfo(
            name="stp_0320",
            kind="examples",
            description="STP's final training data (proofs and conjectures from self-play, "
            "about 3.26M rows)",
            licence="MIT (STP release; see the dataset card)",
            source="https://huggingface.co/datasets/kfdong/STP_Lean_0320",
            hf_repo="kfdong/STP_Lean_0320",
            hf_splits=("train",),
        ),
    )
}


# The release's valid-only copies (assets/data/training/), shipped beside the combined files for
# parity with the release; the loaders read the combined files, whose valid rows these equal.
SHIPPED_EXTRA_FILES: dict[str, str] = {
    "miniF2F_lean_valid.json": "eb5cd9a689ba920612d46c9f80b4727ab9bedf3b73cec79cf50f56ba9e61d46e",
    "proofnet_valid.json": "256ac71e2e8f95845348333e988bce3bdc8aabb2fb6419f509efc14bbbe0662b",
}


def shipped_dir() -> Path | None:
    """`<checkout>/data/benchmarks` when stp runs from a checkout that has it, else None (a wheel
    install: benchmark files then come from the data directory or a download)."""
    root = checkout_root()
    if root is None:
        return None
    path = root / SHIPPED_SUBDIR
    return path if path.is_dir() else None


def list_datasets() -> list[DatasetInfo]:
    """All known datasets, in table order."""
    return list(DATASETS.values())


def get_dataset_info(name: str) -> DatasetInfo:
    """The registry entry for `name`; an unknown name lists the known ones."""
    try:
        return DATASETS[name]
    except KeyError:
        known = ", ".join(DATASETS)
        raise UsageError(f"unknown dataset {name!r}; known datasets: {known}") from None
