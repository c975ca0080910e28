"""Shared fixtures and the skip policy: only `lean` and `gpu` tests may skip, with a reason."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The benchmark files live beside the checkout (../shared/data), never inside it.
SHARED_DATA = Path(os.environ.get("STP_TEST_DATA_DIR", REPO_ROOT.parent / "shared" / "data"))


def _gpu_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lake = shutil.which("lake")
    skip_lean = pytest.mark.skip(
        reason="needs Lean: `lake` is not on PATH (install elan, then `lake build` at the repo root)"
    )
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU with vLLM installed (pip install 'stp[gpu]')")
    has_gpu = _gpu_available()
    for item in items:
        # The marker, not `item.keywords`: keywords also hold every directory name on the path,
        # so a checkout in a directory called `lean` (or `gpu`) would skip its whole suite.
        if item.get_closest_marker("lean") is not None and lake is None:
            item.add_marker(skip_lean)
        if item.get_closest_marker("gpu") is not None and not has_gpu:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The public benchmark files (../shared/data); their absence is an error, not a skip."""
    if not SHARED_DATA.is_dir():
        raise FileNotFoundError(
            f"benchmark data not found at {SHARED_DATA}; set STP_TEST_DATA_DIR to the shared/data folder"
        )
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_data_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> None:
    """Every test sees the shared data through STP_DATA_DIR, as users configure it."""
    monkeypatch.setenv("STP_DATA_DIR", str(data_dir))
