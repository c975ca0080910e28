"""The learning check's curve: held-out solve rate after Stage 1 and after each self-play round,
for the loop as shipped and with each deliberate breakage (python/tests/learning_loop.py).

    python benchmarks/learning_curve.py [--out DIR] [--plot docs/img] [--set FIELD=VALUE ...]
                                        [--runs shipped weights selection]

Runs exactly what `pytest -m learning` runs (same settings unless --set changes a field of
`learning_loop.Settings`, e.g. `--set rounds=3`), prints one table row per run (rate after Stage 1,
after each round, the gain, seconds) and the per-round self-play figures, and with --plot writes
`learning_curve.png` with the project's plotting helpers (`stp.eval.plots`). CPU only; a few
minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))
sys.path.insert(0, str(REPO / "python" / "tests"))

from learning_loop import BREAKAGES, Curve, Experiment, Settings  # noqa: E402


def parse_settings(pairs: list[str]) -> Settings:
    fields = {f.name: f.type for f in dataclasses.fields(Settings)}
    values: dict[str, object] = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        if key not in fields:
            raise SystemExit(f"--set {pair}: unknown field {key!r} (fields: {', '.join(fields)})")
        values[key] = float(raw) if fields[key] in ("float", float) else int(raw)
    return dataclasses.replace(Settings(), **values)  # type: ignore[arg-type]


def plot(curves: dict[str, Curve], out_dir: str) -> list[str]:
    from stp.eval.plots import pyplot, save_figure

    plt = pyplot("the learning curve")
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, curve in curves.items():
        ax.plot(range(len(curve.rates)), [100 * r for r in curve.rates], marker="o", label=name)
    rounds = max(len(c.rates) for c in curves.values())
    ax.set_xticks(range(rounds), ["Stage 1"] + [f"round {r}" for r in range(rounds - 1)])
    ax.set_ylabel("held-out solve rate (pass@1, %)")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend(title="loop")
    ax.set_title("Learning check: synthetic task, tiny model from scratch")
    fig.tight_layout()
    written = [p for p in save_figure(fig, out_dir, "learning_curve") if p.endswith(".png")]
    plt.close(fig)
    return written


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="working directory (default: a temporary one)")
    p.add_argument("--plot", default=None, help="write learning_curve.png into this directory")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--runs", nargs="+", default=list(BREAKAGES), choices=list(BREAKAGES))
    args = p.parse_args()
    settings = parse_settings(args.set)
    with tempfile.TemporaryDirectory(prefix="stp-learning-") as tmp:
        root = Path(args.out or tmp)
        start = time.monotonic()
        curves, timings = Experiment(root, settings).curves(args.runs)
        total = time.monotonic() - start
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"settings: {settings}")
    rounds = settings.rounds
    head = " | ".join(["run", "Stage 1"] + [f"round {r}" for r in range(rounds)]
                      + ["gain", "seconds"])
    print(f"| {head} |")
    print("|" + "---|" * (rounds + 4))
    for name, curve in curves.items():
        cells = [name] + [f"{100 * r:.1f}" for r in curve.rates] + [
            f"{100 * curve.gain:+.1f}", f"{curve.seconds:.0f}"]
        print("| " + " | ".join(cells) + " |")
    for name, curve in curves.items():
        for r, figures in enumerate(curve.rounds):
            print(f"{name} round {r}: {figures}")
    print(f"timings (s): {', '.join(f'{k} {v:.0f}' for k, v in timings.items())}; "
          f"total {total:.0f} s; load average at the end {load:.2f}")
    if args.plot:
        for path in plot(curves, args.plot):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
