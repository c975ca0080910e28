"""What a run does before and around its stages: where self-play round 0 starts (never silently
from the public base model when the plan has Stage 1), the inputs checked before the first
stage, alternation of self-play blocks with the re-training (killed mid-block and resumed, equal
to an uninterrupted run), the config files' `extends`, the one training-settings story, the
re-training's Mathlib-only SFT set and self-play's checking budget."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from selfplay_helpers import (
    DATA_DIR,
    REPO_ROOT,
    RULES,
    make_config,
    scripted_backends,
    scripted_train,
    stage_point,
    write_lemmas,
)
from standin import checker_override, standin_command, with_checker

from stp import storage
from stp.cli import run_main
from stp.config import ConfigError, load_config
from stp.data.records import TrainingExample
from stp.errors import UsageError
from stp.selfplay.rundir import STAGES
from stp.stages import StageEvent, StageHook, no_hook

TINY = REPO_ROOT / "configs" / "tiny-cpu.toml"


def run_cli(main: Any, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        run_main(main, argv)
    code = info.value.code
    return (code if isinstance(code, int) else 1), capsys.readouterr().err.strip()


# -- item 1: round 0 of `python -m stp.selfplay` -------------------------------------------------

def test_selfplay_cli_refuses_to_start_round0_without_the_stage1_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The config's pipeline has Stage 1 and the run has no Stage-1 model: one line saying how
    to get one, exit 2, nothing written (it used to start from model.name, the public model)."""
    from stp.selfplay.__main__ import main

    run = tmp_path / "run"
    code, err = run_cli(main, ["--config", str(TINY), "--run-dir", str(run),
                               "--set", checker_override(standin_command(RULES))], capsys)
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert "Stage-1 model" in err and "--stages sft" in err and "selfplay.initial_model" in err
    assert not run.exists()


def test_round0_model_is_the_runs_stage1_model_or_the_named_one(tmp_path: Path) -> None:
    from stp.selfplay.inputs import selfplay_start_model

    cfg = make_config(tmp_path, "run", ['model.name="public-sft"'])
    assert "sft" in cfg.pipeline.stages
    with pytest.raises(UsageError, match="--stages sft"):
        selfplay_start_model(cfg)
    storage.write_json(str(tmp_path / "run" / "pipeline.json"),
                       {"stages": {"sft": {"model": "run/sft/model/hf"}}})
    assert selfplay_start_model(cfg) == "run/sft/model/hf"
    named = make_config(tmp_path, "run", ['selfplay.initial_model="elsewhere"'])
    assert selfplay_start_model(named) == "elsewhere"
    no_stage1 = make_config(tmp_path, "other", ['model.name="public-sft"',
                                                'pipeline.stages=["selfplay"]'])
    assert selfplay_start_model(no_stage1) == "public-sft"


def test_pipeline_selfplay_alone_does_not_skip_stage1_either(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--stages selfplay` runs a subset of the plan; the plan (with Stage 1) still decides
    where round 0 starts."""
    from stp.pipeline.__main__ import main

    run = tmp_path / "run"
    lemmas = write_lemmas(tmp_path)
    code, err = run_cli(main, ["--config", str(TINY), "--run-dir", str(run), "--stages",
                               "selfplay", "--data-dir", str(DATA_DIR),
                               "--set", f"data.lemma_dict={json.dumps(str(lemmas))}",
                               "--set", checker_override(standin_command(RULES))], capsys)
    assert code == 2 and "Stage-1 model" in err and "\n" not in err, err
    assert not (run / "pipeline.json").exists()


# -- item 6: every input checked before the first stage ------------------------------------------

def test_missing_inputs_are_all_named_before_the_first_stage(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A missing lemma dictionary (needed after Stage 1) and a missing re-training SFT set
    (needed after every round) fail the command at once, in one line naming both, exit 2."""
    from stp.pipeline.__main__ import main

    run = tmp_path / "run"
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    code, err = run_cli(main, [
        "--config", str(TINY), "--run-dir", str(run), "--data-dir", str(DATA_DIR),
        "--set", f"sft.base_model={json.dumps(str(model))}",
        "--set", f"retrain.base_model={json.dumps(str(model))}",
        "--set", f"data.lemma_dict={json.dumps(str(tmp_path / 'no-lemmas.jsonl'))}",
        "--set", f"data.sft_mathlib={json.dumps(str(tmp_path / 'no-sft.jsonl.gz'))}",
        "--set", f"sft.data={json.dumps(str(REPO_ROOT / 'data' / 'tiny' / 'sft.jsonl'))}",
        "--set", checker_override(standin_command(RULES))], capsys)
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert "2 missing input(s)" in err
    assert "no-lemmas.jsonl" in err and "data.lemma_dict" in err
    assert "no-sft.jsonl.gz" in err and "stp.extract sft" in err
    assert not run.exists()  # nothing started: no SFT, no lock, no manifest


def test_missing_inputs_cover_models_datasets_and_only_the_chosen_stages(tmp_path: Path) -> None:
    from stp.selfplay.inputs import missing_inputs

    cfg = make_config(tmp_path, "run", [
        f'sft.base_model="{tmp_path / "no-model"}"', 'sft.data="stp_sft"',
        f'retrain.base_model="{tmp_path / "no-base"}"',
        'eval.splits=["putnam"]', f'data.sft_mathlib="{tmp_path / "none.jsonl.gz"}"',
        f'run.data_dir="{tmp_path / "empty-data"}"'])
    lines = missing_inputs(cfg, ["sft", "retrain", "eval"])
    text = "\n".join(lines)
    assert "sft.base_model" in text and "retrain.base_model" in text
    assert "stp.data download stp_sft" in text and "none.jsonl.gz" in text
    assert missing_inputs(cfg, []) == []
    # Shipped benchmarks and an existing lemma dictionary are found.
    ok = make_config(tmp_path, "ok", ['model.name="public-sft"', 'pipeline.stages=["selfplay"]'])
    assert missing_inputs(ok, ["selfplay"]) == []


# -- item 2: alternation --------------------------------------------------------------------------

class Kill(RuntimeError):
    pass


def alternation_config(tmp: Path, name: str) -> Any:
    sft = tmp / "sft-mathlib-only.jsonl.gz"
    if not sft.exists():
        storage.write_jsonl(str(sft), [TrainingExample(prompt="p", target="t", weight=1.0)])
    cfg = make_config(tmp, name, [
        'model.name="stage1-model"', 'pipeline.stages=["selfplay", "retrain", "eval"]',
        "pipeline.blocks=2", "selfplay.rounds=1", f'data.sft_mathlib="{sft}"',
        'retrain.base_model="public-sft"', "verifier.cache_dir='off'",
        'eval.splits=["minif2f:valid"]', "eval.statements_per_split=6",
        "eval.samples_per_statement=2", "eval.shard_size=4", "eval.budgets=[1]",
        "eval.bootstrap_samples=0"])
    return with_checker(cfg, standin_command(RULES))


def run_alternation(cfg: Any, hook: StageHook = no_hook) -> Any:
    from stp.pipeline.run import run_pipeline

    return run_pipeline(cfg, hook=hook, backends=scripted_backends())


def comparable(root: Path) -> dict[str, Any]:
    from test_pipeline import contents

    return {k: v for k, v in contents(root).items() if "/.stp-" not in k
            and not k.endswith("metrics.jsonl")}


def test_two_blocks_alternate_and_a_run_killed_mid_block_resumes_to_the_same_result(
        tmp_path: Path) -> None:
    ref_cfg = alternation_config(tmp_path, "ref")
    events: list[StageEvent] = []
    manifest = run_alternation(ref_cfg, events.append)
    root = Path(ref_cfg.run.run_dir)
    # One hook sees every level: each block's rounds (in the block's own directory), its
    # re-training, and the pipeline's units, each recorded before the unit that contains it.
    recorded = [(e.level, e.stage, Path(e.run_dir).name) for e in events if e.shard is None]
    block0, block1 = root.name, "block-1"
    assert [r for r in recorded if r[0] != "round"] == [
        ("pipeline", "selfplay", block0), ("retrain", "data", block0),
        ("retrain", "train", block0), ("pipeline", "retrain", block0),
        ("pipeline", "selfplay@1", block0), ("retrain", "data", block1),
        ("retrain", "train", block1), ("pipeline", "retrain@1", block0),
        ("pipeline", "eval", block0)]
    rounds = [(e.stage, Path(e.run_dir).name) for e in events
              if e.level == "round" and e.shard is None]
    assert rounds == [(stage, block) for block in (block0, block1) for stage in STAGES]
    assert recorded.index(("round", "done", block1)) < recorded.index(
        ("pipeline", "selfplay@1", block0))
    stages = manifest.stages
    assert list(stages) == ["selfplay", "retrain", "selfplay@1", "retrain@1", "eval"]
    # Block 1's self-play starts from block 0's re-trained model, in its own run directory.
    assert stages["selfplay"]["rounds"][0]["model"] == "stage1-model"
    assert stages["retrain"]["model"] == str(root / "retrain" / "model" / "hf")
    assert stages["selfplay@1"]["rounds"][0]["model"] == stages["retrain"]["model"]
    assert stages["selfplay@1"]["run_dir"] == str(root / "block-1")
    # Block 1's re-training merges both blocks and is what the evaluation measures.
    assert stages["retrain"]["runs"] == 1 and stages["retrain@1"]["runs"] == 2
    assert stages["retrain@1"]["selfplay_examples"] >= stages["retrain"]["selfplay_examples"]
    assert stages["eval"]["model"] == str(root / "block-1" / "retrain" / "model" / "hf")
    trained = json.loads((root / "block-1" / "retrain" / "model" / "hf" / "trained.json")
                         .read_text())
    assert trained["base"] == "public-sft" and trained["lr"] == 1e-4

    # Killed after block 0's re-training, then inside block 1 (after a proving shard, after
    # its round's training), resumed each time.
    cfg = alternation_config(tmp_path, "crashy")
    crashy = Path(cfg.run.run_dir)
    kills: list[tuple[str, Any]] = [("pipeline", "retrain"), ("block1", (0, "proving", 0)),
                                    ("block1", (0, "train", None)), ("end", None)]
    for where, point in kills:
        def hook(event: StageEvent, _where: str = where, _point: Any = point) -> None:
            if _where == "pipeline" and event.level == "pipeline" and event.stage == _point:
                raise Kill(event.stage)
            if (_where == "block1" and event.level == "round"
                    and event.run_dir == str(crashy / "block-1")
                    and stage_point(event) == _point):
                raise Kill(str(_point))

        try:
            run_alternation(cfg, hook)
            finished = True
        except Kill:
            finished = False
        assert finished == (where == "end"), where
    a, b = comparable(root), comparable(crashy)
    assert a.keys() == b.keys()
    assert any(k.startswith("block-1/round-0000/") for k in a)
    for key in a:
        assert a[key] == b[key], key


def test_blocks_without_the_retraining_stage_is_an_error(tmp_path: Path) -> None:
    from stp.pipeline.run import Pipeline

    cfg = make_config(tmp_path, "x", ['pipeline.stages=["selfplay", "eval"]', "pipeline.blocks=2"])
    with pytest.raises(UsageError, match=r"pipeline\.blocks = 2"):
        Pipeline(cfg).units()
    one = make_config(tmp_path, "x", ["pipeline.blocks=1"])
    assert Pipeline(one).units() == ["sft", "selfplay", "retrain", "eval", "report"]
    three = make_config(tmp_path, "x", ["pipeline.blocks=3"])
    assert Pipeline(three).units() == ["sft", "selfplay", "retrain", "selfplay@1", "retrain@1",
                                       "selfplay@2", "retrain@2", "eval", "report"]


# -- items 3 and 7: configs state their differences; one training-settings story -----------------

def test_variant_configs_extend_the_paper_config_and_state_only_their_changes() -> None:
    from stp.config import read_toml

    base = load_config(REPO_ROOT / "configs" / "stp-7b.toml")
    for name in ("stp-7b-released-script", "baseline-expert-iteration", "baseline-sampling",
                 "released-0320"):
        raw = read_toml(REPO_ROOT / "configs" / f"{name}.toml")
        assert "extends" in raw, name
        assert len(raw) <= 6, (name, list(raw))  # a few sections, not a copy of the base
        variant = load_config(REPO_ROOT / "configs" / f"{name}.toml")
        assert variant.model == base.model and variant.verifier == base.verifier, name
    script = load_config(REPO_ROOT / "configs" / "stp-7b-released-script.toml")
    assert script.sampler == base.sampler and script.selfplay == base.selfplay


def test_no_reference_to_the_old_config_name_remains() -> None:
    paths = [REPO_ROOT / "README.md", *(REPO_ROOT / "docs").glob("*.md"),
             *(REPO_ROOT / "configs").glob("*.toml"), *(REPO_ROOT / "scripts").glob("*"),
             *(REPO_ROOT / "python").rglob("*.py")]
    stale = [str(p.relative_to(REPO_ROOT)) for p in paths
             if p.is_file() and p.name != Path(__file__).name
             and "stp-7b-paper-mix" in p.read_text(encoding="utf-8", errors="replace")]
    assert stale == []


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text, encoding="utf-8")
    return path


def test_extends_merges_tables_key_by_key_and_rejects_cycles(tmp_path: Path) -> None:
    _write(tmp_path, "base.toml", '[run]\nname = "base"\nseed = 7\n[selfplay]\nrounds = 3\n')
    child = _write(tmp_path, "child.toml", 'extends = "base.toml"\n[run]\nname = "child"\n')
    cfg = load_config(child)
    assert (cfg.run.name, cfg.run.seed, cfg.selfplay.rounds) == ("child", 7, 3)
    assert load_config(child, ["run.seed=1"]).run.seed == 1  # --set still wins
    _write(tmp_path, "a.toml", 'extends = "b.toml"\n')
    _write(tmp_path, "b.toml", 'extends = "a.toml"\n')
    with pytest.raises(ConfigError, match="cycle"):
        load_config(tmp_path / "a.toml")
    missing = _write(tmp_path, "m.toml", 'extends = "nowhere.toml"\n')
    with pytest.raises(ConfigError, match=r"nowhere\.toml"):
        load_config(missing)


def test_each_stage_trains_with_trainer_plus_its_overlay(tmp_path: Path) -> None:
    from stp.config import stage_trainer

    cfg = load_config(None, ["trainer.per_device_batch_size=2", "sft.trainer.min_steps=3",
                             "sft.trainer.max_steps=3"])
    sft = stage_trainer(cfg, "sft")
    # A partial overlay keeps the stage's other defaults (Stage 1's lr 1e-4, batch 2048).
    assert (sft.learning_rate, sft.batch_size, sft.min_steps, sft.max_steps) == (1e-4, 2048, 3, 3)
    assert sft.per_device_batch_size == 2  # not overlaid: [trainer]'s
    rounds = stage_trainer(cfg, "selfplay")
    assert (rounds.learning_rate, rounds.min_steps) == (cfg.trainer.learning_rate, 5)
    assert load_config(None, ["trainer.learning_rate=3e-5"]).trainer.learning_rate == 3e-5


@pytest.mark.parametrize(("overrides", "key"), [
    (["trainer.learning_rate=3e-5", "selfplay.trainer.learning_rate=2e-5"],
     "`trainer.learning_rate` has no effect"),
    (["sft.trainer.epochs=2.0"], "`sft.trainer.epochs` has no effect"),
    (["selfplay.train=false", "selfplay.trainer.learning_rate=1e-5"],
     "`selfplay.trainer.learning_rate` has no effect"),
    (["selfplay.learning_rate=1e-5"], "`selfplay.learning_rate` was moved"),
    (["retrain.min_steps=3"], "`retrain.min_steps` was moved"),
])
def test_a_training_key_without_effect_is_an_error_naming_it(overrides: list[str],
                                                             key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace("`", "`").replace(".", r"\.")):
        load_config(None, overrides)


def test_stages_pass_their_resolved_settings_to_the_trainer(tmp_path: Path) -> None:
    """Self-play rounds and the final re-training train with `stage_trainer`'s result:
    changing `[trainer]` changes the rounds, changing an overlay only its stage."""
    from stp.selfplay.loop import run_selfplay
    from stp.selfplay.retrain import run_retrain

    seen: list[tuple[Any, dict[str, Any]]] = []

    def train(base: str, examples: str, out: str, trainer_cfg: Any, model_cfg: Any,
              **kw: Any) -> Any:
        seen.append((trainer_cfg, kw))
        return scripted_train(base, examples, out, trainer_cfg, model_cfg, **kw)

    sft = tmp_path / "sft.jsonl.gz"
    storage.write_jsonl(str(sft), [TrainingExample(prompt="p", target="t", weight=1.0)])
    cfg = make_config(tmp_path, "run", [
        'model.name="m"', "selfplay.rounds=1", "trainer.learning_rate=3e-5",
        "trainer.warmup_steps=2", "retrain.trainer.max_steps=4", f'data.sft_mathlib="{sft}"'])
    cfg = with_checker(cfg, standin_command(RULES))
    run_selfplay(cfg, backends=scripted_backends(train=train))
    run_retrain(cfg, backends=scripted_backends(train=train))
    (round_cfg, round_kw), (final_cfg, final_kw) = seen
    assert round_kw == {"learning_rate": 3e-5, "min_steps": 5, "epochs": 1.0}
    assert round_cfg.warmup_steps == 2
    assert final_kw == {"learning_rate": 1e-4, "min_steps": 10, "epochs": 1.0, "max_steps": 4}
    assert final_cfg.warmup_steps == 2


# -- item 5: the re-training re-adds the Mathlib-only SFT set ------------------------------------

def test_retraining_defaults_to_the_mathlib_only_sft_set_written_by_extract_from_hf(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stp.extract.__main__ import main
    from stp.selfplay.retrain import sft_path

    data = tmp_path / "data"
    hf = data / "hf" / "kfdong__STP_Lean_SFT"
    hf.mkdir(parents=True)
    rows = [{"prompt": "mathlib lemma prompt", "target": "a", "weight": 1.0},
            {"prompt": "theorem lean_workbook_12 prompt", "target": "b", "weight": 1.0}]
    (hf / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (hf / "eval.jsonl").write_text(json.dumps(rows[0]) + "\n")
    (hf / "README.md").write_text("---\nconfigs:\n- config_name: default\n  data_files:\n"
                                  "  - split: train\n    path: train.jsonl\n"
                                  "  - split: eval\n    path: eval.jsonl\n---\n")
    (hf / ".complete").write_text("")
    out = data / "mathlib"
    with pytest.raises(SystemExit) as info:
        run_main(main, ["sft", "--from-hf", "--out", str(out), "--data-dir", str(data),
                        "--set", "data.allow_download=false"])
    assert info.value.code == 0, capsys.readouterr().err
    written = out / "sft-mathlib-only.jsonl.gz"
    kept = [json.loads(x) for x in gzip.decompress(written.read_bytes()).decode().splitlines()]
    assert [r["target"] for r in kept] == ["a"]  # the LeanWorkbook proof is not re-added
    cfg = load_config(None, [f'run.data_dir="{data}"', f'data.sft="{out / "sft.jsonl.gz"}"'])
    assert sft_path(cfg) == str(written)  # not data.sft, the whole SFT split


# -- item 4: self-play proofs get the original's budget ------------------------------------------

def test_selfplay_checks_with_the_originals_budget_by_default(tmp_path: Path,
                                                               monkeypatch: Any) -> None:
    import stp.verify
    from stp.selfplay.loop import SelfPlay

    seen: list[Any] = []
    monkeypatch.setattr(stp.verify, "make_verifier", lambda cfg: seen.append(cfg) or object())
    cfg = make_config(tmp_path, "run", ["lean.max_heartbeats=400000", "verifier.timeout_s=30.0"])
    assert cfg.selfplay.check_budget == "original"
    SelfPlay(cfg).verifier()
    assert (seen[0].lean.max_heartbeats, seen[0].verifier.timeout_s) == (0, 200.0)
    assert seen[0].lean.profile == "strict" and seen[0].lean.mode == cfg.lean.mode
    configured = make_config(tmp_path, "run2", ['selfplay.check_budget="config"',
                                                "verifier.timeout_s=30.0"])
    SelfPlay(configured).verifier()
    assert (seen[1].lean.max_heartbeats, seen[1].verifier.timeout_s) == (400000, 30.0)
