"""The pipeline report's training section: every trained model's loss per step, a redone step
(logged before a kill, then again after the resume) counted once with its later loss."""

from __future__ import annotations

import json
from pathlib import Path

from stp.metrics import MetricsWriter
from stp.pipeline.report import training_runs, training_section


def _trained(run_dir: Path, rel: str, losses: list[tuple[int, float]]) -> None:
    out = run_dir / rel
    (out / "hf").mkdir(parents=True)
    with MetricsWriter(out / "metrics.jsonl") as metrics:
        for step, loss in losses:
            metrics.log("train_step", step=step, loss=loss)
        metrics.log("progress", done=len(losses))


def test_training_section_lists_each_model_and_keeps_the_redone_step_once(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _trained(run_dir, "sft/model", [(0, 2.0), (1, 1.5)])
    # Killed after logging step 2 but before its checkpoint; the resume redid step 2.
    _trained(run_dir, "retrain/model", [(0, 3.0), (1, 2.5), (2, 2.4), (2, 2.2), (3, 2.0)])
    # A metrics file that is not a training run (no HF export next to it) is not listed.
    (run_dir / "eval").mkdir(parents=True)
    (run_dir / "eval" / "metrics.jsonl").write_text(json.dumps({"event": "x"}) + "\n")

    runs = training_runs(run_dir)
    assert runs == {"retrain/model": {0: 3.0, 1: 2.5, 2: 2.2, 3: 2.0},
                    "sft/model": {0: 2.0, 1: 1.5}}
    out = tmp_path / "report"
    lines = training_section(run_dir, str(out))
    assert "| `retrain/model` | 4 | 3.0000 | 2.0000 |" in lines
    assert "| `sft/model` | 2 | 2.0000 | 1.5000 |" in lines
    assert (out / "training_loss.png").stat().st_size > 0
    assert (out / "training_loss.svg").is_file()


def test_no_training_no_section(tmp_path: Path) -> None:
    assert training_section(tmp_path, str(tmp_path / "report")) == []
    assert not (tmp_path / "report").exists()
