"""Multi-machine verification: one local pool per Ray node, work spread across them.

Each node offering the `stp_lean` resource (stp.cluster.LEAN_RESOURCE) gets one `PoolActor` pinned
to it, holding an ordinary local Engine with that node's share of workers; oleans are mmap'd once
per node and shared by its workers, which is why pools are per node rather than per worker. The
driver keeps dedup and the cache (stp.verify.service) and streams chunks of distinct items to
the least loaded actor, a few chunks in flight per actor so no node idles between chunks. A chunk
whose actor dies is sent to another actor; when no actor is left its items are answered `crash`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from stp.errors import UsageError
from stp.lean.client import CheckerStartError
from stp.verify.pool import Engine, PoolSettings, Sink
from stp.verify.types import VerifyItem, VerifyResult

if TYPE_CHECKING:
    from stp.config import STPConfig

log = logging.getLogger(__name__)

CHUNK = 64  # items per actor call: large enough to amortise Ray's per-call cost (~1 ms)


class PoolActor:
    """A node's pool (wrapped with ray.remote at runtime so importing this needs no Ray)."""

    def __init__(self, settings: PoolSettings) -> None:
        self.engine = Engine(settings)

    def ready(self) -> int:
        return self.engine.settings.workers

    def versions(self, header: str) -> tuple[str, str]:
        return self.engine.versions(header)

    def check(self, entries: list[tuple[int, VerifyItem]]) -> list[tuple[int, VerifyResult]]:
        sink = Sink(len(entries))
        self.engine.submit(entries, sink)
        out: list[tuple[int, VerifyResult]] = []
        while len(out) < len(entries):
            out.extend(sink.get())
        return out

    def close(self) -> None:
        self.engine.close()


@dataclasses.dataclass
class _Actor:
    handle: Any
    workers: int
    node: str
    inflight: int = 0
    dead: bool = False


class RayBackend:
    """Backend protocol of stp.verify.service over Ray actors."""

    def __init__(self, cfg: STPConfig, settings: PoolSettings) -> None:
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        from stp.cluster import LEAN_RESOURCE, init_cluster

        init_cluster(cfg.cluster)
        self._ray = ray
        v = cfg.verifier
        remote_cls = ray.remote(PoolActor)
        self.actors: list[_Actor] = []
        for node in ray.nodes():
            resources = node.get("Resources", {})
            if not node.get("Alive") or resources.get(LEAN_RESOURCE, 0) < 1:
                continue
            slots = int(resources[LEAN_RESOURCE])
            by_cpu = math.floor(resources.get("CPU", 0) / v.cpus_per_worker) \
                if v.cpus_per_worker > 0 else slots
            workers = v.workers or max(1, min(slots, by_cpu))
            options: dict[str, Any] = {
                "num_cpus": workers * v.cpus_per_worker,
                "resources": {LEAN_RESOURCE: float(workers)},
                "max_concurrency": max(4, 4 * workers),
                "scheduling_strategy": NodeAffinitySchedulingStrategy(node["NodeID"], soft=False),
            }
            if v.memory_per_worker_mb > 0:
                options["memory"] = workers * v.memory_per_worker_mb * 1024 * 1024
            handle = remote_cls.options(**options).remote(
                dataclasses.replace(settings, workers=workers))
            self.actors.append(_Actor(handle, workers, node["NodeID"]))
        if not self.actors:
            raise UsageError(f"no Ray node offers the {LEAN_RESOURCE!r} resource: start Lean "
                             f"nodes with --resources='{{\"{LEAN_RESOURCE}\": N}}'")
        try:
            ray.get([a.handle.ready.remote() for a in self.actors],
                    timeout=max(60.0, settings.start_timeout_s))
        except ray.exceptions.GetTimeoutError:
            self.close()
            raise UsageError("checker pool actors could not be placed: not enough CPU/memory "
                             "for verifier.cpus_per_worker / memory_per_worker_mb") from None
        self._lock = threading.Condition()
        self._closed = False
        log.info("Ray verifier: %d node pools, %d workers", len(self.actors),
                 sum(a.workers for a in self.actors))

    # -- Backend protocol ----------------------------------------------------------------------

    def versions(self, header: str, timeout: float | None = None) -> tuple[str, str]:
        for actor in self.actors:
            if actor.dead:
                continue
            try:
                return tuple(self._ray.get(actor.handle.versions.remote(header),
                                           timeout=timeout))
            except self._ray.exceptions.RayTaskError as err:
                cause = err.as_instanceof_cause()
                if isinstance(cause, CheckerStartError):
                    raise CheckerStartError(str(cause)) from err
                raise
            except self._ray.exceptions.RayActorError:
                actor.dead = True
        raise CheckerStartError("every checker pool actor died")

    def submit(self, entries: Sequence[tuple[int, VerifyItem]], sink: Sink) -> None:
        thread = threading.Thread(target=self._dispatch, args=(list(entries), sink),
                                  name="stp-verify-ray", daemon=True)
        thread.start()

    def cancel(self, sink: Sink) -> None:
        sink.cancelled = True

    def alive(self) -> bool:
        return not self._closed and any(not a.dead for a in self.actors)

    def close(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        for actor in self.actors:
            try:
                self._ray.get(actor.handle.close.remote(), timeout=30)
            except Exception as err:  # a dead actor has nothing left to close
                log.debug("closing a pool actor: %s", err)
            self._ray.kill(actor.handle)

    # -- dispatch --------------------------------------------------------------------------------

    def _dispatch(self, entries: list[tuple[int, VerifyItem]], sink: Sink) -> None:
        ray = self._ray
        chunks = [entries[i:i + CHUNK] for i in range(0, len(entries), CHUNK)]
        chunks.reverse()  # pop() from the end keeps input order
        running: dict[Any, tuple[_Actor, list[tuple[int, VerifyItem]]]] = {}
        while chunks or running:
            if sink.cancelled or self._closed:
                return
            with self._lock:
                while chunks:
                    live = [a for a in self.actors if not a.dead]
                    if not live:
                        break
                    actor = min(live, key=lambda a: a.inflight / a.workers)
                    if actor.inflight >= 2 * actor.workers:
                        break
                    chunk = chunks.pop()
                    actor.inflight += 1
                    running[actor.handle.check.remote(chunk)] = (actor, chunk)
            if not running:  # no live actor: answer what is left
                lost = [e for c in chunks for e in c]
                sink.queue.put([(tag, VerifyResult(status="crash",
                                                   detail="every checker pool actor died"))
                                for tag, _ in lost])
                return
            done, _ = ray.wait(list(running), num_returns=1, timeout=1.0)
            for ref in done:
                actor, chunk = running.pop(ref)
                with self._lock:
                    actor.inflight -= 1
                try:
                    results = ray.get(ref)
                except ray.exceptions.RayActorError as err:
                    log.warning("checker pool actor on node %s died: %s", actor.node, err)
                    actor.dead = True
                    chunks.append(chunk)
                    continue
                except Exception as err:  # a failure inside the actor: answer, never hang
                    log.error("checker pool actor on node %s failed: %s", actor.node, err)
                    results = [(tag, VerifyResult(status="crash", detail=f"pool actor: {err}"))
                               for tag, _ in chunk]
                if not sink.cancelled:
                    sink.delivered += len(results)
                    sink.queue.put(results)
