"""pass@k curves (one figure per split, one line per run) and a markdown table of the numbers.

Figures use matplotlib's Agg backend (no display needed on cluster nodes) and are written as PNG
and SVG through `stp.storage`, so the output directory may be a gs:// prefix.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from stp import storage
from stp.errors import import_optional
from stp.eval.summarize import SplitSummary


@dataclass
class RunSummaries:
    """All split summaries of one log, under the label shown in legends and tables."""

    label: str
    summaries: list[SplitSummary]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "split"


def _splits(runs: list[RunSummaries]) -> list[str]:
    seen: dict[str, None] = {}
    for run in runs:
        for s in run.summaries:
            seen[s.split] = None
    return list(seen)


def pyplot(what: str) -> Any:
    """`matplotlib.pyplot` on the Agg backend (cluster nodes have no display); without the
    `plots` extra, one line naming `what` the figure was for."""
    matplotlib = import_optional("matplotlib", "plots", what)
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, out_dir: str, stem: str) -> list[str]:
    """`<out_dir>/<stem>.png` and `.svg` through `stp.storage` (so `out_dir` may be gs://);
    returns the written paths."""
    written = []
    for ext in ("png", "svg"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=ext)
        path = storage.join(out_dir, f"{stem}.{ext}")
        storage.write_bytes(path, buffer.getvalue())
        written.append(path)
    return written


def plot_pass_at_k(runs: list[RunSummaries], out_dir: str) -> list[str]:
    """Write `passk_<split>.png` and `.svg` per split; returns the written paths.

    The unbiased estimate is the line with its bootstrap interval shaded; the original chunk
    estimate is drawn as markers (with its ± std as error bars where defined) for comparison."""
    plt = pyplot("pass@k plots")
    written: list[str] = []
    for split in _splits(runs):
        fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=120)
        for i, run in enumerate(runs):
            summary = next((s for s in run.summaries if s.split == split), None)
            if summary is None:
                continue
            color = f"C{i % 10}"
            ub = [(k, e) for k, e in zip(summary.ks, summary.unbiased, strict=True)
                  if e is not None]
            if ub:
                ks = [k for k, _ in ub]
                ax.plot(ks, [100 * e.mean for _, e in ub], "-", color=color,
                        label=f"{run.label} (unbiased)")
                ax.fill_between(ks, [100 * e.ci_low for _, e in ub],
                                [100 * e.ci_high for _, e in ub], color=color, alpha=0.15,
                                linewidth=0)
            ch = [(k, e) for k, e in zip(summary.ks, summary.chunk, strict=True)
                  if e is not None]
            if ch:
                ax.errorbar([k for k, _ in ch], [100 * e.mean for _, e in ch],
                            yerr=[100 * (e.std or 0.0) for _, e in ch], fmt="o", color=color,
                            markersize=4, capsize=3, label=f"{run.label} (chunks, paper)")
        ax.set_xscale("log")
        ax.set_xlabel("k (samples per statement)")
        ax.set_ylabel("pass@k (%)")
        ax.set_title(f"pass@k — {split}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        written += save_figure(fig, out_dir, f"passk_{_slug(split)}")
        plt.close(fig)
    return written


def markdown_table(runs: list[RunSummaries]) -> str:
    """Per split: a table comparable with the paper (chunk estimator, ± chunk std) and a table of
    the unbiased estimator with its 95 % bootstrap interval; rows are runs, columns k."""
    lines: list[str] = []
    for split in _splits(runs):
        present = [(r.label, s) for r in runs for s in r.summaries if s.split == split]
        ks = sorted({k for _, s in present for k in s.ks})
        header = "| run | " + " | ".join(f"pass@{k}" for k in ks) + " |"
        rule = "|---|" + "---:|" * len(ks)
        lines += [f"### {split}", "", "pass@k in %, original chunk estimator (± std over chunks "
                  "when there are at least 4 chunks; comparable with the STP paper):", "",
                  header, rule]
        for label, s in present:
            cells = []
            for k in ks:
                e = dict(zip(s.ks, s.chunk, strict=True)).get(k)
                if e is None:
                    cells.append("—")
                else:
                    cells.append(f"{100 * e.mean:.1f}" + (f" ± {100 * e.std:.1f}"
                                                          if e.std is not None else ""))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        lines += ["", "pass@k in %, unbiased estimator 1 − C(n−c,k)/C(n,k) [95 % bootstrap CI]:",
                  "", header, rule]
        for label, s in present:
            cells = []
            for k in ks:
                u = dict(zip(s.ks, s.unbiased, strict=True)).get(k)
                cells.append("—" if u is None else
                             f"{100 * u.mean:.1f} [{100 * u.ci_low:.1f}, {100 * u.ci_high:.1f}]")
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
        counts = ", ".join(f"{label}: {s.statements} statements, n {s.n_min}..{s.n_max}"
                           for label, s in present)
        lines += ["", counts, ""]
    return "\n".join(lines)


def write_report(runs: list[RunSummaries], out_dir: str) -> list[str]:
    """Figures plus `table.md`; returns every written path."""
    written = plot_pass_at_k(runs, out_dir)
    table_path = storage.join(out_dir, "table.md")
    storage.write_text(table_path, markdown_table(runs))
    written.append(table_path)
    return written
