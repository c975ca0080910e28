"""The paper's whole pipeline in one run directory: Stage-1 SFT → self-play rounds → final
re-training → evaluation → report (`python -m stp.pipeline --config configs/stp-7b.toml`).

Each stage is recorded in `<run_dir>/pipeline.json` once its outputs exist, so rerunning the
same command skips finished stages; a stage that was interrupted resumes inside itself (the
trainer from its last checkpoint, self-play from its last finished stage or shard, evaluation
from its last logged shard), so a resume redoes only the work that was lost.

Layout (self-play keeps the layout of `python -m stp.selfplay`, so its tools work unchanged):

    <run_dir>/pipeline.json       finished stages and their summaries
    <run_dir>/sft/                stage 1: train.jsonl.gz (when materialised) and the model
    <run_dir>/round-NNNN/ ...     self-play rounds (docs/selfplay.md)
    <run_dir>/retrain/            final re-training data and model (stp.selfplay retrain rules)
    <run_dir>/eval/               evaluation log (both verifier profiles)
    <run_dir>/report/             report.md, self-play plots, pass@k plots and table
    <run_dir>/metrics.jsonl       one event stream for every stage (progress, stage, round, ...)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import msgspec

from stp import storage
from stp.backends import Backends
from stp.config import STPConfig, resolve_data_dir
from stp.errors import UsageError
from stp.metrics import MetricsWriter
from stp.selfplay.rundir import RunDir
from stp.stages import Stage, StageHook, drive, no_hook

log = logging.getLogger(__name__)


class PipelineManifest(msgspec.Struct, kw_only=True):
    stages: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)


class Pipeline:
    """One run directory's pipeline. Every unit samples, verifies and trains with one
    `backends` bundle (default: `Backends.from_config(cfg)`); `hook` sees the `StageEvent`s of
    the pipeline's units and of the self-play rounds and re-training inside them."""

    def __init__(self, cfg: STPConfig, *, backends: Backends | None = None,
                 hook: StageHook = no_hook, stages: list[str] | None = None,
                 config_name: str = "CONFIG") -> None:
        self.cfg = cfg
        self.root = cfg.run.run_dir
        self.run_dir = RunDir(self.root)
        self.hook = hook
        self.backends = backends if backends is not None else Backends.from_config(cfg)
        # The stages to run now (`--stages`); the plan (blocks, Stage 1 or not) stays the
        # config's pipeline.stages.
        self.only = list(stages) if stages is not None else list(cfg.pipeline.stages)
        self.config_name = config_name

    # ------------------------------------------------------------------ manifest
    def manifest(self) -> PipelineManifest:
        """The finished units and their summaries, read through the pipeline's stage log."""
        return PipelineManifest(stages=self.run_dir.pipeline_log().finished())


    # ------------------------------------------------------------------ plan
    def units(self) -> list[str]:
        """The plan as manifest keys, in order: the config's stages, with self-play and the
        re-training repeated per block (`selfplay`, `retrain` for block 0, `selfplay@b`,
        `retrain@b` for block b > 0)."""
        stages: list[str] = list(self.cfg.pipeline.stages)
        blocks = self.cfg.pipeline.blocks
        if blocks > 1 and "selfplay" in stages and "retrain" not in stages:
            raise UsageError(f"pipeline.blocks = {blocks} alternates self-play with the "
                             "re-training, but pipeline.stages has no \"retrain\" (add it, or "
                             "set pipeline.blocks = 1)")
        if blocks == 1 or "selfplay" not in stages:
            return stages
        out: list[str] = []
        for stage in stages:
            if stage == "selfplay":
                continue
            if stage == "retrain":
                for b in range(blocks):
                    out += [unit_name("selfplay", b), unit_name("retrain", b)]
            else:
                out.append(stage)
        return out

    def pending(self) -> list[str]:
        """The units of the chosen stages that are not done yet."""
        done = self.manifest().stages
        return [u for u in self.units() if base_stage(u) in self.only and u not in done]

    # ------------------------------------------------------------------ driver
    def run(self) -> PipelineManifest:
        from stp.lean.toolchain import checker_command

        checker_command(self.cfg.lean)  # without Lean nothing can be verified: fail first
        from stp.selfplay.inputs import check_inputs

        # Every input the chosen stages read, before the first one starts (exit 2, one line).
        check_inputs(self.cfg, {base_stage(u) for u in self.pending()},
                     config_name=self.config_name)
        from stp.lock import lock_dir

        # One process per run directory (re-entrant: self-play takes the same lock inside).
        with lock_dir(self.root, purpose="pipeline"):
            return self._run()

    def _run(self) -> PipelineManifest:
        """The chosen units of the plan through the stage driver (`stp.stages.drive`) over
        `pipeline.json`."""
        units = [Stage(unit, functools.partial(self.run_unit, unit)) for unit in self.units()
                 if base_stage(unit) in self.only]
        drive(units, self.run_dir.pipeline_log(), level="pipeline", run_dir=self.root,
              log_event=self.log_event, hook=self.hook)
        return self.manifest()

    def log_event(self, event: str, **fields: Any) -> None:
        """One metrics event, through a writer opened for it: self-play and evaluation write
        the same file through writers of their own while a unit runs (on gs:// a writer holds
        the whole object until it closes)."""
        with MetricsWriter(self.run_dir.metrics) as metrics:
            metrics.log(event, **fields)

    def run_unit(self, unit: str) -> dict[str, Any]:
        stage, block = base_stage(unit), block_of(unit)
        if stage == "selfplay":
            summary = self.stage_selfplay(block)
        elif stage == "retrain":
            summary = self.stage_retrain(block)
        else:
            table: dict[str, Callable[[], dict[str, Any]]] = {
                "sft": self.stage_sft, "eval": self.stage_eval, "report": self.stage_report}
            summary = table[stage]()
        # The resolved config, once (self-play has written it when it ran first).
        self.run_dir.record_config(self.cfg, replace=False)
        return summary

    # ------------------------------------------------------------------ stages
    def stage_sft(self) -> dict[str, Any]:
        """Stage 1: `sft.base_model` fine-tuned on the SFT set with the original's recipe."""
        from stp.config import stage_trainer, train_kwargs

        sft = self.cfg.sft
        data = self.sft_data()
        trainer = stage_trainer(self.cfg, "sft")
        result = self.backends.train(sft.base_model, str(storage.local_cache_path(data)),
                                     self.run_dir.sft_model_dir, trainer,
                                     self.cfg.model, **train_kwargs(trainer))
        losses = list(result.losses)
        return {"model": str(result.hf_path), "data": data, "steps": int(result.steps),
                "last_loss": float(losses[-1]) if losses else None}

    def sft_data(self) -> str:
        """The SFT examples as a file: `sft.data` as a path, or a released dataset written once
        to `<run_dir>/sft/train.jsonl.gz`, or `data.sft` (the `stp.extract sft` output)."""
        from stp.data import registry

        name = self.cfg.sft.data
        data_dir = resolve_data_dir(self.cfg.run.data_dir)
        if not name:
            from stp.selfplay.inputs import stage1_sft_path

            path = stage1_sft_path(self.cfg)
            if not storage.exists(path):
                raise UsageError(f"sft.data is empty and the SFT set {path} is missing (build it "
                                 "with `python -m stp.extract sft`, or set sft.data=\"stp_sft\")")
            return path
        if name in registry.DATASETS:
            out = self.run_dir.sft_train_set_path
            if not storage.exists(out):
                from stp.data import load_examples

                storage.write_jsonl(out, load_examples(
                    name, data_dir, "train", allow_download=self.cfg.data.allow_download))
            return out
        if not storage.exists(name):
            raise UsageError(f"sft.data: no such file or dataset: {name}")
        return name

    def block_dir(self, block: int) -> str:
        """Block 0 is the run directory itself (the layout of `python -m stp.selfplay`); block
        b > 0 is its own self-play run directory `block-<b>`."""
        return self.run_dir.block_dir(block)

    def start_model(self, block: int = 0) -> str:
        """The model a block's self-play starts from: block 0's by `selfplay_start_model` (the
        run's Stage-1 model when the plan has Stage 1), block b's the re-trained model of b-1."""
        if block == 0:
            from stp.selfplay.inputs import selfplay_start_model

            return selfplay_start_model(self.cfg, config_name=self.config_name)
        previous = self.manifest().stages.get(unit_name("retrain", block - 1))
        if previous is None:
            raise UsageError(f"self-play block {block} starts from the re-trained model of "
                             f"block {block - 1}, which is not there yet: run the "
                             "\"retrain\" stage first")
        return str(previous["model"])

    def block_config(self, block: int, model: str | None = None) -> STPConfig:
        run = msgspec.structs.replace(self.cfg.run, run_dir=self.block_dir(block))
        cfg = msgspec.structs.replace(self.cfg, run=run)
        if model is not None:
            cfg = msgspec.structs.replace(cfg, model=msgspec.structs.replace(cfg.model,
                                                                             name=model))
        return cfg

    def stage_selfplay(self, block: int = 0) -> dict[str, Any]:
        from stp.selfplay.loop import run_selfplay

        cfg = self.block_config(block, self.start_model(block))
        summaries = run_selfplay(cfg, backends=self.backends, hook=self.hook)
        rounds = []
        for s in summaries:
            book = s.stages.get("bookkeeping", {})
            rounds.append({"round": s.round, "model": s.model,
                           "dataset_solved_this_round": book.get("dataset_solved_this_round"),
                           "dataset_solved_total": book.get("dataset_solved_total"),
                           "dataset_size": book.get("dataset_size"),
                           "conjectures_solved": book.get("conjectures_solved")})
        last = summaries[-1].stages.get("train", {}).get("model", summaries[-1].model)
        out: dict[str, Any] = {"rounds": rounds, "model": str(last)}
        if self.cfg.pipeline.blocks > 1:
            out["block"], out["run_dir"] = block, cfg.run.run_dir
        return out

    def stage_retrain(self, block: int = 0) -> dict[str, Any]:
        """The final re-training of `block`: from `retrain.base_model` on the rounds of every
        block so far (and of `retrain.merge_from`), into `<block dir>/retrain`."""
        from stp.selfplay.retrain import run_retrain

        cfg = self.block_config(block)
        if self.cfg.pipeline.blocks > 1:
            blocks = [self.block_dir(b) for b in range(block + 1)]
            merge = list(self.cfg.retrain.merge_from) or [blocks[0]]
            merge += [d for d in blocks[1:] if d not in merge]
            cfg = msgspec.structs.replace(cfg, retrain=msgspec.structs.replace(
                cfg.retrain, merge_from=merge))
        manifest = run_retrain(cfg, backends=self.backends, hook=self.hook)
        out = {"model": manifest["train"]["model"], "examples": manifest["data"]["examples"],
               "selfplay_examples": manifest["data"]["selfplay_examples"]}
        if self.cfg.pipeline.blocks > 1:
            out["block"], out["runs"] = block, manifest["data"]["runs"]
        return out

    def final_model(self) -> str:
        """The model the evaluation measures: the last unit of the plan that produced one."""
        stages = self.manifest().stages
        for unit in reversed(self.units()):
            if unit in stages and "model" in stages[unit] and base_stage(unit) != "eval":
                return str(stages[unit]["model"])
        return self.cfg.model.name

    def stage_eval(self) -> dict[str, Any]:
        from stp.eval.run import run_from_config, settings_from_config

        settings = settings_from_config(self.cfg, model=self.final_model(), splits=None,
                                        samples=None, out=self.run_dir.eval_dir(self.cfg.pipeline.eval_dir))
        with MetricsWriter(self.run_dir.metrics) as metrics:
            result = run_from_config(self.cfg, settings, metrics=metrics,
                                     backends=self.backends)
        log.info("evaluation: %d attempts written, %d were already logged", result.written,
                 result.skipped)
        # The summary describes the log (the same however often the stage was resumed).
        from stp.eval import log as evlog

        statuses: dict[str, int] = {}
        for attempt in evlog.iter_attempts(settings.out):
            for profile, status in (attempt.verdicts or {"": attempt.status}).items():
                key = f"{profile}:{status}" if profile else status
                statuses[key] = statuses.get(key, 0) + attempt.multiplicity
        return {"model": settings.model, "log": settings.out, "attempts": result.planned,
                "statuses": dict(sorted(statuses.items()))}

    def stage_report(self) -> dict[str, Any]:
        """report.md: solved counts per round, pass@k per verifier profile, and the plots."""
        from stp.pipeline.report import write_pipeline_report

        path = write_pipeline_report(self.cfg, self.manifest(), self.run_dir.report_dir)
        return {"report": str(path)}


def unit_name(stage: str, block: int) -> str:
    """The manifest key of `stage` in alternation block `block` (block 0 keeps the stage's
    name, so a one-block run's manifest is the same as without alternation)."""
    return stage if block == 0 else f"{stage}@{block}"


def base_stage(unit: str) -> str:
    return unit.partition("@")[0]


def block_of(unit: str) -> int:
    _, sep, block = unit.partition("@")
    return int(block) if sep else 0


def run_pipeline(cfg: STPConfig, *, backends: Backends | None = None,
                 hook: StageHook = no_hook, stages: list[str] | None = None,
                 config_name: str = "CONFIG") -> PipelineManifest:
    """Run (or continue) the stages of `cfg.pipeline.stages` (or `stages`, a subset to run
    now) in `cfg.run.run_dir` (see `Pipeline`)."""
    return Pipeline(cfg, backends=backends, hook=hook, stages=stages,
                    config_name=config_name).run()

