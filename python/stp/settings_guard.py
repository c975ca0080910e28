"""A resume must use the settings the work was started with, or say explicitly that it does not.

Self-play and evaluation resume by rerunning the same command. Rerun with another `run.seed`,
sample count, temperature or `top_p`, they used to continue with the new values while the run
directory (or the log's manifest) still claimed the old ones: one experiment's rounds or shards
mixed with another's, exit 0. So a resume compares every setting that changes results with what
was recorded and refuses a difference in one line naming the keys (exit 2). With
`--allow-changed-settings` the change is accepted and recorded where it starts to apply (the
round of a self-play run, the shard of an evaluation log), so the mix stays visible.

This module knows only flat `section.key` dictionaries; the callers decide which keys change
results (`SELFPLAY_RESULT_KEYS`, the evaluation manifest's fields).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stp.errors import UsageError

ALLOW_FLAG = "--allow-changed-settings"

# Sections of the config whose every key changes what self-play produces, except the listed
# operational keys (paths, parallelism, logging, how many rounds to run in total).
SELFPLAY_RESULT_SECTIONS = ("run", "lean", "verifier", "data", "model", "sampler", "trainer",
                            "selfplay")
SELFPLAY_OPERATIONAL_KEYS = frozenset({
    "run.name", "run.run_dir", "run.data_dir", "run.log_level",
    "lean.project_dir", "lean.checker_exe", "lean.extractor_exe", "lean.checker_command",
    "verifier.backend", "verifier.workers", "verifier.memory_check_s", "verifier.pipeline_depth",
    "verifier.recycle_after", "verifier.max_header_pools", "verifier.start_timeout_s",
    "verifier.max_response_mb", "verifier.sandbox", "verifier.sandbox_binds",
    "verifier.replay_workers", "verifier.recheck_spares", "verifier.cache_dir",
    "verifier.cpus_per_worker", "verifier.memory_per_worker_mb", "verifier.rlimit_as_mb",
    "data.allow_download",
    "sampler.tensor_parallel_size", "sampler.num_engines", "sampler.gpu_memory_utilization",
    "sampler.embed_batch_size",
    "trainer.per_device_batch_size", "trainer.checkpoint_every_steps",
    "selfplay.rounds",
})


class ChangedSettingsError(UsageError):
    """A resume with settings that differ from the recorded ones (exit 2)."""


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"section.key": value} of a nested mapping (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def _same(a: Any, b: Any) -> bool:
    # TOML and JSON round trips turn 1 into 1.0 and tuples into lists; compare as values.
    if isinstance(a, int | float) and isinstance(b, int | float) and not isinstance(
            a, bool) and not isinstance(b, bool):
        return float(a) == float(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return bool(a == b)


def changed(recorded: Mapping[str, Any], current: Mapping[str, Any],
            keys: Iterable[str] | None = None) -> dict[str, tuple[Any, Any]]:
    """{key: (recorded, current)} for every key of `keys` (default: the keys both sides have)
    whose values differ. A key one side lacks (a field added or removed since the recording)
    is not a difference."""
    names = sorted(keys) if keys is not None else sorted(recorded.keys() & current.keys())
    return {k: (recorded[k], current[k]) for k in names
            if k in recorded and k in current and not _same(recorded[k], current[k])}


def selfplay_result_settings(tree: Mapping[str, Any]) -> dict[str, Any]:
    """The flat settings of a config tree that change what self-play produces."""
    flat = flatten(tree)
    return {k: v for k, v in flat.items()
            if k.split(".", 1)[0] in SELFPLAY_RESULT_SECTIONS
            and k not in SELFPLAY_OPERATIONAL_KEYS}


def describe(changes: Mapping[str, tuple[Any, Any]], limit: int = 8) -> str:
    """`run.seed 0 -> 1, sampler.top_p 1.0 -> 0.9` (at most `limit`, then a count)."""
    parts = [f"{k} {_short(old)} -> {_short(new)}" for k, (old, new) in
             list(changes.items())[:limit]]
    if len(changes) > limit:
        parts.append(f"and {len(changes) - limit} more")
    return ", ".join(parts)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def refuse(where: str, changes: Mapping[str, tuple[Any, Any]], what: str) -> None:
    """Raise the one-line refusal naming every changed key."""
    raise ChangedSettingsError(
        f"{where} was started with other settings ({describe(changes)}); resuming would mix "
        f"two experiments in one {what}. Rerun with the recorded settings, choose a new "
        f"directory, or pass {ALLOW_FLAG} to continue with the new ones (recorded in the "
        f"{what})")


def json_safe(changes: Mapping[str, tuple[Any, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {"from": old, "to": new} for k, (old, new) in changes.items()}


__all__ = ["ALLOW_FLAG", "ChangedSettingsError", "changed", "describe", "flatten", "json_safe",
           "refuse", "selfplay_result_settings"]
