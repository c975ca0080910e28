"""Resuming self-play with settings that change results is refused unless explicitly allowed."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from selfplay_helpers import RULES, make_config, scripted_backends
from standin import standin_command, with_checker

from stp.selfplay.loop import run_selfplay
from stp.settings_guard import ChangedSettingsError


def _run(tmp: Path, rounds: int, extra: list[str] | None = None, **kw: object) -> list:
    cfg = with_checker(make_config(tmp, "run", extra), standin_command(RULES))
    return run_selfplay(cfg, rounds=rounds, backends=scripted_backends(), **kw)  # type: ignore[arg-type]


def test_selfplay_resume_with_changed_settings(tmp_path: Path) -> None:
    _run(tmp_path, 1)
    run = tmp_path / "run"
    changed = ["run.seed=4", "selfplay.samples_per_statement=9", "sampler.temperature=0.7"]
    with pytest.raises(ChangedSettingsError) as refused:
        _run(tmp_path, 2, changed)
    message = str(refused.value)
    assert refused.value.exit_code == 2 and "\n" not in message
    for key in ("run.seed 3 -> 4", "selfplay.samples_per_statement 8 -> 9",
                "sampler.temperature 1.0 -> 0.7"):
        assert key in message, message
    assert not (run / "round-0001").exists()  # the next round did not start
    # Operational settings (parallelism, logging, more rounds) are not result settings.
    _run(tmp_path, 1, ["verifier.workers=2", 'run.log_level="WARNING"'])
    # Explicitly allowed: the run continues with them, the change is recorded with its round,
    # and the run's config.toml now holds the new settings (so a further resume matches them).
    summaries = _run(tmp_path, 2, changed, allow_changed_settings=True)
    assert [s.round for s in summaries] == [0, 1]
    history = json.loads((run / "settings-changes.json").read_text())
    assert history == [{"round": 1, "changed": {
        "run.seed": {"from": 3, "to": 4},
        "sampler.temperature": {"from": 1.0, "to": 0.7},
        "selfplay.samples_per_statement": {"from": 8, "to": 9}}}]
    recorded = tomllib.loads((run / "config.toml").read_text())
    assert recorded["run"]["seed"] == 4 and recorded["sampler"]["temperature"] == 0.7
    _run(tmp_path, 2, changed)  # the same settings again: accepted without the flag
