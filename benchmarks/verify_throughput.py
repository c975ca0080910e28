"""Throughput and added latency of the verification pool, with an instant stand-in checker.

    python benchmarks/verify_throughput.py [--items 100000] [--workers 2] [--depth 2]

Measures orchestration only (the stand-in answers at once): checks per second through the whole
Verifier (dedup, pool, pipes, msgspec, result hand-off), then the latency one check adds when the
pool is idle (median and p99 of single-item round trips). Lean itself takes tens of milliseconds to
seconds per check, so these numbers say how far the pool is from being a bottleneck.
"""

from __future__ import annotations

import argparse
import json
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
    args = parser.parse_args()
    print(f"machine: {describe_machine()}", flush=True)
    cfg = load_config(None, [f"verifier.workers={args.workers}", "verifier.cache_dir='off'",
                             "lean.checker_command=" + json.dumps(standin_command({})),
                             f"verifier.pipeline_depth={args.depth}"])
    statement = "theorem t (n : ℕ) : n + 0 = n :="
    items = [VerifyItem(statement=statement, proof=f" by simp -- {i}") for i in range(args.items)]
    with make_verifier(cfg) as verifier:
        verifier.verify_all(items[:200])  # start the workers outside the timing
        start = time.perf_counter()
        done = 0
        for _index, result in verifier.verify(items):
            done += 1
            if not result.passed:
                raise SystemExit(f"unexpected result {result}")
        elapsed = time.perf_counter() - start
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
    print(f"workers={args.workers} pipeline_depth={args.depth} items={args.items}")
    print(f"throughput: {done / elapsed:,.0f} checks/s ({elapsed:.2f} s for {done:,} checks; "
          f"{stats.spawned} worker starts, {stats.recycled} recycles)")
    print(f"added latency per check (idle pool, {len(latencies)} single-item calls): "
          f"median {statistics.median(latencies) * 1e3:.3f} ms, p99 {p99 * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
