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
from stp.model.config import ModelConfig, SamplerConfig, TrainerConfig
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
    """Load defaults, then the TOML file (if any), then `key=value` overrides, and validate.

    `cls` is the struct to validate against (the whole `STPConfig` unless a caller loads one
    section on its own); the overloads give callers the precise return type."""
    tree = read_toml(path) if path is not None else {}
    tree = apply_overrides(tree, overrides or [])
    source = str(path) if path is not None else "config"
    if overrides:
        source += " (with --set overrides)"
    return convert(tree, cls, source)


def to_toml(config: msgspec.Struct) -> str:
    """Render a config as TOML, e.g. to record the resolved settings inside a run directory."""
    return msgspec.toml.encode(config).decode("utf-8")


__all__ = ["DATA_DIR_ENV", "DEFAULT_DATA_DIR", "ConfigError", "STPConfig", "load_config",
           "resolve_data_dir", "to_toml"]
