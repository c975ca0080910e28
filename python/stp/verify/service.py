"""The Verifier: dedup + persistent cache in front of a checking backend (local pool or Ray).

    with make_verifier(cfg) as verifier:
        for index, result in verifier.verify(items):     # as completed
            ...
        results = verifier.verify_all(items)              # input order

The backend only ever sees distinct items that are not in the cache; results are fanned back out
to every duplicate. `verify` may be called from several threads at once (each call has its own
result sink); abandoning the iterator early cancels that call's pending work.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import msgspec

from stp.errors import UsageError
from stp.lean.client import CheckerStartError
from stp.verify.cache import ResultCache
from stp.verify.crosscheck import CrossChecker, Disagreement
from stp.verify.dedup import deduplicate
from stp.verify.pool import Engine, PoolSettings, Sink, default_workers
from stp.verify.types import VerifyItem, VerifyResult

if TYPE_CHECKING:
    from stp.config import STPConfig

log = logging.getLogger(__name__)

CACHE_OFF = ("off", "none")


class VerifierError(RuntimeError):
    """The backend cannot check anything (checker will not start, pool died)."""


class Backend(Protocol):
    """What the Verifier needs from a pool: the local Engine and the Ray backend provide it."""

    def submit(self, entries: Sequence[tuple[int, VerifyItem]], sink: Sink) -> None: ...

    def cancel(self, sink: Sink) -> None: ...

    def versions(self, header: str, timeout: float | None = None) -> tuple[str, str]: ...

    def close(self) -> None: ...


@dataclass
class VerifyStats:
    """Bookkeeping of the latest `verify` call (per Verifier; the last call to start wins)."""

    items: int = 0
    unique: int = 0
    cache_hits: int = 0
    checked: int = 0
    # For every input position, how many items of the batch were identical to it (>= 1).
    multiplicity: list[int] = field(default_factory=list)
    by_status: dict[str, int] = field(default_factory=dict)
    disagreements: list[Disagreement] = field(default_factory=list)
    seconds: float = 0.0


class Verifier:
    def __init__(
        self,
        backend: Backend,
        *,
        default_header: str,
        cache: ResultCache | None = None,
        premises: bool = False,
        key_salt: str = "",
        cross_checker: CrossChecker | None = None,
    ) -> None:
        self.backend = backend
        self.default_header = default_header
        self.cache = cache
        self.premises = premises
        # Distinguishes caches of different checker commands that report the same version
        # (only used when a test plugs in a stand-in command).
        self.key_salt = key_salt
        self.cross_checker = cross_checker
        self.last_stats = VerifyStats()
        self._closed = False

    def normalize(self, item: VerifyItem) -> VerifyItem:
        """Resolve the empty header and the configured premises flag."""
        header = item.header or self.default_header
        premises = item.premises or self.premises
        if header == item.header and premises == item.premises:
            return item
        return msgspec.structs.replace(item, header=header, premises=premises)

    def versions(self, header: str = "") -> tuple[str, str]:
        """(checker_version, lean_version); starts a worker for `header` if none runs yet, so it
        also proves the checker can start (VerifierError otherwise)."""
        try:
            return self.backend.versions(header or self.default_header)
        except CheckerStartError as err:
            raise VerifierError(f"checker could not start: {err}") from err

    def verify(self, items: Iterable[VerifyItem]) -> Iterator[tuple[int, VerifyResult]]:
        """Yield (input index, result) for every item, as results complete."""
        if self._closed:
            raise RuntimeError("verifier is closed")
        started = time.monotonic()
        batch = [self.normalize(it) for it in items]
        stats = VerifyStats(items=len(batch))
        self.last_stats = stats
        if not batch:
            return
        checker_version = lean_version = ""
        if self.cache is not None:
            checker_version, lean_version = self.versions(batch[0].header)
            checker_version += self.key_salt

        def key(it: VerifyItem) -> str:
            return it.key(checker_version, lean_version)

        groups = deduplicate(batch, key)
        stats.unique = len(groups.unique)
        stats.multiplicity = groups.multiplicity_of_input(len(batch))
        hits = self.cache.get_many(groups.keys) if self.cache is not None else {}
        misses: list[tuple[int, VerifyItem]] = []
        for g, k in enumerate(groups.keys):
            cached = hits.get(k)
            if cached is None:
                misses.append((g, groups.unique[g]))
                continue
            stats.cache_hits += len(groups.groups[g])
            yield from self._fan_out(groups.groups[g], cached, stats)
        if misses:
            sink = Sink(len(misses))
            self.backend.submit(misses, sink)
            received = 0
            try:
                while received < len(misses):
                    try:
                        results = sink.get(timeout=5.0)
                    except Exception:  # queue.Empty: just poll the backend's health
                        self._check_alive()
                        continue
                    received += len(results)
                    stats.checked += len(results)
                    if self.cache is not None:
                        self.cache.put_many((groups.keys[g], r) for g, r in results)
                    for g, result in results:
                        if self.cross_checker is not None and result.passed:
                            found = self.cross_checker.check(groups.unique[g], result)
                            if found is not None:
                                stats.disagreements.append(found)
                        yield from self._fan_out(groups.groups[g], result, stats)
            finally:
                if received < len(misses):
                    self.backend.cancel(sink)
                stats.seconds = time.monotonic() - started
        stats.seconds = time.monotonic() - started

    @staticmethod
    def _fan_out(positions: list[int], result: VerifyResult,
                 stats: VerifyStats) -> Iterator[tuple[int, VerifyResult]]:
        stats.by_status[result.status] = stats.by_status.get(result.status, 0) + len(positions)
        yield positions[0], result
        for i in positions[1:]:
            yield i, msgspec.structs.replace(result)  # each caller gets its own object

    def verify_all(self, items: Iterable[VerifyItem]) -> list[VerifyResult]:
        """Results in input order."""
        batch = list(items)
        out: list[VerifyResult | None] = [None] * len(batch)
        for i, result in self.verify(batch):
            if out[i] is not None:
                raise AssertionError(f"item {i} answered twice")
            out[i] = result
        missing = [i for i, r in enumerate(out) if r is None]
        if missing:
            raise AssertionError(f"items without a result: {missing[:10]}")
        return out  # type: ignore[return-value]

    def _check_alive(self) -> None:
        alive = getattr(self.backend, "alive", None)
        if callable(alive) and not alive():
            raise VerifierError("the verification backend stopped")

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self.backend.close()
        finally:
            if self.cache is not None:
                self.cache.close()
            if self.cross_checker is not None:
                self.cross_checker.close()

    def __enter__(self) -> Verifier:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def pool_settings(cfg: STPConfig, command: Sequence[str], cwd: str | None) -> PoolSettings:
    v = cfg.verifier
    return PoolSettings(
        command=tuple(command), cwd=cwd,
        workers=v.workers or default_workers(cfg.cluster.reserved_cpus),
        pipeline_depth=v.pipeline_depth, timeout_s=v.timeout_s,
        start_timeout_s=v.start_timeout_s, memory_mb=v.memory_mb,
        memory_check_s=v.memory_check_s, rlimit_as_mb=v.rlimit_as_mb,
        recycle_after=v.recycle_after, max_header_pools=v.max_header_pools,
        crash_retries=v.crash_retries, max_heartbeats=cfg.lean.max_heartbeats,
        mode=cfg.lean.mode, allowed_axioms=tuple(cfg.lean.allowed_axioms),
    )


def cache_directory(cfg: STPConfig) -> Path | None:
    """verifier.cache_dir, else <run_dir>/verify-cache; None when the cache is off.

    The cache is SQLite and must be local: a run directory on GCS gets a per-run cache under
    ~/.cache/stp/verify-cache instead (resumes on the same machine still skip work)."""
    configured = cfg.verifier.cache_dir
    if configured.lower() in CACHE_OFF:
        return None
    if configured:
        if "://" in configured:
            raise UsageError(f"verifier.cache_dir must be a local directory, got {configured}")
        return Path(configured).expanduser()
    run_dir = cfg.run.run_dir
    if "://" in run_dir:
        digest = hashlib.blake2b(run_dir.encode(), digest_size=8).hexdigest()
        return Path("~/.cache/stp/verify-cache").expanduser() / digest
    return Path(run_dir).expanduser() / "verify-cache"


def make_verifier(cfg: STPConfig) -> Verifier:
    """The configured verifier; its checker is `lean.checker_command`, else the built stp_check."""
    from stp.lean import toolchain

    command, cwd = toolchain.checker_command(cfg.lean)
    salt = ""
    if cfg.lean.checker_command:
        salt = "|" + hashlib.blake2b("\0".join(command).encode(), digest_size=8).hexdigest()
    settings = pool_settings(cfg, command, cwd)
    backend: Backend
    if cfg.verifier.backend == "local":
        backend = Engine(settings)
    elif cfg.verifier.backend == "ray":
        from stp.verify.ray_backend import RayBackend

        backend = RayBackend(cfg, settings)
    else:
        raise UsageError(f"verifier.backend must be 'local' or 'ray', got {cfg.verifier.backend!r}")
    cache_dir = cache_directory(cfg)
    cross = None
    if cfg.verifier.cross_check:
        from stp.verify.crosscheck import LeanInteractBackend

        cross = CrossChecker(LeanInteractBackend(cfg.lean, timeout_s=cfg.verifier.timeout_s))
    try:
        cache = ResultCache(cache_dir) if cache_dir is not None else None
    except Exception:
        backend.close()
        raise
    return Verifier(backend, default_header=cfg.lean.default_header, cache=cache,
                    premises=cfg.verifier.premises, key_salt=salt, cross_checker=cross)
