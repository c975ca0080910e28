"""The local checker pool: header-keyed warm workers on one asyncio loop in a background thread.

Every job ends in exactly one result delivered to its sink: a checker verdict, `timeout`, `memory`,
`crash` (after `crash_retries` retries on another worker) or `error` (the checker cannot start for
that header). The invariants that guarantee it:
- a job is in exactly one place at a time: one of its pool's queues (`pending` for a first check,
  `rechecks` for a fresh re-check, `replays` for a replay; `_HeaderPool.queue_of` decides), a
  worker's in-flight queue, or finished (`Job.done`);
- a worker is retired exactly once (`_retire`), and retiring hands back every in-flight job;
- a response is accepted only if its id is the id of the oldest in-flight job of that worker
  (checkers answer in request order), it echoes that job's nonce, and a `pass` is consistent
  (`stp.lean.protocol.pass_problem`); anything else kills the worker. An inconsistent answer is
  retried once on another worker, then the item is `error`: it is never a pass;
- with `recheck` on, a pass is only final once it is confirmed, and a re-check that is not a
  consistent pass (fail, error, timeout, memory, crash after retries) makes the item `error`
  (`recheck_disagreement`), never a pass:
  - "replay": a strict pass carrying an EXPORT goes to its pool's replay worker (role "replay",
    `replay_workers` per pool, started on demand, long-lived, outside the `workers` cap) as a
    ReplayRequest, which carries the statement and the export and never the proof text; the
    replay worker answers from its immutable header environment, so no earlier request can have
    changed its verdict;
  - "fresh" (and, under "replay", passes with `export_omitted` and paper-profile passes): a fresh
    worker (a process that has run no earlier request) checks the proof again; each fresh worker
    runs exactly one re-check and is retired;
- a check worker is started with `export` on exactly when `recheck` is "replay"; a replay worker
  only ever receives ReplayRequests, a normal or fresh worker only CheckRequests.

Throughput: up to `pipeline_depth` requests are in flight per worker, requests are written in one
batch per loop iteration, results are handed to the caller's thread in batches, and timeouts and
memory are checked by one periodic sweep instead of a timer per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import queue
import secrets
import signal
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from stp.host import workers_after_reserve
from stp.lean.client import CheckerProcess, CheckerStartError, private_rss_mb
from stp.lean.protocol import (
    CheckerConfig,
    CheckRequest,
    CheckResponse,
    Mode,
    Profile,
    ReplayRequest,
    pass_problem,
)
from stp.verify.config import Recheck
from stp.verify.types import VerifyItem, VerifyResult, encoding_problem

log = logging.getLogger(__name__)

# Consecutive failed starts for one header before its pending jobs are answered `error`.
MAX_START_FAILURES = 3
# An inconsistent answer (forged pass, wrong nonce, duplicate keys, oversized line) is retried
# this many times on another worker before the item is answered `error`.
PROTOCOL_RETRIES = 1

WorkerState = Literal["starting", "ready", "draining", "retired"]
FailureKind = Literal["timeout", "memory", "crash", "protocol"]
# A worker's role: "normal" serves the pool's queue; "fresh" runs exactly one pass re-check;
# "replay" (wire role "replay") serves the pool's kernel-replay re-checks.
WorkerRole = Literal["normal", "fresh", "replay"]


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
    recycle_after: int
    max_header_pools: int
    crash_retries: int
    recheck: Recheck
    replay_workers: int
    recheck_spares: int
    max_heartbeats: int
    mode: Mode
    profile: Profile
    allowed_axioms: tuple[str, ...]


class Sink:
    """Where one `submit` call's results go: batches of (tag, result) read by the caller's thread."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.delivered = 0
        self.cancelled = False
        self.queue: queue.SimpleQueue[list[tuple[int, VerifyResult]]] = queue.SimpleQueue()
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
    # Set once the first check passed: the job then waits for its re-check.
    first_pass: VerifyResult | None = None
    # The first pass's EXPORT when it is re-checked by kernel replay (else a fresh re-check).
    export: dict[str, Any] | None = None

    @property
    def rechecking(self) -> bool:
        return self.first_pass is not None

    @property
    def replaying(self) -> bool:
        return self.first_pass is not None and self.export is not None

    def request(self) -> CheckRequest | ReplayRequest:
        it = self.item
        self.nonce = secrets.token_hex(16)
        if self.replaying:
            assert self.export is not None
            # never the proof text: the replay worker sees only the statement and the export
            return ReplayRequest(id=str(self.id), nonce=self.nonce, statement=it.statement,
                                 export=self.export)
        return CheckRequest(id=str(self.id), nonce=self.nonce, statement=it.statement,
                            proof=join_proof(it.statement, it.proof), name=it.name,
                            premises=it.premises)


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
    # of `rechecks`: those done by kernel replay, and first passes sent to a fresh re-check
    # because their export was omitted (too large)
    replays: int = 0
    export_omitted: int = 0
    header_seconds: list[float] = field(default_factory=list)


class _Worker:
    """Pool-side state of one CheckerProcess."""

    def __init__(self, engine: Engine, pool: _HeaderPool, role: WorkerRole = "normal") -> None:
        self.engine = engine
        self.pool = pool
        self.role: WorkerRole = role
        s = engine.settings
        self.proc = CheckerProcess(s.command, self, cwd=s.cwd, env=s.env,
                                   rlimit_as_mb=s.rlimit_as_mb, max_line_bytes=s.max_line_bytes)
        self.state: WorkerState = "starting"
        self.inflight: deque[Job] = deque()
        self.outbox: list[Job] = []
        self.served = 0
        self.head_since = 0.0
        self.started_at = time.monotonic()

    @property
    def active(self) -> bool:
        return self.state in ("starting", "ready")

    async def run_start(self) -> None:
        s = self.engine.settings
        replay = self.role == "replay"
        cfg = CheckerConfig(role="replay" if replay else "check",
                            export=self.role == "normal" and s.recheck == "replay",
                            header=self.pool.header, header_trusted=self.pool.trusted,
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
        self.engine._worker_failed(self, "crash", detail)


PoolKey = tuple[str, bool]  # (header, header_trusted)


class _HeaderPool:
    def __init__(self, key: PoolKey) -> None:
        self.key = key
        self.header, self.trusted = key
        self.pending: deque[Job] = deque()
        # Jobs whose first check passed, waiting for a fresh worker to re-check them.
        self.rechecks: deque[Job] = deque()
        # Jobs whose first check passed with an export, waiting for the replay worker.
        self.replays: deque[Job] = deque()
        self.workers: list[_Worker] = []
        self.start_failures = 0
        self.replay_start_failures = 0
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
        if job.replaying:
            return self.replays
        return self.rechecks if job.rechecking else self.pending

    def busy(self) -> bool:
        return (bool(self.pending) or bool(self.rechecks) or bool(self.replays)
                or any(w.inflight for w in self.workers))


class Engine:
    """The pool. Thread-safe entry points: submit, cancel, versions, stats, close."""

    def __init__(self, settings: PoolSettings) -> None:
        if settings.workers < 1:
            raise ValueError("the pool needs at least one worker")
        self.settings = settings
        self.stats = EngineStats()
        self.checker_version: str | None = None
        self.lean_version: str | None = None
        self._ids = itertools.count()
        self._pools: OrderedDict[PoolKey, _HeaderPool] = OrderedDict()
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
            self._pool((job.item.header, job.item.header_trusted)).pending.append(job)
        self._kick()

    def _drop_cancelled(self) -> None:
        for pool in self._pools.values():
            if any(j.sink.cancelled for j in pool.pending):
                pool.pending = deque(j for j in pool.pending if not j.sink.cancelled)
            if any(j.sink.cancelled for j in pool.rechecks):
                pool.rechecks = deque(j for j in pool.rechecks if not j.sink.cancelled)
            if any(j.sink.cancelled for j in pool.replays):
                pool.replays = deque(j for j in pool.replays if not j.sink.cancelled)

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
        # 1c. replay workers take the pool's replays (pipelined like normal workers); a pool
        # with replays waiting and fewer than `replay_workers` replay workers starts one. They
        # are outside the `workers` cap: a replay costs a fraction of a check.
        for pool in self._pools.values():
            if not pool.replays:
                continue
            for w in sorted(pool.active_workers("replay"), key=lambda w: len(w.inflight)):
                if w.state == "ready":
                    self._feed(w, pool.replays)
                if not pool.replays:
                    break
            if pool.replays and len(pool.active_workers("replay")) < s.replay_workers:
                self._spawn(pool, "replay")
        # 2. start workers where work waits, fairest pool first, within the global cap; fresh
        # workers (re-checks) first: their jobs are one step from done
        live = sum(1 for p in self._pools.values() for w in p.workers
                   if w.state != "retired" and w.role != "replay")
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
        passes are re-checked fresh: recheck "fresh", or "replay" under the paper profile (under
        the strict profile only passes whose export was omitted need one: no spares then)."""
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

    def _retire(self, w: _Worker, *, requeue: bool) -> list[Job]:
        """Kill the worker; give its in-flight jobs back (front of the queue, order kept)."""
        if w.state == "retired":
            return []
        w.state = "retired"
        w.proc.kill()
        with contextlib.suppress(ValueError):
            w.pool.workers.remove(w)
        jobs = list(w.inflight)
        w.inflight.clear()
        if requeue:
            w.pool.requeue(jobs)
        return jobs

    # -- worker events --------------------------------------------------------------------------

    def _started(self, w: _Worker, checker_version: str, lean_version: str, seconds: float) -> None:
        if w.state != "starting":
            w.proc.kill()
            return
        w.state = "ready"
        if w.role == "replay":
            w.pool.replay_start_failures = 0
        else:
            w.pool.start_failures = 0
        self.stats.header_seconds.append(seconds)
        if self.checker_version is None:
            self.checker_version, self.lean_version = checker_version, lean_version
        for fut in self._versions_waiters:
            if not fut.done():
                fut.set_result((checker_version, lean_version))
        self._versions_waiters.clear()
        self._kick()

    def _start_failed(self, w: _Worker, detail: str) -> None:
        if w.state == "retired":  # retired while starting (killed on purpose): not a failure
            return
        self.stats.start_failures += 1
        self._retire(w, requeue=True)
        pool = w.pool
        pool.last_error = detail
        if w.role == "replay":
            # counted apart: a pool whose checks start fine must not loop on a broken replay
            pool.replay_start_failures += 1
            log.warning("replay checker failed to start (%d in a row): %s",
                        pool.replay_start_failures, detail)
            if pool.replay_start_failures >= MAX_START_FAILURES:
                pool.replay_start_failures = 0
                while pool.replays:
                    job = pool.replays.popleft()
                    assert job.first_pass is not None
                    self.stats.recheck_rejections += 1
                    self._finish(job, _not_confirmed(
                        job, "error", [], f"replay checker could not start: {detail}"))
            self._kick()
            return
        pool.start_failures += 1
        log.warning("checker failed to start (%d in a row): %s", pool.start_failures, detail)
        if pool.start_failures < MAX_START_FAILURES:
            if self._versions_waiters and not pool.active_workers():
                self._spawn(pool)  # a version probe has no pending job to trigger a restart
        else:
            pool.start_failures = 0
            result_detail = f"checker could not start for this header: {detail}"
            for waiting in (pool.pending, pool.rechecks, pool.replays):
                while waiting:
                    self._finish(waiting.popleft(), VerifyResult(status="error",
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
        for resp in responses:
            if not w.inflight or resp.id != str(w.inflight[0].id):
                expected = str(w.inflight[0].id) if w.inflight else "none"
                self._worker_failed(
                    w, "crash", f"misbehaving checker: response id {resp.id!r}, expected {expected}")
                return
            job = w.inflight[0]
            # a replay is always the strict judgement (paper passes are never replayed)
            profile: Profile = "strict" if w.role == "replay" else s.profile
            export_requested = w.role == "normal" and s.recheck == "replay"
            problem = pass_problem(resp, job.nonce, s.allowed_axioms, profile, export_requested)
            if problem is not None:
                self._worker_failed(w, "protocol", f"inconsistent checker answer: {problem}")
                return
            w.inflight.popleft()
            w.head_since = time.monotonic()
            w.served += 1
            self.stats.checks += 1
            self._judged(job, resp)
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

    def _judged(self, job: Job, resp: CheckResponse) -> None:
        """A consistent verdict: final, or (a first pass with re-checks on) sent to re-check:
        to the replay worker when it carries an export, else to a fresh worker."""
        s = self.settings
        result = response_to_result(resp)
        if job.first_pass is None:
            if result.passed and s.recheck != "off":
                job.first_pass = result
                job.attempts = job.protocol_attempts = 0
                if s.recheck == "replay" and resp.export is not None:
                    job.export = resp.export
                elif resp.export_omitted is not None:
                    self.stats.export_omitted += 1
                pool = self._pool((job.item.header, job.item.header_trusted))
                pool.queue_of(job).append(job)
                return
            self._finish(job, result)
            return
        self.stats.rechecks += 1
        if job.replaying:
            self.stats.replays += 1
        if result.passed:
            # a replay answer carries no premises or messages: the first check's result stands
            self._finish(job, job.first_pass if job.replaying else result)
            return
        self.stats.recheck_rejections += 1
        self._finish(job, _not_confirmed(job, result.status, result.reasons))

    def _worker_failed(self, w: _Worker, kind: FailureKind, detail: str) -> None:
        """The worker must go: the oldest in-flight job is charged, the rest are requeued."""
        if w.state == "retired":
            return
        jobs = self._retire(w, requeue=False)
        tail = w.proc.stderr_tail()
        if tail and "stderr:" not in detail:
            detail = f"{detail}; stderr: {tail[-500:]}"
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
                    if (w.state in ("ready", "draining") and w.inflight
                            and now - w.head_since > s.timeout_s):
                        self._worker_failed(
                            w, "timeout", f"no answer within {s.timeout_s:g}s; worker killed")
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
    by = "the kernel replay" if job.replaying else "a fresh checker"
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
