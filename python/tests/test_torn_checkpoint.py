"""A kill while Levanter writes a checkpoint's metadata.json (the last file of a checkpoint, not
written atomically) left an empty metadata.json, and the resumed `stp.train` ended in a
JSONDecodeError inside Levanter's discovery of the newest checkpoint (seen in a CI run of
test_kill_resume.py). Such a checkpoint is set aside; the newest complete one is resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stp.model.training.levanter_trainer import RUN_ID, set_aside_torn_checkpoints


def checkpoint(root: Path, step: int, metadata: str | None) -> Path:
    directory = root / RUN_ID / f"step-{step}"
    directory.mkdir(parents=True)
    (directory / "arrays").write_bytes(b"committed")
    if metadata is not None:
        (directory / "metadata.json").write_text(metadata)
    return directory


@pytest.mark.parametrize("cut", ["", '{"step": 4, "timest', '{"step": 4}', "[]"])
def test_a_checkpoint_cut_while_its_metadata_was_written_is_set_aside(tmp_path: Path,
                                                                      cut: str) -> None:
    from levanter.checkpoint import discover_latest_checkpoint

    root = tmp_path / "checkpoints"
    good = checkpoint(root, 2, json.dumps({"step": 2, "timestamp": "2026-12-05T10:00:00",
                                           "is_temporary": True}))
    torn = checkpoint(root, 4, cut)
    checkpoint(root, 6, None)  # arrays still being written: no metadata yet
    with pytest.raises((ValueError, KeyError, TypeError)):
        discover_latest_checkpoint(str(root / RUN_ID))  # what the resume died of
    assert set_aside_torn_checkpoints(str(root)) == [str(torn)]
    assert discover_latest_checkpoint(str(root / RUN_ID)) == str(good)
    assert (torn / "metadata.json.torn").read_text() == cut  # kept, not deleted
    assert (torn / "arrays").read_bytes() == b"committed"
    assert set_aside_torn_checkpoints(str(root)) == []  # nothing left to set aside


def test_no_checkpoints_yet_is_nothing_to_do(tmp_path: Path) -> None:
    assert set_aside_torn_checkpoints(str(tmp_path / "checkpoints")) == []
