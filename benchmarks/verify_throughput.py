"""Throughput and added latency of the verification pool, with an instant stand-in checker.

    python benchmarks/verify_throughput.py [--items 100000] [--workers 2] [--depth 2]
                                           [--recheck replay|fresh|off] [--pass-rate 1.0]
                                           [--profile FILE]

Measures orchestration only (the stand-in answers at once): checks per second through the whole
Verifier (dedup, pool, pipes, msgspec, result hand-off), the driver's own CPU per check (this
process only: getrusage, the stand-in processes excluded), then the latency one check adds when
the pool is idle (median and p99 of single-item round trips). Lean itself takes tens of
milliseconds to seconds per check, so these numbers say how far the pool is from being a
bottleneck. The re-check mode is printed with the figures: with `replay` (the default, as
shipped) every pass is also judged (a REFERENCE from a statement process, a replay request to the
judge). `--profile FILE` writes a cProfile of the timed window.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import resource
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python" / "tests"))  # the stand-in lives with the tests

from standin import standin_command  # noqa: E402

from stp.config import load_config  # noqa: E402
from stp.metrics import describe_machine  # noqa: E402
from stp.verify import VerifyItem, make_verifier  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--depth", type=int, default=2, help="verifier.pipeline_depth")
    parser.add_argument("--latency-samples", type=int, default=2_000)
    parser.add_argument("--recheck", choices=["replay", "fresh", "off"], default="replay",
                        help="verifier.recheck (default: replay, as shipped)")
    parser.add_argument("--pass-rate", type=float, default=1.0,
                        help="fraction of items the stand-in passes")
    parser.add_argument("--statements", type=int, default=100,
                        help="distinct statements (each gets one reference)")
    parser.add_argument("--profile", default="", help="write a cProfile of the timed window")
    args = parser.parse_args()
    print(f"machine: {describe_machine()}", flush=True)
    spec = {"rules": [{"pattern": "FAIL", "action": "fail"}]}
    cfg = load_config(None, [f"verifier.workers={args.workers}", "verifier.cache_dir='off'",
                             "lean.checker_command=" + json.dumps(standin_command(spec)),
                             f"verifier.pipeline_depth={args.depth}",
                             f"verifier.recheck={args.recheck!r}"])
    every = max(1, round(1 / args.pass_rate)) if args.pass_rate > 0 else 0

    def proof(i: int) -> str:
        return f" by simp -- {i}" if every and i % every == 0 else f" by FAIL -- {i}"

    items = [VerifyItem(statement=f"theorem t{i % args.statements} (n : ℕ) : n + 0 = n :=",
                        proof=proof(i)) for i in range(args.items)]
    statement = "theorem t (n : ℕ) : n + 0 = n :="
    with make_verifier(cfg) as verifier:
        # start the workers (judge and statement processes included) outside the timing
        verifier.verify_all([VerifyItem(statement=it.statement, proof=" by simp warm")
                             for it in items[:args.statements]])
        # the pool runs on its own event-loop thread: profile that thread (the caller's thread
        # mostly waits on the result queue)
        profiler = cProfile.Profile() if args.profile else None
        engine = getattr(verifier.backend, "_on_loop", None)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        start = time.perf_counter()
        if profiler is not None and engine is not None:
            engine(profiler.enable)
        done = passed = 0
        for _index, result in verifier.verify(items):
            done += 1
            passed += result.passed
            if result.status not in ("pass", "fail"):
                raise SystemExit(f"unexpected result {result}")
        if profiler is not None and engine is not None:
            engine(profiler.disable)
            profiler.dump_stats(args.profile)
        elapsed = time.perf_counter() - start
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        driver_cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        assert done == len(items)
        latencies = []
        for i in range(args.latency_samples):
            one = [VerifyItem(statement=statement, proof=f" by simp -- latency {i}")]
            t0 = time.perf_counter()
            verifier.verify_all(one)
            latencies.append(time.perf_counter() - t0)
        stats = verifier.backend.stats  # type: ignore[attr-defined]
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]
    print(f"workers={args.workers} pipeline_depth={args.depth} items={args.items} "
          f"recheck={args.recheck} passes={passed} ({passed / done:.0%}) "
          f"statements={args.statements}")
    print(f"throughput: {done / elapsed:,.0f} checks/s ({elapsed:.2f} s for {done:,} checks; "
          f"{stats.spawned} process starts, {stats.recycled} recycles, {stats.replays} judged, "
          f"{stats.references} references)")
    print(f"driver CPU per check: {driver_cpu / done * 1e3:.3f} ms "
          f"({driver_cpu:.2f} s user+sys in this process)")
    print(f"added latency per check (idle pool, {len(latencies)} single-item calls): "
          f"median {statistics.median(latencies) * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
