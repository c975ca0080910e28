"""Locating Lake and our built checker, and refusing early (one line, exit 2) when they are absent.

Workers are launched as `lake env <abs path of the built exe>` from the workspace directory: `lake
env` sets LEAN_PATH so the checker finds Mathlib's oleans, without the rebuild check that `lake exe`
performs on every start (seconds per worker on a big workspace).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from stp.checkout import checkout_root
from stp.errors import UsageError
from stp.lean.config import LeanConfig

_ELAN_LAKE = Path("~/.elan/bin/lake")
# Names the Lake workspace when lean.project_dir is empty (e.g. a wheel install, or a second
# workspace with another pin).
PROJECT_ENV = "STP_LEAN_PROJECT"


def find_lake() -> str | None:
    """`lake` on PATH, else elan's default install location (shells that did not source elan's env)."""
    found = shutil.which("lake")
    if found:
        return found
    candidate = _ELAN_LAKE.expanduser()
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    return None


def project_dir_source(lean_cfg: LeanConfig) -> tuple[Path, str]:
    """The Lake workspace and what chose it (for error messages): lean.project_dir, else
    $STP_LEAN_PROJECT, else the checkout this package was installed from, else the cwd."""
    if lean_cfg.project_dir:
        return Path(lean_cfg.project_dir).expanduser().resolve(), "lean.project_dir"
    env = os.environ.get(PROJECT_ENV, "")
    if env:
        return Path(env).expanduser().resolve(), f"${PROJECT_ENV}"
    root = checkout_root()
    if root is not None:
        return root, "the checkout stp is installed from"
    return Path.cwd().resolve(), "the current directory; set lean.project_dir or $STP_LEAN_PROJECT"


def project_dir(lean_cfg: LeanConfig) -> Path:
    return project_dir_source(lean_cfg)[0]


def checker_exe(lean_cfg: LeanConfig) -> Path:
    return project_dir(lean_cfg) / lean_cfg.checker_exe


def checker_command(lean_cfg: LeanConfig) -> tuple[list[str], str | None]:
    """The argv and working directory of one checker worker.

    `lean.checker_command` when it is set (run from the current directory), else the built
    `stp_check` under `lake env` from the Lake workspace, which must exist: this is the one place
    that decides, and it raises the actionable one-line error when Lean is missing.
    """
    if lean_cfg.checker_command:
        return list(lean_cfg.checker_command), None
    require_lean(lean_cfg)
    lake = find_lake() or "lake"
    return [lake, "env", str(checker_exe(lean_cfg))], str(project_dir(lean_cfg))


def extractor_command(lean_cfg: LeanConfig) -> tuple[list[str], str]:
    """The argv and working directory of the built `stp_extract` (under `lake env`, like the
    checker), after the same one-line checks `require_lean` makes for the checker."""
    exe = project_dir(lean_cfg) / lean_cfg.extractor_exe
    require_lean(lean_cfg, exe, "extractor")
    return [find_lake() or "lake", "env", str(exe)], str(project_dir(lean_cfg))


def require_lean(lean_cfg: LeanConfig, exe: Path | None = None, what: str = "checker") -> None:
    """Raise UsageError with one actionable line when the checker (or `exe`, the built program
    named `what`) cannot be started."""
    root, source = project_dir_source(lean_cfg)
    if find_lake() is None:
        raise UsageError(
            f"Lean not found: install elan (scripts/setup.sh) and run `lake build` in {root} "
            f"(the Lean project, from {source})"
        )
    if not any((root / name).is_file() for name in ("lakefile.lean", "lakefile.toml")):
        raise UsageError(
            f"no Lake workspace at {root} (from {source}): point lean.project_dir or "
            f"${PROJECT_ENV} at the directory holding lakefile.lean"
        )
    exe = exe or checker_exe(lean_cfg)
    if not exe.is_file():
        raise UsageError(f"{what} not built ({exe} missing): run `lake build` in {root} "
                         f"(the Lean project, from {source})")


# Variables `lake env` sets that a sandboxed checker must not take from the driver even if they
# happen to be equal there (Lean finds its oleans and its sysroot through them).
LAKE_ENV_VARIABLES = ("LEAN_PATH", "LEAN_SYSROOT", "LEAN_SRC_PATH", "LAKE", "LAKE_HOME",
                      "LEAN_GITHASH", "ELAN_TOOLCHAIN", "LD_LIBRARY_PATH", "PATH")
_lake_env_cache: dict[tuple[str, str], dict[str, str]] = {}


def lake_environment(lake: str, root: Path) -> dict[str, str]:
    """The variables `lake env` adds or changes for programs of the workspace at `root`.

    A sandboxed checker is exec'd directly with these (instead of under `lake env`, which spawns
    the program as a child: the sandbox's seccomp filter allows no process creation). `LEAN_SYSROOT`
    must be among them, else Lean's `findSysroot` would spawn `lean --print-prefix`; it is asked
    of `lake env lean --print-prefix` when Lake does not set it. Computed once per workspace and
    process, outside the sandbox, from trusted files only (the lakefile and the toolchain)."""
    key = (lake, str(root))
    cached = _lake_env_cache.get(key)
    if cached is not None:
        return dict(cached)
    env_program = shutil.which("env") or "/usr/bin/env"
    out = _run_lake(lake, root, [env_program, "-0"])
    found: dict[str, str] = {}
    for entry in out.split(b"\0"):
        name, sep, value = entry.decode("utf-8", "surrogateescape").partition("=")
        if not sep:
            continue
        if os.environ.get(name) != value or name in LAKE_ENV_VARIABLES:
            found[name] = value
    if "LEAN_PATH" not in found:
        raise UsageError(f"`{lake} env` in {root} set no LEAN_PATH: is it a Lake workspace?")
    if "LEAN_SYSROOT" not in found:
        prefix = _run_lake(lake, root, ["lean", "--print-prefix"]).decode().strip()
        if not prefix:
            raise UsageError(f"`{lake} env lean --print-prefix` in {root} printed nothing")
        found["LEAN_SYSROOT"] = prefix
    _lake_env_cache[key] = found
    return dict(found)


def _run_lake(lake: str, root: Path, command: list[str]) -> bytes:
    try:
        done = subprocess.run([lake, "env", *command], cwd=root, capture_output=True,
                              timeout=600, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise UsageError(f"cannot run `{lake} env` in {root}: {err}") from err
    if done.returncode != 0:
        tail = done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or [""]
        raise UsageError(f"`{lake} env {command[0]}` in {root} failed "
                         f"(exit {done.returncode}): {tail[0]}")
    return done.stdout
