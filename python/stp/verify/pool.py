"""The local checker pool: header-keyed warm workers on one asyncio loop in a background thread.

Every job ends in exactly one result delivered to its sink: a verdict, `timeout`, `memory`,
`crash` (after `crash_retries` retries on another worker) or `error`. The invariants that
guarantee it:
- a job is in exactly one place at a time: one of its pool's queues (`pending` for a first check,
  `rechecks` for a fresh re-check, `replays` for the judge; `_HeaderPool.queue_of` decides), the
  waiting list of its statement's reference (`ref_waiters`), a worker's in-flight queue, or
  finished (`Job.done`);
- a worker is retired exactly once (`_retire`), and retiring hands back every in-flight job;
- a response is accepted only if its id is the id of the oldest in-flight job of that worker
  (checkers answer in request order), it echoes that job's nonce, and a `pass` is consistent
  (`stp.lean.protocol.pass_problem`, exports and references included); anything else kills the
  worker. An inconsistent answer is retried once on another worker, then the item is `error`.

Protocol 4 (issue #20; docs/verify.md "Trust base"): every process that elaborates model text
(check workers, statement processes) is assumed compromised; its answers are claims.
- With `recheck` on (strict profile) a check worker is started with `export: true` and every
  pass must carry its EXPORT (a pass without one is a protocol error: retried once, then `error`;
  NEVER a cheaper re-check instead). An EXPORT over `max_export_bytes` is `error`,
  `export_too_large`.
- The statement's REFERENCE comes from a single-use **statement process** (role "statement"):
  started when references are wanted, given at most `statement_batch` statements at Ready,
  stdin closed; its answers are used only once it has answered all of them and exited with code
  0 (any protocol error discards the whole batch: retried once, then `error`). References are
  cached per header + statement (+ limits, toolchain and checker digest when persisted), so a
  dataset statement is elaborated once.
- The **judge** (role "replay") imports the header's modules (read by Python,
  `stp.verify.imports`) and receives REFERENCE + EXPORT only; its verdict decides: pass -> the
  item passes (with `recheck = "fresh"` a fresh re-check is added on top, never instead); fail
  -> `fail` with the judge's reasons (the check worker is then known to have lied: retired);
  error/timeout/crash -> `error` (`recheck_disagreement`).
- Judges and statement processes are outside the `workers` cap and sized from it and the
  measured pass rate and replay/check time ratio (`replay_workers` / `statement_workers` = 0).
- A `fail` from a check worker is `provisional` until that worker retires without ever having
  broken the protocol or been refuted by the judge: then the sink's `on_settle` hears it may be
  persisted; a worker caught lying settles its fails as untrusted (never cached across runs).
- Paper profile: no exports; a pass is re-checked by a fresh worker (each runs one re-check).

Throughput: up to `pipeline_depth` requests are in flight per worker, requests are written in one
batch per loop iteration, results are handed to the caller's thread in batches, and timeouts and
memory are checked by one periodic sweep instead of a timer per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import os
import queue
import signal
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from msgspec import UNSET, Raw

from stp.host import workers_after_reserve
from stp.lean.client import CheckerProcess, CheckerStartError, private_rss_mb
from stp.lean.protocol import (
    CheckerConfig,
    CheckRequest,
    CheckResponse,
    Mode,
    Profile,
    ReferenceRequest,
    ReplayRequest,
    Role,
    pass_problem,
)
from stp.verify.cache import out_of_space
from stp.verify.config import Recheck
from stp.verify.imports import HeaderImportsError, header_imports
from stp.verify.types import VerifyItem, VerifyResult, encoding_problem

log = logging.getLogger(__name__)

# Consecutive failed starts for one header before its pending jobs are answered `error`.
MAX_START_FAILURES = 3
# An inconsistent answer (forged pass, wrong nonce, duplicate keys, oversized line) is retried
# this many times on another worker before the item is answered `error`.
PROTOCOL_RETRIES = 1
# References kept in memory (least recently used dropped; the persistent store keeps the rest).
MAX_MEMORY_REFERENCES = 200_000
# Priors of the judge sizing before enough answers were measured.
PRIOR_PASS_RATE = 0.2
PRIOR_REPLAY_RATIO = 0.25
MEASURE_AFTER = 50

WorkerState = Literal["starting", "ready", "draining", "retired"]
FailureKind = Literal["timeout", "memory", "crash", "protocol"]
# A worker's role: "normal" serves the pool's queue; "fresh" runs exactly one pass re-check;
# "statement" (single-use) answers one batch of references; "replay" is the judge.
WorkerRole = Literal["normal", "fresh", "statement", "replay"]
# Where a job is: first check, waiting for its statement's reference, at the judge, at a fresh
# re-check.
Stage = Literal["check", "reference", "judge", "fresh"]
WIRE_ROLE: dict[WorkerRole, Role] = {"normal": "check", "fresh": "check",
                                     "statement": "statement", "replay": "replay"}


class _Nonces:
    """128-bit request nonces from os.urandom, drawn 4 KiB at a time: one system call per 256
    nonces instead of one per request (the same randomness; the driver's CPU per check counts)."""

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def next(self) -> str:
        if self._at + 16 > len(self._pool):
            self._pool, self._at = os.urandom(4096), 0
        start = self._at
        self._at += 16
        return self._pool[start:start + 16].hex()


_nonce_sources = threading.local()


def new_nonce() -> str:
    """A fresh request nonce (one source per thread: each engine's loop has its own)."""
    source = getattr(_nonce_sources, "source", None)
    if source is None:
        source = _nonce_sources.source = _Nonces()
    return str(source.next())


def join_proof(statement: str, proof: str) -> str:
    """The proof text as sent: the checker concatenates statement + proof verbatim, so a proof
    that does not begin with whitespace gets one "\\n" in front (`:= by` + `simp` must not fuse
    into `:= bysimp`). Position mapping (stp.verify.leanfile) accounts for the inserted line."""
    if proof and not proof[0].isspace():
        return "\n" + proof
    return proof


def response_to_result(resp: CheckResponse) -> VerifyResult:
    return VerifyResult(
        status=resp.verdict, reasons=resp.reasons, errors=resp.errors, warnings=resp.warnings,
        axioms=resp.axioms, forbidden=resp.forbidden, statement_match=resp.statement_match,
        premises=resp.premises, seconds=resp.ms / 1000.0,
    )


class ReferenceStore(Protocol):
    """Persistent references (stp.verify.cache.ReferenceStore): `get` returns the stored answer
    (raw REFERENCE or a `fail` result) of a statement under a header, `put` stores answers."""

    def get(self, header: str, trusted: bool, statement: str) -> Raw | VerifyResult | None: ...

    def put(self, entries: list[tuple[str, bool, str, Raw | VerifyResult]]) -> None: ...


@dataclass(frozen=True, kw_only=True)
class PoolSettings:
    """What the engine needs to know. Built from STPConfig by `stp.verify.service.pool_settings`
    only: no field has a default here, each default lives once in VerifierConfig/LeanConfig."""

    command: tuple[str, ...]
    cwd: str | None
    env: dict[str, str] | None
    workers: int
    pipeline_depth: int
    timeout_s: float
    start_timeout_s: float
    memory_mb: int
    memory_check_s: float
    rlimit_as_mb: int
    max_line_bytes: int
    max_export_bytes: int
    recycle_after: int
    max_header_pools: int
    crash_retries: int
    recheck: Recheck
    # 0 = sized from `workers` and the measured pass rate (`judge_target`)
    replay_workers: int
    statement_workers: int
    statement_batch: int
    recheck_spares: int
    max_heartbeats: int
    mode: Mode
    profile: Profile
    allowed_axioms: tuple[str, ...]


def judge_target(check_workers: int, pass_rate: float, replay_ratio: float, cap: int) -> int:
    """Judges one pool needs: the judge work per unit of time is check_workers x pass rate x
    (judge time / check time); 1.5x headroom so that a burst of passes does not queue; at least
    one, at most `cap`."""
    need = 1.5 * check_workers * pass_rate * replay_ratio
    return max(1, min(cap, math.ceil(need)))


def statement_target(check_workers: int, pass_rate: float, cap: int) -> int:
    """Statement processes running at once for one pool: each answers a batch and exits; one per
    16 check workers at the prior pass rate of 20 %, scaled with the measured rate."""
    return max(1, min(cap, math.ceil(check_workers * pass_rate / 3.2)))


class Sink:
    """Where one `submit` call's results go: batches of (tag, result) read by the caller's thread.

    `on_settle(tags, trusted)` (optional, called on the pool's loop thread) hears when the
    provisional fails of `tags` became persistable (their worker retired consistently) or must
    be forgotten (their worker was caught lying)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.delivered = 0
        self.cancelled = False
        self.queue: queue.SimpleQueue[list[tuple[int, VerifyResult]]] = queue.SimpleQueue()
        self.on_settle: Callable[[list[int], bool], None] | None = None
        self._buffer: list[tuple[int, VerifyResult]] = []
        self._flush_scheduled = False

    def get(self, timeout: float | None = None) -> list[tuple[int, VerifyResult]]:
        return self.queue.get(timeout=timeout)

    # event-loop side
    def _add(self, loop: asyncio.AbstractEventLoop, tag: int, result: VerifyResult) -> None:
        self._buffer.append((tag, result))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        batch, self._buffer = self._buffer, []
        self.delivered += len(batch)
        if batch:
            self.queue.put(batch)


@dataclass(eq=False)
class Job:
    id: int
    tag: int
    item: VerifyItem
    sink: Sink
    attempts: int = 0
    protocol_attempts: int = 0
    done: bool = False
    # The nonce of the latest request sent for this job (a new one per attempt).
    nonce: str = ""
    stage: Stage = "check"
    # Set once the first check passed: the job then waits for its confirmation.
    first_pass: VerifyResult | None = None
    # The first pass's EXPORT and the statement's REFERENCE (raw JSON, forwarded to the judge).
    export: Raw | None = None
    reference: Raw | None = None
    # The check worker whose pass is being confirmed (refuted by the judge -> it lied).
    checked_by: _Worker | None = None

    @property
    def rechecking(self) -> bool:
        return self.first_pass is not None

    @property
    def replaying(self) -> bool:
        return self.stage == "judge"

    def request(self) -> CheckRequest | ReplayRequest:
        it = self.item
        self.nonce = new_nonce()
        if self.stage == "judge":
            assert self.export is not None and self.reference is not None
            # never any text: the judge sees the reference and the export only
            return ReplayRequest(id=str(self.id), nonce=self.nonce, reference=self.reference,
                                 export=self.export)
        return CheckRequest(id=str(self.id), nonce=self.nonce, statement=it.statement,
                            proof=join_proof(it.statement, it.proof), name=it.name,
                            premises=it.premises)


@dataclass(eq=False)
class RefJob:
    """One statement whose reference is wanted (by the jobs in its pool's `ref_waiters`)."""

    id: int
    statement: str
    attempts: int = 0
    protocol_attempts: int = 0
    nonce: str = ""
    done: bool = False
    # Set once a batch holding it failed: it is retried alone, so that one lying statement
    # process (or one statement that crashes it) cannot fail the other statements of its batch.
    isolate: bool = False

    def request(self) -> ReferenceRequest:
        self.nonce = new_nonce()
        return ReferenceRequest(id=str(self.id), nonce=self.nonce, statement=self.statement)


@dataclass
class EngineStats:
    spawned: int = 0
    start_failures: int = 0
    recycled: int = 0
    timeouts: int = 0
    memory_kills: int = 0
    crashes: int = 0
    retries: int = 0
    checks: int = 0
    evicted_pools: int = 0
    protocol_errors: int = 0
    rechecks: int = 0
    recheck_rejections: int = 0
    # of `rechecks`: those judged (kernel replay against the reference)
    replays: int = 0
    # judge refutations of a check worker's pass (that worker lied: retired)
    judge_rejections: int = 0
    # passes whose EXPORT exceeded max_export_bytes (answered `error`)
    export_too_large: int = 0
    # references answered by statement processes / served from the caches
    references: int = 0
    reference_hits: int = 0
    statement_processes: int = 0
    header_seconds: list[float] = field(default_factory=list)


class _Worker:
    """Pool-side state of one CheckerProcess."""

    def __init__(self, engine: Engine, pool: _HeaderPool, role: WorkerRole = "normal") -> None:
        self.engine = engine
        self.pool = pool
        self.role: WorkerRole = role
        s = engine.settings
        self.proc = CheckerProcess(s.command, self, cwd=s.cwd, env=s.env,
                                   rlimit_as_mb=s.rlimit_as_mb, max_line_bytes=s.max_line_bytes,
                                   max_export_bytes=s.max_export_bytes,
                                   runs_model_text=role != "replay")
        self.state: WorkerState = "starting"
        self.inflight: deque[Any] = deque()
        self.served = 0
        self.head_since = 0.0
        self.started_at = time.monotonic()
        # Fails this worker answered that are still provisional: (sink, tag).
        self.held_fails: list[tuple[Sink, int]] = []
        # Set when the judge refuted one of its passes or it broke the protocol.
        self.lied = False
        # Statement process: its batch's answers, used only after a clean exit.
        self.ref_answers: list[tuple[RefJob, CheckResponse]] = []
        self.batch: list[RefJob] = []
        self.awaiting_exit = False

    @property
    def active(self) -> bool:
        return self.state in ("starting", "ready")

    async def run_start(self) -> None:
        s = self.engine.settings
        judge = self.role == "replay"
        cfg = CheckerConfig(role=WIRE_ROLE[self.role],
                            export=self.role == "normal" and self.engine.exports,
                            header="" if judge else self.pool.header,
                            imports=list(self.pool.imports or []) if judge else [],
                            header_trusted=self.pool.trusted,
                            max_heartbeats=s.max_heartbeats, mode=s.mode, profile=s.profile,
                            allowed_axioms=list(s.allowed_axioms))
        try:
            ready = await self.proc.start(cfg, s.start_timeout_s)
        except CheckerStartError as err:
            self.engine._start_failed(self, str(err))
            return
        except Exception as err:  # a bug or OS failure: still never lose the pool's jobs
            log.exception("unexpected error starting a checker")
            self.proc.kill()
            self.engine._start_failed(self, f"{type(err).__name__}: {err}")
            return
        self.engine._started(self, ready.checker_version, ready.lean_version,
                             ready.header_ms / 1000.0)

    # CheckerListener
    def on_responses(self, responses: list[CheckResponse]) -> None:
        self.engine._responses(self, responses)

    def on_protocol_error(self, detail: str, kind: FailureKind = "crash") -> None:
        self.engine._worker_failed(self, kind, f"misbehaving checker: {detail}")

    def on_exit(self, detail: str) -> None:
        if (self.role == "statement" and self.awaiting_exit and not self.inflight
                and self.proc.returncode() == 0):
            self.engine._statement_done(self)
            return
        self.engine._worker_failed(self, "crash", detail)


PoolKey = tuple[str, bool]  # (header, header_trusted)


class _HeaderPool:
    def __init__(self, key: PoolKey) -> None:
        self.key = key
        self.header, self.trusted = key
        # The judge's imports, read by Python (None: the header's imports cannot be read).
        self.imports: list[str] | None
        self.imports_error = ""
        try:
            self.imports = header_imports(self.header)
        except HeaderImportsError as err:
            self.imports, self.imports_error = None, str(err)
        self.pending: deque[Job] = deque()
        # Jobs whose first check passed, waiting for a fresh worker to re-check them.
        self.rechecks: deque[Job] = deque()
        # Jobs whose first check passed with an export and whose reference is known: for the judge.
        self.replays: deque[Job] = deque()
        # Statements whose reference is wanted and not yet sent to a statement process.
        self.references: deque[RefJob] = deque()
        # statement -> its RefJob while the reference is being made, and the jobs waiting for it
        self.ref_jobs: dict[str, RefJob] = {}
        self.ref_waiters: dict[str, list[Job]] = {}
        self.workers: list[_Worker] = []
        self.start_failures = 0
        self.replay_start_failures = 0
        self.statement_start_failures = 0
        self.last_error = ""

    def active_workers(self, role: WorkerRole = "normal") -> list[_Worker]:
        return [w for w in self.workers if w.active and w.role == role]

    def fresh_unused(self) -> list[_Worker]:
        """Fresh workers that have not been given their one re-check yet."""
        return [w for w in self.workers if w.role == "fresh" and w.active and not w.inflight
                and w.served == 0]

    def requeue(self, jobs: list[Job]) -> None:
        """Put jobs back at the front of their queue, order kept."""
        for job in reversed(jobs):
            if not job.done:
                self.queue_of(job).appendleft(job)

    def queue_of(self, job: Job) -> deque[Job]:
        if job.stage == "judge":
            return self.replays
        return self.rechecks if job.stage == "fresh" else self.pending

    def busy(self) -> bool:
        return (bool(self.pending) or bool(self.rechecks) or bool(self.replays)
                or bool(self.references) or bool(self.ref_waiters)
                or any(w.inflight or w.awaiting_exit for w in self.workers))


class Engine:
    """The pool. Thread-safe entry points: submit, cancel, versions, stats, close."""

    def __init__(self, settings: PoolSettings, references: ReferenceStore | None = None) -> None:
        if settings.workers < 1:
            raise ValueError("the pool needs at least one worker")
        self.settings = settings
        self.stats = EngineStats()
        # Passes of check workers must carry an EXPORT for the judge (strict profile, re-check on).
        self.exports = settings.recheck != "off" and settings.profile == "strict"
        self.references = references
        self._allowed_axioms = frozenset(settings.allowed_axioms)
        self.checker_version: str | None = None
        self.lean_version: str | None = None
        self._ids = itertools.count()
        self._pools: OrderedDict[PoolKey, _HeaderPool] = OrderedDict()
        # (header, trusted, statement) -> the REFERENCE, or the `fail` the statement got
        self._ref_cache: OrderedDict[tuple[str, bool, str], Raw | VerifyResult] = OrderedDict()
        # Measured for the judge sizing: first checks and their passes, service seconds
        self._first_checks = 0
        self._first_passes = 0
        self._check_seconds = 0.0
        self._judge_seconds = 0.0
        self._judged_count = 0
        self._versions_waiters: list[asyncio.Future[tuple[str, str]]] = []
        self._kick_scheduled = False
        self._closed = False
        # Every process ever started, so that interpreter exit kills what close() did not.
        self._all_workers: weakref.WeakSet[CheckerProcess] = weakref.WeakSet()
        weakref.finalize(self, _kill_all, self._all_workers)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run_loop, name="stp-verify-pool", daemon=True)
        self._thread.start()
        self._sweeper = asyncio.run_coroutine_threadsafe(self._sweep(), self._loop)

    # -- thread-safe API ----------------------------------------------------------------------

    def submit(self, entries: Sequence[tuple[int, VerifyItem]], sink: Sink) -> None:
        """Queue items (header already resolved); results arrive on `sink` tagged with the int."""
        if self._closed:
            raise RuntimeError("verifier is closed")
        jobs = [Job(next(self._ids), tag, item, sink) for tag, item in entries]
        self._loop.call_soon_threadsafe(self._enqueue, jobs)

    def cancel(self, sink: Sink) -> None:
        """Drop the sink's pending jobs (in-flight ones finish and are discarded)."""
        sink.cancelled = True
        if not self._closed:
            self._loop.call_soon_threadsafe(self._drop_cancelled)

    def versions(self, header: str, timeout: float | None = None) -> tuple[str, str]:
        """(checker_version, lean_version) from a worker's Ready, starting one if needed."""
        if self.checker_version is not None and self.lean_version is not None:
            return self.checker_version, self.lean_version
        fut = asyncio.run_coroutine_threadsafe(self._versions((header, True)), self._loop)
        return fut.result(timeout)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(30)
        if not self._thread.is_alive():
            self._loop.close()

    def alive(self) -> bool:
        return not self._closed and self._thread.is_alive()

    def worker_pids(self) -> list[int]:
        """Pids of the live workers (each is also its process-group id)."""
        return self._on_loop(lambda: [w.proc.pid for p in self._pools.values() for w in p.workers
                                      if w.proc.pid is not None and w.active])

    def headers(self) -> list[str]:
        """Headers with a warm pool, least recently used first."""
        return self._on_loop(lambda: [p.header for p in self._pools.values()])

    def sizing(self) -> dict[str, float]:
        """The measured pass rate and judge/check time ratio the auto sizing uses."""
        return self._on_loop(lambda: {"pass_rate": self._pass_rate(),
                                      "replay_ratio": self._replay_ratio()})

    def _on_loop(self, fn: Callable[[], Any]) -> Any:
        async def call() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(call(), self._loop).result(30)

    # -- loop internals -----------------------------------------------------------------------

    def _run_loop(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    async def _shutdown(self) -> None:
        self._sweeper.cancel()
        for pool in list(self._pools.values()):
            for w in list(pool.workers):
                self._settle(w)
                w.state = "retired"
                w.proc.kill()
            pool.workers.clear()
        # let the loop reap the killed processes before it closes
        await asyncio.gather(*(p.wait_closed(5.0) for p in list(self._all_workers)))
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for fut in self._versions_waiters:
            if not fut.done():
                fut.set_exception(RuntimeError("verifier closed"))

    def _pool(self, key: PoolKey) -> _HeaderPool:
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _HeaderPool(key)
        else:
            self._pools.move_to_end(key)
        return pool

    def _enqueue(self, jobs: list[Job]) -> None:
        for job in jobs:
            problem = encoding_problem(job.item)
            if problem is not None:  # this item's error, never the batch's
                self._finish(job, VerifyResult(status="error", reasons=["bad_request"],
                                               detail=problem))
                continue
            pool = self._pool((job.item.header, job.item.header_trusted))
            if self.exports and pool.imports is None:
                # the judge could not be told what to import: refuse, never guess
                self._finish(job, VerifyResult(
                    status="error", reasons=["bad_request"],
                    detail=f"the header's imports cannot be read: {pool.imports_error}"))
                continue
            pool.pending.append(job)
            if self.exports:
                # ask for the statement's reference now, in parallel with the checks, so that a
                # pass does not wait for a statement process to start (with 32-64 attempts per
                # statement this is a few percent of the check work)
                self._prefetch_reference(pool, job.item.statement)
        self._kick()

    def _prefetch_reference(self, pool: _HeaderPool, statement: str) -> None:
        if statement in pool.ref_jobs:
            return
        key = (pool.header, pool.trusted, statement)
        if key in self._ref_cache:
            return
        if self.references is not None:
            known = self.references.get(pool.header, pool.trusted, statement)
            if known is not None:
                self._remember_reference(key, known)
                return
        ref = RefJob(next(self._ids), statement)
        pool.ref_jobs[statement] = ref
        pool.references.append(ref)

    def _drop_cancelled(self) -> None:
        for pool in self._pools.values():
            if any(j.sink.cancelled for j in pool.pending):
                pool.pending = deque(j for j in pool.pending if not j.sink.cancelled)
            if any(j.sink.cancelled for j in pool.rechecks):
                pool.rechecks = deque(j for j in pool.rechecks if not j.sink.cancelled)
            if any(j.sink.cancelled for j in pool.replays):
                pool.replays = deque(j for j in pool.replays if not j.sink.cancelled)
            for statement, waiters in list(pool.ref_waiters.items()):
                for job in waiters:
                    if job.sink.cancelled:
                        job.done = True
                left = [j for j in waiters if not j.done]
                if left:
                    pool.ref_waiters[statement] = left
                else:  # an empty entry would keep the pool busy (never evicted)
                    del pool.ref_waiters[statement]

    async def _versions(self, key: PoolKey) -> tuple[str, str]:
        if self.checker_version is not None and self.lean_version is not None:
            return self.checker_version, self.lean_version
        fut: asyncio.Future[tuple[str, str]] = self._loop.create_future()
        self._versions_waiters.append(fut)
        pool = self._pool(key)
        if not pool.active_workers():
            self._spawn(pool)
        return await fut

    def _kick(self) -> None:
        if not self._kick_scheduled:
            self._kick_scheduled = True
            self._loop.call_soon(self._schedule)

    def _finish(self, job: Job, result: VerifyResult) -> None:
        if job.done:
            raise AssertionError(f"job {job.id} answered twice")
        job.done = True
        if not job.sink.cancelled:
            job.sink._add(self._loop, job.tag, result)

    # -- sizing ---------------------------------------------------------------------------------

    def _pass_rate(self) -> float:
        if self._first_checks < MEASURE_AFTER:
            return PRIOR_PASS_RATE
        return self._first_passes / self._first_checks

    def _replay_ratio(self) -> float:
        if self._judged_count < 5 or self._first_checks < MEASURE_AFTER or not self._check_seconds:
            return PRIOR_REPLAY_RATIO
        judge = self._judge_seconds / self._judged_count
        check = self._check_seconds / self._first_checks
        return judge / check if check > 0 else PRIOR_REPLAY_RATIO

    def _judges_wanted(self, pool: _HeaderPool) -> int:
        s = self.settings
        if s.replay_workers:
            return s.replay_workers
        judges = len(pool.active_workers("replay"))
        target = judge_target(max(1, len(pool.active_workers())), self._pass_rate(),
                              self._replay_ratio(), s.workers)
        # a backlog beyond what the running judges pipeline: one more, up to the pool size
        if len(pool.replays) > 2 * s.pipeline_depth * max(1, judges):
            target = max(target, min(s.workers, judges + 1))
        return target

    def _statements_wanted(self, pool: _HeaderPool) -> int:
        s = self.settings
        if s.statement_workers:
            return s.statement_workers
        return statement_target(max(1, len(pool.active_workers())), self._pass_rate(), s.workers)

    # -- scheduling -----------------------------------------------------------------------------

    def _schedule(self) -> None:
        self._kick_scheduled = False
        if self._closed:
            return
        s = self.settings
        # 1. feed ready workers from their pool's queue, one write per worker
        for pool in self._pools.values():
            if not pool.pending:
                continue
            for w in sorted(pool.workers, key=lambda w: len(w.inflight)):
                if w.state == "ready" and w.role == "normal":
                    self._feed(w, pool.pending)
                if not pool.pending:
                    break
        # 1b. each fresh worker gets exactly one re-check, oldest first
        for pool in self._pools.values():
            while pool.rechecks:
                fresh = [w for w in pool.fresh_unused() if w.state == "ready"]
                if not fresh:
                    break
                job = pool.rechecks.popleft()
                if job.sink.cancelled:
                    job.done = True
                    continue
                w = fresh[0]
                w.head_since = time.monotonic()
                w.inflight.append(job)
                w.proc.send([job.request()])
        # 1c. judges take the pool's replays (pipelined like normal workers); a pool with replays
        # waiting and fewer judges than wanted starts one. Judges and statement processes are
        # outside the `workers` cap (sized by `_judges_wanted` / `_statements_wanted`).
        for pool in self._pools.values():
            if not pool.replays:
                continue
            judges = pool.active_workers("replay")
            for w in sorted(judges, key=lambda w: len(w.inflight)):
                if w.state == "ready":
                    self._feed(w, pool.replays)
                if not pool.replays:
                    break
            if pool.replays and len(judges) < self._judges_wanted(pool):
                self._spawn(pool, "replay")
        # 1d. statement processes: one is started while references wait and none is starting
        # (a starting one collects the batch it is given at Ready), up to the wanted number
        for pool in self._pools.values():
            if not pool.references:
                continue
            statements = pool.active_workers("statement")
            starting = any(w.state == "starting" for w in statements)
            if not starting and len(statements) < self._statements_wanted(pool):
                self.stats.statement_processes += 1
                self._spawn(pool, "statement")
        # 2. start workers where work waits, fairest pool first, within the global cap; fresh
        # workers (re-checks) first: their jobs are one step from done
        live = sum(1 for p in self._pools.values() for w in p.workers
                   if w.state != "retired" and w.role in ("normal", "fresh"))
        while live < s.workers:
            fresh_want = [p for p in self._pools.values() if self._wants_fresh(p)]
            if fresh_want:
                self._spawn(fresh_want[0], "fresh")
                live += 1
                continue
            want = [p for p in self._pools.values() if self._wants_worker(p)]
            if not want:
                break
            # a pool without any worker first: step 3 frees a slot for exactly such a pool, so
            # giving the slot to another pool on a fairness tie would retire and respawn forever
            pool = max(want, key=lambda p: (not p.active_workers(),
                                            len(p.pending) / (len(p.active_workers()) + 1)))
            self._spawn(pool)
            live += 1
        # 3. a pool with work but no worker at the cap: free a slot from another pool (or, for
        # re-checks, from its own normal workers)
        if live >= s.workers:
            freeing = any(w.state == "draining" for p in self._pools.values() for w in p.workers)
            for pool in self._pools.values():
                if pool.pending and not pool.active_workers():
                    self._free_slot_for(pool)
                if pool.rechecks and not pool.active_workers("fresh") and not freeing:
                    self._free_slot_for(pool, include_self=True)  # one slot at a time
                    freeing = True
        # 4. LRU bound on warm pools (pools with work are never evicted)
        self._evict_idle_pools()

    def _feed(self, w: _Worker, waiting: deque[Job]) -> None:
        """Send a ready worker as many of `waiting`'s jobs as its pipeline has room for, in one
        write, never more than it may still serve before `recycle_after` retires it."""
        s = self.settings
        room = s.pipeline_depth - len(w.inflight)
        if s.recycle_after:
            room = min(room, s.recycle_after - w.served - len(w.inflight))
        batch = []
        while room > 0 and waiting:
            job = waiting.popleft()
            if job.sink.cancelled:
                job.done = True
                continue
            batch.append(job)
            room -= 1
        if batch:
            if not w.inflight:
                w.head_since = time.monotonic()
            w.inflight.extend(batch)
            w.proc.send([j.request() for j in batch])

    def _wants_worker(self, pool: _HeaderPool) -> bool:
        if not pool.pending:
            return False
        active = pool.active_workers()
        starting = sum(1 for w in active if w.state == "starting")
        ready_room = sum(self.settings.pipeline_depth - len(w.inflight)
                         for w in active if w.state == "ready")
        if ready_room > 0:
            return False
        return starting * self.settings.pipeline_depth < len(pool.pending)

    def _wants_fresh(self, pool: _HeaderPool) -> bool:
        """A fresh worker is wanted for every waiting re-check, and `recheck_spares` are kept
        started ahead while the pool has work that may pass (hiding the start latency) when
        passes are re-checked fresh: the paper profile, or `recheck = "fresh"` (where the fresh
        re-check comes on top of the judge's)."""
        s = self.settings
        if s.recheck == "off":
            return False
        fresh = len(pool.active_workers("fresh"))
        waiting = len(pool.rechecks)
        fresh_mode = s.recheck == "fresh" or s.profile == "paper"
        spares = s.recheck_spares if fresh_mode and (
            pool.pending or any(w.inflight for w in pool.workers)) else 0
        # never let spares take the last slot a pool with queued work and no worker needs
        if not waiting and pool.pending and not pool.active_workers():
            return False
        return fresh < waiting + spares
    def _free_slot_for(self, needy: _HeaderPool, include_self: bool = False) -> None:
        others = [p for p in self._pools.values() if include_self or p is not needy]  # LRU order
        # idle workers of pools with nothing to do, then idle workers of crowded pools,
        # then a busy worker of a crowded pool (drained: it finishes its in-flight jobs first)
        for pick in (
            lambda p, w: not p.pending and not w.inflight,
            lambda p, w: len(p.active_workers()) > 1 and not w.inflight,
            lambda p, w: len(p.active_workers()) > 1,
        ):
            for p in others:
                for w in p.active_workers():
                    if pick(p, w):
                        if w.inflight:
                            w.state = "draining"
                        else:
                            self._retire(w, requeue=True)
                            self._kick()
                        return

    def _evict_idle_pools(self) -> None:
        excess = len(self._pools) - self.settings.max_header_pools
        if excess <= 0:
            return
        for key, pool in list(self._pools.items()):
            if excess <= 0:
                break
            if pool.busy() or any(w.state == "starting" for w in pool.workers):
                continue
            for w in list(pool.workers):
                self._retire(w, requeue=True)
            del self._pools[key]
            self.stats.evicted_pools += 1
            excess -= 1

    def _spawn(self, pool: _HeaderPool, role: WorkerRole = "normal") -> None:
        w = _Worker(self, pool, role)
        pool.workers.append(w)
        self.stats.spawned += 1
        self._all_workers.add(w.proc)
        self._loop.create_task(w.run_start())

    def _settle(self, w: _Worker) -> None:
        """Tell the sinks of the worker's provisional fails whether they may be persisted: yes
        when it retires consistent (never broke the protocol, never refuted by the judge)."""
        held, w.held_fails = w.held_fails, []
        by_sink: dict[int, tuple[Sink, list[int]]] = {}
        for sink, tag in held:
            by_sink.setdefault(id(sink), (sink, []))[1].append(tag)
        for sink, tags in by_sink.values():
            if sink.on_settle is not None:
                try:
                    sink.on_settle(tags, not w.lied)
                except Exception:  # the caller's callback must not take the pool down
                    log.exception("settling provisional fails failed")

    def _retire(self, w: _Worker, *, requeue: bool) -> list[Any]:
        """Kill the worker; give its in-flight jobs back (front of the queue, order kept)."""
        if w.state == "retired":
            return []
        w.state = "retired"
        w.proc.kill()
        self._settle(w)
        with contextlib.suppress(ValueError):
            w.pool.workers.remove(w)
        jobs = list(w.inflight)
        w.inflight.clear()
        if w.role == "statement":
            # its answers count only after a clean exit: the whole batch goes back
            self._requeue_statements(w, [r for r in w.batch if not r.done])
            w.ref_answers.clear()
            return jobs
        if requeue:
            w.pool.requeue(jobs)
        return jobs

    def _requeue_statements(self, w: _Worker, refs: list[RefJob]) -> None:
        for ref in reversed(refs):
            if not ref.done and ref not in w.pool.references:
                w.pool.references.appendleft(ref)

    # -- worker events --------------------------------------------------------------------------

    def _started(self, w: _Worker, checker_version: str, lean_version: str, seconds: float) -> None:
        if w.state != "starting":
            w.proc.kill()
            return
        w.state = "ready"
        if w.role == "replay":
            w.pool.replay_start_failures = 0
        elif w.role == "statement":
            w.pool.statement_start_failures = 0
        else:
            w.pool.start_failures = 0
        self.stats.header_seconds.append(seconds)
        if self.checker_version is None:
            self.checker_version, self.lean_version = checker_version, lean_version
        for fut in self._versions_waiters:
            if not fut.done():
                fut.set_result((checker_version, lean_version))
        self._versions_waiters.clear()
        if w.role == "statement":
            self._send_statements(w)
        self._kick()

    def _send_statements(self, w: _Worker) -> None:
        """A statement process gets one batch at Ready, then its stdin is closed (single use)."""
        pool = w.pool
        batch: list[RefJob] = []
        while pool.references and len(batch) < self.settings.statement_batch:
            if batch and (batch[0].isolate or pool.references[0].isolate):
                break
            batch.append(pool.references.popleft())
        if not batch:
            self._retire(w, requeue=False)
            return
        w.batch = batch
        w.inflight.extend(batch)
        w.head_since = time.monotonic()
        w.proc.send([ref.request() for ref in batch])
        w.proc.close_stdin()

    def _start_failed(self, w: _Worker, detail: str) -> None:
        if w.state == "retired":  # retired while starting (killed on purpose): not a failure
            return
        self.stats.start_failures += 1
        self._retire(w, requeue=True)
        pool = w.pool
        pool.last_error = detail
        if w.role in ("replay", "statement"):
            # counted apart: a pool whose checks start fine must not loop on a broken judge
            what = "judge" if w.role == "replay" else "statement process"
            if w.role == "replay":
                pool.replay_start_failures += 1
                failures = pool.replay_start_failures
            else:
                pool.statement_start_failures += 1
                failures = pool.statement_start_failures
            # Retried quietly; the limit makes every waiting item `error` naming the cause.
            log.debug("%s failed to start (%d in a row): %s", what, failures, detail)
            if failures >= MAX_START_FAILURES:
                waiting: list[Job] = []
                if w.role == "replay":
                    pool.replay_start_failures = 0
                    waiting = list(pool.replays)
                    pool.replays.clear()
                else:
                    pool.statement_start_failures = 0
                    for ref in pool.references:
                        ref.done = True
                        pool.ref_jobs.pop(ref.statement, None)
                        waiting.extend(pool.ref_waiters.pop(ref.statement, []))
                    pool.references.clear()
                for job in waiting:
                    if not job.done:
                        self.stats.recheck_rejections += 1
                        self._finish(job, _not_confirmed(
                            job, "error", [], f"{what} could not start: {detail}"))
            self._kick()
            return
        pool.start_failures += 1
        # Retried quietly (DEBUG): a checker that never starts ends in one line, the `error` of
        # every item ("checker could not start …"), not in a warning per attempt before it.
        log.debug("checker failed to start (%d in a row): %s", pool.start_failures, detail)
        if pool.start_failures < MAX_START_FAILURES:
            if self._versions_waiters and not pool.active_workers():
                self._spawn(pool)  # a version probe has no pending job to trigger a restart
        else:
            pool.start_failures = 0
            result_detail = f"checker could not start for this header: {detail}"
            for queued in (pool.pending, pool.rechecks, pool.replays):
                while queued:
                    self._finish(queued.popleft(), VerifyResult(status="error",
                                                                detail=result_detail))
            for fut in self._versions_waiters:
                if not fut.done():
                    fut.set_exception(CheckerStartError(detail))
            self._versions_waiters.clear()
        self._kick()

    def _responses(self, w: _Worker, responses: list[CheckResponse]) -> None:
        if w.state == "retired":
            return
        s = self.settings
        role = WIRE_ROLE[w.role]
        # a judge answer is always the strict judgement (paper passes are never judged)
        profile: Profile = "strict" if w.role in ("replay", "statement") else s.profile
        export_requested = w.role == "normal" and self.exports
        allowed = self._allowed_axioms
        for resp in responses:
            if not w.inflight or resp.id != str(w.inflight[0].id):
                expected = str(w.inflight[0].id) if w.inflight else "none"
                self._worker_failed(
                    w, "protocol", f"misbehaving checker: response id {resp.id!r}, "
                    f"expected {expected}")
                return
            job = w.inflight[0]
            problem = pass_problem(resp, job.nonce, allowed, profile, export_requested, role)
            if problem is not None:
                self._worker_failed(w, "protocol", f"inconsistent checker answer: {problem}")
                return
            w.inflight.popleft()
            now = time.monotonic()
            took, w.head_since = now - w.head_since, now
            w.served += 1
            self.stats.checks += 1
            if w.role == "statement":
                w.ref_answers.append((job, resp))
                continue
            if w.role == "replay":
                self._judge_seconds += took
                self._judged_count += 1
            elif w.role == "normal":
                self._check_seconds += took
            self._judged(w, job, resp)
        if w.role == "statement":
            if not w.inflight:
                w.awaiting_exit = True  # answers count once it exits cleanly (on_exit)
            return
        if w.role == "fresh" and w.served >= 1 and not w.inflight:
            self._retire(w, requeue=True)  # a fresh worker runs exactly one re-check
            self._kick()
            return
        recycle = self.settings.recycle_after
        if recycle and w.served >= recycle and w.state == "ready":
            w.state = "draining"
        if w.state == "draining" and not w.inflight:
            if w.served >= recycle > 0:
                self.stats.recycled += 1
            self._retire(w, requeue=True)
        self._kick()

    def _judged(self, w: _Worker, job: Job, resp: CheckResponse) -> None:
        """A consistent verdict of a check worker, the judge or a fresh worker."""
        s = self.settings
        pool = w.pool
        if job.stage == "check":
            self._first_checks += 1
            passed = resp.verdict == "pass"
            if passed:
                self._first_passes += 1
            if not passed or s.recheck == "off":
                result = response_to_result(resp)
                if result.status == "fail":
                    # a claim of a process that ran model text: persisted only once its worker
                    # retired consistent (`_settle`)
                    result.provisional = True
                    w.held_fails.append((job.sink, job.tag))
                self._finish(job, result)
                return
            job.first_pass = response_to_result(resp)
            job.attempts = job.protocol_attempts = 0
            if not self.exports:  # paper profile: a fresh re-check (eval only, never a reward)
                job.stage = "fresh"
                pool.rechecks.append(job)
                return
            if resp.export is UNSET:  # chunks over max_export_bytes (the client kept none)
                self.stats.export_too_large += 1
                self._finish(job, VerifyResult(
                    status="error", reasons=["export_too_large"],
                    detail=f"the pass's EXPORT ({resp.export_chunks} chunks) exceeds "
                           f"verifier.max_export_mb; not re-checked any other way"))
                return
            assert isinstance(resp.export, Raw)
            job.export = resp.export
            job.checked_by = w
            self._want_reference(pool, job)
            return
        self.stats.rechecks += 1
        if job.stage == "judge":
            self.stats.replays += 1
            if resp.verdict == "pass":
                if s.recheck == "fresh":  # a fresh re-check on top, never instead
                    job.stage = "fresh"
                    job.attempts = job.protocol_attempts = 0
                    pool.rechecks.append(job)
                    return
                assert job.first_pass is not None
                self._finish(job, job.first_pass)
                return
            if resp.verdict == "fail":
                # the judge refutes the check worker's pass: its verdict decides, and that
                # worker is known to have lied (or to be broken): its fails are not trusted
                self.stats.judge_rejections += 1
                liar = job.checked_by
                log.warning("checker/judge disagreement on job %d: the judge says %s", job.id,
                            ", ".join(resp.reasons))
                first = job.first_pass
                assert first is not None
                self._finish(job, VerifyResult(
                    status="fail", reasons=resp.reasons, errors=resp.errors,
                    axioms=resp.axioms, statement_match=resp.statement_match,
                    detail="the check worker passed it; the judge refuted the export"))
                if liar is not None and liar.state != "retired":
                    liar.lied = True
                    self._retire(liar, requeue=True)
                elif liar is not None:
                    liar.lied = True
                return
            self.stats.recheck_rejections += 1
            self._finish(job, _not_confirmed(job, resp.verdict, resp.reasons))
            return
        # fresh re-check
        result = response_to_result(resp)
        if result.passed:
            assert job.first_pass is not None
            # a judged item keeps the first check's result (premises, messages)
            self._finish(job, job.first_pass if self.exports else result)
            return
        self.stats.recheck_rejections += 1
        self._finish(job, _not_confirmed(job, result.status, result.reasons))

    # -- references -----------------------------------------------------------------------------

    def _want_reference(self, pool: _HeaderPool, job: Job) -> None:
        """Send the job to the judge once its statement's reference is known."""
        statement = job.item.statement
        key = (pool.header, pool.trusted, statement)
        known = self._ref_cache.get(key)
        if known is None and self.references is not None:
            known = self.references.get(pool.header, pool.trusted, statement)
            if known is not None:
                self._remember_reference(key, known)
        if known is not None:
            self._ref_cache.move_to_end(key)
            self.stats.reference_hits += 1
            self._reference_known(pool, job, known)
            return
        job.stage = "reference"
        pool.ref_waiters.setdefault(statement, []).append(job)
        if statement not in pool.ref_jobs:  # neither cached nor stored (checked above): make it
            self._prefetch_reference(pool, statement)
        self._kick()

    def _remember_reference(self, key: tuple[str, bool, str], value: Raw | VerifyResult) -> None:
        self._ref_cache[key] = value
        if len(self._ref_cache) > MAX_MEMORY_REFERENCES:
            self._ref_cache.popitem(last=False)

    def _reference_known(self, pool: _HeaderPool, job: Job, known: Raw | VerifyResult) -> None:
        if job.done:
            return
        if isinstance(known, VerifyResult):
            # the statement itself does not elaborate (or is gated): the pass cannot stand
            self.stats.recheck_rejections += 1
            if job.checked_by is not None:
                job.checked_by.lied = True
            self._finish(job, VerifyResult(
                status="fail", reasons=known.reasons, errors=known.errors,
                forbidden=known.forbidden,
                detail="the check worker passed it; the statement's reference failed"))
            return
        job.reference = known
        job.stage = "judge"
        pool.replays.append(job)

    def _statement_done(self, w: _Worker) -> None:
        """A statement process answered its whole batch consistently and exited with code 0:
        its answers become references (kept in memory, persisted) and release the waiting jobs."""
        if w.state == "retired":
            return
        answers, w.ref_answers = w.ref_answers, []
        w.state = "retired"
        with contextlib.suppress(ValueError):
            w.pool.workers.remove(w)
        pool = w.pool
        persist: list[tuple[str, bool, str, Raw | VerifyResult]] = []
        for ref, resp in answers:
            ref.done = True
            pool.ref_jobs.pop(ref.statement, None)
            waiters = pool.ref_waiters.pop(ref.statement, [])
            self.stats.references += 1
            known: Raw | VerifyResult
            if resp.verdict == "pass":
                assert isinstance(resp.reference, Raw)
                known = resp.reference
            else:
                known = response_to_result(resp)
            if resp.verdict in ("pass", "fail"):
                self._remember_reference((pool.header, pool.trusted, ref.statement), known)
                persist.append((pool.header, pool.trusted, ref.statement, known))
            for job in waiters:
                if resp.verdict == "error":
                    self.stats.recheck_rejections += 1
                    if not job.done:
                        self._finish(job, _not_confirmed(job, "error", resp.reasons,
                                                         "the statement's reference"))
                else:
                    self._reference_known(pool, job, known)
        if persist and self.references is not None:
            try:
                self.references.put(persist)
            except Exception as err:  # a full disk must not lose the verdicts of this run
                if not out_of_space(err):
                    log.exception("could not persist references")
                else:  # one line: the run goes on with the references held in memory
                    log.warning("no space left to persist %d statement reference(s) in the "
                                "verdict cache (kept in memory for this run): %s",
                                len(persist), err)
        self._kick()

    def _statement_failed(self, w: _Worker, kind: FailureKind, detail: str) -> None:
        """A statement process broke the protocol, crashed, timed out or did not exit cleanly:
        none of its answers is used; the statement it was answering (or, after all answers,
        every statement of the batch) is charged one attempt; past the retries its waiting jobs
        are answered `error`."""
        refs = [r for r in w.batch if not r.done]
        charged = [w.inflight[0]] if w.inflight else refs
        for ref in refs:
            ref.isolate = True
        self._retire(w, requeue=False)  # requeues the batch
        if kind == "protocol":
            self.stats.protocol_errors += 1
        for ref in charged:
            limit = PROTOCOL_RETRIES if kind == "protocol" else self.settings.crash_retries
            used = ref.protocol_attempts if kind == "protocol" else ref.attempts
            if used < limit:
                if kind == "protocol":
                    ref.protocol_attempts += 1
                else:
                    ref.attempts += 1
                self.stats.retries += 1
                continue
            ref.done = True
            pool = w.pool
            with contextlib.suppress(ValueError):
                pool.references.remove(ref)
            pool.ref_jobs.pop(ref.statement, None)
            for job in pool.ref_waiters.pop(ref.statement, []):
                if not job.done:
                    self.stats.recheck_rejections += 1
                    reasons = ["protocol_error"] if kind == "protocol" else []
                    self._finish(job, _not_confirmed(job, kind, reasons,
                                                     f"statement process: {detail}"))
        self._kick()

    def _worker_failed(self, w: _Worker, kind: FailureKind, detail: str) -> None:
        """The worker must go: the oldest in-flight job is charged, the rest are requeued."""
        if w.state == "retired":
            return
        if kind == "protocol":
            w.lied = True
        tail = w.proc.stderr_tail()
        if tail and "stderr:" not in detail:
            detail = f"{detail}; stderr: {tail[-500:]}"
        if w.role == "statement":
            self._statement_failed(w, kind, detail)
            return
        jobs = self._retire(w, requeue=False)
        if jobs:
            head, rest = jobs[0], jobs[1:]
            w.pool.requeue(rest)
            if kind == "protocol":
                self.stats.protocol_errors += 1
                if head.protocol_attempts < PROTOCOL_RETRIES:
                    head.protocol_attempts += 1
                    self.stats.retries += 1
                    w.pool.requeue([head])
                else:
                    self._finish(head, VerifyResult(status="error", reasons=["protocol_error"],
                                                    detail=detail))
            elif head.rechecking and kind in ("timeout", "memory"):
                # a pass the re-check could not confirm is not a pass
                self.stats.recheck_rejections += 1
                self._finish(head, _not_confirmed(head, kind, [], detail))
            elif kind == "timeout":
                self.stats.timeouts += 1
                self._finish(head, VerifyResult(status="timeout",
                                                seconds=self.settings.timeout_s, detail=detail))
            elif kind == "memory":
                self.stats.memory_kills += 1
                self._finish(head, VerifyResult(status="memory", detail=detail))
            elif head.attempts < self.settings.crash_retries:
                head.attempts += 1
                self.stats.retries += 1
                w.pool.requeue([head])
            elif head.rechecking:
                # the re-check crashed on every try: still not a pass
                self.stats.crashes += 1
                self.stats.recheck_rejections += 1
                self._finish(head, _not_confirmed(head, "crash", [], detail))
            else:
                self.stats.crashes += 1
                self._finish(head, VerifyResult(status="crash", detail=detail))
        self._kick()

    async def _sweep(self) -> None:
        """Periodic watchdog: wall-clock timeouts, memory caps, lost starts."""
        s = self.settings
        tick = max(0.01, min(0.1, s.timeout_s / 20))
        next_memory = 0.0
        while True:
            await asyncio.sleep(tick)
            now = time.monotonic()
            check_memory = s.memory_mb > 0 and now >= next_memory
            if check_memory:
                next_memory = now + s.memory_check_s
            for pool in list(self._pools.values()):
                for w in list(pool.workers):
                    if (w.state in ("ready", "draining") and (w.inflight or w.awaiting_exit)
                            and now - w.head_since > s.timeout_s):
                        what = ("did not exit after its batch" if w.awaiting_exit
                                and not w.inflight else "no answer")
                        self._worker_failed(
                            w, "timeout", f"{what} within {s.timeout_s:g}s; worker killed")
            if check_memory:
                await self._check_memory()
    async def _check_memory(self) -> None:
        s = self.settings
        workers = {w.proc.pid: w for p in self._pools.values() for w in p.workers
                   if w.state in ("ready", "draining") and w.proc.pid is not None}
        if not workers:
            return
        usage = await asyncio.to_thread(private_rss_mb, list(workers))
        for pid, mb in usage.items():
            w = workers[pid]
            if w.state == "retired" or mb <= s.memory_mb:
                continue
            detail = f"worker used {mb:.0f} MiB > {s.memory_mb} MiB; recycled"
            if w.inflight:
                self._worker_failed(w, "memory", detail)
            else:
                self.stats.recycled += 1
                self._retire(w, requeue=True)
                self._kick()


def _not_confirmed(job: Job, status: str, reasons: list[str], detail: str = "") -> VerifyResult:
    """The result of a pass the re-check did not reproduce: `error`, never a pass."""
    first = job.first_pass
    assert first is not None
    by = {"judge": "the judge", "fresh": "a fresh checker",
          "reference": "a statement process", "check": "the checker"}[job.stage]
    why = f"pass not confirmed by {by} (re-check: {status}"
    why += f", {', '.join(reasons)})" if reasons else ")"
    if detail:
        why += f"; {detail}"
    return VerifyResult(status="error", reasons=["recheck_disagreement"], axioms=first.axioms,
                        warnings=first.warnings, detail=why)


def _kill_all(procs: weakref.WeakSet[CheckerProcess]) -> None:
    for proc in list(procs):
        if proc.alive and proc.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)


def default_workers(reserved_cpus: int) -> int:
    """One checker per usable core (affinity respected: `stp.host`), minus the reserved ones."""
    return workers_after_reserve(reserved_cpus)
