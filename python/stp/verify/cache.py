"""Persistent verdict cache: re-runs and resumed runs never re-check a proof.

One SQLite file (`<cache_dir>/results.sqlite`, WAL journal) mapping the item's content key, which
already includes the checker and Lean versions, to the msgspec-encoded VerifyResult. SQLite gives
atomic batched inserts (a crash loses at most the uncommitted batch, never corrupts what is there),
indexed lookups without loading millions of results into memory, and safe use from several threads
of one process (one connection behind a lock).

Only judgements are cached: pass and fail (a `fail` claimed by a check worker only once that
worker retired consistent: stp.verify.pool `provisional`). `error` (the checker could not judge: header error,
internal error, cannot start), timeouts, memory kills and crashes depend on the machine, the
workspace build and the limits, so a re-run tries them again.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

from stp.errors import FULL_DISK_ERRNOS
from stp.verify.types import VerifyResult, length_prefixed

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(VerifyResult)
_CHUNK = 500  # SQLite's host-parameter limit is 999 on old builds


def cacheable(result: VerifyResult) -> bool:
    """A judgement the checker reached about the proof itself."""
    return result.status in ("pass", "fail") and not result.provisional


class ResultCache:
    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory).expanduser()
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / "results.sqlite"
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, result BLOB NOT NULL)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS refs (key TEXT PRIMARY KEY, value BLOB NOT NULL)")

    def get_many(self, keys: Sequence[str]) -> dict[str, VerifyResult]:
        found: dict[str, VerifyResult] = {}
        with self._lock:
            for start in range(0, len(keys), _CHUNK):
                chunk = keys[start:start + _CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, result FROM results WHERE key IN ({marks})", chunk).fetchall()
                for key, blob in rows:
                    result = _decoder.decode(blob)
                    result.cached = True
                    found[key] = result
        return found

    def put_many(self, pairs: Iterable[tuple[str, VerifyResult]]) -> int:
        """Store the cacheable results of a batch in one transaction; returns how many."""
        rows = [(k, _encoder.encode(r)) for k, r in pairs if cacheable(r)]
        if not rows:
            return 0
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT OR REPLACE INTO results (key, result) VALUES (?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return len(rows)

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


class ReferenceStore:
    """Statement REFERENCEs (or the `fail` a statement got) across runs, in the result cache's
    SQLite file (table `refs`), keyed by header, header trust, statement and `context` (the
    checker fingerprint: toolchain, Mathlib revision, checker binary digest, heartbeats, mode),
    so a dataset statement is elaborated once and a heartbeat-caused `statement_error` is never
    served under other limits. The pool stores only answers of statement processes that answered
    their whole batch consistently and exited cleanly."""

    def __init__(self, cache: ResultCache, context: str) -> None:
        self.cache = cache
        self.context = context

    def _key(self, header: str, trusted: bool, statement: str) -> str:
        return hashlib.blake2b(length_prefixed(header, str(trusted), statement, self.context),
                               digest_size=16).hexdigest()

    def get(self, header: str, trusted: bool, statement: str) -> msgspec.Raw | VerifyResult | None:
        key = self._key(header, trusted, statement)
        with self.cache._lock:
            row = self.cache._db.execute("SELECT value FROM refs WHERE key = ?",
                                         (key,)).fetchone()
        if row is None:
            return None
        blob = bytes(row[0])
        if blob[:1] == b"R":
            return msgspec.Raw(blob[1:])
        return _decoder.decode(blob[1:])

    def put(self, entries: list[tuple[str, bool, str, msgspec.Raw | VerifyResult]]) -> None:
        rows = []
        for header, trusted, statement, value in entries:
            blob = (b"R" + bytes(value) if isinstance(value, msgspec.Raw)
                    else b"F" + _encoder.encode(value))
            rows.append((self._key(header, trusted, statement), blob))
        with self.cache._lock:
            self.cache._db.execute("BEGIN")
            try:
                self.cache._db.executemany(
                    "INSERT OR REPLACE INTO refs (key, value) VALUES (?, ?)", rows)
                self.cache._db.execute("COMMIT")
            except BaseException:
                self.cache._db.execute("ROLLBACK")
                raise


def out_of_space(err: BaseException) -> bool:
    """Whether a cache write failed for lack of space (not a bug).

    The error chain is searched: SQLite rolls a transaction back itself when the disk fills, so
    the cache's own ROLLBACK then fails ("no transaction is active") with the real cause as its
    context."""
    chain: BaseException | None = err
    for _ in range(8):
        if chain is None:
            return False
        text = str(chain).lower()
        if ((isinstance(chain, OSError) and chain.errno in FULL_DISK_ERRNOS)
                or "disk is full" in text or "no space" in text):
            return True
        chain = chain.__cause__ or chain.__context__
    return False
