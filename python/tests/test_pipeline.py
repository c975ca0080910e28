"""`python -m stp.pipeline` on configs/tiny-cpu.toml: Stage-1 SFT → 2 self-play rounds → final
re-training → evaluation under both verifier profiles → report, with the tiny random model
(transformers sampler, Levanter trainer) and the stand-in checker; then the same pipeline killed
at stage and shard boundaries and resumed, which must redo exactly the work that was left and
produce the same files (models and metrics included, timings excluded). Also: every shipped
config loads, and the paper configs carry the paper's values."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from selfplay_helpers import DATA_DIR, REPO_ROOT, stage_point, tiny_model_rules
from standin import count_checks, standin_command, with_checker

from stp import storage
from stp.backends import Backends, production_verifier
from stp.config import STPConfig, load_config, stage_trainer
from stp.stages import StageEvent, StageHook, no_hook

CONFIGS = sorted((REPO_ROOT / "configs").glob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.run.name and cfg.pipeline.stages


def test_paper_configs_carry_the_papers_values() -> None:
    cfg = load_config(REPO_ROOT / "configs" / "stp-7b.toml")
    # Stage 1 is a real stage with the original recipe (run_SFT.sh / sft.yaml).
    assert cfg.pipeline.stages[0] == "sft"
    sft = stage_trainer(cfg, "sft")
    assert (cfg.sft.base_model, cfg.sft.data, sft.min_steps, sft.max_steps, sft.batch_size,
            sft.learning_rate, sft.warmup_steps) == (
        "deepseek-ai/DeepSeek-Prover-V1.5-SFT", "stp_sft", 115, 115, 2048, 1e-4, 20)
    # The rounds: 1 epoch at lr 5e-5, at least 5 steps; the final re-training: lr 1e-4, >= 10.
    rounds, retrain = stage_trainer(cfg, "selfplay"), stage_trainer(cfg, "retrain")
    assert (rounds.learning_rate, rounds.epochs, rounds.min_steps, rounds.max_steps) == (
        5e-5, 1.0, 5, 0)
    assert (retrain.learning_rate, retrain.epochs, retrain.min_steps) == (1e-4, 1.0, 10)
    # The paper's statement mix is the paper config's; the released script's set its own file.
    assert [(d.name, d.split, d.weight) for d in cfg.data.selfplay] == [
        ("lean_workbook", "", 1), ("minif2f", "valid", 256), ("proofnet", "valid", 256)]
    assert cfg.pipeline.blocks == 2 and cfg.selfplay.check_budget == "original"
    assert (cfg.model.max_prompt_tokens, cfg.model.max_model_len) == (1024, 1024)
    assert cfg.data.lemma_vocabulary == "tactic"
    assert cfg.eval.profiles == ["strict", "paper"]
    script = load_config(REPO_ROOT / "configs" / "stp-7b-released-script.toml")
    assert [(d.name, d.split, d.weight) for d in script.data.selfplay] == [
        ("lean_workbook", "", 1)]
    assert script.pipeline.blocks == 1
    expit = load_config(REPO_ROOT / "configs" / "baseline-expert-iteration.toml")
    assert not expit.selfplay.conjecturing and expit.selfplay.train
    assert expit.selfplay.round_training == "restart" and expit.selfplay.samples_per_statement == 64
    assert expit.selfplay.recheck_probability == 0.0 and expit.selfplay.seed_threshold == 0.0
    sampling = load_config(REPO_ROOT / "configs" / "baseline-sampling.toml")
    assert sampling.selfplay.conjecturing is False and sampling.selfplay.train is False
    assert sampling.selfplay.samples_per_statement == 64
    assert sampling.selfplay.recheck_probability == 0.0 == sampling.selfplay.seed_threshold
    released = load_config(REPO_ROOT / "configs" / "released-0320.toml")
    assert released.pipeline.stages == ["sft", "eval", "report"]
    one_epoch = stage_trainer(released, "sft")
    assert (released.sft.data, one_epoch.min_steps, one_epoch.max_steps, one_epoch.epochs,
            one_epoch.learning_rate) == ("stp_0320", 0, 0, 1.0, 1e-4)
    assert stage_trainer(expit, "selfplay").min_steps == 10


# -- the tiny pipeline end to end --------------------------------------------------------------

RULES = tiny_model_rules("sq_nonneg")


class Work:
    """What one process did: samples drawn, training steps run (checks come from the log)."""

    def __init__(self) -> None:
        self.samples = 0
        self.train_steps = 0

    def sampler_factory(self, model: str) -> Any:
        from stp.model.sampling import make_sampler

        inner = make_sampler(model, self.cfg.model, self.cfg.sampler)
        work = self

        class Counting:
            def generate(self, requests: Any) -> Any:
                out = inner.generate(requests)
                work.samples += sum(len(texts) for texts in out)
                return out

            def embed(self, texts: Any) -> Any:
                return inner.embed(texts)

            def close(self) -> None:
                inner.close()

        return Counting()

    def train_fn(self, base: str, examples: str, out_dir: str, *args: Any, **kw: Any) -> Any:
        from stp.model.training import train_weighted

        fresh = not storage.exists(storage.join(out_dir, "train_result.json"))
        result = train_weighted(base, examples, out_dir, *args, **kw)
        if fresh:
            self.train_steps += int(result.steps)
        return result


def tiny_config(tmp: Path, name: str, model: str, log: Path) -> STPConfig:
    tiny = REPO_ROOT / "data" / "tiny"
    cfg = load_config(REPO_ROOT / "configs" / "tiny-cpu.toml", [
        f'run.run_dir="{tmp / name}"', f'run.data_dir="{DATA_DIR}"',
        f'model.name="{model}"', f'sft.base_model="{model}"', f'retrain.base_model="{model}"',
        f'sft.data="{tiny / "sft.jsonl"}"', f'data.lemma_dict="{tiny / "lemmas.jsonl"}"',
        f'data.sft_mathlib="{tiny / "sft.jsonl"}"', "verifier.workers=1",
        # Checks are counted one per attempt and profile: no second check of each pass.
        "verifier.recheck='off'",
        "verifier.cache_dir='off'", "sampler.max_tokens=24", "sampler.shard_size=16",
        "run.seed=3", "selfplay.statements_per_round=8", "selfplay.trainer.max_steps=1", "retrain.trainer.max_steps=1",
        "trainer.batch_size=4", "trainer.per_device_batch_size=4", "trainer.min_steps=1",
        "trainer.warmup_steps=0", "sft.trainer.batch_size=4", "sft.trainer.min_steps=1", "sft.trainer.max_steps=1",
        "sft.trainer.warmup_steps=0",
        "eval.samples_per_statement=2", "eval.statements_per_split=12", "eval.shard_size=8",
        "eval.bootstrap_samples=0",
        'eval.splits=["minif2f:valid"]', "eval.budgets=[1]",
    ])
    spec = dict(RULES, log=str(log))
    return with_checker(cfg, standin_command(spec))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from stp.model.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def run_once(cfg: STPConfig, work: Work, *, hook: StageHook = no_hook) -> Any:
    from stp.pipeline.run import run_pipeline

    work.cfg = cfg  # type: ignore[attr-defined]
    return run_pipeline(cfg, hook=hook, backends=Backends(
        sampler=work.sampler_factory, verifier=production_verifier, train=work.train_fn))


def stored_work(root: Path) -> Counter[str]:
    """Work whose results are on disk: samples (conjecturer completions, proof samples, eval
    attempts), checks (distinct self-play attempts; eval attempts once per profile) and training
    steps of finished models."""
    from stp.eval import log as evlog
    from stp.selfplay.records import ProofAttempt, RawConjecture

    out: Counter[str] = Counter()
    for rd in sorted(root.glob("round-*")):
        for a in storage.iter_sharded_jsonl(str(rd / "attempts"), type=ProofAttempt):
            out["samples"] += a.multiplicity
            out["checks"] += 1
        out["samples"] += sum(1 for _ in storage.iter_sharded_jsonl(
            str(rd / "conjectures"), type=RawConjecture))
    if (root / "eval").is_dir():
        attempts = list(evlog.iter_attempts(str(root / "eval")))
        out["samples"] += len(attempts)
        out["checks"] += sum(len(a.verdicts) for a in attempts)
    for result in root.rglob("train_result.json"):
        out["train_steps"] += json.loads(result.read_text())["steps"]
    return out


def _metrics(root: Path) -> list[dict[str, Any]]:
    """metrics.jsonl without timings and progress ticks (their count depends on the kills)."""
    text = (root / "metrics.jsonl").read_text().replace(str(root), "<RUN>")
    events = [json.loads(line) for line in text.splitlines()]
    return [_untimed(e) for e in events if e["event"] != "progress"]


class Kill(RuntimeError):
    pass


def killing_factory(inner: Any, after_calls: int) -> Any:
    """Samplers from `inner` that raise Kill on call `after_calls + 1` to generate."""
    calls = [0]

    def factory(model: str) -> Any:
        sampler = inner(model)
        generate = sampler.generate

        def killing(requests: Any) -> Any:
            calls[0] += 1
            if calls[0] > after_calls:
                raise Kill("evaluation")
            return generate(requests)

        sampler.generate = killing
        return sampler

    return factory


_TIMING = {"time", "seconds", "rate", "eta_s", "tokens_per_s"}


def _untimed(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items()
                if k not in _TIMING and not k.endswith(".seconds")}
    if isinstance(value, list):
        return [_untimed(v) for v in value]
    return value


def contents(root: Path) -> dict[str, Any]:
    """Comparable content of a pipeline run directory: every record, array and JSON file with
    timings removed, and the exported model files (weights byte for byte); trainer scratch
    (checkpoints, token caches), reports and metrics (compared separately) are left out."""
    import gzip

    out: dict[str, Any] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        # .stp-lock: the run directory's lock; checker.json names the checker's argv, which
        # holds each run's own check log path.
        if not path.is_file() or rel.startswith(("report", ".stp-")) or rel in (
                "metrics.jsonl", "config.toml") or rel.endswith("checker.json"):
            continue
        if "/model/" in rel and "/hf/" not in rel and not rel.endswith("train_result.json"):
            continue
        data = path.read_bytes().replace(str(root).encode(), b"<RUN>")
        if rel.endswith(".json"):
            out[rel] = _untimed(json.loads(data))
        elif rel.endswith(".jsonl.gz"):
            out[rel] = gzip.decompress(path.read_bytes()).decode().replace(str(root), "<RUN>")
        else:
            out[rel] = data
    return out


@pytest.mark.slow
@pytest.mark.timeout(1200)  # two whole pipelines (8 Levanter trainings) on a shared 2-core CPU
def test_tiny_pipeline_end_to_end_then_killed_and_resumed(tmp_path: Path,
                                                          tiny_model: str) -> None:
    ref_log = tmp_path / "ref-checks.jsonl"
    ref_cfg = tiny_config(tmp_path, "ref", tiny_model, ref_log)
    ref_work = Work()
    manifest = run_once(ref_cfg, ref_work)
    root = Path(ref_cfg.run.run_dir)
    assert list(manifest.stages) == ["sft", "selfplay", "retrain", "eval", "report"]
    stages = manifest.stages
    # Stage 1 trained the base model; round 0 of self-play started from its checkpoint.
    assert Path(stages["sft"]["model"], "config.json").is_file()
    first_round = json.loads((root / "round-0000" / "manifest.json").read_text())
    assert first_round["stages"]["done"]["summary"]["model"].endswith("round-0000/model/hf")
    assert stages["selfplay"]["rounds"][0]["model"] == stages["sft"]["model"]
    assert [r["round"] for r in stages["selfplay"]["rounds"]] == [0, 1]
    assert Path(stages["retrain"]["model"], "config.json").is_file()
    assert stages["eval"]["model"] == stages["retrain"]["model"]
    assert stages["eval"]["attempts"] == 24  # the first 12 statements x 2 samples
    assert sum(n for k, n in stages["eval"]["statuses"].items() if k.startswith("strict:")) == 24
    report = (root / "report" / "report.md").read_text()
    assert "| 0 |" in report and "| strict |" in report and "| paper |" in report
    assert (root / "report" / "selfplay" / "solved.png").is_file()
    assert "## Training" in report and "| `sft/model` |" in report
    assert (root / "report" / "training_loss.png").is_file()
    assert list((root / "report" / "passk").glob("*.png"))
    events = [json.loads(x) for x in (root / "metrics.jsonl").read_text().splitlines()]
    progress = [e for e in events if e["event"] == "progress"]
    assert {e["task"] for e in progress} >= {"round 0 proving", "round 1 conjectures", "eval"}
    assert all(e["done"] <= e["total"] for e in progress)
    ref_total = Counter(samples=ref_work.samples, checks=count_checks(ref_log),
                        train_steps=ref_work.train_steps)
    assert ref_total == stored_work(root)  # every unit of work done once is on disk

    # Killed after Stage 1, inside self-play (after a proving shard and after round 1's
    # training), after the re-training and inside the evaluation; resumed each time.
    kills = [("pipeline", "sft"), ("selfplay", (0, "proving", 0)),
             ("selfplay", (1, "train", None)), ("pipeline", "retrain"), ("eval", 1)]
    log = tmp_path / "crashy-checks.jsonl"
    cfg = tiny_config(tmp_path, "crashy", tiny_model, log)
    crashy = Path(cfg.run.run_dir)
    done_checks = 0
    for where, point in [*kills, ("end", None)]:
        before = stored_work(crashy)
        work = Work()

        def hook(event: StageEvent, _point: Any = point, _where: str = where) -> None:
            if _where == "pipeline" and event.level == "pipeline" and event.stage == _point:
                raise Kill(event.stage)
            if _where == "selfplay" and event.level == "round" and stage_point(event) == _point:
                raise Kill(str(_point))

        if where == "eval":  # every earlier stage is done: the sampler is evaluation's
            work.sampler_factory = killing_factory(work.sampler_factory,  # type: ignore
                                                   after_calls=point)
        try:
            run_once(cfg, work, hook=hook)
            finished = True
        except Kill:
            finished = False
        checks = count_checks(log) - done_checks
        done_checks += checks
        after = stored_work(crashy)
        # A resumed run redoes only what was left: what it did is what it stored, except for
        # the one shard a kill can catch sampled but not yet stored.
        assert after["train_steps"] - before["train_steps"] == work.train_steps
        lost = work.samples - (after["samples"] - before["samples"])
        assert 0 <= lost <= max(ref_cfg.sampler.shard_size, ref_cfg.eval.shard_size), where
        assert checks == after["checks"] - before["checks"], where
        assert finished == (where == "end")
    assert stored_work(crashy) == ref_total

    a, b = contents(root), contents(crashy)
    assert a.keys() == b.keys()
    assert any("/model/hf/" in k and k.endswith(".safetensors") for k in a)  # weights compared
    for key in a:
        assert a[key] == b[key], key
    assert _metrics(root) == _metrics(crashy)


def test_pipeline_command_without_lean_fails_in_one_line(tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    """Before any model or dataset is touched: no Lean, one line, exit 2."""
    from stp.pipeline.__main__ import main

    with pytest.raises(SystemExit) as exit_info:
        from stp.cli import run_main

        run_main(main, ["--config", str(REPO_ROOT / "configs" / "tiny-cpu.toml"),
                        "--run-dir", str(tmp_path / "run"),
                        "--set", f'lean.project_dir="{tmp_path}"', "--stages", "sft"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and err.startswith("error: ") and "\n" not in err
    assert "Lean" in err
    assert not (tmp_path / "run" / "pipeline.json").exists()
