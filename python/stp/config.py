"""Typed experiment configuration: one struct tree, TOML files, and `--set key=value` overrides.

Every default lives exactly once, as a field default of a section struct in the package that owns
the concern (`stp.verify.config`, `stp.model.config`, ...). This module only composes them and
implements loading, so a typo in a key or a wrong type is an error that names the key instead of a
silently ignored setting.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, overload

import msgspec

# Upward by design: each section's type is owned by the package that uses it (its `config.py`
# imports only stp.ranges and the package's own closed sets, never the package's code), and the
# tree of sections is assembled here, so `stp.config` itself stays low enough for every command.
from stp.cluster import ClusterConfig
from stp.data.config import DATA_DIR_ENV, DEFAULT_DATA_DIR, DataConfig, resolve_data_dir
from stp.errors import ConfigError
from stp.eval.config import EvalConfig
from stp.extract.config import ExtractConfig
from stp.lean.config import LeanConfig
from stp.model.config import ModelConfig, SamplerConfig, TrainerConfig, TrainerOverlay
from stp.pipeline.config import PipelineConfig, SFTConfig
from stp.ranges import Seed
from stp.selfplay.config import RetrainConfig, SelfPlayConfig
from stp.verify.config import VerifierConfig

T = TypeVar("T")



class RunConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Where a run lives and how it is seeded."""

    name: str = "stp"
    # Local path or gs:// URI holding every artifact of the run (rounds, checkpoints, metrics).
    run_dir: str = "runs/stp"
    seed: Seed = 0
    # Benchmark and dataset files; empty means $STP_DATA_DIR, else ~/.cache/stp/data.
    data_dir: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"


class STPConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The whole experiment. Sections are owned by the packages named in their types."""

    run: RunConfig = msgspec.field(default_factory=RunConfig)
    cluster: ClusterConfig = msgspec.field(default_factory=ClusterConfig)
    lean: LeanConfig = msgspec.field(default_factory=LeanConfig)
    verifier: VerifierConfig = msgspec.field(default_factory=VerifierConfig)
    data: DataConfig = msgspec.field(default_factory=DataConfig)
    model: ModelConfig = msgspec.field(default_factory=ModelConfig)
    sampler: SamplerConfig = msgspec.field(default_factory=SamplerConfig)
    trainer: TrainerConfig = msgspec.field(default_factory=TrainerConfig)
    selfplay: SelfPlayConfig = msgspec.field(default_factory=SelfPlayConfig)
    retrain: RetrainConfig = msgspec.field(default_factory=RetrainConfig)
    eval: EvalConfig = msgspec.field(default_factory=EvalConfig)
    extract: ExtractConfig = msgspec.field(default_factory=ExtractConfig)
    sft: SFTConfig = msgspec.field(default_factory=SFTConfig)
    pipeline: PipelineConfig = msgspec.field(default_factory=PipelineConfig)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `section.key=value`; the value is read as a TOML value, else taken as a bare string."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} must look like section.key=value")
    raw = raw.strip()
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.split("."), value


def apply_overrides(tree: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set each dotted key in a raw config tree (a copy); typos are caught later by validation."""
    tree = _deep_copy(tree)
    for text in overrides:
        path, value = parse_override(text)
        node = tree
        for i, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(path[: i + 1])
                raise ConfigError(f"override {text!r}: {where} is a value, not a section")
            node = child
        node[path[-1]] = value
    return tree


def _deep_copy(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in tree.items()}


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, turning a syntax error into a ConfigError with file and line."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{path}: is a directory, not a TOML config file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a UTF-8 TOML file (byte {err.start}: {err.reason})"
                          ) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: {err}") from None


EXTENDS_KEY = "extends"


def read_config_tree(path: str | Path, _chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A config file's raw tree with its `extends = "base.toml"` chain merged in: the base (a path
    relative to the extending file) is read first and the file's own tables are merged over it key
    by key (a value, arrays included, replaces the base's). A variant config thus states only what
    it changes (Levanter-style includes); a cycle or a missing base is an error naming the file."""
    path = Path(path)
    resolved = path.resolve()
    if resolved in _chain:
        cycle = " -> ".join(str(p) for p in (*_chain, resolved))
        raise ConfigError(f"{path}: `{EXTENDS_KEY}` forms a cycle: {cycle}")
    tree = read_toml(path)
    base_name = tree.pop(EXTENDS_KEY, None)
    if base_name is None:
        return tree
    if not isinstance(base_name, str) or not base_name:
        raise ConfigError(f"{path}: `{EXTENDS_KEY}` must be the path of a TOML config file")
    base_path = path.parent / base_name
    if not base_path.is_file():
        raise ConfigError(f"{path}: `{EXTENDS_KEY}`: base config not found: {base_path}")
    return merge_trees(read_config_tree(base_path, (*_chain, resolved)), tree)


def merge_trees(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """`over` merged into a copy of `base`: tables recursively, every other value replaced."""
    out = _deep_copy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge_trees(out[key], value)
        else:
            out[key] = _deep_copy(value) if isinstance(value, dict) else value
    return out


# Keys that moved; an old config gets one line saying where the setting lives now.
MOVED_KEYS: dict[str, str] = {
    "sft.steps": "sft.trainer.min_steps and sft.trainer.max_steps",
    "sft.epochs": "sft.trainer.epochs",
    "sft.batch_size": "sft.trainer.batch_size",
    "sft.learning_rate": "sft.trainer.learning_rate",
    "sft.warmup_steps": "sft.trainer.warmup_steps",
    "selfplay.learning_rate": "selfplay.trainer.learning_rate",
    "selfplay.max_train_steps": "selfplay.trainer.max_steps",
    "retrain.learning_rate": "retrain.trainer.learning_rate",
    "retrain.min_steps": "retrain.trainer.min_steps",
    "retrain.epochs": "retrain.trainer.epochs",
    "retrain.max_steps": "retrain.trainer.max_steps",
}


def _overlay_defaults() -> dict[str, Any]:
    """The stages' default `[<stage>.trainer]` overlays as a raw tree. A config's overlay table is
    merged over these key by key, so `[sft.trainer] min_steps = 2` keeps Stage 1's default
    learning rate instead of replacing the whole overlay (the struct defaults stay the one
    definition)."""
    overlays = {"sft": SFTConfig().trainer, "selfplay": SelfPlayConfig().trainer,
                "retrain": RetrainConfig().trainer}
    return {name: {"trainer": msgspec.to_builtins(overlay)}
            for name, overlay in overlays.items()}


def _check_moved_keys(tree: dict[str, Any], source: str) -> None:
    for old, new in MOVED_KEYS.items():
        section, key = old.split(".")
        node = tree.get(section)
        if isinstance(node, dict) and key in node:
            raise ConfigError(f"{source}: `{old}` was moved: set {new} (stage overlays on "
                              "[trainer], docs/foundation.md#training-settings)")


_UNKNOWN_FIELD = re.compile(r"^Object contains unknown field `([^`]*)`(?: - at `\$\.?([^`]*)`)?$")
_AT_PATH = re.compile(r"^(.*) - at `\$\.?([^`]*)`$")


def _struct_at(cls: Any, path: str) -> Any:
    """The struct type found at a dotted path like `data.selfplay[0]` (None if not a struct)."""
    for part in filter(None, re.split(r"\.|\[\d+\]", path)):
        if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
            return None
        cls = typing.get_type_hints(cls).get(part)
        # list[X] / dict[str, X]: descend into the element type.
        while typing.get_origin(cls) in (list, dict):
            cls = typing.get_args(cls)[-1]
    while typing.get_origin(cls) in (list, dict):
        cls = typing.get_args(cls)[-1]
    return cls if isinstance(cls, type) and issubclass(cls, msgspec.Struct) else None


def _describe_validation_error(message: str, cls: Any) -> str:
    """Rewrite msgspec's message so it starts with the full dotted key and suggests fixes."""
    unknown = _UNKNOWN_FIELD.match(message)
    if unknown:
        name, where = unknown.group(1), unknown.group(2) or ""
        key = f"{where}.{name}" if where else name
        text = f"unknown key `{key}`"
        struct = _struct_at(cls, where)
        if struct is not None:
            known = list(struct.__struct_fields__)
            close = difflib.get_close_matches(name, known, n=1)
            text += f" (did you mean `{close[0]}`?)" if close else f" (known: {', '.join(known)})"
        return text
    at = _AT_PATH.match(message)
    if at:
        return f"`{at.group(2)}`: {at.group(1)}" if at.group(2) else at.group(1)
    return message


def convert(tree: dict[str, Any], cls: type[T], source: str = "config") -> T:
    """Validate a raw tree against a struct type; the error names the offending key path."""
    try:
        return msgspec.convert(tree, cls)
    except msgspec.ValidationError as err:
        raise ConfigError(f"{source}: {_describe_validation_error(str(err), cls)}") from None


@overload
def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> STPConfig:
    ...


@overload
def load_config(path: str | Path | None, overrides: list[str] | None, cls: type[T]) -> T:
    ...


def load_config(
    path: str | Path | None = None,
    overrides: list[str] | None = None,
    cls: type[Any] = STPConfig,
) -> Any:
    """Load defaults, then the TOML file (if any, with its `extends` chain), then `key=value`
    overrides, and validate (for the whole config also: no training key without an effect).

    `cls` is the struct to validate against (the whole `STPConfig` unless a caller loads one
    section on its own); the overloads give callers the precise return type."""
    tree = read_config_tree(path) if path is not None else {}
    tree = apply_overrides(tree, overrides or [])
    source = str(path) if path is not None else "config"
    if overrides:
        source += " (with --set overrides)"
    if cls is not STPConfig:
        return convert(tree, cls, source)
    _check_moved_keys(tree, source)
    tree = merge_trees(_overlay_defaults(), tree)
    cfg = convert(tree, cls, source)

    problem = check_training_settings(cfg, tree)
    if problem:
        raise ConfigError(f"{source}: {problem}")
    return cfg


def to_toml(config: msgspec.Struct) -> str:
    """Render a config as TOML, e.g. to record the resolved settings inside a run directory."""
    return msgspec.toml.encode(config).decode("utf-8")


__all__ = ["DATA_DIR_ENV", "DEFAULT_DATA_DIR", "ConfigError", "STPConfig", "load_config",
           "read_config_tree", "resolve_data_dir", "to_toml"]


# ---------------------------------------------------------------------------------------------
# Training settings per stage
# ---------------------------------------------------------------------------------------------
# One story for training settings: `[trainer]` is what every stage starts from, and each stage
# that trains changes it only through its own overlay (`[sft.trainer]`, `[selfplay.trainer]`,
# `[retrain.trainer]`). `stage_trainer` is the one place the two are combined; every stage trains
# with its result and nothing else (`train_kwargs` turns it into `train_weighted`'s arguments).
#
# A setting that would have no effect is a configuration error naming the key
# (`check_training_settings`, run by `stp.config.load_config`):
#
# - a `[trainer]` key that every stage's overlay replaces (the old configs set
#   `trainer.learning_rate` next to three stage learning rates, and it was used nowhere);
# - an overlay's `epochs` where that stage's step count is fixed (min_steps = max_steps > 0);
# - a `[selfplay.trainer]` key when `selfplay.train = false` (repeated sampling never trains).

TrainingStage = Literal["sft", "selfplay", "retrain"]
TRAINING_STAGES: tuple[TrainingStage, ...] = ("sft", "selfplay", "retrain")


def stage_overlay(cfg: STPConfig, stage: TrainingStage) -> TrainerOverlay:
    section: Any = getattr(cfg, stage)
    overlay: TrainerOverlay = section.trainer
    return overlay


def stage_trainer(cfg: STPConfig, stage: TrainingStage) -> TrainerConfig:
    """`[trainer]` with `stage`'s overlay applied: the settings `stage` trains with."""
    changes = {k: v for k, v in msgspec.structs.asdict(stage_overlay(cfg, stage)).items()
               if v is not None}
    return msgspec.structs.replace(cfg.trainer, **changes)


def train_kwargs(trainer: TrainerConfig) -> dict[str, Any]:
    """The step-count and learning-rate arguments of `train_weighted` for resolved settings."""
    out: dict[str, Any] = {"learning_rate": trainer.learning_rate,
                           "min_steps": trainer.min_steps, "epochs": trainer.epochs}
    if trainer.max_steps > 0:
        out["max_steps"] = trainer.max_steps
    return out


def _fixed_steps(trainer: TrainerConfig) -> bool:
    return trainer.max_steps > 0 and trainer.min_steps >= trainer.max_steps


def check_training_settings(cfg: STPConfig, tree: dict[str, Any]) -> str:
    """The first training key in the raw config `tree` (file, `extends` chain and overrides)
    that would have no effect, as a message naming it; empty when there is none."""
    base = tree.get("trainer")
    overlays = {stage: stage_overlay(cfg, stage) for stage in TRAINING_STAGES}
    if isinstance(base, dict):
        for key in TrainerOverlay.__struct_fields__:
            if key in base and all(getattr(o, key) is not None for o in overlays.values()):
                return (f"`trainer.{key}` has no effect: sft.trainer, selfplay.trainer and "
                        f"retrain.trainer all set {key}; set it in the stage it is meant for")
    for stage in TRAINING_STAGES:
        section = tree.get(stage)
        raw = section.get("trainer") if isinstance(section, dict) else None
        if not isinstance(raw, dict):
            continue
        if stage == "selfplay" and not cfg.selfplay.train and raw:
            key = next(iter(raw))
            return (f"`selfplay.trainer.{key}` has no effect: selfplay.train = false (repeated "
                    "sampling never trains)")
        if "epochs" in raw and _fixed_steps(stage_trainer(cfg, stage)):
            t = stage_trainer(cfg, stage)
            return (f"`{stage}.trainer.epochs` has no effect: min_steps = {t.min_steps} and "
                    f"max_steps = {t.max_steps} fix the step count (set both to 0 to train "
                    "by epochs)")
    return ""
