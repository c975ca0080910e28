"""What a fresh clone relies on: the developer set-up script, packaging, shipped configs that need
no cluster, and the Lean project found from any directory."""

from __future__ import annotations

import os
import subprocess
import tomllib
from pathlib import Path

import pytest

from stp.checkout import checkout_root
from stp.config import STPConfig, load_config
from stp.lean import toolchain
from stp.lean.config import LeanConfig

REPO = Path(__file__).resolve().parents[2]
DEV_SETUP = REPO / "scripts" / "dev-setup.sh"

# A stand-in interpreter for the venv: answers the few calls dev-setup.sh makes and records every
# pip command, so the index probe and the torch choice are tested without network.
FAKE_PYTHON = r"""#!/bin/bash
case "$1" in
  --version) echo "Python 3.11.7"; exit 0 ;;
  -c) case "$2" in *torch*) echo "    torch (fake)";; *version_info*) echo "${FAKE_PY_VERSION:-3.11}";; esac; exit 0 ;;
  -) exit "${FAKE_PROBE_RC:-1}" ;;
  -m)
    if [[ "$2 $3 $4" == "pip index versions" ]]; then
      echo "torch (2.15.0)"; echo "Available versions: $FAKE_TORCH_VERSIONS"; exit 0
    fi
    if [[ "$2 $3" == "pip install" ]]; then
      echo "pip $*" >> "$FAKE_CALLS"
      prev=""
      for a in "$@"; do
        [[ "$prev" == "-c" ]] && cat "$a" > "$FAKE_CALLS.constraints"
        prev="$a"
      done
      exit 0
    fi ;;
esac
exit 0
"""


def _dev_setup(tmp_path: Path, probe_rc: int, versions: str, bwrap: str = "exit 0",
               python_version: str = "3.11") -> subprocess.CompletedProcess[str]:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"
    fake.write_text(FAKE_PYTHON)
    fake.chmod(0o755)
    stubs = tmp_path / "stubs"  # a stand-in bwrap: the sandbox check is tested on its own
    stubs.mkdir()
    (stubs / "bwrap").write_text("#!/bin/sh\n" + bwrap + "\n")
    (stubs / "bwrap").chmod(0o755)
    env = {**os.environ, "PYTHON": str(fake), "FAKE_PROBE_RC": str(probe_rc),
           "FAKE_TORCH_VERSIONS": versions, "FAKE_CALLS": str(tmp_path / "calls"),
           "STP_TORCH_INDEX": "https://cpu-index.invalid/whl/cpu",
           "PATH": f"{stubs}:{os.environ['PATH']}", "FAKE_PY_VERSION": python_version}
    return subprocess.run(["bash", str(DEV_SETUP), "--venv", str(venv)], capture_output=True,
                          text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)


def _lock_torch() -> str:
    lines = (REPO / "constraints" / "cpu-test.txt").read_text().splitlines()
    return next(line.split("==")[1] for line in lines if line.startswith("torch=="))


def test_dev_setup_uses_the_cpu_index_when_it_answers(tmp_path: Path) -> None:
    proc = _dev_setup(tmp_path, probe_rc=0, versions="2.15.0, 2.13.0+cpu")
    assert proc.returncode == 0, proc.stderr
    calls = (tmp_path / "calls").read_text().splitlines()
    torch = _lock_torch()
    assert f"torch=={torch} --extra-index-url https://cpu-index.invalid/whl/cpu" in calls[0]
    assert "constraints/cpu-test.txt" in calls[0]
    assert calls[1].endswith(f"-e {REPO}[test] --progress-bar off")
    assert f"torch=={torch}" in (tmp_path / "calls.constraints").read_text()


def test_dev_setup_falls_back_without_the_index_and_keeps_a_cpu_build(tmp_path: Path) -> None:
    """Index unreachable: it is never passed to pip (no retries), the newest +cpu build the
    configured indexes hold is taken, and the rest of the lock still applies."""
    proc = _dev_setup(tmp_path, probe_rc=1, versions="2.15.0, 2.14.1, 2.13.0+cpu, 2.11.0")
    assert proc.returncode == 0, proc.stderr
    assert "does not answer; using the configured pip indexes only" in proc.stdout
    calls = (tmp_path / "calls").read_text()
    assert "cpu-index.invalid" not in calls
    assert "torch==2.13.0+cpu" in calls.splitlines()[0]
    pins = [line for line in (tmp_path / "calls.constraints").read_text().splitlines()
            if not line.startswith("#")]
    assert not [p for p in pins if p.startswith("torch==")]
    assert "transformers==4.57.6" in pins


def test_dev_setup_refuses_when_only_cuda_builds_are_reachable(tmp_path: Path) -> None:
    proc = _dev_setup(tmp_path, probe_rc=1, versions="2.15.0, 2.14.1, 2.11.0")
    if os.uname().sysname != "Linux":
        pytest.fail("this check is written for Linux, where PyPI's torch wheels are CUDA builds")
    assert proc.returncode == 1
    assert "no CPU build of torch is reachable" in proc.stderr
    assert not (tmp_path / "calls").exists()


def test_dev_setup_installs_python_then_fails_on_a_broken_bwrap(tmp_path: Path) -> None:
    """A sandbox problem does not stop the Python install, but the command fails with its line,
    so `dev-setup && pytest` never runs tests that need bwrap without it."""
    proc = _dev_setup(tmp_path, probe_rc=0, versions="", bwrap="echo 'bwrap: No permissions' >&2; exit 1")
    assert proc.returncode == 1
    assert len((tmp_path / "calls").read_text().splitlines()) == 2  # torch, then the package
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("bubblewrap: ") and "No permissions" in last
    assert "is ready, but the sandbox tests will fail until this is fixed" in proc.stderr
    assert "done:" not in proc.stdout
    assert "note: constraints/cpu-test.txt is resolved for Python" not in proc.stdout


def test_dev_setup_notes_a_python_the_lock_was_not_resolved_for(tmp_path: Path) -> None:
    proc = _dev_setup(tmp_path, probe_rc=0, versions="", python_version="3.14")
    assert proc.returncode == 0, proc.stderr
    assert "note: constraints/cpu-test.txt is resolved for Python 3.11, 3.12, 3.13, not 3.14" \
        in proc.stdout


def test_readme_and_ci_use_the_dev_setup_script() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "bash scripts/dev-setup.sh && .venv/bin/python -m pytest -q" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert 'bash "$REPO/scripts/dev-setup.sh"' in ci
    assert "apt-get install" not in ci  # bubblewrap comes from dev-setup, as for a developer
    assert '"$VENV/bin/python" scripts/locks.py check' in ci
    assert 'scripts/locks.py tested-versions --check --python "$VENV/bin/python"' in ci
    assert os.access(DEV_SETUP, os.X_OK)


def test_packaging_metadata() -> None:
    """The wheel holds only `stp` (setuptools' own discovery with our settings) and the SPDX
    licence with its file."""
    from setuptools import find_packages

    meta = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    find = meta["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(where=str(REPO / find["where"][0]), include=find["include"])
    assert packages and all(p == "stp" or p.startswith("stp.") for p in packages)
    assert "stp.data" in packages and "tests" not in packages
    assert meta["project"]["license"] == "MIT"
    assert meta["project"]["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License")


def test_shipped_configs_need_no_started_cluster() -> None:
    for path in sorted((REPO / "configs").glob("*.toml")):
        cfg: STPConfig = load_config(path)
        assert cfg.cluster.address == "", f"{path.name}: a cluster must be opt-in"
        assert cfg.lean.project_dir == "", f"{path.name}: project_dir must follow the checkout"


def test_lean_project_found_from_any_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(toolchain.PROJECT_ENV, raising=False)
    assert checkout_root() == REPO
    assert toolchain.project_dir_source(LeanConfig()) == (
        REPO, "the checkout stp is installed from")
    monkeypatch.setenv(toolchain.PROJECT_ENV, str(tmp_path / "ws"))
    assert toolchain.project_dir_source(LeanConfig()) == (tmp_path / "ws", "$STP_LEAN_PROJECT")
    explicit = LeanConfig(project_dir=str(tmp_path / "cfg"))
    assert toolchain.project_dir_source(explicit) == (tmp_path / "cfg", "lean.project_dir")


def test_missing_workspace_error_says_where_it_looked(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from stp.errors import UsageError

    lake = tmp_path / "bin" / "lake"
    lake.parent.mkdir()
    lake.write_text("#!/bin/sh\nexit 0\n")
    lake.chmod(0o755)
    monkeypatch.setenv("PATH", str(lake.parent))
    monkeypatch.setenv(toolchain.PROJECT_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(UsageError, match=r"no Lake workspace at .*nowhere \(from \$STP_LEAN_PROJECT\)"):
        toolchain.require_lean(LeanConfig())


def test_engine_plan_uses_tpus_when_the_cluster_has_no_gpu() -> None:
    """TPU sampling: the vLLM engine pool requests TPU chips on a TPU-only Ray cluster."""
    from stp.errors import UsageError
    from stp.model.sampling.ray_pool import engine_plan

    assert engine_plan({"CPU": 96, "GPU": 8}, 2, 0) == ("GPU", 4)
    assert engine_plan({"CPU": 96, "TPU": 8}, 4, 0) == ("TPU", 2)
    assert engine_plan({"CPU": 96, "TPU": 8, "GPU": 1}, 1, 0) == ("GPU", 1)
    with pytest.raises(UsageError, match=r"need 16 TPUs, the Ray cluster has 8"):
        engine_plan({"TPU": 8}, 8, 2)
    with pytest.raises(UsageError, match=r"need 1 GPUs, the Ray cluster has 0"):
        engine_plan({"CPU": 4}, 1, 0)
