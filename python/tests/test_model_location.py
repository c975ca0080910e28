"""One rule decides "Hub id or local checkpoint" for the sampler and the trainer alike."""

from __future__ import annotations

from pathlib import Path

import pytest

from stp.errors import UsageError
from stp.model.location import is_hub_id, local_path
from stp.model.sampling.common import resolve_model_path
from stp.model.training.levanter_trainer import _resolve_model_path


@pytest.mark.parametrize(("name", "hub"), [
    ("deepseek-ai/DeepSeek-Prover-V1.5-SFT", True),
    ("gpt2", True),
    ("~/ckpt", False),
    ("./ckpt", False),
    ("/abs/ckpt", False),
    ("runs/stp/round-1/model", False),
    ("gs://bucket/ckpt", False),
])
def test_is_hub_id(name: str, hub: bool) -> None:
    assert is_hub_id(name) is hub


def test_home_checkpoint_means_the_same_to_sampler_and_trainer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    # Missing: both refuse instead of sending "~/ckpt" to the Hub.
    with pytest.raises(UsageError, match="no model directory"):
        resolve_model_path("~/ckpt")
    with pytest.raises(FileNotFoundError, match="not found"):
        _resolve_model_path("~/ckpt")
    # Present: both open the same absolute directory.
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "config.json").write_text("{}")
    assert resolve_model_path("~/ckpt") == _resolve_model_path("~/ckpt") == str(tmp_path / "ckpt")
    assert local_path("~/ckpt") == str(tmp_path / "ckpt")


def test_existing_relative_directory_is_local(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "org" / "model").mkdir(parents=True)
    assert not is_hub_id("org/model")
    with pytest.raises(UsageError, match=r"no config\.json"):
        resolve_model_path("org/model")
