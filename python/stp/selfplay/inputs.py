"""What the chosen stages need, checked before the first one starts, and the model self-play
round 0 starts from.

A missing lemma dictionary used to surface after Stage 1, a missing re-training SFT set after
every self-play round (hours to days on real hardware). `missing_inputs` lists every input the
stages about to run will read (datasets, the lemma dictionary, SFT sets, model checkpoints) that
is not there, each with how to get it; `check_inputs` turns that list into one error line.

`selfplay_start_model` is the one rule for round 0's model: `selfplay.initial_model` when set;
else, when the config's pipeline includes Stage 1 (`sft`), the run's Stage-1 model, and without
one a refusal saying how to get it (starting from the public SFT model instead would run a
conjecturer that never saw the conjecture format); else `model.name`.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from stp import storage
from stp.config import STPConfig, resolve_data_dir
from stp.data import mathlib_files
from stp.errors import UsageError
from stp.selfplay.rundir import RunDir


def lemma_dict_path(cfg: STPConfig) -> str:
    """`data.lemma_dict`, else the lemma dictionary `python -m stp.extract sft` writes."""
    return cfg.data.lemma_dict or mathlib_files.lemmas_path(resolve_data_dir(cfg.run.data_dir))


def retrain_sft_path(cfg: STPConfig) -> str:
    """The SFT set the final re-training re-adds: `data.sft_mathlib`, else the Mathlib-only part
    that `python -m stp.extract sft` writes (the original re-adds Mathlib examples only)."""
    return cfg.data.sft_mathlib or mathlib_files.sft_mathlib_only_path(
        resolve_data_dir(cfg.run.data_dir))


def stage1_sft_path(cfg: STPConfig) -> str:
    """`data.sft`, else `<data_dir>/mathlib/sft.jsonl.gz` (Stage 1 with an empty `sft.data`, and
    the self-play SFT replay)."""
    return cfg.data.sft or mathlib_files.sft_path(resolve_data_dir(cfg.run.data_dir))


def stage1_model(cfg: STPConfig) -> str | None:
    """The Stage-1 model recorded in the run directory's pipeline manifest, if any."""
    path = RunDir(cfg.run.run_dir).pipeline_manifest_path
    if not storage.exists(path):
        return None
    stages = storage.read_json(path).get("stages", {})
    sft = stages.get("sft")
    return str(sft["model"]) if isinstance(sft, dict) and sft.get("model") else None


def selfplay_start_model(cfg: STPConfig, *, config_name: str = "CONFIG") -> str:
    """The model self-play round 0 starts from (module docstring)."""
    if cfg.selfplay.initial_model:
        return cfg.selfplay.initial_model
    if "sft" not in cfg.pipeline.stages:
        return cfg.model.name
    model = stage1_model(cfg)
    if model is None:
        raise UsageError(
            f"self-play round 0 starts from the Stage-1 model, and {cfg.run.run_dir} has none: "
            f"run `python -m stp.pipeline --config {config_name} --stages sft` first (or the "
            "whole pipeline), or name the start model with --set "
            "selfplay.initial_model='\"PATH_OR_HUB_ID\"'")
    return model


def _model_missing(name: str) -> bool:
    from stp.model.location import is_hub_id

    return bool(name) and not is_hub_id(name) and not storage.exists(
        storage.join(name, "config.json") if not name.endswith(".json") else name)


def _dataset_missing(cfg: STPConfig, name: str, split: str, what: str) -> str:
    """Why dataset `name` (split) cannot be read, as a line with how to get it; '' if it can."""
    from stp.data import registry
    from stp.data.download import hf_local_dir, locate_file

    info = registry.DATASETS.get(name)
    if info is None:
        return f"{what}: unknown dataset {name!r} (known: {', '.join(registry.DATASETS)})"
    data_dir = resolve_data_dir(cfg.run.data_dir)
    if info.hf_repo:
        if (hf_local_dir(info, data_dir) / ".complete").is_file() or cfg.data.allow_download:
            return ""
        return (f"{what}: dataset {name} is not in {data_dir} (run `python -m stp.data download "
                f"{name}`)")
    files = [f for f in info.files if not split or split in f.splits.values()]
    for data_file in files:
        if locate_file(data_file, data_dir) is None and not (cfg.data.allow_download
                                                             and data_file.url):
            return (f"{what}: {data_dir / data_file.filename} is missing (run `python -m "
                    f"stp.data download {name}`)")
    return ""


def missing_inputs(cfg: STPConfig, stages: Iterable[str], *, config_name: str = "CONFIG"
                   ) -> list[str]:
    """One line per input the `stages` about to run need and cannot find, with how to get it."""
    stages = list(stages)
    out: list[str] = []
    if "sft" in stages:
        name = cfg.sft.data
        from stp.data import registry

        if not name:
            path = stage1_sft_path(cfg)
            if not storage.exists(path):
                out.append(f"sft.data is empty and the SFT set {path} is missing (build it with "
                           "`python -m stp.extract sft`, or set sft.data=\"stp_sft\")")
        elif name in registry.DATASETS:
            out.append(_dataset_missing(cfg, name, "train", "sft.data"))
        elif not storage.exists(name):
            out.append(f"sft.data: no such file or dataset: {name}")
        if _model_missing(cfg.sft.base_model):
            out.append(f"sft.base_model: no checkpoint at {cfg.sft.base_model}")
    if "selfplay" in stages:
        path = lemma_dict_path(cfg)
        if not storage.exists(path):
            out.append(f"lemma dictionary {path} is missing (build it with `python -m stp.extract "
                       "sft`, or set data.lemma_dict)")
        for ref in cfg.data.selfplay:
            out.append(_dataset_missing(cfg, ref.name, ref.split, "data.selfplay"))
        if "sft" not in stages:  # else Stage 1 produces the start model
            try:
                start = selfplay_start_model(cfg, config_name=config_name)
            except UsageError as err:
                out.append(str(err))
            else:
                if _model_missing(start):
                    out.append(f"self-play start model: no checkpoint at {start}")
        if cfg.selfplay.sft_replay_fraction > 0 and not storage.exists(stage1_sft_path(cfg)):
            out.append(f"selfplay.sft_replay_fraction > 0 but the SFT set {stage1_sft_path(cfg)} "
                       "is missing (build it with `python -m stp.extract sft`, or set data.sft)")
    if "retrain" in stages:
        path = retrain_sft_path(cfg)
        if not storage.exists(path):
            out.append(f"re-training SFT set {path} is missing (build it with `python -m "
                       "stp.extract sft --from-hf` or `python -m stp.extract sft`, or set "
                       "data.sft_mathlib)")
        if _model_missing(cfg.retrain.base_model):
            out.append(f"retrain.base_model: no checkpoint at {cfg.retrain.base_model}")
        for run in cfg.retrain.merge_from:
            if run != cfg.run.run_dir and not storage.exists(run):
                out.append(f"retrain.merge_from: no run directory {run}")
    if "eval" in stages:
        for spec in cfg.eval.splits:
            name, _, split = spec.partition(":")
            out.append(_dataset_missing(cfg, name.strip().lower(), split, "eval.splits"))
    return [line for line in out if line]


def check_inputs(cfg: STPConfig, stages: Iterable[str], *, config_name: str = "CONFIG") -> None:
    """Fail with one line naming every missing input of `stages` (exit 2), before any runs."""
    missing = missing_inputs(cfg, stages, config_name=config_name)
    if missing:
        raise UsageError(f"{len(missing)} missing input(s) of the chosen stages, nothing was "
                         "started: " + "; ".join(missing))


def config_label(path: str | Path | None) -> str:
    return str(path) if path else "CONFIG"
