"""The pipeline's end report: solved counts per self-play round, pass@k of the final model under
each verifier profile (rows side by side, paper's chunk estimator and the unbiased one), what the
strict profile rejected of the paper-passes, the training loss of every model trained in the run,
and the plots of all of them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stp import storage
from stp.config import STPConfig, resolve_data_dir
from stp.metrics import train_losses

# What stp.model.training writes next to a trained model: the HF export and the step log.
HF_EXPORT_DIR = "hf"
METRICS_FILE = "metrics.jsonl"


def write_pipeline_report(cfg: STPConfig, manifest: Any, out_dir: str) -> str:
    """Write `<out_dir>/report.md` (plus `selfplay/*.png`, `passk/*`); returns its path."""
    stages = manifest.stages
    lines = [f"# Pipeline report: {cfg.run.name}", ""]
    from stp.verify.identity import identity_lines, read_record

    # Which checker judged, first (and plainly when it was not stp_check): self-play's record
    # in each block's run directory, the evaluation's in its log.
    checkers = dict(read_record(cfg.run.run_dir))
    for unit, summary in stages.items():
        if unit.startswith("selfplay@") and "run_dir" in summary:
            checkers.update({f"{k} ({unit})": v
                             for k, v in read_record(summary["run_dir"]).items()})
    if "eval" in stages:
        checkers.update(read_record(stages["eval"]["log"]))
    lines += identity_lines(checkers, "numbers")
    lines += [f"Run directory: `{cfg.run.run_dir}`", ""]
    if "sft" in stages:
        s = stages["sft"]
        lines += ["## Stage 1: SFT", "",
                  f"`{cfg.sft.base_model}` fine-tuned on `{s['data']}` for {s['steps']} steps "
                  f"→ `{s['model']}` (last loss {s.get('last_loss')}).", ""]
    if "selfplay" in stages:
        lines += ["## Self-play", "", "| round | solved this round | solved in total | dataset "
                  "| conjectures solved |", "|---:|---:|---:|---:|---:|"]
        for r in stages["selfplay"]["rounds"]:
            lines.append(f"| {r['round']} | {r['dataset_solved_this_round']} | "
                         f"{r['dataset_solved_total']} | {r['dataset_size']} | "
                         f"{r['conjectures_solved']} |")
        lines.append("")
        if not storage.is_gcs(out_dir):
            from stp.selfplay.report import render_report

            plots = render_report(cfg.run.run_dir, str(Path(out_dir) / "selfplay"))
            lines += [f"Self-play plots and details: [selfplay/{plots.name}](selfplay/"
                      f"{plots.name})", ""]
    if "retrain" in stages:
        s = stages["retrain"]
        lines += ["## Final re-training", "",
                  f"`{cfg.retrain.base_model}` on {s['examples']} examples "
                  f"({s['selfplay_examples']} from self-play) → `{s['model']}`.", ""]
    if "eval" in stages:
        lines += _eval_section(cfg, stages["eval"], out_dir)
    if not storage.is_gcs(cfg.run.run_dir) and not storage.is_gcs(out_dir):
        lines += training_section(Path(cfg.run.run_dir), out_dir)
    path = storage.join(out_dir, "report.md")
    storage.write_text(path, "\n".join(lines) + "\n")
    return path


def _eval_section(cfg: STPConfig, ev: dict[str, Any], out_dir: str) -> list[str]:
    from stp.eval import log as evlog
    from stp.eval.loading import load_log
    from stp.eval.plots import RunSummaries, markdown_table, write_report
    from stp.eval.summarize import profile_rejections, summarize_log

    log_dir = ev["log"]
    manifest = evlog.read_manifest(log_dir)
    profiles = list(manifest.profiles) if manifest is not None and manifest.profiles else [None]
    data_dir = resolve_data_dir(cfg.run.data_dir)
    runs = []
    for profile in profiles:
        loaded = load_log(log_dir, "stp-eval", data_dir, label=profile or "all",
                          profile=profile)
        summaries = summarize_log(loaded, None, budgets=tuple(cfg.eval.budgets),
                                  resamples=cfg.eval.bootstrap_samples, seed=cfg.eval.seed)
        runs.append(RunSummaries(profile or "all", summaries))
    lines = ["## Evaluation", "", f"Model `{ev['model']}`, log `{log_dir}`; rows are verifier "
             "profiles (`paper`: what the original counted; `strict`: the sound checks).", "",
             markdown_table(runs), ""]
    if {"strict", "paper"} <= set(profiles):
        for split, rej in sorted(profile_rejections(log_dir).items()):
            why = ", ".join(f"{r} {n}" for r, n in sorted(rej.reasons.items(),
                                                          key=lambda kv: -kv[1]))
            lines.append(f"- {split}: strict rejects {rej.attempts} paper-passing attempts "
                         f"({rej.statements} statements): {why or '—'}")
        lines.append("")
    if not storage.is_gcs(out_dir):
        write_report(runs, storage.join(out_dir, "passk"))
        lines += ["pass@k plots: [passk/](passk/)", ""]
    return lines


def training_runs(run_dir: Path) -> dict[str, dict[int, float]]:
    """Loss per step of every model trained under `run_dir` (SFT, each self-play round, the
    final re-training), keyed by the training directory relative to `run_dir`. A directory
    counts when it holds both the HF export and the step log, so the layout of each stage need
    not be known here."""
    runs: dict[str, dict[int, float]] = {}
    for metrics in sorted(run_dir.rglob(METRICS_FILE)):
        if not (metrics.parent / HF_EXPORT_DIR).is_dir():
            continue
        losses = train_losses(metrics)
        if losses:
            runs[metrics.parent.relative_to(run_dir).as_posix()] = losses
    return runs


def training_section(run_dir: Path, out_dir: str) -> list[str]:
    """A table (steps, first and last loss) and one loss-per-step figure of all trained models."""
    runs = training_runs(run_dir)
    if not runs:
        return []
    lines = ["## Training", "", "| model directory | steps | first loss | last loss |",
             "|---|---:|---:|---:|"]
    for name, losses in runs.items():
        steps = sorted(losses)
        lines.append(f"| `{name}` | {len(steps)} | {losses[steps[0]]:.4f} | "
                     f"{losses[steps[-1]]:.4f} |")
    lines += ["", f"Loss per step: [training_loss.png]({_plot_losses(runs, out_dir)})", ""]
    return lines


def _plot_losses(runs: dict[str, dict[int, float]], out_dir: str) -> str:
    """`training_loss.png`/`.svg` in `out_dir`; returns the PNG's name (relative link)."""
    from stp.eval.plots import pyplot, save_figure

    plt = pyplot("training loss plots")
    fig, ax = plt.subplots(figsize=(6.0, 4.2), dpi=120)
    for name, losses in runs.items():
        steps = sorted(losses)
        ax.plot(steps, [losses[s] for s in steps], "-", marker="." if len(steps) < 50 else None,
                label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (per target token)")
    ax.set_title("training loss")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, out_dir, "training_loss")
    plt.close(fig)
    return "training_loss.png"
