"""The self-play orchestration with a scripted sampler and trainer (fast; every stage's logic).

The scripted sampler is a test double whose completions are a pure function of the request seed,
so the tests control which statements get solved and at what rate; the Lean checker is the
stand-in (tests/standin_checker.py). The tiny-model end-to-end test is test_selfplay_e2e.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import numpy as np
import pytest
from selfplay_helpers import (
    RULES,
    ScriptedSampler,
    make_config,
    run_contents,
    run_crashing_once_everywhere,
    scripted_backends,
    scripted_train,
)
from standin import standin_command, with_checker

from stp import storage
from stp.data.records import TrainingExample
from stp.model.prompts import START_THM
from stp.selfplay.loop import run_selfplay
from stp.selfplay.records import (
    NO_LEMMA_STATEMENT,
    ConjectureExample,
    ConjectureInput,
    CorrectProof,
    ProofAttempt,
    StatementRow,
)
from stp.selfplay.report import render_report
from stp.selfplay.rundir import STAGES


def run(cfg, **kw):
    return run_selfplay(with_checker(cfg, standin_command(RULES)),
                        backends=scripted_backends(), **kw)


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("selfplay")
    cfg = make_config(tmp, "ref")
    summaries = run(cfg)
    return tmp, cfg, summaries


def test_two_rounds_produce_every_artifact(reference_run) -> None:
    _tmp, cfg, summaries = reference_run
    root = Path(cfg.run.run_dir)
    assert [s.round for s in summaries] == [0, 1]
    for r in (0, 1):
        rd = root / f"round-{r:04d}"
        manifest = json.loads((rd / "manifest.json").read_text())
        assert list(manifest["stages"]) == list(STAGES)
        for name in ("pairs.jsonl.gz", "statements.jsonl.gz", "conjectures.npz", "targets.npz",
                     "correct.jsonl.gz", "counts.npz", "state.npz",
                     "conjecture_examples.jsonl.gz", "train.jsonl.gz"):
            assert (rd / name).is_file(), name
        assert list((rd / "attempts").glob("part-*.jsonl.gz"))
    r0, r1 = summaries[0].stages, summaries[1].stages
    # Round 0: no history, so no seeds, no conjectures; 8 dataset statements × 4 samples.
    assert r0["pairs"]["seeds"] == 0 and r0["conjectures"]["generated"] == 0
    assert r0["targets"]["targets"] == 8 and r0["proving"]["samples"] == 32
    assert r0["bookkeeping"]["attempts"] == 32
    assert r0["bookkeeping"]["dataset_solved_this_round"] >= 1
    assert sum(r0["bookkeeping"]["solve_rate_histogram"]) == 8
    # Round 1: solved mathd statements of round 0 seed conjectures.
    assert r1["pairs"]["seeds"] > 0 and r1["pairs"]["pairs"] > 0
    conj = r1["conjectures"]
    assert conj["generated"] > conj["parsed"] > 0 and 0 < conj["kept"] <= 8
    assert conj["parse_failures"] == {"missing_end_tag": conj["generated"] - conj["parsed"]}
    assert r1["targets"]["conjecture_targets"] == conj["kept"]
    assert r1["bookkeeping"]["conjectures_solved"] == conj["kept"]
    # Each conjecture is solved by exactly 1 of 8 samples: rate 0.125, rewarded.
    assert r1["conjecture_examples"]["rewarded"] == conj["kept"]
    assert r1["conjecture_examples"]["weighted"] >= 1
    assert r1["train_set"]["conjecturer_examples"] == r1["conjecture_examples"]["weighted"]
    assert r1["train"]["model"].endswith("round-0001/model/hf")
    assert summaries[1].model.endswith("round-0000/model/hf")


def test_round_records_follow_the_rules(reference_run) -> None:
    _tmp, cfg, _summaries = reference_run
    root = Path(cfg.run.run_dir)
    rd1 = root / "round-0001"
    rows = list(storage.iter_jsonl(str(root / "dataset_statements.jsonl.gz"), type=StatementRow))
    assert len(rows) == 244 and all(r.sid == i for i, r in enumerate(rows))
    pairs = list(storage.iter_jsonl(str(rd1 / "pairs.jsonl.gz"), type=ConjectureInput))
    assert all(p.lemma in ("", "Nat.add_comm", "Nat.mul_comm") for p in pairs)
    assert len({(p.seed_sid, p.lemma) for p in pairs}) == len(pairs)
    conj = list(storage.iter_jsonl(str(rd1 / "statements.jsonl.gz"), type=StatementRow))
    assert all(c.conjecture and c.round == 1 and c.sid >= 244 for c in conj)
    correct0 = list(storage.iter_jsonl(str(root / "round-0000/correct.jsonl.gz"),
                                       type=CorrectProof))
    assert correct0 and all("norm_num" in p.proof or "linarith" in p.proof for p in correct0)
    assert all(p.premises for p in correct0)
    attempts = list(storage.iter_sharded_jsonl(str(root / "round-0000/attempts"), type=ProofAttempt))
    assert sum(a.multiplicity for a in attempts) == 32
    assert len({(a.sid, a.proof) for a in attempts}) == len(attempts)
    examples = list(storage.iter_jsonl(str(rd1 / "conjecture_examples.jsonl.gz"),
                                       type=ConjectureExample))
    assert all(e.weight > 0 and e.lemma in ("", "Nat.add_comm") for e in examples)
    # Conjecture rows point at their pair; examples carry that pair's seed text.
    by_sid = {c.sid: c for c in conj}
    for c in conj:
        assert (pairs[c.pair].seed_sid, pairs[c.pair].lemma) == (c.seed_sid, c.lemma)
    for e in examples:
        pair = pairs[by_sid[e.sid].pair]
        assert (e.seed_statement, e.seed_proof) == (pair.seed_statement, pair.seed_proof)
        assert e.lemma_statement == (pair.lemma_statement if e.lemma else NO_LEMMA_STATEMENT)
    train = list(storage.iter_jsonl(str(rd1 / "train.jsonl.gz"), type=TrainingExample))
    prompts_targets = [(t.prompt, t.target) for t in train]
    assert len(set(prompts_targets)) == len(prompts_targets)
    assert any(START_THM in t.prompt for t in train)
    # Prover examples only for statements with window rate <= 0.5: mathd (rate 1) are excluded.
    assert not any("norm_num" in t.target for t in train)
    # The window (rounds 0-1) carries round 0's proofs of hard statements into round 1's data.
    from stp.model.prompts import prover_training_example
    from stp.selfplay.rules import solve_rates

    c0, c1 = (np.load(root / f"round-{r:04d}/counts.npz") for r in (0, 1))
    size = len(c1["attempts"])
    att = c1["attempts"] + np.pad(c0["attempts"], (0, size - len(c0["attempts"])))
    suc = c1["successes"] + np.pad(c0["successes"], (0, size - len(c0["successes"])))
    window_rate = solve_rates(att, suc)
    hard = [p for p in correct0 if window_rate[p.sid] <= 0.5]
    assert hard
    for p in hard:
        ex = prover_training_example(rows[p.sid].statement, rows[p.sid].header, p.proof, 1.0)
        assert (ex.prompt, ex.target) in set(prompts_targets)
    state = np.load(root / "round-0001/state.npz")
    assert state["solved"].sum() >= len(conj)


def test_metrics_and_report(reference_run) -> None:
    tmp, cfg, _summaries = reference_run
    root = Path(cfg.run.run_dir)
    events = [json.loads(line) for line in (root / "metrics.jsonl").read_text().splitlines()]
    stage_events = [e for e in events if e["event"] == "stage"]
    assert [(e["round"], e["stage"]) for e in stage_events] == [
        (r, s) for r in (0, 1) for s in STAGES]
    rounds = [e for e in events if e["event"] == "round"]
    assert [e["round"] for e in rounds] == [0, 1]
    assert "bookkeeping.solve_rate_histogram" in rounds[0]
    report = render_report(str(root), str(tmp / "report"))
    text = report.read_text()
    assert "| 1 |" in text and "Time per stage" in text
    for png in ("solved.png", "conjectures.png", "solve_rates.png", "stage_times.png"):
        assert (tmp / "report" / png).stat().st_size > 1000


def test_completed_run_is_not_redone(reference_run) -> None:
    _tmp, cfg, summaries = reference_run
    before = run_contents(Path(cfg.run.run_dir))
    again = run(cfg)
    assert [s.stages for s in again] == [s.stages for s in summaries]
    assert run_contents(Path(cfg.run.run_dir)) == before


def test_kill_at_every_stage_and_shard_then_resume_is_identical(reference_run) -> None:
    tmp, ref_cfg, _ = reference_run
    cfg = make_config(tmp, "crashy")
    crashed, restarts = run_crashing_once_everywhere(lambda hook: run(cfg, hook=hook),
                                                     max_restarts=100)
    assert restarts == len(crashed)
    stages_hit = {(r, s) for r, s, shard in crashed if shard is None}
    assert stages_hit == {(r, s) for r in (0, 1) for s in STAGES}
    assert any(s == "proving" and shard is not None for _, s, shard in crashed)
    assert any(s == "conjectures" and shard is not None for _, s, shard in crashed)
    a = run_contents(Path(ref_cfg.run.run_dir))
    b = run_contents(Path(cfg.run.run_dir))
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == b[key], key


pytest_plugins = ["gcs_emulator"]


def test_run_directory_on_gcs(tmp_path: Path, gcs_root: str) -> None:
    cfg = make_config(tmp_path, "unused", [f'run.run_dir="{gcs_root}/run"',
                                           f'verifier.cache_dir="{tmp_path / "cache"}"'])
    summaries = run(cfg)
    assert summaries[1].stages["train"]["model"] == f"{gcs_root}/run/round-0001/model/hf"
    assert storage.exists(f"{gcs_root}/run/round-0001/train.jsonl.gz")
    assert storage.list_shards(f"{gcs_root}/run/round-0000/attempts")
    again = run(cfg)  # resumes from the bucket: nothing is redone
    assert [s.stages for s in again] == [s.stages for s in summaries]
    report = render_report(f"{gcs_root}/run", str(tmp_path / "report"))
    assert "| 1 |" in report.read_text()


def test_missing_lemma_dict_is_a_usage_error(tmp_path: Path) -> None:
    from stp.errors import UsageError

    cfg = make_config(tmp_path, "nolemmas", ['data.lemma_dict="/nonexistent/lemmas.jsonl.gz"'])
    with pytest.raises(UsageError, match="lemma dictionary not found"):
        run(cfg)


def test_paper_profile_never_rewards_self_play(tmp_path: Path) -> None:
    """Paper-profile passes are not judged (no statement comparison, no export): self-play
    refuses them as rewards with one config line, before any work."""
    from stp.errors import ConfigError
    from stp.selfplay.loop import SelfPlay

    cfg = make_config(tmp_path, "paper", ['lean.profile="paper"'])
    with pytest.raises(ConfigError, match=r"lean\.profile"):
        SelfPlay(cfg)


def test_without_a_checker_command_lean_is_required(tmp_path: Path) -> None:
    import shutil

    from stp.errors import UsageError

    if shutil.which("lake"):
        pytest.skip("Lean is installed here; the missing-Lean path cannot be exercised")
    cfg = make_config(tmp_path, "nolean")
    with pytest.raises(UsageError, match="Lean"):
        run_selfplay(cfg, backends=scripted_backends())
    assert not (tmp_path / "nolean").exists()


def test_manifest_is_valid_msgspec(reference_run) -> None:
    from stp.selfplay.rundir import RoundManifest

    _tmp, cfg, summaries = reference_run
    for summary in summaries:
        data = (Path(cfg.run.run_dir) / f"round-{summary.round:04d}" / "manifest.json").read_bytes()
        manifest = msgspec.json.decode(data, type=RoundManifest)  # strict: a wrong field type fails
        assert manifest.round == summary.round
        # Every stage recorded, in the order they ran, with the summary the run reported.
        assert list(manifest.stages) == list(STAGES)
        assert {name: rec.summary for name, rec in manifest.stages.items()} == summary.stages
        assert all(0 <= rec.seconds < 600 for rec in manifest.stages.values())
        assert msgspec.json.decode(msgspec.json.encode(manifest), type=RoundManifest) == manifest


def test_cli_without_lean_stops_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run(
        [sys.executable, "-m", "stp.selfplay", "--config", "configs/tiny-cpu.toml",
         "--set", f'lean.project_dir="{tmp_path / "no-lean"}"', "--run-dir", str(tmp_path / "r")],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2], timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "lake" in lines[0].lower()
    assert not (tmp_path / "r").exists()


def test_report_cli(reference_run, capsys: pytest.CaptureFixture[str]) -> None:
    from stp.selfplay.__main__ import main

    tmp, cfg, _ = reference_run
    assert main(["report", "--run-dir", cfg.run.run_dir, "--out", str(tmp / "cli-report")]) == 0
    assert (tmp / "cli-report" / "report.md").is_file()
    assert str(tmp / "cli-report" / "report.md") in capsys.readouterr().out


def test_round_without_any_proof_carries_the_model_over(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "nothing", ['model.name="base-model"'])
    summaries = run_selfplay(with_checker(cfg, standin_command({"default": "fail"})),
                             backends=scripted_backends())
    for s in summaries:
        assert s.stages["bookkeeping"]["correct_attempts"] == 0
        assert s.stages["train_set"]["examples"] == 0
        assert s.stages["train"] == {"model": "base-model", "skipped": True, "steps": 0}
    assert summaries[1].model == "base-model" and summaries[1].stages["pairs"]["seeds"] == 0


# -- outage guard: attempts without a verdict are retried, counted, and redone by a rerun -------

# Three of the 244 miniF2F-valid statements: ~1.2 % of a round-0 pass over all of them.
DROPPED = r"theorem (amc12a_2019_p21|aime_1991_p1|imo_1988_p6)\b"


def _outage_config(tmp: Path, name: str, *extra: str):
    return make_config(tmp, name, ["selfplay.statements_per_round=0", "selfplay.rounds=1",
                                   "selfplay.samples_first_round=4", "sampler.shard_size=64",
                                   *extra])


def _rules(*first: dict, log: Path | None = None, state: Path | None = None) -> dict:
    spec = {"rules": [*first, *RULES["rules"]], "default": RULES["default"]}
    if log is not None:
        spec["log"] = str(log)
    if state is not None:
        spec["state_dir"] = str(state)
    return spec


def test_outage_fails_the_stage_and_a_rerun_verifies_only_the_missing(tmp_path: Path) -> None:
    from standin import count_checks

    from stp.verify.runner import VerificationOutage

    cfg = _outage_config(tmp_path, "outage", "verifier.cache_dir='off'",
                         "verifier.recheck='off'")  # one check per attempt, counted
    down = _rules({"pattern": DROPPED, "field": "statement", "action": "error"})
    with pytest.raises(VerificationOutage) as err:
        run_selfplay(with_checker(cfg, standin_command(down)), backends=scripted_backends())
    message = str(err.value)
    assert "\n" not in message and "got no verdict" in message and "0.50%" in message
    root = Path(cfg.run.run_dir)
    manifest = json.loads((root / "round-0000/manifest.json").read_text())
    assert "proving" not in manifest["stages"]
    stored = list(storage.iter_sharded_jsonl(str(root / "round-0000/attempts"), type=ProofAttempt))
    missing = [a for a in stored if a.status == "error"]
    assert sum(a.multiplicity for a in stored) == 244 * 4
    assert 0.005 < sum(a.multiplicity for a in missing) / (244 * 4) < 0.02

    # The checker is back: the rerun sends exactly the attempts that had no verdict.
    log = tmp_path / "checks.jsonl"
    summaries = run_selfplay(with_checker(cfg, standin_command(_rules(log=log))),
                             backends=scripted_backends())
    assert count_checks(log) == len(missing)
    proving = summaries[0].stages["proving"]
    assert proving["unverified"] == 0 and proving["samples"] == 244 * 4
    book = summaries[0].stages["bookkeeping"]
    assert book["attempts"] == 244 * 4 and "error" not in book["statuses"]


def test_answers_dropped_once_are_retried_and_never_counted_as_failures(tmp_path: Path) -> None:
    cfg = _outage_config(tmp_path, "flaky", "verifier.cache_dir='off'")
    (tmp_path / "state").mkdir()
    flaky = _rules({"pattern": DROPPED, "field": "text", "action": "error", "times": 1},
                   state=tmp_path / "state")
    summaries = run_selfplay(with_checker(cfg, standin_command(flaky)),
                             backends=scripted_backends())
    stages = summaries[0].stages
    assert stages["proving"]["unverified"] == 0
    assert set(stages["bookkeeping"]["statuses"]) <= {"pass", "fail"}
    # The retried statements got real verdicts: the mathd-free ones are judged by their proofs.
    assert stages["bookkeeping"]["attempts"] == 244 * 4


def test_unverified_under_the_limit_count_as_neither_pass_nor_fail(tmp_path: Path) -> None:
    cfg = _outage_config(tmp_path, "tolerated", "verifier.cache_dir='off'",
                         "verifier.max_unverified_fraction=0.05")
    down = _rules({"pattern": DROPPED, "field": "statement", "action": "error"})
    summaries = run_selfplay(with_checker(cfg, standin_command(down)),
                             backends=scripted_backends())
    stages = summaries[0].stages
    unverified = stages["proving"]["unverified"]
    assert unverified == 12  # 3 statements x 4 samples
    assert stages["bookkeeping"]["attempts"] == 244 * 4 - unverified
    assert stages["bookkeeping"]["statuses"]["error"] == unverified


def test_training_runs_with_jax_preallocation_off(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The sampler is closed and JAX will allocate on demand before a round trains in the
    sampler's process (#14: vLLM/torch and JAX share the device one after the other): the loop
    closes its sampler, the production trainer of the backends bundle releases the device."""
    import os

    from stp.backends import production_train
    from stp.model.training import levanter_trainer

    monkeypatch.delenv("XLA_PYTHON_CLIENT_PREALLOCATE", raising=False)
    seen: list[str | None] = []
    closed: list[bool] = []

    class Sampler(ScriptedSampler):
        def close(self) -> None:
            closed.append(True)

    def train(*args, **kwargs):
        seen.append(os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"))
        assert closed, "the sampler must be closed before training"
        return scripted_train(*args, **kwargs)

    cfg = make_config(tmp_path, "mem", ["selfplay.rounds=1"])
    monkeypatch.setattr(levanter_trainer, "train_weighted", train)
    run_selfplay(with_checker(cfg, standin_command(RULES)),
                 backends=scripted_backends(Sampler, production_train))
    assert seen == ["false"]


def test_expert_iteration_restarts_from_the_round0_model_on_all_rounds(tmp_path: Path) -> None:
    """`round_training = "restart"` (the expert-iteration baseline): every round trains the
    round-0 model again, with the `[selfplay.trainer]` settings, on the correct dataset proofs
    of every round so far (never a conjecture)."""
    seen: list[dict] = []

    def train(base_model: str, examples_path: str, out_dir: str, trainer_cfg, model_cfg,
              **kw):
        seen.append({"base": base_model, "kw": kw, "examples": list(
            storage.iter_jsonl(examples_path, type=TrainingExample))})
        return scripted_train(base_model, examples_path, out_dir, trainer_cfg, model_cfg, **kw)

    cfg = make_config(tmp_path, "expit", ['model.name="sft-model"', "selfplay.conjecturing=false",
                                          'selfplay.round_training="restart"',
                                          "selfplay.trainer.min_steps=7"])
    summaries = run_selfplay(with_checker(cfg, standin_command(RULES)),
                             backends=scripted_backends(ScriptedSampler, train))
    assert [s["base"] for s in seen] == ["sft-model", "sft-model"]
    assert all(s["kw"]["min_steps"] == 7 and s["kw"]["learning_rate"] == cfg.trainer.learning_rate
               for s in seen)
    round0, round1 = ({e.prompt + e.target for e in s["examples"]} for s in seen)
    # Round 1's set contains round 0's proofs (all rounds so far), and only dataset statements.
    assert round0 and round0 <= round1
    assert summaries[1].stages["train_set"]["conjecturer_examples"] == 0
    assert summaries[1].model != "sft-model"  # round 1 sampled with round 0's trained model
