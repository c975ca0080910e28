"""What the verifier's defences cost: throughput as a fraction of the ideal, per configuration.

    python benchmarks/verify_defences.py [--items 200] [--check-cpu-ms 500] [--start-cpu-ms 8000]
                                         [--pass-rate 0.2] [--workers N] [--configs all]

A stand-in checker spends CPU the way Lean does (`--check-cpu-ms` per check, `--start-cpu-ms`
per worker start, i.e. the header import) and passes `--pass-rate` of the items. For each
configuration (sandbox none/bwrap x pass re-check off/on) it pushes `--items` distinct items
through the whole Verifier after a warm-up that starts the workers, and prints:

- throughput and its fraction of the ideal, ideal = workers / CPU per check (wall clock: honest
  only on an otherwise idle machine), and
- CPU efficiency = CPU the checks needed (items x check CPU) / CPU actually spent in the timed
  window by the driver (getrusage, minus the sampler thread) and by every process below it
  (bwrap, checkers; sampled every 0.1 s with psutil, so a process loses at most its last 0.1 s):
  the same ratio measured in CPU seconds, so it stays meaningful on a machine shared with other
  work.

The CPU model and core count are printed with the figures.
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
CONFIGS = {
    "plain": ("none", False),
    "sandbox": ("bwrap", False),
    "recheck": ("none", True),
    "all": ("bwrap", True),
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


def run(name: str, args: argparse.Namespace) -> dict[str, float]:
    sandbox, recheck = CONFIGS[name]
    spec: dict[str, Any] = {"check_cpu_ms": args.check_cpu_ms, "start_cpu_ms": args.start_cpu_ms,
                            "default": "fail", "rules": [{"pattern": "PASS", "action": "pass"}]}
    binds = sorted({sys.prefix, sys.base_prefix, str(REPO / "python")})
    cfg: STPConfig = load_config(None, [
        f"verifier.workers={args.workers}", "verifier.cache_dir='off'",
        f"verifier.sandbox='{sandbox}'", f"verifier.sandbox_binds={json.dumps(binds)}",
        f"verifier.recheck_passes={'true' if recheck else 'false'}",
        f"verifier.recheck_spares={args.spares}",
        "verifier.timeout_s=600", "verifier.start_timeout_s=600",
        "lean.checker_command=" + json.dumps(standin_command(spec))])
    every = max(1, round(1 / args.pass_rate)) if args.pass_rate > 0 else 0
    items = [VerifyItem(statement=STATEMENT,
                        proof=f" by {'PASS' if every and i % every == 0 else 'simp'} {name} {i}")
             for i in range(args.items)]
    warm = [VerifyItem(statement=STATEMENT, proof=f" by warm {name} {i}")
            for i in range(args.workers * 2)]
    with make_verifier(cfg) as verifier:
        verifier.verify_all(warm)  # start the normal workers outside the timing
        sampler = TreeCPU()
        time.sleep(0.3)
        before = sampler.snapshot()
        cpu0, own0, t0 = driver_cpu(), sampler.own, time.perf_counter()
        results = verifier.verify_all(items)
        elapsed = time.perf_counter() - t0
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
            "starts": stats.spawned, "rechecks": stats.rechecks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--check-cpu-ms", type=float, default=500)
    parser.add_argument("--start-cpu-ms", type=float, default=8000)
    parser.add_argument("--pass-rate", type=float, default=0.2)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--spares", type=int, default=1, help="verifier.recheck_spares")
    parser.add_argument("--configs", default="plain,sandbox,recheck,all",
                        help="comma-separated subset of " + ", ".join(CONFIGS))
    args = parser.parse_args()
    names = [n.strip() for n in args.configs.split(",") if n.strip()]
    if any(CONFIGS[n][0] == "bwrap" for n in names) and shutil.which("bwrap") is None:
        raise SystemExit("bwrap not found: apt-get install bubblewrap (or drop the sandbox configs)")
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores (load average {load:.1f} at start)")
    print(f"stand-in: {args.check_cpu_ms:g} ms CPU per check, {args.start_cpu_ms:g} ms CPU per "
          f"worker start, pass rate {args.pass_rate:g}; {args.items} items, {args.workers} workers")
    print(f"{'config':<8} {'sandbox':<7} {'recheck':<7} {'checks/s':>9} {'of ideal':>8} "
          f"{'CPU eff.':>8} {'CPU s':>7} {'wall s':>7} {'starts':>6} {'rechecks':>8}")
    for name in names:
        r = run(name, args)
        sandbox, recheck = CONFIGS[name]
        print(f"{name:<8} {sandbox:<7} {'on' if recheck else 'off':<7} {r['throughput']:>9.2f} "
              f"{r['fraction']:>8.1%} {r['efficiency']:>8.1%} {r['cpu']:>7.1f} "
              f"{r['seconds']:>7.1f} {r['starts']:>6.0f} {r['rechecks']:>8.0f}", flush=True)


if __name__ == "__main__":
    main()
