"""The one sample→verify pipeline: sample a shard, verify it on a background thread while the
next shard is sampled, store each shard once its verdicts are in.

Self-play proving (`stp.selfplay.loop`) and evaluation (`stp.eval.run`) both run their work
through `run_shards`, so they share one failure rule and one outage guard:

- Failure handling. An error in verification surfaces before another shard is queued. When
  sampling fails or is interrupted, the shard already in verification is still verified and
  stored (a resumed run does not redo it); if that fails as well, its error is logged and the
  sampling error is raised.
- Outage guard. An attempt whose verification ended without a verdict (`NO_VERDICT`: the checker
  could not judge it, `error`, or the worker died, `crash`) is not a failed proof: it is verified
  again (`verifier.unverified_retries` more times). The original counted only a missing result as
  "no result" (a per-proof timeout, or a proof over the memory cap, is a verdict: the proof is too
  slow or too big) and aborted a round when more than 0.5 % of attempts ended without one; here
  the caller fails its stage with one line (`check_outage`) above `verifier.max_unverified_fraction`,
  and a rerun verifies only the attempts still without a verdict.
- Resume policy for attempts without a verdict, the one thing evaluation and self-play do
  differently. "resample" (evaluation): such an attempt is never stored, so a
  rerun samples it again (its seed is fixed, so the same proof) and verifies it. "reverify"
  (self-play): it is stored with its status (the round's shards are its record: bookkeeping
  counts what had no verdict), and a rerun verifies the stored ones again in place before
  sampling the next shard (`reverify_stored_shards`).
- Progress. Each stored shard advances one progress line (`stp.metrics.progress`: done/total,
  rate) and, when a metrics writer is given, writes a `progress` event (done, total, rate, ETA).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Generic, Protocol, TypeVar

from stp import storage
from stp.errors import EXIT_FAILURES, STPError
from stp.metrics import MetricsWriter, progress

log = logging.getLogger(__name__)

# Verification ended without a verdict on the proof: retried, and counted by the outage guard.
NO_VERDICT: frozenset[str] = frozenset({"error", "crash"})

S = TypeVar("S")  # what sampling a shard returns


class VerificationOutage(STPError):
    """Too many attempts got no verdict (a checker outage); exit status 1. Rerunning the same
    command verifies only the attempts still without a verdict."""

    exit_code = EXIT_FAILURES


class _Result(Protocol):
    @property
    def status(self) -> str: ...


R = TypeVar("R", bound=_Result)
I = TypeVar("I")  # noqa: E741 - a verification item


def verify_with_retries(verify_all: Callable[[list[I]], list[R]], items: Sequence[I],
                        retries: int) -> tuple[list[R], int]:
    """Verdicts of `items` in order; items without a verdict are sent again up to `retries`
    times. Returns the results and how many are still without a verdict."""
    results = list(verify_all(list(items)))
    if len(results) != len(items):
        raise RuntimeError(f"verifier returned {len(results)} results for {len(items)} items")
    for attempt in range(retries):
        again = [i for i, r in enumerate(results) if r.status in NO_VERDICT]
        if not again:
            break
        log.warning("re-verifying %d attempt(s) without a verdict (retry %d of %d)", len(again),
                    attempt + 1, retries)
        redone = verify_all([items[i] for i in again])
        for i, r in zip(again, redone, strict=True):
            results[i] = r
    return results, sum(1 for r in results if r.status in NO_VERDICT)


def check_outage(what: str, unverified: int, total: int, max_fraction: float) -> None:
    """Fail `what` with one line when more than `max_fraction` of `total` attempts still have no
    verdict; below it, warn (they are counted as neither pass nor fail)."""
    if unverified == 0 or total == 0:
        return
    fraction = unverified / total
    if fraction > max_fraction:
        raise VerificationOutage(
            f"{what}: {unverified} of {total} attempts ({fraction:.2%}) got no verdict from the "
            f"checker (limit verifier.max_unverified_fraction = {max_fraction:.2%}); fix the "
            "checker (see the verifier log) and rerun the same command: only those attempts are "
            "verified again")
    log.warning("%s: %d of %d attempts (%.2f%%) have no verdict; under the limit of %.2f%%, "
                "they count as neither pass nor fail", what, unverified, total, 100 * fraction,
                100 * max_fraction)


class ShardRunner(Generic[S]):
    """Runs shards `first..n-1`: `sample(i)` on the caller's thread, `store(i, sampled)` (verify
    and write) on one background thread, overlapping shard i's verification with shard i+1's
    sampling. `metrics` (a `stp.metrics.MetricsWriter`) receives one `progress` event per shard.
    """

    def __init__(self, desc: str, sample: Callable[[int], S], store: Callable[[int, S], int],
                 *, metrics: MetricsWriter | None = None,
                 event: dict[str, Any] | None = None) -> None:
        self.desc = desc
        self.sample = sample
        self.store = store
        self.metrics = metrics
        self.event = dict(event or {})
        self.items_done = 0

    def run(self, first: int, n: int, items_total: int, items_before: int = 0) -> None:
        """`items_total` is the stage's item count (attempts), `items_before` those already stored
        before this run; they only feed the progress line and events."""
        start = time.monotonic()
        self.items_done = items_before
        pending: Future[int] | None = None
        # One tick per stored shard: the generator counts an item when the next one is asked for.
        ticks = iter(progress(range(first, n), total=n - first, desc=self.desc))
        next(ticks, None)

        def finish(future: Future[int]) -> None:
            self.items_done += future.result()
            next(ticks, None)
            self._event(start, items_before, items_total)

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="stp-verify") as pool:
            try:
                for index in range(first, n):
                    sampled = self.sample(index)
                    if pending is not None:
                        previous, pending = pending, None
                        finish(previous)  # surface verification errors before queueing more
                    pending = pool.submit(self.store, index, sampled)
            except BaseException:
                # Keep what was already sampled: the shard in verification is still stored.
                if pending is not None:
                    try:
                        pending.result()
                    except Exception:
                        log.exception("verifying the last sampled shard failed as well")
                raise
            if pending is not None:
                finish(pending)

    def _event(self, start: float, before: int, total: int) -> None:
        if self.metrics is None:
            return
        elapsed = max(time.monotonic() - start, 1e-9)
        rate = (self.items_done - before) / elapsed
        left = max(0, total - self.items_done)
        self.metrics.log("progress", task=self.desc, done=self.items_done, total=total,
                         rate=round(rate, 3), eta_s=round(left / rate, 1) if rate > 0 else None,
                         **self.event)


class _Stored(_Result, Protocol):
    @property
    def multiplicity(self) -> int: ...


T = TypeVar("T", bound=_Stored)


def reverify_stored_shards(directory: str, record_type: type[T],
                           verify_again: Callable[[list[T]], list[T]]) -> tuple[int, int]:
    """The "reverify" policy's resume step: in every stored shard of `directory` (records of
    `record_type`, each with a `status` and a `multiplicity`), the records without a verdict are
    replaced by `verify_again(those)` (same order) and the shard is rewritten atomically.
    Returns (attempts stored, counting multiplicity; records verified again)."""
    stored_total = reverified = 0
    for path in storage.list_shards(directory):
        records = list(storage.iter_jsonl(path, type=record_type))
        redo = [i for i, record in enumerate(records) if record.status in NO_VERDICT]
        if redo:
            again = verify_again([records[i] for i in redo])
            if len(again) != len(redo):
                raise RuntimeError(f"{len(again)} records verified again for {len(redo)}")
            for i, record in zip(redo, again, strict=True):
                records[i] = record
            storage.write_jsonl(path, records)
            reverified += len(redo)
        stored_total += sum(record.multiplicity for record in records)
    return stored_total, reverified


def count_unverified(directory: str, record_type: type[T]) -> int:
    """Attempts (counting multiplicity) stored without a verdict in `directory`'s shards."""
    return sum(record.multiplicity for path in storage.list_shards(directory)
               for record in storage.iter_jsonl(path, type=record_type)
               if record.status in NO_VERDICT)
