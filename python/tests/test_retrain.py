"""Final re-training data (docs/reference.md §4.11) from a scripted two-round self-play run, and its resumption."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from selfplay_helpers import RULES, make_config, scripted_backends
from standin import standin_command, with_checker

from stp import storage
from stp.data.records import TrainingExample
from stp.errors import UsageError
from stp.model.prompts import prover_training_example
from stp.selfplay.loop import run_selfplay
from stp.selfplay.records import CorrectProof, StatementRow
from stp.selfplay.retrain import run_retrain


@pytest.fixture(scope="module")
def selfplay_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("retrain")
    cfg = make_config(tmp, "run")
    run_selfplay(with_checker(cfg, standin_command(RULES)), backends=scripted_backends())
    sft = [TrainingExample(prompt="mathlib prompt", target="mathlib proof", weight=1.0),
           TrainingExample(prompt="another", target="one", weight=0.5)]
    storage.write_jsonl(str(tmp / "sft.jsonl.gz"), sft)
    return tmp


def retrain_config(tmp: Path, name: str, extra: list[str] | None = None):
    return make_config(tmp, name, [
        f'retrain.merge_from=["{tmp / "run"}"]', f'data.sft_mathlib="{tmp / "sft.jsonl.gz"}"',
        'retrain.base_model="base-model"', "retrain.max_proofs_per_statement=2",
        *(extra or [])])


def test_retrain_data_follows_the_rules(selfplay_run: Path) -> None:
    tmp = selfplay_run
    cfg = retrain_config(tmp, "final")
    manifest = run_retrain(cfg, backends=scripted_backends())
    out = Path(cfg.run.run_dir) / "retrain"
    examples = list(storage.iter_jsonl(str(out / "train.jsonl.gz"), type=TrainingExample))
    assert manifest["data"]["examples"] == len(examples)
    assert manifest["data"]["sft_examples"] == 2
    assert sum(e.prompt == "mathlib prompt" for e in examples) == 1
    # Expected: every distinct correct proof of a dataset statement, and of conjectures with
    # round rate <= 0.25 (all of them here: 1/8), at most 2 per statement.
    run = tmp / "run"
    rows = list(storage.iter_jsonl(str(run / "dataset_statements.jsonl.gz"), type=StatementRow))
    rows += list(storage.iter_jsonl(str(run / "round-0001/statements.jsonl.gz"),
                                    type=StatementRow))
    per_statement: dict[int, set[str]] = {}
    for r in (0, 1):
        for p in storage.iter_jsonl(str(run / f"round-{r:04d}/correct.jsonl.gz"),
                                    type=CorrectProof):
            per_statement.setdefault(p.sid, set()).add(p.proof)
    expected = sum(min(2, len(v)) for v in per_statement.values())
    assert manifest["data"]["selfplay_examples"] == expected
    assert any(rows[sid].conjecture for sid in per_statement)
    selfplay = [e for e in examples if e.prompt not in ("mathlib prompt", "another")]
    sid_of = {rows[sid].statement: sid for sid in per_statement}
    for e in selfplay:
        proof = e.target
        matches = [sid for stmt, sid in sid_of.items()
                   if prover_training_example(stmt, rows[sid].header, proof, 1.0).prompt
                   == e.prompt]
        assert len(matches) == 1
        assert proof in per_statement[matches[0]]
        assert e.weight == pytest.approx(math.exp(-0.001 * len(proof)))
    trained = json.loads((out / "model" / "hf" / "trained.json").read_text())
    assert trained["base"] == "base-model" and trained["lr"] == 1e-4
    assert manifest["train"]["steps"] == 1
    # A rerun does nothing new.
    again = run_retrain(cfg, backends=scripted_backends(
        train=lambda *a, **k: pytest.fail("trained twice")))
    assert again == manifest


def test_retrain_without_conjectures(selfplay_run: Path) -> None:
    cfg = retrain_config(selfplay_run, "noconj", ["retrain.include_conjectures=false"])
    manifest = run_retrain(cfg, backends=scripted_backends())
    with_conj = retrain_config(selfplay_run, "final2")
    full = run_retrain(with_conj, backends=scripted_backends())
    assert manifest["data"]["selfplay_examples"] < full["data"]["selfplay_examples"]


def test_retrain_missing_sft_is_a_usage_error(selfplay_run: Path) -> None:
    cfg = retrain_config(selfplay_run, "nosft", ['data.sft_mathlib="/nonexistent/sft.jsonl.gz"'])
    with pytest.raises(UsageError, match="re-training SFT set not found"):
        run_retrain(cfg, backends=scripted_backends())


def test_retrain_empty_run_is_a_usage_error(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "x", [f'retrain.merge_from=["{tmp_path / "empty"}"]'])
    with pytest.raises(UsageError, match="no self-play round"):
        run_retrain(cfg, backends=scripted_backends())


@pytest.mark.slow
def test_retrain_cli_trains_the_tiny_base_model(selfplay_run: Path, tiny_model: str) -> None:
    """`python -m stp.retrain` end to end with the real trainer (Levanter, one step on CPU)."""
    import subprocess
    import sys

    tmp = selfplay_run
    base = tiny_model
    sets = [f'run.run_dir="{tmp / "cli"}"', f'run.data_dir="{tmp}"',
            f'retrain.merge_from=["{tmp / "run"}"]', f'data.sft_mathlib="{tmp / "sft.jsonl.gz"}"',
            f'retrain.base_model="{base}"', f'model.name="{base}"', "retrain.trainer.max_steps=1",
            "retrain.trainer.min_steps=1", "trainer.batch_size=4", "trainer.per_device_batch_size=4",
            "trainer.warmup_steps=0", "trainer.max_seq_len=256", 'trainer.mp="p=f32,c=f32"',
            'model.dtype="float32"']
    cmd = [sys.executable, "-m", "stp.retrain"] + [x for s in sets for x in ("--set", s)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr[-3000:]
    manifest = json.loads((tmp / "cli" / "retrain" / "manifest.json").read_text())
    hf = Path(manifest["train"]["model"])
    assert manifest["train"]["steps"] == 1 and (hf / "config.json").is_file()
    assert str(hf) in proc.stdout
    assert manifest["data"]["examples"] == manifest["data"]["selfplay_examples"] + 2
    # Rerunning the same command finds both stages done and trains nothing.
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                           cwd=Path(__file__).resolve().parents[2])
    assert again.returncode == 0 and json.loads(
        (tmp / "cli" / "retrain" / "manifest.json").read_text()) == manifest
