"""The evaluation log: one record per proof attempt, stored append-only and read fast.

A log is a directory holding `manifest.json` (what was evaluated: model, seed, the statement ids
of every split, samples per statement) and numbered shards `part-NNNNN.jsonl.gz` written with
`stp.storage.ShardedJsonlWriter`. A shard is published atomically, so a crash loses at most the
shard in flight and `run` resumes by skipping the (statement, sample) pairs already present.
A single `.jsonl` / `.jsonl.gz` file of the same records is accepted for reading too (for logs
merged or produced elsewhere); it has no manifest.

Reading is the bottleneck of `summarize` on multi-million attempt logs, so records are decoded in
batches into a struct holding only the fields the statistics need (msgspec skips the proof text
without materialising it), and returned as numpy columns.
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

import msgspec
import numpy as np
from msgspec import Meta

from stp import storage
from stp.errors import InputFormatError
from stp.ranges import MAX_SAMPLES
from stp.verify.types import INFRASTRUCTURE_FAILURES, Status

LOG_FORMAT = "stp-eval-log/1"
MANIFEST = "manifest.json"
SHARD_PREFIX = "part"
# Decoding this many lines as one JSON array amortises the per-call overhead of the decoder.
_BATCH_LINES = 16_384
_READ_BLOCK = 8 << 20

STATUSES: tuple[str, ...] = ("pass", "fail", "error", "timeout", "memory", "crash")
_STATUS_CODE = {s: i for i, s in enumerate(STATUSES)}
PASS_CODE = _STATUS_CODE["pass"]
INFRA_CODES: frozenset[int] = frozenset(_STATUS_CODE[s] for s in INFRASTRUCTURE_FAILURES)


class Attempt(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One sampled proof and its verdict.

    `split` is "dataset:split" (e.g. "minif2f:test"). `sample` is the sample index 0..k-1 of the
    statement; together with the statement id it identifies the attempt (the resume key).
    `multiplicity` > 1 means that many identical attempts collapsed into this record (self-play
    logs); evaluation logs always write 1. `seconds` is Lean's checking time for the proof."""

    statement_id: str
    split: str
    sample: int
    status: str
    proof: str = ""
    seconds: float = 0.0
    errors: list[str] = msgspec.field(default_factory=list)
    multiplicity: int = 1
    seed: int | None = None
    # Logs judged under several verifier profiles: profile -> status, and profile -> the
    # checker's reasons for a non-pass (e.g. {"strict": ["axiom"]}); `status` is the first
    # profile's verdict.
    verdicts: dict[str, str] = msgspec.field(default_factory=dict)
    reasons: dict[str, list[str]] = msgspec.field(default_factory=dict)


# Bounded at the boundary: an index or multiplicity near 2**63 overflowed the duplicate check and
# the sums, and one beyond MAX_SAMPLES would make the chunk estimator allocate per chunk.
SampleIndex = Annotated[int, Meta(ge=0, lt=MAX_SAMPLES)]
Multiplicity = Annotated[int, Meta(ge=1, le=MAX_SAMPLES)]


class _Light(msgspec.Struct):
    """The fields summarize needs; everything else in a line is skipped by the decoder. The
    types validate each record (decode_batch names the line of the first bad one)."""

    statement_id: str
    split: str
    sample: SampleIndex
    status: Status
    multiplicity: Multiplicity = 1
    verdicts: dict[str, Status] = {}


class _LightJudged(_Light):
    """`_Light` plus the checkers' reasons: read for logs judged under several profiles, where
    one pass yields every profile's statuses and the strict profile's rejections."""

    reasons: dict[str, list[str]] = {}


class Manifest(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What a log evaluates. `splits` maps each split to its statement ids, which is how
    statements that never got an attempt are still counted (as unsolved) and reported."""

    format: str = LOG_FORMAT
    model: str = ""
    seed: int = 0
    temperature: float = 1.0
    max_tokens: int = 0
    prompt_format: str = ""
    samples: int = 0
    splits: dict[str, list[str]] = msgspec.field(default_factory=dict)
    # Verifier profiles each attempt was judged under (empty: one unnamed verifier).
    profiles: list[str] = msgspec.field(default_factory=list)
    # Nucleus sampling; None in logs written before it was recorded.
    top_p: float | None = None
    # Setting changes accepted on resume (`--allow-changed-settings`): each is
    # {"from_shard": index of the first shard written with them, "changed": {key: {from, to}}}.
    changes: list[dict[str, Any]] = msgspec.field(default_factory=list)


class LogFormatError(InputFormatError):
    """A log record is malformed; the message names the file, the line and the field."""


@dataclass
class AttemptColumns:
    """Attempts as parallel arrays; `stmt` indexes `statement_ids`, `split` indexes `splits`."""

    statement_ids: list[str]
    splits: list[str]
    stmt: np.ndarray  # int64, index into statement_ids
    split: np.ndarray  # int32, index into splits
    sample: np.ndarray  # int64
    status: np.ndarray  # int8, index into STATUSES
    multiplicity: np.ndarray  # int64
    # Split of each statement (index into `splits`), the statements' own split labels.
    statement_split: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))

    @property
    def passed(self) -> np.ndarray:
        return self.status == PASS_CODE

    def __len__(self) -> int:
        return int(self.stmt.shape[0])


class ColumnBuilder:
    """Accumulates decoded records into columns, interning statement ids and split names."""

    def __init__(self) -> None:
        self.statement_index: dict[str, int] = {}
        self.statement_ids: list[str] = []
        self.statement_split: list[int] = []
        self.split_index: dict[str, int] = {}
        self.splits: list[str] = []
        self._chunks: list[tuple[np.ndarray, ...]] = []
        self._split_names: list[str] = []  # split label of each interned statement
        self.conflicts: list[str] = []  # statement ids seen under a second split
        # profile -> status chunks, for logs read under several profiles at once.
        self._profile_status: dict[str, list[np.ndarray]] = {}

    def intern_statement(self, statement_id: str, split: str) -> int:
        idx = self.statement_index.get(statement_id)
        if idx is None:
            idx = len(self.statement_ids)
            self.statement_index[statement_id] = idx
            self.statement_ids.append(statement_id)
            self.statement_split.append(self.intern_split(split))
            self._split_names.append(split)
        elif self._split_names[idx] != split:
            # One id under two splits: counted in the first (or vanishing from the second)
            # otherwise. Noted here, on the hot path, and reported by `check_splits`.
            self.conflicts.append(statement_id)
        return idx

    def intern_split(self, split: str) -> int:
        idx = self.split_index.get(split)
        if idx is None:
            idx = len(self.splits)
            self.split_index[split] = idx
            self.splits.append(split)
        return idx

    def check_splits(self, file: str, numbers: list[int], records: list[Any]) -> None:
        """Each statement id belongs to one split; name the first line that breaks that."""
        if not self.conflicts:
            return
        for lineno, r in zip(numbers, records, strict=True):
            first = self._split_names[self.statement_index[r.statement_id]]
            if first != r.split:
                raise LogFormatError(
                    f"{file}:{lineno}: statement {r.statement_id!r} appears in split {first!r} "
                    f"and in split {r.split!r}; a statement id must belong to one split")
        raise LogFormatError(f"{file}: statement {self.conflicts[0]!r} appears in two splits")

    def add(self, stmt: list[int], sample: list[int], status: list[int],
            multiplicity: list[int]) -> None:
        if not stmt:
            return
        s = np.asarray(stmt, dtype=np.int64)
        split_of = np.asarray(self.statement_split, dtype=np.int32)
        self._chunks.append((s, split_of[s], np.asarray(sample, dtype=np.int64),
                             np.asarray(status, dtype=np.int8),
                             np.asarray(multiplicity, dtype=np.int64)))

    def add_profile_status(self, profile: str, status: list[int]) -> None:
        """The status column under `profile` of the batch last `add`ed."""
        if status:
            self._profile_status.setdefault(profile, []).append(
                np.asarray(status, dtype=np.int8))

    def build_profiles(self, profiles: Iterable[str]) -> dict[str, AttemptColumns]:
        """One column set per profile: the same attempts, each profile's verdict as status."""
        base = self.build()
        out = {}
        for p in profiles:
            parts = self._profile_status.get(p)
            status = np.concatenate(parts) if parts else np.zeros(0, np.int8)
            out[p] = replace(base, status=status)
        return out

    def build(self) -> AttemptColumns:
        if self._chunks:
            cols = [np.concatenate(parts) for parts in zip(*self._chunks, strict=True)]
        else:
            cols = [np.zeros(0, np.int64), np.zeros(0, np.int32), np.zeros(0, np.int64),
                    np.zeros(0, np.int8), np.zeros(0, np.int64)]
        return AttemptColumns(self.statement_ids, self.splits, cols[0], cols[1], cols[2],
                              cols[3], cols[4],
                              statement_split=np.asarray(self.statement_split, np.int32))


def status_code(status: str, where: str) -> int:
    code = _STATUS_CODE.get(status)
    if code is None:
        raise LogFormatError(f"{where}: field 'status' has unknown value {status!r} "
                             f"(known: {', '.join(STATUSES)})")
    return code


# ---------------------------------------------------------------------------------------------
# Fast batched line reading (shared with the STP-format reader)


def iter_line_batches(path: str, *, shard: bool = False
                      ) -> Iterator[tuple[list[int], list[bytes]]]:
    """(1-based line numbers, non-empty lines) in batches, from a .jsonl or .jsonl.gz file.

    With `shard=True` the file is a shard of a log directory, which the writer only ever
    publishes whole and non-empty; an empty one is damage (a 0-byte file left by a failed copy
    or sync), and silently reading it as "no attempts" would drop work from every pass@k.
    """
    local = str(storage.local_cache_path(path))
    gzipped = local.endswith(".gz")
    lineno = 0
    numbers: list[int] = []
    batch: list[bytes] = []
    with open(local, "rb") as raw:
        stream: Any = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        reader = io.BufferedReader(stream, buffer_size=_READ_BLOCK) if gzipped else stream
        try:
            for line in reader:
                lineno += 1
                if not line.strip():
                    continue
                numbers.append(lineno)
                batch.append(line)
                if len(batch) >= _BATCH_LINES:
                    yield numbers, batch
                    numbers, batch = [], []
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            raise storage.CorruptRecordError(
                path, lineno + 1, f"truncated or corrupt gzip stream ({err})") from None
    if batch:
        yield numbers, batch
    elif shard and not numbers:
        what = "empty log shard" if lineno == 0 else f"log shard of {lineno} blank line(s)"
        raise LogFormatError(f"{path}: {what} (no records; shards are written whole, so "
                             "this one is damaged); restore it or delete it and rerun `run`")


def decode_batch(path: str, numbers: list[int], lines: list[bytes], type: Any) -> list[Any]:
    """Decode lines as one JSON array; on failure, find and name the offending line."""
    try:
        return msgspec.json.Decoder(list[type]).decode(b"[" + b",".join(lines) + b"]")
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        pass
    one = msgspec.json.Decoder(type)
    for lineno, line in zip(numbers, lines, strict=True):
        try:
            one.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as err:
            raise storage.CorruptRecordError(path, lineno, str(err)) from None
    # Lines that decode alone but not joined (e.g. a line holding two values) land here.
    raise storage.CorruptRecordError(path, numbers[0], "lines do not form valid JSON records")


def peek_first_record(path: str) -> dict[str, Any] | None:
    """The first record of a JSONL file as a dict (format detection); None if empty."""
    for numbers, lines in iter_line_batches(path):
        try:
            value = msgspec.json.decode(lines[0])
        except (msgspec.DecodeError, UnicodeDecodeError) as err:
            raise storage.CorruptRecordError(path, numbers[0], str(err)) from None
        if not isinstance(value, dict):
            raise storage.CorruptRecordError(path, numbers[0], "expected a JSON object per line")
        return value
    return None


# ---------------------------------------------------------------------------------------------
# Our log


def is_log_dir(path: str) -> bool:
    if storage.is_gcs(path):
        return storage.exists(storage.join(path, MANIFEST)) or bool(
            storage.list_shards(path, SHARD_PREFIX))
    return os.path.isdir(path)


def log_files(path: str) -> list[str]:
    """The shard files of a log directory, or the path itself for a single-file log."""
    if is_log_dir(path):
        return storage.list_shards(path, SHARD_PREFIX)
    if not storage.exists(path):
        raise FileNotFoundError(f"no such log: {path}")
    return [path]


def read_manifest(path: str) -> Manifest | None:
    """The manifest of a log directory, or None for single-file logs / logs without one."""
    if not is_log_dir(path):
        return None
    mpath = storage.join(path, MANIFEST)
    if not storage.exists(mpath):
        return None
    try:
        return storage.read_json(mpath, type=Manifest)
    except storage.CorruptRecordError as err:
        raise LogFormatError(str(err)) from None


def write_manifest(path: str, manifest: Manifest) -> None:
    storage.write_json(storage.join(path, MANIFEST), manifest)


class AttemptLog:
    """Append side of a log directory: one shard per `append` call."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._writer = storage.ShardedJsonlWriter(path, SHARD_PREFIX, type=Attempt)

    def append(self, attempts: Iterable[Attempt]) -> str | None:
        return self._writer.write(attempts)


def done_keys(path: str) -> set[tuple[str, int]]:
    """(statement id, sample index) of every attempt already in a log (the resume set)."""
    keys: set[tuple[str, int]] = set()
    if not storage.exists(path):
        return keys
    shard = is_log_dir(path)
    for file in log_files(path):
        for numbers, lines in iter_line_batches(file, shard=shard):
            for rec in decode_batch(file, numbers, lines, _Light):
                keys.add((rec.statement_id, rec.sample))
    return keys


def iter_attempts(path: str) -> Iterator[Attempt]:
    """Every full record of a log (directory or single file), in write order."""
    shard = is_log_dir(path)
    for file in log_files(path):
        for numbers, lines in iter_line_batches(file, shard=shard):
            yield from decode_batch(file, numbers, lines, Attempt)


def read_columns(path: str, builder: ColumnBuilder | None = None,
                 profile: str | None = None, *, profiles: Sequence[str] = (),
                 observe: Callable[[list[Any]], None] | None = None) -> AttemptColumns:
    """The statistics-relevant fields of every attempt of a log, as numpy columns; with
    `profile`, the status is that profile's verdict (records without one keep `status`).

    With `profiles`, the same single pass also fills each profile's status column in `builder`
    (`builder.build_profiles`), and `observe` sees every decoded batch (with `reasons`): a log
    judged under two profiles is read once, not once per profile plus once for rejections."""
    builder = builder or ColumnBuilder()
    shard = is_log_dir(path)
    record_type = _LightJudged if (profiles or observe) else _Light
    codes = _STATUS_CODE
    for file in log_files(path):
        for numbers, lines in iter_line_batches(file, shard=shard):
            records = decode_batch(file, numbers, lines, record_type)
            intern = builder.intern_statement
            stmt = [intern(r.statement_id, r.split) for r in records]
            builder.check_splits(file, numbers, records)
            if profile:
                status = [codes[r.verdicts.get(profile, r.status)] for r in records]
            else:
                status = [codes[r.status] for r in records]
            builder.add(stmt, [r.sample for r in records], status,
                        [r.multiplicity for r in records])
            for p in profiles:
                builder.add_profile_status(
                    p, [codes[r.verdicts.get(p, r.status)] for r in records])
            if observe is not None:
                observe(records)
    return builder.build()


def _int_dtype(values: list[int]) -> Any:
    """int64, or Python ints where a value would not fit (it is then reported, not wrapped)."""
    if values and (max(values) >= 2**62 or min(values) <= -(2**62)):
        return object
    return np.int64


def check_counts(file: str, numbers: list[int], sample: list[int],
                 multiplicity: list[int]) -> None:
    """Sample indices in [0, MAX_SAMPLES) and multiplicities in [1, MAX_SAMPLES]; otherwise name
    the first bad line (logs read without the validating `_Light` type, e.g. original ones)."""
    s = np.asarray(sample, dtype=_int_dtype(sample))
    m = np.asarray(multiplicity, dtype=_int_dtype(multiplicity))
    bad_s = (s < 0) | (s >= MAX_SAMPLES)
    bad = bad_s | (m < 1) | (m > MAX_SAMPLES)
    if bad.any():
        at = int(np.argmax(bad))
        name, rule = (("sample", f">= 0 and < {MAX_SAMPLES}") if bad_s[at]
                      else ("multiplicity", f">= 1 and <= {MAX_SAMPLES}"))
        raise LogFormatError(f"{file}:{numbers[at]}: field {name!r} must be {rule}")


def require_log_dir(path: str) -> None:
    """A directory given as a log must look like one: a manifest or at least one shard.

    Anything else (a run directory, a typo'd parent folder) would otherwise summarise as an
    empty log and print tables of zeros with exit status 0.
    """
    if not is_log_dir(path) or storage.list_shards(path, SHARD_PREFIX):
        return
    if storage.exists(storage.join(path, MANIFEST)):
        return
    raise LogFormatError(f"{path}: not an evaluation log (no {MANIFEST} and no "
                         f"{SHARD_PREFIX}-NNNNN.jsonl.gz shards)")


def check_unique_attempts(path: str, columns: AttemptColumns) -> None:
    """Each (statement, sample) pair may occur once; a repeat would count an attempt twice.

    Repeats come from two runs writing one directory or from merging overlapping logs; pass@k
    computed from them is silently inflated, so they are an error naming the first repeat.
    """
    if len(columns) < 2:
        return
    width = int(columns.sample.max()) + 1  # sample < MAX_SAMPLES: no overflow below
    keys = columns.stmt * width + columns.sample
    cells = (int(columns.stmt.max()) + 1) * width
    # Dense keys (the usual statements x samples grid): counting is linear, sorting is not.
    if cells <= max(8 * len(columns), 1 << 20) and int(
            np.bincount(keys, minlength=cells).max()) < 2:
        return
    _, first, counts = np.unique(keys, return_index=True, return_counts=True)
    repeated = counts > 1
    if not repeated.any():
        return
    at = int(first[int(np.argmax(repeated))])
    sid = columns.statement_ids[int(columns.stmt[at])]
    extra = int((counts[repeated] - 1).sum())
    raise LogFormatError(
        f"{path}: {extra} duplicated attempt record(s), e.g. statement {sid!r} sample "
        f"{int(columns.sample[at])} appears {int(counts[repeated][0])} times; the log was "
        "written by two runs at once or merged from overlapping logs, so pass@k would count "
        "attempts twice. Remove the duplicates (keep one record per statement and sample)")
