"""Every Hugging Face download names a commit (stp.hub): data sets, sampler models and the
trainer's base model alike; without a configured commit nothing is downloaded."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest

from stp import hub
from stp.data import download as dl
from stp.data import registry
from stp.errors import UsageError
from stp.model.sampling.common import resolve_model_path
from stp.model.training.levanter_trainer import _resolve_model_path

SHA_A = "a" * 40
SHA_B = "b" * 40


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[dict[str, Any]]:
    """huggingface_hub.snapshot_download replaced by a recorder (no network in tests): it
    creates the directory it would have filled and returns it."""
    calls: list[dict[str, Any]] = []

    def fake(**kwargs: Any) -> str:
        calls.append(kwargs)
        target = Path(kwargs["local_dir"] or tmp_path / "cache" / kwargs["repo_id"])
        target.mkdir(parents=True, exist_ok=True)
        (target / "config.json").write_text("{}")
        return str(target)

    def reachable(self: Any, repo_id: str, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    # The reachability probe of stp.hub.snapshot answers at once (no network in tests).
    monkeypatch.setattr(huggingface_hub.HfApi, "repo_info", reachable)
    monkeypatch.delenv(hub.REVISIONS_ENV, raising=False)
    return calls


def test_revision_sources_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(hub.HUB_REVISIONS, "org/model", SHA_A)
    monkeypatch.delenv(hub.REVISIONS_ENV, raising=False)
    assert hub.pinned_revision("org/model") == SHA_A
    monkeypatch.setenv(hub.REVISIONS_ENV, f"other/x={SHA_A}, org/model={SHA_B}")
    assert hub.pinned_revision("org/model") == SHA_B
    assert hub.pinned_revision("org/model", "c" * 40) == "c" * 40
    assert hub.split_revision(f"org/model@{SHA_A}") == ("org/model", SHA_A)


def test_unpinned_downloads_use_main_and_say_which_commit(
        downloads: list[dict[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    """No commit anywhere (the shipped table is empty until someone fills it in): the download
    goes ahead at main, and a warning names the commit it got and how to pin it."""
    assert hub.pinned_revision("org/new") == ""
    with caplog.at_level("WARNING", logger="stp.hub"):
        hub.snapshot("org/new", "model")
    assert downloads[-1]["revision"] is None
    assert "org/new is not pinned" in caplog.text and "org/new@<commit>" in caplog.text


def test_moving_revisions_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(hub.REVISIONS_ENV, raising=False)
    with pytest.raises(hub.UnpinnedRevisionError, match=r"revision `main` of org/new is not a "
                                                        r"40-hex commit id"):
        hub.pinned_revision("org/new", "main")
    monkeypatch.setenv(hub.REVISIONS_ENV, "org/new")
    with pytest.raises(UsageError, match=r"\$STP_HF_REVISIONS: `org/new` is not"):
        hub.pinned_revision("org/new")


def test_every_table_entry_is_a_commit_or_unset() -> None:
    for repo, revision in hub.HUB_REVISIONS.items():
        assert revision == "" or re.fullmatch(r"[0-9a-f]{40}", revision), repo
    for info in registry.DATASETS.values():
        if info.hf_repo:
            assert info.hf_repo in hub.HUB_REVISIONS, info.hf_repo


def test_dataset_download_passes_the_pinned_revision(
        downloads: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    info = registry.DATASETS["stp_sft"]
    monkeypatch.setitem(hub.HUB_REVISIONS, info.hf_repo, SHA_A)
    lines = dl.download_dataset(info, tmp_path)
    assert downloads[0]["revision"] == SHA_A and downloads[0]["repo_type"] == "dataset"
    assert lines == [f"stp_sft: {dl.hf_local_dir(info, tmp_path)} (Hugging Face dataset "
                     f"kfdong/STP_Lean_SFT at {SHA_A})"]


def test_models_open_the_pinned_snapshot_for_sampler_and_trainer(
        downloads: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = resolve_model_path(f"org/model@{SHA_A}")
    monkeypatch.setitem(hub.HUB_REVISIONS, "org/model", SHA_B)
    trainer = _resolve_model_path("org/model")
    assert [(c["repo_id"], c["revision"], c["repo_type"]) for c in downloads] == [
        ("org/model", SHA_A, "model"), ("org/model", SHA_B, "model")]
    assert Path(sampler).is_dir() and Path(trainer).is_dir()


def test_model_download_failure_is_one_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def offline(**kwargs: Any) -> str:
        raise OSError("Connection refused\nmore")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(UsageError, match=r"cannot download model org/m@a+ from the Hugging Face "
                                         r"Hub \(OSError: Connection refused\); are you offline\?"):
        resolve_model_path(f"org/m@{SHA_A}")
