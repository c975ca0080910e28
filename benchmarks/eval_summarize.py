"""Time `python -m stp.eval summarize` on a synthetic multi-million-attempt log.

    python benchmarks/eval_summarize.py [--statements 1000] [--samples 3200] [--dir DIR]

The log (default 1000 statements x 3200 samples = 3.2M attempts, each with a ~150-character
proof, in 32 shards like `run` writes) is generated once into DIR (default: a folder under the
system temp dir) and reused by later invocations. Prints the time to load the log, to compute
both estimators for every budget (with a 1000-resample bootstrap), and the whole CLI call.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from stp.eval import log as evlog
from stp.eval.__main__ import main as eval_main
from stp.eval.loading import load_log
from stp.eval.summarize import summarize_log
from stp.metrics import describe_machine

PROOF = ("\n  nlinarith [sq_nonneg (a - b), sq_nonneg (a + b), mul_pos ha hb, "
         "sq_nonneg (a * b - 1), pow_pos ha 3]\n  <;> linarith [h₀, h₁]")


def generate(directory: Path, statements: int, samples: int, shards: int = 32) -> None:
    """Write the synthetic log: per-statement pass rates spread over 0..~50 %, some zero."""
    rng = np.random.default_rng(0)
    rates = np.where(rng.random(statements) < 0.4, 0.0, rng.beta(0.3, 1.5, statements))
    ids = [f"bench/test/thm_{i:05d}" for i in range(statements)]
    log = evlog.AttemptLog(str(directory))
    per_shard = -(-samples // shards)
    for lo in range(0, samples, per_shard):
        block = []
        hi = min(samples, lo + per_shard)
        passed = rng.random((statements, hi - lo)) < rates[:, None]
        for i, sid in enumerate(ids):
            for j in range(lo, hi):
                ok = passed[i, j - lo]
                block.append(evlog.Attempt(
                    statement_id=sid, split="bench:test", sample=j,
                    status="pass" if ok else "fail", proof=PROOF, seconds=0.8,
                    errors=[] if ok else ["linarith failed to find a contradiction"]))
        log.append(block)
    evlog.write_manifest(str(directory), evlog.Manifest(model="synthetic", samples=samples,
                                                        splits={"bench:test": ids}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=3200)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    print(f"machine: {describe_machine()}", flush=True)
    directory = args.dir or Path(tempfile.gettempdir()) / (
        f"stp-eval-bench-{args.statements}x{args.samples}")
    manifest = directory / evlog.MANIFEST
    if not manifest.exists():
        t0 = time.perf_counter()
        generate(directory, args.statements, args.samples)
        print(f"generated {args.statements * args.samples:,} attempts in "
              f"{time.perf_counter() - t0:.1f} s -> {directory}")
    size = sum(p.stat().st_size for p in directory.iterdir())
    print(f"log: {directory} ({size / 2**20:.0f} MiB compressed, {os.cpu_count()} CPUs)")

    # CPU seconds next to wall seconds: on a shared machine the wall clock moves with the other
    # jobs' load, the CPU time of this process much less.
    t0, c0 = time.perf_counter(), time.process_time()
    loaded = load_log(directory)
    t_load, c_load = time.perf_counter() - t0, time.process_time() - c0
    print(f"load:      {t_load:6.2f} s  (CPU {c_load:.2f} s; {len(loaded.columns):,} attempts, "
          f"{len(loaded.columns) / t_load / 1e6:.2f} M attempts/s)")

    t0, c0 = time.perf_counter(), time.process_time()
    [summary] = summarize_log(loaded, resamples=1000)
    t_stats, c_stats = time.perf_counter() - t0, time.process_time() - c0
    print(f"estimate:  {t_stats:6.2f} s  (CPU {c_stats:.2f} s; k = {summary.ks}, both "
          "estimators, 1000 bootstrap resamples)")
    for k, ch, ub in zip(summary.ks, summary.chunk, summary.unbiased, strict=True):
        chunk = f"{100 * ch.mean:5.1f}" if ch else "   — "
        print(f"  pass@{k:<5d} chunks {chunk}   unbiased {100 * ub.mean:5.1f} "
              f"[{100 * ub.ci_low:.1f}, {100 * ub.ci_high:.1f}]" if ub else "")

    t0, c0 = time.perf_counter(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):
        code = eval_main(["summarize", "--log", str(directory), "--json"])
    t_cli, c_cli = time.perf_counter() - t0, time.process_time() - c0
    print(f"CLI summarize --json: {t_cli:6.2f} s (CPU {c_cli:.2f} s, exit {code})")
    print(f"machine after: {describe_machine()}")


if __name__ == "__main__":
    main()
