"""The pipeline's end report: solved counts per self-play round, pass@k of the final model under
each verifier profile (rows side by side, paper's chunk estimator and the unbiased one), what the
strict profile rejected of the paper-passes, and the plots of both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stp import storage
from stp.config import STPConfig, resolve_data_dir


def write_pipeline_report(cfg: STPConfig, manifest: Any, out_dir: str) -> str:
    """Write `<out_dir>/report.md` (plus `selfplay/*.png`, `passk/*`); returns its path."""
    stages = manifest.stages
    lines = [f"# Pipeline report: {cfg.run.name}", "", f"Run directory: `{cfg.run.run_dir}`", ""]
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
