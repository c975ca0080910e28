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
    (tmp_path / "scripts" / "lib").mkdir(parents=True)
    shutil.copy(SETUP, tmp_path / "scripts" / "setup.sh")
    shutil.copy(REPO / "scripts" / "lib" / "bubblewrap.sh", tmp_path / "scripts" / "lib")
    (tmp_path / "lean-toolchain").write_text(TOOLCHAIN + "\n")
    return tmp_path


def _run(script: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(script), *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env=env)


@pytest.mark.parametrize("script", [SETUP, REPO / ".ci" / "run"], ids=["setup.sh", "ci-run"])
def test_scripts_parse(script: Path) -> None:
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    assert os.access(script, os.X_OK)


def _stubs(tmp_path: Path, **scripts: str) -> dict[str, str]:
    """An environment whose PATH holds only the given stub commands and the system basics."""
    stubs = tmp_path / "stubs"
    stubs.mkdir(exist_ok=True)
    for name, body in scripts.items():
        path = stubs / name.replace("_", "-")
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
    return {"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(tmp_path / "home")}


def test_dry_run_lists_every_step_in_order(checkout: Path) -> None:
    proc = _run(checkout / "scripts" / "setup.sh", "--dry-run", "--gpu")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    expected = [
        "elan-init.sh -y --default-toolchain none",
        f"elan toolchain install {TOOLCHAIN}",
        "lake exe cache get",
        "lake build",
        "lake env lean",  # the real check that Mathlib is usable
        "-m venv",
        "pip install -c constraints/gpu.txt -e .[cluster,train,gpu]",
        "python -m stp.pipeline --config configs/stp-7b.toml",
    ]
    positions = [out.find(text) for text in expected]
    assert -1 not in positions, out
    assert positions == sorted(positions)
    assert "expect (estimate)" in out  # the Mathlib download comes with a size/time expectation
    assert not (checkout / ".venv").exists()  # a dry run changes nothing


def test_help_prints_the_usage_only(checkout: Path) -> None:
    proc = _run(checkout / "scripts" / "setup.sh", "--help")
    assert proc.returncode == 0
    assert "Options:" in proc.stdout and "--dry-run" in proc.stdout
    assert "set -euo pipefail" not in proc.stdout
    assert "#!/usr/bin/env" not in proc.stdout


def test_default_profile_follows_nvidia_smi(checkout: Path, tmp_path: Path) -> None:
    """No nvidia-smi: the default installs the CPU stack, never the GPU one, and says why."""
    env = _stubs(tmp_path)
    out = _run(checkout / "scripts" / "setup.sh", "--dry-run", "--skip-lean", env=env).stdout
    assert "no nvidia-smi on this machine: CPU profile" in out
    assert "-e .[cluster,train,hf]" in out and "gpu" not in out.split("Next:")[0].split("profile")[1]
    assert "configs/tiny-cpu.toml" in out.split("Next:")[1]
    env = _stubs(tmp_path, nvidia_smi="exit 0")
    out = _run(checkout / "scripts" / "setup.sh", "--dry-run", "--skip-lean", env=env).stdout
    assert "-e .[cluster,train,gpu]" in out and "no nvidia-smi" not in out
    assert "configs/stp-7b.toml" in out.split("Next:")[1]


def test_profiles_choose_extras(checkout: Path) -> None:
    cpu = _run(checkout / "scripts" / "setup.sh", "--dry-run", "--cpu", "--skip-lean").stdout
    assert "pip install -c constraints/cpu-test.txt -e .[cluster,train,hf]" in cpu
    assert "download.pytorch.org/whl/cpu torch" in cpu  # CPU torch before the package
    assert "lake build" not in cpu
    assert "--config configs/tiny-cpu.toml" in cpu.split("Next:")[1]
    tpu = _run(checkout / "scripts" / "setup.sh", "--dry-run", "--tpu", "--skip-lean").stdout
    assert ("pip install -c constraints/tpu.txt --extra-index-url "
            "https://download.pytorch.org/whl/cpu -e .[cluster,train,tpu]") in tpu
    assert "on TPU: vllm-tpu samples" in tpu.split("Next:")[1]
    custom = _run(checkout / "scripts" / "setup.sh", "--dry-run", "--extras", "plots",
                  "--skip-lean").stdout
    assert "pip install -e .[plots]" in custom


def test_reused_venv_with_old_python_is_refused(checkout: Path, tmp_path: Path) -> None:
    venv = tmp_path / "oldvenv"
    (venv / "bin").mkdir(parents=True)
    fake = venv / "bin" / "python"
    # Answers like a Python 3.10: --version prints it, the version check exits 1.
    fake.write_text('#!/bin/sh\n[ "$1" = "--version" ] && { echo "Python 3.10.12"; exit 0; }\n'
                    "exit 1\n")
    fake.chmod(0o755)
    proc = _run(checkout / "scripts" / "setup.sh", "--skip-lean", "--cpu", "--venv", str(venv))
    assert proc.returncode == 1
    assert f"{venv} holds Python 3.10.12; Python >= 3.11 is required" in proc.stderr
    assert "pip install" not in proc.stdout


LEAN_STUBS = {
    "curl": "exit 0",
    "git": "exit 0",
    "elan": 'echo "elan 3.1.1"; exit 0',
    "bwrap": "exit 0",
}


def test_mathlib_cache_without_files_for_the_commit(checkout: Path, tmp_path: Path) -> None:
    """`lake exe cache get` exits 0 when the server lacks files: setup must not say done."""
    lake = ('[ "$1 $2 $3" = "exe cache get" ] && { '
            'echo "Warning: some files were not found in the cache."; exit 0; }\n'
            'echo "lake $*" >> "$HOME/lake.calls"; exit 0')
    env = _stubs(tmp_path, lake=lake, **LEAN_STUBS)
    proc = _run(checkout / "scripts" / "setup.sh", "--skip-python", env=env)
    assert proc.returncode == 1
    assert "the Mathlib cache has no prebuilt files for the pinned commit" in proc.stderr
    assert "not a network problem" in proc.stderr and "takes hours" in proc.stderr
    assert not (tmp_path / "home" / "lake.calls").exists()  # nothing built after it


def test_unusable_mathlib_fails_the_setup(checkout: Path, tmp_path: Path) -> None:
    lake = ('[ "$1 $2" = "env lean" ] && { echo "error: object file '
            '.lake/packages/mathlib/.lake/build/lib/Mathlib.olean does not exist" >&2; exit 1; }'
            '\nexit 0')
    env = _stubs(tmp_path, lake=lake, **LEAN_STUBS)
    proc = _run(checkout / "scripts" / "setup.sh", "--skip-python", env=env)
    assert proc.returncode == 1
    assert "step 7 failed: Mathlib is not usable" in proc.stderr
    assert "setup: done" not in proc.stdout
    ok = _stubs(tmp_path, lake="exit 0", **LEAN_STUBS)
    proc = _run(checkout / "scripts" / "setup.sh", "--skip-python", env=ok)
    assert proc.returncode == 0, proc.stderr
    assert "setup: done. Next:" in proc.stdout


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
    for name in ("git", "bwrap"):
        (stubs / name).write_text("#!/bin/sh\nexit 0\n")
        (stubs / name).chmod(0o755)
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    proc = _run(checkout / "scripts" / "setup.sh", env=env)
    assert proc.returncode == 1
    assert "step 4 failed: could not download elan-init.sh" in proc.stderr
    assert "check the network connection" in proc.stderr
    assert "lake build" not in proc.stdout


def test_missing_python_is_named(checkout: Path) -> None:
    proc = _run(checkout / "scripts" / "setup.sh", "--skip-lean", "--python", "python9.99-nope")
    assert proc.returncode == 1
    assert "'python9.99-nope' is not installed" in proc.stderr


# --- bubblewrap (scripts/lib/bubblewrap.sh, used by dev-setup.sh and setup.sh) -------------------

BWRAP_LIB = REPO / "scripts" / "lib" / "bubblewrap.sh"
BASE_TOOLS = ("uname", "mktemp", "tail", "rm", "cat", "head")


def _bwrap_env(tmp_path: Path, uid: int, proc_sys: dict[str, str] | None = None,
               **scripts: str) -> dict[str, str]:
    """PATH = stub commands + only the basic tools the library uses (so this machine's own bwrap
    and apt-get are invisible); `id -u` answers `uid`; STP_PROC_SYS is a fake /proc/sys."""
    env = _stubs(tmp_path, id=f"echo {uid}", **scripts)
    base = tmp_path / "base"
    base.mkdir(exist_ok=True)
    for tool in BASE_TOOLS:
        found = shutil.which(tool)
        assert found, tool
        if not (base / tool).exists():
            (base / tool).symlink_to(found)
    sys_dir = tmp_path / "proc-sys"
    for rel, value in (proc_sys or {}).items():
        (sys_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        (sys_dir / rel).write_text(value + "\n")
    env["PATH"] = f"{tmp_path / 'stubs'}:{base}"
    env["STP_PROC_SYS"] = str(sys_dir)
    return env


def _bwrap_setup(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    bash = shutil.which("bash")
    assert bash
    return subprocess.run([bash, "-c", f'source "{BWRAP_LIB}"; stp_bwrap_setup "$@"', "x", *args],
                          capture_output=True, text=True, env=env, timeout=60,
                          stdin=subprocess.DEVNULL)


def test_bwrap_is_installed_with_apt_as_root_then_checked(tmp_path: Path) -> None:
    stubs = tmp_path / "stubs"
    apt = (f'echo "apt-get $*" >> "{tmp_path}/apt.calls"\n'
           f'case "$*" in *install*) printf \'#!/bin/sh\\necho "bwrap $*" >> {tmp_path}/bwrap.calls\\n\''
           f' > "{stubs}/bwrap"; /bin/chmod +x "{stubs}/bwrap";; esac')
    env = _bwrap_env(tmp_path, 0, apt_get=apt)
    proc = _bwrap_setup(env)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "apt.calls").read_text().splitlines() == [
        "apt-get update -qq", "apt-get install -y -qq bubblewrap"]
    probe = (tmp_path / "bwrap.calls").read_text()
    for flag in ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--tmpfs /tmp", "true"):
        assert flag in probe  # the namespaces the sandbox needs, actually started
    assert "bwrap works" in proc.stdout


def test_bwrap_missing_without_root_names_the_command(tmp_path: Path) -> None:
    env = _bwrap_env(tmp_path, 1000, apt_get=f'echo called > "{tmp_path}/apt.calls"')
    proc = _bwrap_setup(env)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [
        "bubblewrap: bwrap is not installed (the checker sandbox and its tests need it); "
        "install it with: sudo apt-get install bubblewrap"]
    assert not (tmp_path / "apt.calls").exists()
    (tmp_path / "fedora").mkdir()
    env = _bwrap_env(tmp_path / "fedora", 1000, dnf="exit 0")
    assert "install it with: sudo dnf install bubblewrap" in _bwrap_setup(env).stderr


def test_apt_failure_is_shown(tmp_path: Path) -> None:
    env = _bwrap_env(tmp_path, 0, apt_get='echo "E: Unable to locate package bubblewrap" >&2; exit 100')
    proc = _bwrap_setup(env)
    assert proc.returncode == 1
    assert "E: Unable to locate package bubblewrap" in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "bubblewrap: apt-get could not install bubblewrap")


FAILING_BWRAP = 'echo "bwrap: setting up uid map: Permission denied" >&2; exit 1'


def test_apparmor_userns_restriction_is_recognised_and_its_fix_named(tmp_path: Path) -> None:
    env = _bwrap_env(tmp_path, 1000, {"kernel/apparmor_restrict_unprivileged_userns": "1"},
                     bwrap=FAILING_BWRAP)
    proc = _bwrap_setup(env)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "AppArmor restricts them for unprivileged users" in lines[0]
    assert "kernel.apparmor_restrict_unprivileged_userns = 1" in lines[0]
    assert f"profile bwrap {tmp_path}/stubs/bwrap flags=(unconfined)" in lines[0]
    assert "userns," in lines[0] and "sudo apparmor_parser -r /etc/apparmor.d/bwrap" in lines[0]
    assert "Permission denied" in lines[0]  # bwrap's own words too


def test_other_userns_switches_and_unknown_failures(tmp_path: Path) -> None:
    env = _bwrap_env(tmp_path, 1000, {"kernel/apparmor_restrict_unprivileged_userns": "0",
                                      "kernel/unprivileged_userns_clone": "0"},
                     bwrap=FAILING_BWRAP)
    assert "sudo sysctl -w kernel.unprivileged_userns_clone=1" in _bwrap_setup(env).stderr
    (tmp_path / "other").mkdir()
    env = _bwrap_env(tmp_path / "other", 0, {"kernel/apparmor_restrict_unprivileged_userns": "1"},
                     bwrap=FAILING_BWRAP)
    proc = _bwrap_setup(env)  # root is not subject to the AppArmor userns rule: not blamed
    assert proc.returncode == 1 and "AppArmor" not in proc.stderr
    assert "is installed but cannot start the sandbox: bwrap: setting up uid map" in proc.stderr


def test_bwrap_on_this_machine_starts_the_sandbox() -> None:
    """The real check, with the real bwrap (the sandbox tests need it here too)."""
    bash = shutil.which("bash")
    assert bash and shutil.which("bwrap"), "bubblewrap must be installed (scripts/dev-setup.sh)"
    proc = subprocess.run([bash, "-c", f'source "{BWRAP_LIB}"; stp_bwrap_setup'],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "bwrap works" in proc.stdout


# --- setup.sh diagnoses: Python first, pip's own error, the NVIDIA driver, bubblewrap ------------


def test_python_is_checked_before_the_lean_steps(checkout: Path, tmp_path: Path) -> None:
    old = tmp_path / "python3.10"
    old.write_text('#!/bin/sh\n[ "$1" = "--version" ] && { echo "Python 3.10.12"; exit 0; }\nexit 1\n')
    old.chmod(0o755)
    env = _stubs(tmp_path, curl=f'echo called > "{tmp_path}/curl.calls"', **{
        k: v for k, v in LEAN_STUBS.items() if k != "curl"})
    proc = _run(checkout / "scripts" / "setup.sh", "--python", str(old), env=env)
    assert proc.returncode == 1
    assert "step 1 failed: Python >= 3.11 is required, found Python 3.10.12" in proc.stderr
    assert not (tmp_path / "curl.calls").exists()  # no Lean download before the Python check
    assert "elan" not in proc.stdout


def _fake_venv(tmp_path: Path, pip_body: str) -> Path:
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    python = venv / "bin" / "python"
    python.write_text('#!/bin/sh\n[ "$1" = "--version" ] && { echo "Python 3.11.7"; exit 0; }\n'
                      '[ "$1" = "-m" ] && [ "$2" = "pip" ] && { ' + pip_body + '; }\nexit 0\n')
    python.chmod(0o755)
    return venv


def test_pip_failure_shows_pips_own_error(checkout: Path, tmp_path: Path) -> None:
    venv = _fake_venv(tmp_path, 'echo "Looking in indexes: https://pypi.org/simple"; '
                      'echo "ERROR: Could not find a version that satisfies the requirement '
                      'torch==2.13.0 (from versions: none)" >&2; '
                      'echo "ERROR: No matching distribution found for torch==2.13.0" >&2; exit 1')
    proc = _run(checkout / "scripts" / "setup.sh", "--skip-lean", "--cpu", "--venv", str(venv))
    assert proc.returncode == 1
    reason = proc.stderr.strip().splitlines()[-1]
    assert reason.startswith("setup: step 3 failed: installing torch failed: pip said: ERROR: ")
    assert "No matching distribution found for torch==2.13.0" in reason
    assert "check the network" not in proc.stderr
    (tmp_path / "b").mkdir()
    venv_ok = _fake_venv(tmp_path / "b", "exit 0")
    proc = _run(checkout / "scripts" / "setup.sh", "--skip-lean", "--cpu", "--venv", str(venv_ok))
    assert proc.returncode == 0, proc.stderr
    assert "python -m stp.pipeline --config configs/tiny-cpu.toml" in proc.stdout


@pytest.mark.parametrize(("smi", "ok", "message"), [
    ('echo "580.65.06, NVIDIA H100 80GB HBM3"', True, "driver 580.65.06 (NVIDIA H100 80GB HBM3): CUDA 13 OK"),
    ('echo "590.44.01, NVIDIA B200"', True, "driver 590.44.01 (NVIDIA B200): CUDA 13 OK"),
    ('echo "580.9.1, NVIDIA A100"', False, "NVIDIA driver 580.9.1 is older than 580.65.06"),
    ('echo "535.104.05, NVIDIA A100-SXM4-80GB"', False,
     "NVIDIA driver 535.104.05 is older than 580.65.06, the minimum for the CUDA 13 builds"),
    ('echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9',
     False, "nvidia-smi cannot read the driver version (exit 9): NVIDIA-SMI has failed because it "
     "couldn't communicate with the NVIDIA driver."),
])
def test_nvidia_driver_is_checked_against_cuda_13(checkout: Path, tmp_path: Path, smi: str,
                                                  ok: bool, message: str) -> None:
    venv = _fake_venv(tmp_path, 'echo "pip $*" >> "$HOME/pip.calls"; exit 0')
    env = _stubs(tmp_path, nvidia_smi=smi)
    (tmp_path / "home").mkdir()
    proc = _run(checkout / "scripts" / "setup.sh", "--skip-lean", "--venv", str(venv), env=env)
    assert (proc.returncode == 0) == ok, proc.stderr
    out = proc.stdout if ok else proc.stderr
    assert message in out
    if ok:
        assert "-c constraints/gpu.txt" in (tmp_path / "home" / "pip.calls").read_text()
    else:
        assert "step 2 failed" in proc.stderr and not (tmp_path / "home" / "pip.calls").exists()


def test_broken_bubblewrap_stops_setup_before_the_lean_downloads(checkout: Path,
                                                                  tmp_path: Path) -> None:
    stubs = {**LEAN_STUBS, "bwrap": 'echo "bwrap: No permissions to create new namespace" >&2; exit 1',
             "curl": f'echo called > "{tmp_path}/curl.calls"'}
    env = _stubs(tmp_path, **stubs)
    proc = _run(checkout / "scripts" / "setup.sh", "--skip-python", env=env)
    assert proc.returncode == 1
    assert ("step 1 failed: /" in proc.stderr and "stubs/bwrap is installed but cannot start the "
            "sandbox: bwrap: No permissions to create new namespace") in proc.stderr
    assert not (tmp_path / "curl.calls").exists()
