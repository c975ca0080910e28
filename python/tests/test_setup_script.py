"""scripts/setup.sh and .ci/run: the parts that can run without network or Lean."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SETUP = REPO / "scripts" / "setup.sh"
TOOLCHAIN = "leanprover/lean4:v4.9.0-rc1"


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A minimal checkout holding the script and a lean-toolchain file."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(SETUP, tmp_path / "scripts" / "setup.sh")
    (tmp_path / "lean-toolchain").write_text(TOOLCHAIN + "\n")
    return tmp_path


def _run(script: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env=env)


@pytest.mark.parametrize("script", [SETUP, REPO / ".ci" / "run"], ids=["setup.sh", "ci-run"])
def test_scripts_parse(script: Path) -> None:
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert os.access(script, os.X_OK)


def test_dry_run_lists_every_step_in_order(checkout: Path) -> None:
    proc = _run(checkout / "scripts" / "setup.sh", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    expected = [
        "elan-init.sh -y --default-toolchain none",
        f"elan toolchain install {TOOLCHAIN}",
        "lake exe cache get",
        "lake build",
        "-m venv",
        'pip install -e .[cluster,train,gpu]',
    ]
    positions = [out.find(text) for text in expected]
    assert -1 not in positions, out
    assert positions == sorted(positions)
    assert not (checkout / ".venv").exists()  # a dry run changes nothing


def test_profiles_choose_extras(checkout: Path) -> None:
    cpu = _run(checkout / "scripts" / "setup.sh", "--dry-run", "--cpu", "--skip-lean").stdout
    assert "pip install -e .[cluster,train,hf]" in cpu
    assert "download.pytorch.org/whl/cpu torch" in cpu  # CPU torch before the package
    assert "lake build" not in cpu
    tpu = _run(checkout / "scripts" / "setup.sh", "--dry-run", "--tpu", "--skip-lean").stdout
    assert "pip install -e .[cluster,train,tpu]" in tpu
    custom = _run(checkout / "scripts" / "setup.sh", "--dry-run", "--extras", "plots",
                  "--skip-lean").stdout
    assert "pip install -e .[plots]" in custom


def test_unknown_option_and_missing_toolchain_file(checkout: Path) -> None:
    proc = _run(checkout / "scripts" / "setup.sh", "--frobnicate")
    assert proc.returncode == 2 and "unknown option --frobnicate" in proc.stderr
    (checkout / "lean-toolchain").unlink()
    proc = _run(checkout / "scripts" / "setup.sh", "--dry-run")
    assert proc.returncode == 1
    assert "lean-toolchain is missing" in proc.stderr


def test_no_network_fails_with_a_clear_message(checkout: Path, tmp_path: Path) -> None:
    """Without network the elan download fails: one clear error, no half-done later steps."""
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    curl = stubs / "curl"
    curl.write_text("#!/bin/sh\necho 'curl: (6) Could not resolve host' >&2\nexit 6\n")
    curl.chmod(0o755)
    git = stubs / "git"
    git.write_text("#!/bin/sh\nexit 0\n")
    git.chmod(0o755)
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    proc = _run(checkout / "scripts" / "setup.sh", env=env)
    assert proc.returncode == 1
    assert "step 2 failed: could not download elan-init.sh" in proc.stderr
    assert "check the network connection" in proc.stderr
    assert "lake build" not in proc.stdout


def test_missing_python_is_named(checkout: Path) -> None:
    proc = _run(checkout / "scripts" / "setup.sh", "--skip-lean", "--python", "python9.99-nope")
    assert proc.returncode == 1
    assert "'python9.99-nope' is not installed" in proc.stderr
