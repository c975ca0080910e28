"""Reader of the original STP evaluation output (`generated_proofs_tests.jsonl.gz`).

Each line is one attempt with (among others) `statement`, `iter` (sample index), `complete` (the
success flag), `multiplicity` and, when no result ever came back, `system_errors`. Attempts are
matched to benchmark statements as the original `summary.py` did: by exact string equality with
the benchmark's `formal_statement` after removing everything from its LAST `sorry` and stripping.
Where the original raised a KeyError for a benchmark statement without attempts, we count it as
unsolved and report it; log statements that match no benchmark statement are counted and reported
(never silently dropped).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from stp.data import load_dataset
from stp.data.config import resolve_data_dir
from stp.data.download import ensure_file
from stp.data.loaders import iter_rows
from stp.data.registry import get_dataset_info
from stp.errors import UsageError
from stp.eval.log import (
    STATUSES,
    ColumnBuilder,
    check_counts,
    decode_batch,
    iter_line_batches,
)

log = logging.getLogger(__name__)

# The benchmark families the original evaluated (its summary.py knew miniF2F and ProofNet;
# PutnamBench used the same generate_and_test output).
BENCHMARKS: tuple[str, ...] = ("minif2f", "proofnet", "putnam")
_STATUS_PASS, _STATUS_FAIL, _STATUS_CRASH = (STATUSES.index(s) for s in ("pass", "fail", "crash"))


def clean_statement(formal_statement: str) -> str:
    """The original rule: drop everything from the last `sorry`, then strip.

    (A statement without `sorry` is only stripped; the original assumed one was present.)"""
    cut = formal_statement.rfind("sorry")
    if cut >= 0:
        formal_statement = formal_statement[:cut]
    return formal_statement.strip()


class _StpAttempt(msgspec.Struct):
    statement: str
    iter: int = 0
    complete: bool | None = None
    multiplicity: int = 1
    system_errors: Any = None


@dataclass(frozen=True)
class BenchmarkEntry:
    statement_id: str
    split: str  # "dataset:split"


@dataclass
class BenchmarkIndex:
    """Cleaned original statement string -> our statement id and split label."""

    entries: dict[str, BenchmarkEntry]
    split_members: dict[str, list[str]]
    missing: list[str] = field(default_factory=list)  # benchmarks whose files were absent


def split_label(dataset: str, split: str) -> str:
    return f"{dataset}:{split}"


def build_benchmark_index(data_dir: str | Path | None = None,
                          datasets: tuple[str, ...] = BENCHMARKS) -> BenchmarkIndex:
    """Index the raw benchmark rows by the original cleaning rule, mapped to our statement ids.

    Raw rows and `load_dataset` records are both in file order, one per row, which is how a raw
    row is tied to its normalised id. Two rows collapsing to one string is an error (the original
    asserted the same)."""

    root = resolve_data_dir(cli_value=str(data_dir) if data_dir is not None else None)
    entries: dict[str, BenchmarkEntry] = {}
    members: dict[str, list[str]] = {}
    missing: list[str] = []
    for name in datasets:
        info = get_dataset_info(name)
        try:
            files = [(ensure_file(info, f, root, allow_download=False), f.fmt)
                     for f in info.files]
        except (UsageError, FileNotFoundError) as err:
            log.info("benchmark %s not available: %s", name, err)
            missing.append(name)
            continue
        records = load_dataset(name, root, allow_download=False)
        rows = [(path, lineno, row) for path, fmt in files
                for lineno, row in iter_rows(path, fmt)]
        if len(rows) != len(records):
            raise UsageError(f"{name}: {len(rows)} raw rows but {len(records)} loaded statements")
        for (path, lineno, row), rec in zip(rows, records, strict=True):
            text = clean_statement(str(row.get("formal_statement", "")))
            if text in entries:
                raise UsageError(f"{path}:{lineno}: statement collides with "
                                 f"{entries[text].statement_id} after the original cleaning rule")
            label = split_label(name, rec.split)
            entries[text] = BenchmarkEntry(rec.id, label)
            members.setdefault(label, []).append(rec.id)
    if not entries:
        raise UsageError(f"no benchmark files found under {root} (needed to match STP-format "
                         "logs to statements; set --data-dir or STP_DATA_DIR)")
    return BenchmarkIndex(entries, members, missing)


@dataclass
class StpReadResult:
    builder: ColumnBuilder
    unmatched_records: int
    unmatched_statements: list[str]
    touched_splits: list[str]
    # Original-format infrastructure failures: records with `system_errors` or no `complete`.
    system_error_records: int


def read_stp_log(path: str, index: BenchmarkIndex,
                 builder: ColumnBuilder | None = None) -> StpReadResult:
    """Columns of an original-format log, statements matched to `index`."""
    builder = builder or ColumnBuilder()
    unmatched: dict[str, int] = {}
    unmatched_records = 0
    system_errors = 0
    touched: dict[str, None] = {}
    entries = index.entries
    for numbers, lines in iter_line_batches(path):
        records: list[_StpAttempt] = decode_batch(path, numbers, lines, _StpAttempt)
        stmt: list[int] = []
        sample: list[int] = []
        status: list[int] = []
        mult: list[int] = []
        nums: list[int] = []
        for lineno, rec in zip(numbers, records, strict=True):
            entry = entries.get(rec.statement)
            if entry is None:
                unmatched_records += 1
                unmatched[rec.statement] = unmatched.get(rec.statement, 0) + 1
                continue
            touched[entry.split] = None
            stmt.append(builder.intern_statement(entry.statement_id, entry.split))
            sample.append(rec.iter)
            mult.append(rec.multiplicity)
            nums.append(lineno)
            if rec.system_errors or rec.complete is None:
                status.append(_STATUS_CRASH)
                system_errors += 1
            else:
                status.append(_STATUS_PASS if rec.complete else _STATUS_FAIL)
        check_counts(path, nums, sample, mult)
        builder.add(stmt, sample, status, mult)
    return StpReadResult(builder, unmatched_records, list(unmatched)[:20], list(touched),
                         system_errors)


def is_stp_record(record: dict[str, Any]) -> bool:
    return "statement" in record and "statement_id" not in record
