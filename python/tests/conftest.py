"""Shared fixtures and the skip policy: only `lean` and `gpu` tests may skip, with a reason."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
# The benchmark files ship with the repository (data/benchmarks/, see its SOURCES.md).
BENCHMARK_DIR = REPO_ROOT / "data" / "benchmarks"


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
    skip_gpu = pytest.mark.skip(reason="needs a CUDA GPU with vLLM installed (pip install 'stp-prover[gpu]')")
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
    """The benchmark files shipped in the checkout; their absence is an error, not a skip."""
    if not BENCHMARK_DIR.is_dir():
        raise FileNotFoundError(f"shipped benchmark data missing at {BENCHMARK_DIR}")
    return BENCHMARK_DIR


@pytest.fixture(scope="session")
def _empty_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stp-data-dir")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One tiny random checkpoint (`stp.model.tiny`) shared by every test of the session.

    It is deterministic, so sharing changes nothing but the time spent creating it; tests read it
    and write their outputs elsewhere, never into it."""
    from stp.model.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(autouse=True)
def _isolated_data_env(monkeypatch: pytest.MonkeyPatch, _empty_data_dir: Path) -> None:
    """STP_DATA_DIR is an empty folder, as on a fresh machine: benchmarks come from the
    checkout's shipped files and nothing is read from the user's ~/.cache/stp/data."""
    monkeypatch.setenv("STP_DATA_DIR", str(_empty_data_dir))
