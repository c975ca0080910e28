"""The Verifier: dedup + persistent cache in front of a checking backend (local pool or Ray).

    with make_verifier(cfg) as verifier:
        for index, result in verifier.verify(items):     # as completed
            ...
        results = verifier.verify_all(items)              # input order

The backend only ever sees distinct items that are not in the cache; results are fanned back out
to every duplicate. The cache key of an item covers its text (length-prefixed fields), its header
trust and the checker fingerprint (policy, toolchain, Mathlib revision, checker build), so a verdict
is never reused under another policy or checker. A `fail` claimed by a check worker that is still
running is `provisional`: reused within this Verifier's life only, persisted once the pool says
that worker retired consistent, forgotten if it was caught lying (never a persisted false
negative from a worker known to forge). With the cross-check on, a pass is confirmed by
lean-interact before it is cached (cache hits never confirmed are confirmed then); a disagreement
makes the item `error`, never a pass. `verify` may be called from several threads at once (each call has its own
result sink); abandoning the iterator early cancels that call's pending work.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import msgspec

from stp.errors import UsageError
from stp.lean.client import CheckerStartError
from stp.lean.config import session_header, session_heartbeats
from stp.verify.cache import ReferenceStore, ResultCache
from stp.verify.crosscheck import CrossChecker, Disagreement
from stp.verify.dedup import deduplicate
from stp.verify.pool import Engine, PoolSettings, Sink, default_workers
from stp.verify.types import VerifyItem, VerifyResult, encoding_problem, length_prefixed

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
        fingerprint: str = "",
        cross_checker: CrossChecker | None = None,
    ) -> None:
        self.backend = backend
        self.default_header = default_header
        self.cache = cache
        self.premises = premises
        # The checker/policy fingerprint every cache key includes (checker_fingerprint).
        self.fingerprint = fingerprint
        self.cross_checker = cross_checker
        self.last_stats = VerifyStats()
        self._closed = False
        # Provisional fails (key -> result), reused in this process only; keys whose worker was
        # caught lying, and keys settled trusted before their result was read here.
        self._settle_lock = threading.Lock()
        self._provisional: dict[str, VerifyResult] = {}
        self._distrusted: set[str] = set()
        self._trusted_early: set[str] = set()

    def normalize(self, item: VerifyItem) -> VerifyItem:
        """Resolve the empty header (the trusted default) and the configured premises flag."""
        header = item.header or self.default_header
        trusted = item.header_trusted or not item.header
        premises = item.premises or self.premises
        if header == item.header and premises == item.premises and trusted == item.header_trusted:
            return item
        return msgspec.structs.replace(item, header=header, premises=premises,
                                       header_trusted=trusted)

    def versions(self, header: str = "") -> tuple[str, str]:
        """(checker_version, lean_version); starts a worker for `header` (a trusted one: never
        pass a header that came with a proof) if none runs yet, so it also proves the checker can
        start (VerifierError otherwise)."""
        try:
            return self.backend.versions(header or self.default_header)
        except CheckerStartError as err:
            raise VerifierError(f"checker could not start: {err}") from err

    def verify(self, items: Iterable[VerifyItem]) -> Iterator[tuple[int, VerifyResult]]:
        """Yield (input index, result) for every item, as results complete."""
        if self._closed:
            raise RuntimeError("verifier is closed")
        started = time.monotonic()
        every = [self.normalize(it) for it in items]
        stats = VerifyStats(items=len(every))
        self.last_stats = stats
        # an item that cannot be encoded is that item's error, never the batch's
        positions: list[int] = []
        batch: list[VerifyItem] = []
        for i, it in enumerate(every):
            problem = encoding_problem(it)
            if problem is None:
                positions.append(i)
                batch.append(it)
            else:
                yield from self._fan_out([i], VerifyResult(status="error", reasons=["bad_request"],
                                                           detail=problem), stats)
        if not batch:
            return
        context = self.fingerprint
        if self.cache is not None:
            # the probe uses the trusted default header: an item's header may be untrusted
            _checker_version, lean_version = self.versions()
            context = f"{self.fingerprint}|lean={lean_version}"

        def key(it: VerifyItem) -> str:
            return it.key(context)

        groups = deduplicate(batch, key)
        groups.groups = [[positions[i] for i in g] for g in groups.groups]
        stats.unique = len(groups.unique)
        stats.multiplicity = groups.multiplicity_of_input(len(every))
        hits = self.cache.get_many(groups.keys) if self.cache is not None else {}
        if self.cache is not None and self._provisional:
            with self._settle_lock:
                for k in groups.keys:
                    found = self._provisional.get(k)
                    if found is not None and k not in hits:
                        hits[k] = msgspec.structs.replace(found, cached=True)
        misses: list[tuple[int, VerifyItem]] = []
        for g, k in enumerate(groups.keys):
            cached = hits.get(k)
            if cached is None:
                misses.append((g, groups.unique[g]))
                continue
            stats.cache_hits += len(groups.groups[g])
            if cached.passed and self.cross_checker is not None and not cached.cross_checked:
                cached = self._cross_check(groups.unique[g], cached, stats)
                if self.cache is not None and cached.passed:
                    self.cache.put_many([(k, cached)])
            yield from self._fan_out(groups.groups[g], cached, stats)
        if misses:
            sink = Sink(len(misses))
            keys = groups.keys
            if self.cache is not None:
                sink.on_settle = lambda tags, trusted: self._settle([keys[g] for g in tags],
                                                                    trusted)
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
                    if self.cross_checker is not None:  # confirm passes before caching them
                        results = [(g, self._cross_check(groups.unique[g], r, stats)
                                    if r.passed else r) for g, r in results]
                    if self.cache is not None:
                        self._store([(groups.keys[g], r) for g, r in results])
                    for g, result in results:
                        yield from self._fan_out(groups.groups[g], result, stats)
            finally:
                if received < len(misses):
                    self.backend.cancel(sink)
                stats.seconds = time.monotonic() - started
        stats.seconds = time.monotonic() - started

    def _store(self, pairs: list[tuple[str, VerifyResult]]) -> None:
        """Persist judgements; provisional fails stay in memory until settled (`_settle`)."""
        assert self.cache is not None
        final: list[tuple[str, VerifyResult]] = []
        with self._settle_lock:
            for key, result in pairs:
                if not result.provisional:
                    final.append((key, result))
                elif key in self._trusted_early:
                    self._trusted_early.discard(key)
                    final.append((key, msgspec.structs.replace(result, provisional=False)))
                elif key in self._distrusted:
                    self._distrusted.discard(key)
                else:
                    self._provisional[key] = result
        self.cache.put_many(final)

    def _settle(self, keys: list[str], trusted: bool) -> None:
        """The pool's word on provisional fails (called on its loop thread): persist them (their
        worker retired consistent) or forget them (it was caught lying)."""
        if self.cache is None:
            return
        persist: list[tuple[str, VerifyResult]] = []
        with self._settle_lock:
            for key in keys:
                result = self._provisional.pop(key, None)
                if result is None:
                    (self._trusted_early if trusted else self._distrusted).add(key)
                elif trusted:
                    persist.append((key, msgspec.structs.replace(result, provisional=False)))
        if persist:
            self.cache.put_many(persist)

    def _cross_check(self, item: VerifyItem, result: VerifyResult,
                     stats: VerifyStats) -> VerifyResult:
        """The pass confirmed (marked cross_checked), or an `error` naming the disagreement."""
        assert self.cross_checker is not None
        found = self.cross_checker.check(item, result)
        if found is None:
            return msgspec.structs.replace(result, cross_checked=True)
        stats.disagreements.append(found)
        return VerifyResult(status="error", reasons=["crosscheck_disagreement"],
                            axioms=result.axioms, seconds=result.seconds, cached=result.cached,
                            detail=f"our checker passed it, lean-interact did not: {found.detail}")

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
        done = [r for r in out if r is not None]
        if len(done) != len(out):
            missing = [i for i, r in enumerate(out) if r is None]
            raise AssertionError(f"items without a result: {missing[:10]}")
        return done

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


def pool_settings(cfg: STPConfig, command: Sequence[str], cwd: str | None,
                  env: dict[str, str] | None = None, rlimit_as_mb: int = 0) -> PoolSettings:
    """The engine's settings from the config (the one place that maps one to the other)."""
    v, lean = cfg.verifier, cfg.lean
    return PoolSettings(
        command=tuple(command), cwd=cwd, env=env,
        workers=v.workers or default_workers(cfg.cluster.reserved_cpus),
        pipeline_depth=v.pipeline_depth, timeout_s=v.timeout_s,
        start_timeout_s=v.start_timeout_s, memory_mb=v.memory_mb,
        memory_check_s=v.memory_check_s, rlimit_as_mb=rlimit_as_mb,
        max_line_bytes=v.max_response_mb * 1024 * 1024,
        max_export_bytes=v.max_export_mb * 1024 * 1024,
        recycle_after=v.recycle_after, max_header_pools=v.max_header_pools,
        crash_retries=v.crash_retries, recheck=v.recheck,
        replay_workers=v.replay_workers, statement_workers=v.statement_workers,
        statement_batch=v.statement_batch, recheck_spares=v.recheck_spares,
        max_heartbeats=session_heartbeats(lean),
        mode=lean.mode, profile=lean.profile, allowed_axioms=tuple(lean.allowed_axioms),
    )


def _file_digest(path: Path) -> str:
    h = hashlib.blake2b(digest_size=16)
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checker_fingerprint(cfg: STPConfig, command: Sequence[str]) -> str:
    """What a cached verdict depends on besides the item: the checking policy (profile, mode,
    allowed axioms, heartbeats, pass re-check mode), the toolchain and Mathlib revision of the
    workspace, and the checker build (a hash of the binary; for `lean.checker_command`, of the
    argv and of every file it names). Computed from the files, never from a version string."""
    lean = cfg.lean
    parts: list[str] = [
        f"profile={lean.profile}", f"mode={lean.mode}",
        "axioms=" + json.dumps(sorted(set(lean.allowed_axioms))),
        f"heartbeats={session_heartbeats(lean)}", f"recheck={cfg.verifier.recheck}",
    ]
    from stp.lean import toolchain

    root = toolchain.project_dir(lean)
    for name in ("lean-toolchain", "lake-manifest.json"):
        path = root / name
        parts.append(f"{name}=" + (_file_digest(path) if path.is_file() else "absent"))
    if lean.checker_command:
        parts.append("argv=" + json.dumps(list(command)))
        for arg in lean.checker_command:
            path = Path(arg)
            if path.is_absolute() and path.is_file():
                parts.append(f"file:{arg}=" + _file_digest(path))
    else:
        exe = toolchain.checker_exe(lean)
        parts.append("checker=" + (_file_digest(exe) if exe.is_file() else "absent"))
    return hashlib.blake2b(length_prefixed(*parts), digest_size=16).hexdigest()


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
    from stp.verify import sandbox

    command, cwd = toolchain.checker_command(cfg.lean)
    fingerprint = checker_fingerprint(cfg, command)
    wrapped, cwd, env = sandbox.wrap(cfg, command, cwd)
    settings = pool_settings(cfg, wrapped, cwd, env, sandbox.address_space_mb(cfg))
    cache_dir = cache_directory(cfg)
    cache = ResultCache(cache_dir) if cache_dir is not None else None
    backend: Backend
    if cfg.verifier.backend == "local":
        references = ReferenceStore(cache, fingerprint) if cache is not None else None
        backend = Engine(settings, references)
    elif cfg.verifier.backend == "ray":
        from stp.verify.ray_backend import RayBackend

        backend = RayBackend(cfg, settings)
    else:
        if cache is not None:
            cache.close()
        raise UsageError(f"verifier.backend must be 'local' or 'ray', got {cfg.verifier.backend!r}")
    cross = None
    if cfg.verifier.cross_check:
        from stp.verify.crosscheck import LeanInteractBackend

        cross = CrossChecker(LeanInteractBackend(cfg.lean, timeout_s=cfg.verifier.timeout_s,
                                                 memory_mb=cfg.verifier.memory_mb,
                                                 verifier_cfg=cfg.verifier))
    return Verifier(backend, default_header=session_header(cfg.lean), cache=cache,
                    premises=cfg.verifier.premises, fingerprint=fingerprint,
                    cross_checker=cross)
