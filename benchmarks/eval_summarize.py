"""Time `python -m stp.eval summarize` on a synthetic multi-million-attempt log.

    python benchmarks/eval_summarize.py [--statements 1000] [--samples 3200] [--dir DIR]
                                        [--profiles] [--baseline REV [--rounds 3]]

The log (default 1000 statements x 3200 samples = 3.2M attempts, each with a ~150-character
proof, in 32 shards like `run` writes) is generated once into DIR (default: a folder under the
system temp dir) and reused by later invocations. Prints the time to load the log, to compute
both estimators for every budget (with a 1000-resample bootstrap), and the whole CLI call.

`--profiles` uses a log judged under two verifier profiles (strict and paper, strict rejecting
about 3 % of the paper-passes with reasons), summarised side by side as `summarize` does by
default for such logs. `--baseline REV` also times the CLI call of the code at git revision REV
(its `python/` exported to a temp dir), alternating with this tree's code in fresh processes on
the same log, `--rounds` times each, and prints the ratio of the medians: on a shared machine
only such side-by-side figures compare two versions.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

from stp.eval import log as evlog
from stp.eval.__main__ import main as eval_main
from stp.eval.loading import load_log, load_log_profiles
from stp.eval.summarize import RejectionTally, summarize_log
from stp.metrics import describe_machine

PROOF = ("\n  nlinarith [sq_nonneg (a - b), sq_nonneg (a + b), mul_pos ha hb, "
         "sq_nonneg (a * b - 1), pow_pos ha 3]\n  <;> linarith [h₀, h₁]")


def generate(directory: Path, statements: int, samples: int, shards: int = 32,
             profiles: bool = False) -> None:
    """Write the synthetic log: per-statement pass rates spread over 0..~50 %, some zero; with
    `profiles`, each attempt carries strict and paper verdicts (strict rejects ~3 % of passes)."""
    rng = np.random.default_rng(0)
    rates = np.where(rng.random(statements) < 0.4, 0.0, rng.beta(0.3, 1.5, statements))
    ids = [f"bench/test/thm_{i:05d}" for i in range(statements)]
    log = evlog.AttemptLog(str(directory))
    per_shard = -(-samples // shards)
    for lo in range(0, samples, per_shard):
        block = []
        hi = min(samples, lo + per_shard)
        passed = rng.random((statements, hi - lo)) < rates[:, None]
        rejected = rng.random((statements, hi - lo)) < 0.03
        for i, sid in enumerate(ids):
            for j in range(lo, hi):
                ok = passed[i, j - lo]
                paper = "pass" if ok else "fail"
                strict = "error" if ok and rejected[i, j - lo] else paper
                judged = ({"verdicts": {"strict": strict, "paper": paper},
                           "reasons": {"strict": ["axiom sorryAx"]} if strict != paper else {}}
                          if profiles else {})
                block.append(evlog.Attempt(
                    statement_id=sid, split="bench:test", sample=j,
                    status=strict if profiles else paper, proof=PROOF, seconds=0.8,
                    errors=[] if ok else ["linarith failed to find a contradiction"],
                    **judged))
        log.append(block)
    evlog.write_manifest(str(directory), evlog.Manifest(
        model="synthetic", samples=samples, splits={"bench:test": ids},
        profiles=["strict", "paper"] if profiles else []))


# Runs one CLI call in a fresh process of the code at PYTHONPATH; prints wall and CPU seconds.
_TIMED_CALL = """
import contextlib, io, json, sys, time
from stp.eval.__main__ import main
t0, c0 = time.perf_counter(), time.process_time()
with contextlib.redirect_stdout(io.StringIO()):
    code = main(["summarize", "--log", sys.argv[1], "--json"])
print(json.dumps([time.perf_counter() - t0, time.process_time() - c0, code]))
"""


def compare(directory: Path, revision: str, rounds: int) -> None:
    """Median CLI time of this tree and of `revision`, alternating fresh processes."""
    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory(prefix="stp-baseline-") as tmp:
        archive = subprocess.run(["git", "-C", str(repo), "archive", revision, "python"],
                                 check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tmp, filter="data")
        trees = {revision: Path(tmp) / "python", "this tree": repo / "python"}
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in trees}
        for r in range(rounds):
            for name, src in (trees.items() if r % 2 == 0 else reversed(trees.items())):
                out = subprocess.run(
                    [sys.executable, "-c", _TIMED_CALL, str(directory)], check=True,
                    capture_output=True, text=True, cwd=tmp,
                    env={**os.environ, "PYTHONPATH": str(src)}).stdout
                wall, cpu, code = json.loads(out.strip().splitlines()[-1])
                times[name].append((wall, cpu))
                print(f"  round {r + 1} {name:>10}: {wall:6.2f} s wall, {cpu:6.2f} s CPU "
                      f"(exit {code})", flush=True)
        med = {name: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
               for name, t in times.items()}
        (bw, bc), (nw, nc) = med[revision], med["this tree"]
        print(f"CLI summarize --json, median of {rounds}: {revision} {bw:.2f} s wall "
              f"({bc:.2f} s CPU), this tree {nw:.2f} s ({nc:.2f} s CPU): "
              f"{bw / nw:.2f}x wall, {bc / nc:.2f}x CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=1000)
    parser.add_argument("--samples", type=int, default=3200)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--profiles", action="store_true",
                        help="a log judged under two verifier profiles (strict and paper)")
    parser.add_argument("--baseline", default=None, metavar="REV",
                        help="also time the CLI call of git revision REV, alternating")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {describe_machine()}", flush=True)
    directory = args.dir or Path(tempfile.gettempdir()) / (
        f"stp-eval-bench-{args.statements}x{args.samples}"
        + ("-profiles" if args.profiles else ""))
    manifest = directory / evlog.MANIFEST
    if not manifest.exists():
        t0 = time.perf_counter()
        generate(directory, args.statements, args.samples, profiles=args.profiles)
        print(f"generated {args.statements * args.samples:,} attempts in "
              f"{time.perf_counter() - t0:.1f} s -> {directory}")
    size = sum(p.stat().st_size for p in directory.iterdir())
    print(f"log: {directory} ({size / 2**20:.0f} MiB compressed, {os.cpu_count()} CPUs)")

    # CPU seconds next to wall seconds: on a shared machine the wall clock moves with the other
    # jobs' load, the CPU time of this process much less.
    if args.baseline:
        compare(directory, args.baseline, args.rounds)
    if args.profiles:
        t0, c0 = time.perf_counter(), time.process_time()
        tally = RejectionTally()
        by_profile = load_log_profiles(directory, ["strict", "paper"], observe=tally.add)
        t_load, c_load = time.perf_counter() - t0, time.process_time() - c0
        [rej] = tally.result().values()
        print(f"load both profiles + rejections: {t_load:6.2f} s  (CPU {c_load:.2f} s; "
              f"{rej.attempts:,} paper-passes rejected by strict)")
        loaded = by_profile["strict"]
    t0, c0 = time.perf_counter(), time.process_time()
    loaded = load_log(directory, profile="strict" if args.profiles else None)
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
