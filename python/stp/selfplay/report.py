"""Plots (PNG) and a markdown report of a self-play run, from its metrics stream and manifests.

Reads `<run_dir>/metrics.jsonl` (the last `stage` event per round and stage wins, so a resumed
stage is counted once) and writes `<out>/report.md` plus one PNG per plot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stp import storage
from stp.errors import import_optional
from stp.selfplay.rundir import STAGES, RunDir


def stage_summaries(run_dir: str) -> dict[int, dict[str, dict[str, Any]]]:
    """round -> stage -> {seconds, ...summary}; from the manifests (the source of truth)."""
    rd = RunDir(run_dir)
    out: dict[int, dict[str, dict[str, Any]]] = {}
    for r in rd.rounds():
        manifest = rd.manifest(r)
        out[r] = {name: {"seconds": rec.seconds, **rec.summary}
                  for name, rec in manifest.stages.items()}
    return out


def _finish(fig: Any, ax: Any, path: Path, *, xlabel: str, ylabel: str, title: str,
            caption: str, legend_size: float | None = None) -> tuple[str, str]:
    """Label, save and close one report figure; returns its (file name, caption) entry."""
    import matplotlib.pyplot as plt

    if xlabel == "round":  # rounds are whole numbers: no 0.5 ticks on a two-round run
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.legend(fontsize=legend_size)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path.name, caption


def render_report(run_dir: str, out_dir: str | None = None) -> Path:
    """Write the plots and `report.md`; returns the report path. Plots need matplotlib."""
    matplotlib = import_optional("matplotlib", "plots", "the self-play report")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = stage_summaries(run_dir)
    if not data:
        raise FileNotFoundError(f"no finished stage in {run_dir} (no round-*/manifest.json)")
    if out_dir:
        out = Path(out_dir)
    else:
        # A gs:// run reports into ./report (matplotlib writes local files).
        report_dir = RunDir(run_dir).report_dir
        out = Path(storage.basename(report_dir)) if storage.is_gcs(run_dir) else Path(report_dir)
    from stp.lock import lock_dir

    # The report folder, not the run directory: a report of a run that is still going is fine,
    # two reports rewriting one folder at once are not.
    with lock_dir(out, purpose="stp.selfplay report"):
        return _render(run_dir, data, out, plt)


def _render(run_dir: str, data: dict[int, dict[str, dict[str, Any]]], out: Path, plt: Any
            ) -> Path:
    rounds = sorted(data)

    def get(stage: str, key: str, default: Any = 0) -> list[Any]:
        return [data[r].get(stage, {}).get(key, default) for r in rounds]

    plots: list[tuple[str, str]] = []

    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(rounds, get("bookkeeping", "dataset_solved_total"), marker="o",
            label="solved (total)")
    ax.plot(rounds, get("bookkeeping", "dataset_solved_this_round"), marker="s",
            label="solved this round")
    plots.append(_finish(fig, ax, out / "solved.png", xlabel="round", ylabel="dataset statements",
                         title="Statements solved", caption="Dataset statements solved"))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for key, label in [("generated", "generated"), ("parsed", "parsed"), ("kept", "kept")]:
        ax.plot(rounds, get("conjectures", key), marker="o", label=label)
    ax.plot(rounds, get("conjecture_examples", "weighted"), marker="^", label="rewarded (weighted)")
    plots.append(_finish(fig, ax, out / "conjectures.png", xlabel="round", ylabel="conjectures",
                         title="Conjectures", caption="Conjectures generated, parsed, kept, rewarded"))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    width = 0.8 / max(1, len(rounds))
    for i, r in enumerate(rounds):
        hist = data[r].get("bookkeeping", {}).get("solve_rate_histogram") or [0] * 10
        ax.bar([b / 10 + 0.05 + (i - len(rounds) / 2) * width / 10 for b in range(10)], hist,
               width=width / 10, label=f"round {r}")
    plots.append(_finish(fig, ax, out / "solve_rates.png", xlabel="per-round solve rate", ylabel="statements",
                         title="Solve-rate histogram (attempted dataset statements)", caption="Solve-rate histogram per round"))

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bottom = [0.0] * len(rounds)
    for stage in STAGES:
        secs = [float(s) for s in get(stage, "seconds", 0.0)]
        ax.bar(rounds, secs, bottom=bottom, label=stage)
        bottom = [b + s for b, s in zip(bottom, secs, strict=True)]
    plots.append(_finish(fig, ax, out / "stage_times.png", xlabel="round", ylabel="seconds",
                         title="Time per stage", legend_size=7, caption="Time per stage"))

    lines = [f"# Self-play report: `{run_dir}`", "",
             "| round | solved (total) | solved this round | attempts | conj. generated | "
             "parsed | kept | rewarded | train examples | train steps | proof len (mean) | "
             "lemmas used |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rounds:
        s = data[r]
        b, c, w, d, t = (s.get(k, {}) for k in ("bookkeeping", "conjectures",
                                                "conjecture_examples", "train_set",
                                                "train"))
        lines.append(
            f"| {r} | {b.get('dataset_solved_total', '')}/{b.get('dataset_size', '')} | "
            f"{b.get('dataset_solved_this_round', '')} | {b.get('attempts', '')} | "
            f"{c.get('generated', '')} | {c.get('parsed', '')} | {c.get('kept', '')} | "
            f"{w.get('weighted', '')} | {d.get('examples', '')} | {t.get('steps', '')} | "
            f"{b.get('proof_length_mean', 0):.0f} | {b.get('distinct_lemmas_used', '')} |")
    lines += ["", "## Time per stage (seconds)", "",
              "| round | " + " | ".join(STAGES) + " |", "|---" * (len(STAGES) + 1) + "|"]
    for r in rounds:
        lines.append(f"| {r} | " + " | ".join(
            f"{data[r][st]['seconds']:.1f}" if st in data[r] else "" for st in STAGES) + " |")
    last = rounds[-1]
    top = data[last].get("bookkeeping", {}).get("top_lemmas") or {}
    if top:
        lines += ["", f"## Most used lemmas (round {last})", "", "| lemma | proofs |", "|---|---|"]
        lines += [f"| `{name}` | {count} |" for name, count in top.items()]
    lines.append("")
    for name, title in plots:
        lines += [f"## {title}", "", f"![{title}]({name})", ""]
    from stp.verify.identity import identity_lines, read_record

    # Which checker judged, in the first lines (and plainly when it was not stp_check).
    lines[1:1] = ["", *identity_lines(read_record(run_dir), "self-play results")]
    report = out / "report.md"
    storage.write_text(str(report), "\n".join(lines))
    return report
