"""Open any supported log as columns plus the statement universe of each split.

The universe (the denominator of every pass@k) is, in order of preference: the manifest a `run`
wrote; the benchmark itself (for splits named "dataset:split" of a known benchmark whose files are
present, and always for original STP-format logs); otherwise the statements seen in the log, which
is the only case where a statement with zero attempts cannot be detected (the summary says so).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from stp import storage
from stp.data import load_dataset
from stp.data.registry import DATASETS
from stp.errors import UsageError
from stp.eval import log as evlog
from stp.eval.stp_format import build_benchmark_index, is_stp_record, read_stp_log

logger = logging.getLogger(__name__)

LogFormat = Literal["auto", "stp-eval", "stp"]
UniverseSource = Literal["manifest", "benchmark", "log"]


@dataclass
class LoadedLog:
    path: str
    format: str  # "stp-eval" or "stp"
    label: str
    columns: evlog.AttemptColumns
    # split label -> indices into columns.statement_ids, and where that list came from.
    universe: dict[str, np.ndarray]
    universe_source: dict[str, UniverseSource]
    unmatched_records: int = 0
    unmatched_statements: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def detect_format(path: str) -> str:
    """"stp-eval" for our logs (directories, or records with `statement_id`), "stp" for the
    original's records (with `statement`)."""
    if evlog.is_log_dir(path):
        return "stp-eval"
    first = evlog.peek_first_record(path)
    if first is None:
        raise UsageError(f"{path}: the log is empty")
    if "statement_id" in first:
        return "stp-eval"
    if is_stp_record(first):
        return "stp"
    raise UsageError(f"{path}:1: cannot tell the log format (expected a `statement_id` field for "
                     "stp-eval logs or `statement` for original STP logs); pass --format")


def _benchmark_ids(split: str, data_dir: str | Path | None) -> list[str] | None:
    dataset, sep, name = split.partition(":")
    info = DATASETS.get(dataset)
    if not sep or info is None or info.kind != "statements" or name not in info.splits:
        return None
    try:
        return [s.id for s in load_dataset(dataset, data_dir, split=name, allow_download=False)]
    except (UsageError, FileNotFoundError) as err:
        logger.info("benchmark for %s not available (%s)", split, err)
        return None


def _label(path: str, manifest: evlog.Manifest | None) -> str:
    if manifest is not None and manifest.model:
        return manifest.model.rstrip("/").split("/")[-1]
    name = storage.basename(path)
    for suffix in (".gz", ".jsonl", ".json"):
        name = name.removesuffix(suffix)
    return name or path


def check_manifest_splits(path: str, manifest: evlog.Manifest) -> None:
    """Each split lists a statement once, and no statement is in two splits: a repeat would
    grow the pass@k denominator, an id in two splits would move one split's attempts."""
    where: dict[str, str] = {}
    name = storage.join(path, evlog.MANIFEST)
    for split, ids in manifest.splits.items():
        if len(set(ids)) != len(ids):
            seen: set[str] = set()
            sid = next(s for s in ids if s in seen or seen.add(s))  # type: ignore[func-returns-value]
            raise evlog.LogFormatError(f"{name}: split {split!r} lists statement {sid!r} "
                                       f"{ids.count(sid)} times; list each statement once")
        for sid in ids:
            first = where.setdefault(sid, split)
            if first != split:
                raise evlog.LogFormatError(
                    f"{name}: statement {sid!r} is listed in splits {first!r} and {split!r}; "
                    "a statement id must belong to one split")


def load_log(path: str | os.PathLike[str], fmt: LogFormat = "auto",
             data_dir: str | Path | None = None, label: str | None = None,
             profile: str | None = None) -> LoadedLog:
    """A log as columns; `profile` selects which verifier profile's verdicts count as the
    status (logs judged under several, see `stp.eval.run`)."""
    read = _read_log(os.fspath(path), fmt, data_dir, profile)
    if profile:
        label = f"{label or _label(read.path, read.manifest)} [{profile}]"
    return read.loaded(read.builder.build(), label)


def load_log_profiles(path: str | os.PathLike[str], profiles: list[str],
                      fmt: LogFormat = "auto", data_dir: str | Path | None = None,
                      observe: Callable[[list[Any]], None] | None = None
                      ) -> dict[str, LoadedLog]:
    """`load_log(path, profile=p)` for every p in `profiles`, from one read of the log;
    `observe` sees every decoded batch of records (with `verdicts` and `reasons`), which is how
    the strict profile's rejections are counted in the same pass."""
    read = _read_log(os.fspath(path), fmt, data_dir, None, profiles, observe)
    columns = read.builder.build_profiles(profiles)
    base = _label(read.path, read.manifest)
    return {p: read.loaded(columns[p], f"{base} [{p}]") for p in profiles}


@dataclass
class _ReadLog:
    """What one read of a log produced, before the columns are built."""

    path: str
    kind: str
    builder: evlog.ColumnBuilder
    manifest: evlog.Manifest | None
    universe: dict[str, np.ndarray]
    source: dict[str, UniverseSource]
    unmatched_records: int
    unmatched: list[str]
    notes: list[str]

    def loaded(self, columns: evlog.AttemptColumns, label: str | None) -> LoadedLog:
        return LoadedLog(path=self.path, format=self.kind,
                         label=label or _label(self.path, self.manifest), columns=columns,
                         universe=self.universe, universe_source=self.source,
                         unmatched_records=self.unmatched_records,
                         unmatched_statements=self.unmatched, notes=list(self.notes))


def _read_log(path: str, fmt: str, data_dir: str | Path | None, profile: str | None,
              profiles: list[str] | None = None,
              observe: Callable[[list[Any]], None] | None = None) -> _ReadLog:
    if not storage.exists(path):
        raise FileNotFoundError(f"no such log: {path}")
    kind = detect_format(path) if fmt == "auto" else fmt
    builder = evlog.ColumnBuilder()
    universe_ids: dict[str, list[str]] = {}
    source: dict[str, UniverseSource] = {}
    notes: list[str] = []
    unmatched_records = 0
    unmatched: list[str] = []
    manifest = None
    if kind == "stp":
        if profiles or observe:
            raise UsageError(f"{path}: an original STP log has no verifier profiles")
        if evlog.is_log_dir(path):
            raise UsageError(f"{path}: an original STP log is one .jsonl[.gz] file, not a folder")
        index = build_benchmark_index(data_dir)
        result = read_stp_log(path, index, builder)
        if result.unmatched_records and not result.touched_splits:
            # Summarising would print empty tables with exit 0 for a file that is not a log of
            # these benchmarks (or whose benchmarks are not in the data directory).
            raise evlog.LogFormatError(
                f"{path}: none of its {result.unmatched_records} records matches a benchmark "
                "statement" + (f" (benchmarks not available: {', '.join(index.missing)})"
                               if index.missing else ""))
        for split in result.touched_splits:
            universe_ids[split] = index.split_members[split]
            source[split] = "benchmark"
        unmatched_records = result.unmatched_records
        unmatched = result.unmatched_statements
        if unmatched_records:
            notes.append(f"{unmatched_records} attempt records ({len(unmatched)}"
                         f"{'+' if len(unmatched) >= 20 else ''} distinct statements) match no "
                         "benchmark statement and are ignored"
                         + (f"; benchmarks not available: {', '.join(index.missing)}"
                            if index.missing else ""))
    elif kind == "stp-eval":
        evlog.require_log_dir(path)
        manifest = evlog.read_manifest(path)
        for wanted in ([profile] if profile else []) + list(profiles or []):
            if manifest is None or wanted not in manifest.profiles:
                have = ", ".join(manifest.profiles) if manifest is not None else ""
                raise UsageError(f"{path}: no verdicts under profile {wanted!r} in this log "
                                 f"(profiles: {have or 'none recorded'})")
        # Duplicates are the same whatever the profile: the keys do not depend on the status.
        evlog.check_unique_attempts(path, evlog.read_columns(
            path, builder, profile, profiles=profiles or (), observe=observe))
        if manifest is not None:
            check_manifest_splits(path, manifest)
            for split, ids in manifest.splits.items():
                universe_ids[split] = ids
                source[split] = "manifest"
        for split in builder.splits:
            if split in universe_ids:
                continue
            members = _benchmark_ids(split, data_dir)
            if members is not None:
                universe_ids[split] = members
                source[split] = "benchmark"
            else:
                split_idx = builder.split_index[split]
                universe_ids[split] = [sid for sid, s in zip(builder.statement_ids,
                                                             builder.statement_split,
                                                             strict=True) if s == split_idx]
                source[split] = "log"
                notes.append(f"{split}: no manifest and no benchmark to list its statements; "
                             "statements with zero attempts cannot be detected")
    else:
        raise UsageError(f"unknown log format {fmt!r} (choose auto, stp-eval or stp)")
    universe: dict[str, np.ndarray] = {}
    for split, ids in universe_ids.items():
        indices = np.asarray([builder.intern_statement(sid, split) for sid in ids],
                             dtype=np.int64)
        code = builder.intern_split(split)
        wrong = np.asarray(builder.statement_split, np.int32)[indices] != code
        if wrong.any():
            sid = ids[int(np.argmax(wrong))]
            other = builder.splits[builder.statement_split[builder.statement_index[sid]]]
            raise evlog.LogFormatError(
                f"{path}: statement {sid!r} belongs to split {split!r} ({source[split]}) but "
                f"its attempt records say {other!r}; a statement id must belong to one split")
        universe[split] = indices
    return _ReadLog(path, kind, builder, manifest, universe, source, unmatched_records,
                    unmatched, notes)
