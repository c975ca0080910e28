"""What the verifier's defences cost: throughput as a fraction of the ideal, per configuration.

    python benchmarks/verify_defences.py [--items 200] [--check-cpu-ms 500] [--start-cpu-ms 8000]
                                         [--replay-ratio 0.25] [--sweep 0.1,0.25,0.5]
                                         [--pass-rate 0.2] [--attempts 32] [--workers N]
                                         [--simulate] [--configs ...]

`--simulate`: the stand-in SLEEPS instead of burning CPU (check, judgement, reference, start),
so many more workers than cores can be modelled (e.g. `--workers 64 --simulate`): the figure is
then throughput as a fraction of the ideal `workers / check time`, with every defence on and
the default settings (judges and statement processes sized automatically), and what it measures
is the pool and the driver, not the CPU. The driver's own CPU per check is printed in both
modes. Items come in groups of `--attempts` attempts per statement (the paper's 32-64): each
statement needs one REFERENCE, made by single-use statement processes (`statement_batch` per
process, each paying a start).

A stand-in checker spends CPU the way Lean does (`--check-cpu-ms` per check, `--start-cpu-ms`
per worker start, i.e. the header import, `--replay-ratio` x the check CPU per kernel replay)
and passes `--pass-rate` of the items. For each configuration (none, sandbox, fresh re-check,
replay re-check, sandbox + replay = every defence on, the latter again for each replay/check
CPU ratio of `--sweep`) it pushes `--items` distinct items through the whole Verifier after a
warm-up that starts the workers (the replay worker and fresh spares included), and prints:

- throughput and its fraction of the ideal, ideal = workers / CPU per check (wall clock: honest
  only on an otherwise idle machine), and
- CPU efficiency = CPU the checks needed (items x check CPU) / CPU actually spent in the timed
  window by the driver (getrusage, minus the sampler thread) and by every process below it
  (bwrap, checkers; sampled every 0.1 s with psutil, so a process loses at most its last 0.1 s):
  the same ratio measured in CPU seconds, so it stays meaningful on a machine shared with other
  work.

- the analytic bound of the CPU efficiency: 1 without a re-check, 1 / (1 + p·(S/C + 1)) for the
  fresh re-check (one start S and one check C per pass), 1 / (1 + p·r + (q + S/(32 C)) / a) for
  the judge (r = judge/check, q = reference/check, a = attempts per statement, one statement
  process start per 32 statements).

The CPU model and core count are printed with the figures. The replay/check ratio r is a
modelled parameter here: measure it on Lean with benchmarks/replay_ratio.py.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python" / "tests"))  # the stand-in lives with the tests

import psutil  # noqa: E402
from standin import standin_command  # noqa: E402

from stp.config import STPConfig, load_config  # noqa: E402
from stp.verify import VerifyItem, make_verifier  # noqa: E402

STATEMENT = "theorem t (n : ℕ) : n + 0 = n :="
# name: (verifier.sandbox, verifier.recheck)
CONFIGS = {
    "none": ("none", "off"),
    "sandbox": ("bwrap", "off"),
    "fresh": ("none", "fresh"),
    "replay": ("none", "replay"),
    "all": ("bwrap", "replay"),
}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def driver_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


class TreeCPU:
    """Samples the CPU time of every descendant process (10 Hz) in a background thread."""

    def __init__(self) -> None:
        self.latest: dict[tuple[int, float], float] = {}
        self.own = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.wait(0.1):
            for child in me.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    t = child.cpu_times()
                    self.latest[(child.pid, child.create_time())] = t.user + t.system
            self.own = time.thread_time()

    def snapshot(self) -> dict[tuple[int, float], float]:
        return dict(self.latest)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def bound(recheck: str, args: argparse.Namespace, ratio: float) -> float:
    """Analytic CPU efficiency: useful check CPU / all CPU, per item."""
    p = args.pass_rate
    if recheck == "fresh":
        return 1 / (1 + p * (args.start_cpu_ms / args.check_cpu_ms + 1))
    if recheck == "replay":
        # + one reference per statement, and a statement-process start per 32 statements
        per_statement = (args.reference_ratio
                         + args.start_cpu_ms / args.check_cpu_ms / 32) / args.attempts
        return 1 / (1 + p * ratio + per_statement)
    return 1.0


def run(name: str, args: argparse.Namespace, ratio: float) -> dict[str, float]:
    sandbox, recheck = CONFIGS[name]
    spec: dict[str, Any] = {"default": "fail", "rules": [{"pattern": "PASS", "action": "pass"}]}
    if args.simulate:
        spec.update(check_sleep_ms=args.check_cpu_ms, start_delay_ms=args.start_cpu_ms,
                    replay_sleep_ms=ratio * args.check_cpu_ms,
                    reference_sleep_ms=args.reference_ratio * args.check_cpu_ms)
    else:
        spec.update(check_cpu_ms=args.check_cpu_ms, start_cpu_ms=args.start_cpu_ms,
                    replay_cpu_ms=ratio * args.check_cpu_ms,
                    reference_cpu_ms=args.reference_ratio * args.check_cpu_ms)
    binds = sorted({sys.prefix, sys.base_prefix, str(REPO / "python")})
    cfg: STPConfig = load_config(None, [
        f"verifier.workers={args.workers}", "verifier.cache_dir='off'",
        f"verifier.sandbox='{sandbox}'", f"verifier.sandbox_binds={json.dumps(binds)}",
        f"verifier.recheck='{recheck}'",
        f"verifier.recheck_spares={args.spares}",
        "verifier.timeout_s=600", "verifier.start_timeout_s=600",
        "lean.checker_command=" + json.dumps(standin_command(spec))])
    every = max(1, round(1 / args.pass_rate)) if args.pass_rate > 0 else 0
    tag = f"{name} {ratio} {time.monotonic_ns()}"  # distinct statements per row

    def statement(i: int) -> str:
        return f"theorem t{i // args.attempts} (n : ℕ) : n + 0 = n := -- {tag}"

    items = [VerifyItem(statement=statement(i),
                        proof=f" by {'PASS' if every and i % every == 0 else 'simp'} {i}")
             for i in range(args.items)]
    # the warm-up passes too, so that the judge (or the fresh spares) start untimed
    warm = [VerifyItem(statement=STATEMENT, proof=f" by warm PASS {name} {ratio} {i}")
            for i in range(args.workers * 2)]
    with make_verifier(cfg) as verifier:
        verifier.verify_all(warm)  # start the normal workers outside the timing
        warm_stats = dict(vars(verifier.backend.stats))  # type: ignore[attr-defined]
        sampler = TreeCPU()
        time.sleep(0.3)
        before = sampler.snapshot()
        cpu0, own0, t0 = driver_cpu(), sampler.own, time.perf_counter()
        results = verifier.verify_all(items)
        elapsed = time.perf_counter() - t0
        driver_ms = (driver_cpu() - cpu0 - (sampler.own - own0)) * 1000
        time.sleep(0.2)
        after = sampler.snapshot()
        cpu = driver_cpu() - cpu0 - (sampler.own - own0)
        sampler.stop()
        stats = verifier.backend.stats  # type: ignore[attr-defined]
    cpu += sum(v - before.get(k, 0.0) for k, v in after.items())
    passed = sum(r.passed for r in results)
    expected = sum(1 for it in items if "PASS" in it.proof)
    if passed != expected:
        raise SystemExit(f"{name}: {passed} passes, expected {expected}")
    ideal = args.workers / (args.check_cpu_ms / 1000)
    throughput = len(items) / elapsed
    useful = len(items) * args.check_cpu_ms / 1000
    return {"throughput": throughput, "fraction": throughput / ideal, "cpu": cpu,
            "efficiency": useful / cpu if cpu else 0.0, "seconds": elapsed,
            "driver_ms": driver_ms / len(items), "driver_share": driver_ms / 1000 / elapsed,
            "statement_starts": stats.statement_processes - warm_stats["statement_processes"],
            "starts": stats.spawned - warm_stats["spawned"],
            "rechecks": stats.rechecks - warm_stats["rechecks"],
            "replays": stats.replays - warm_stats["replays"],
            "bound": bound(recheck, args, ratio)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--check-cpu-ms", type=float, default=500)
    parser.add_argument("--start-cpu-ms", type=float, default=8000)
    parser.add_argument("--pass-rate", type=float, default=0.2)
    parser.add_argument("--attempts", type=int, default=32,
                        help="attempts per statement (the paper: 32-64)")
    parser.add_argument("--reference-ratio", type=float, default=0.05,
                        help="reference (statement process) time / check time (modelled)")
    parser.add_argument("--simulate", action="store_true",
                        help="sleep instead of burning CPU (many simulated workers)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--spares", type=int, default=1, help="verifier.recheck_spares")
    parser.add_argument("--replay-ratio", type=float, default=0.25,
                        help="replay CPU / check CPU (r) of the replay rows (modelled)")
    parser.add_argument("--sweep", default="0.1,0.25,0.5",
                        help="r values for extra rows of the every-defence config ('' = none)")
    parser.add_argument("--configs", default="none,sandbox,fresh,replay,all",
                        help="comma-separated subset of " + ", ".join(CONFIGS))
    args = parser.parse_args()
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    rows = [(n, args.replay_ratio) for n in names]
    if "all" in names:
        sweep = [float(x) for x in args.sweep.split(",") if x.strip()]
        at = rows.index(("all", args.replay_ratio))
        rows[at:at + 1] = [("all", r) for r in sorted({args.replay_ratio, *sweep})]
    if any(CONFIGS[n][0] == "bwrap" for n in names) and shutil.which("bwrap") is None:
        raise SystemExit("bwrap not found: apt-get install bubblewrap (or drop the sandbox configs)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores (load average {load:.1f} at start)")
    unit = "ms (simulated: sleep)" if args.simulate else "ms CPU"
    print(f"stand-in: {args.check_cpu_ms:g} {unit} per check, {args.start_cpu_ms:g} {unit} per "
          f"process start, judge = r x check, reference = {args.reference_ratio:g} x check, pass "
          f"rate {args.pass_rate:g}; {args.items} items, {args.attempts} attempts per statement, "
          f"{args.workers} workers (+ judges and statement processes, sized automatically)")
    print("CPU eff. = check CPU needed / CPU spent (holds on a shared machine); wall = "
          "throughput / (workers / check CPU) (honest only on an idle one); bound = analytic; "
          "starts, rechecks, replays, st.proc (statement processes): in the timed window; drv = "
          "the driver process's own CPU per check and as a share of one core")
    print(f"{'config':<8} {'sandbox':<7} {'recheck':<7} {'r':>5} {'checks/s':>9} {'wall':>6} "
          f"{'CPU eff.':>8} {'bound':>6} {'CPU s':>7} {'wall s':>7} {'starts':>6} "
          f"{'rechecks':>8} {'replays':>7} {'st.proc':>7} {'drv ms/chk':>10} {'drv CPU':>7}")
    for name, ratio in rows:
        r = run(name, args, ratio)
        sandbox, recheck = CONFIGS[name]
        shown = f"{ratio:g}" if recheck == "replay" else "-"
        # simulated workers sleep: a CPU efficiency means nothing there
        eff = "-" if args.simulate else f"{r['efficiency']:.1%}"
        print(f"{name:<8} {sandbox:<7} {recheck:<7} {shown:>5} {r['throughput']:>9.2f} "
              f"{r['fraction']:>6.1%} {eff:>8} {r['bound']:>6.1%} "
              f"{r['cpu']:>7.1f} {r['seconds']:>7.1f} {r['starts']:>6.0f} "
              f"{r['rechecks']:>8.0f} {r['replays']:>7.0f} {r['statement_starts']:>7.0f} "
              f"{r['driver_ms']:>10.3f} {r['driver_share']:>7.1%}", flush=True)


if __name__ == "__main__":
    main()
