"""End to end on CPU: two full self-play rounds with the tiny random model (transformers sampler,
Levanter trainer) and the stand-in checker, then a run killed after every stage and shard and
resumed, which must produce the same files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selfplay_helpers import (
    make_config,
    run_contents,
    run_crashing_once_everywhere,
    tiny_model_rules,
)
from standin import standin_command, with_checker

from stp import storage
from stp.data.records import TrainingExample
from stp.selfplay.loop import run_selfplay
from stp.selfplay.records import ProofAttempt
from stp.selfplay.rundir import STAGES

E2E_RULES = tiny_model_rules("Nat.mul_comm")


def e2e_config(tmp: Path, name: str, model: str):
    return make_config(tmp, name, [
        f'model.name="{model}"', "model.max_prompt_tokens=256", "model.max_model_len=512",
        'model.dtype="float32"', 'sampler.backend="hf"', "sampler.max_tokens=24",
        "sampler.embed_max_tokens=64", "sampler.embed_batch_size=8",
        "selfplay.samples_first_round=4", "selfplay.samples_per_statement=4",
        "selfplay.trainer.max_steps=1", "trainer.batch_size=4", "trainer.per_device_batch_size=4",
        "trainer.min_steps=1", "trainer.warmup_steps=0", "trainer.max_seq_len=512",
        'trainer.mp="p=f32,c=f32"',
    ])


@pytest.mark.slow
def test_two_rounds_with_tiny_model_and_resume(tmp_path: Path, tiny_model: str) -> None:
    cfg = e2e_config(tmp_path, "ref", tiny_model)
    command = standin_command(E2E_RULES)
    summaries = run_selfplay(with_checker(cfg, command))
    root = Path(cfg.run.run_dir)
    assert [s.round for s in summaries] == [0, 1]
    for r in (0, 1):
        rd = root / f"round-{r:04d}"
        assert list(json.loads((rd / "manifest.json").read_text())["stages"]) == list(STAGES)
        attempts = list(storage.iter_sharded_jsonl(str(rd / "attempts"), type=ProofAttempt))
        stages = summaries[r].stages
        assert sum(a.multiplicity for a in attempts) == stages["proving"]["samples"] > 0
        assert {a.status for a in attempts} <= {"pass", "fail"}
        assert any(a.passed for a in attempts)
        train = list(storage.iter_jsonl(str(rd / "train.jsonl.gz"), type=TrainingExample))
        assert len(train) == stages["train_set"]["examples"]
        assert stages["train_set"]["prover_examples"] > 0 and not stages["train"]["skipped"]
        hf = Path(stages["train"]["model"])
        assert (hf / "config.json").is_file() and stages["train"]["steps"] == 1
        assert hf == rd / "model" / "hf"
        assert sum(stages["bookkeeping"]["solve_rate_histogram"]) == 8
        assert stages["bookkeeping"]["top_lemmas"]
    assert summaries[1].stages["pairs"]["seeds"] > 0
    conj = summaries[1].stages["conjectures"]
    assert conj["generated"] > 0
    assert sum(conj["parse_failures"].values()) == conj["generated"] - conj["parsed"]
    assert summaries[1].model == summaries[0].stages["train"]["model"]
    events = [json.loads(x) for x in (root / "metrics.jsonl").read_text().splitlines()]
    assert sum(e["event"] == "stage" for e in events) == 2 * len(STAGES)
    rounds = [e for e in events if e["event"] == "round"]
    assert [e["round"] for e in rounds] == [0, 1]
    assert rounds[1]["proving.samples"] == summaries[1].stages["proving"]["samples"]
    assert summaries[1].stages["targets"]["conjecture_targets"] == conj["kept"]

    crashy = e2e_config(tmp_path, "crashy", tiny_model)
    crashed, _ = run_crashing_once_everywhere(
        lambda hook: run_selfplay(with_checker(crashy, command), hook=hook), max_restarts=60)
    assert {(r, s) for r, s, shard in crashed if shard is None} == {
        (r, s) for r in (0, 1) for s in STAGES}
    a = run_contents(root, skip=("round-0000/model", "round-0001/model"))
    b = run_contents(Path(crashy.run.run_dir), skip=("round-0000/model", "round-0001/model"))
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key
