"""Run checker workers under bubblewrap, and the default address-space cap.

Proof text and conjectured statements are adversarial. Lean elaborates them, and elaboration can
run code (tactic configurations, `eval%`-style terms, ...) that the Lean-side gate tries to reject;
the sandbox is the layer that holds when the gate misses one. Each worker runs as

    bwrap --ro-bind <system dirs> --ro-bind <toolchain> --ro-bind <workspace> --tmpfs /tmp
          --proc /proc --dev /dev --unshare-net --unshare-pid --unshare-ipc --unshare-uts
          --die-with-parent --new-session --clearenv --setenv PATH ... --chdir <dir> -- <command>

so code running inside it cannot write the project tree, the run directories or the checker binary
(everything but a private /tmp is read-only or absent), reach the network, see the driver's
environment (secrets, tokens) or other processes, or outlive the pool. `verifier.sandbox`:
"auto" runs the built checker under bwrap where bwrap is installed (one warning where not) and a
custom `lean.checker_command` as is (we cannot know which files a wrapper needs: sandbox it with
"bwrap" plus `verifier.sandbox_binds`); "bwrap" requires bwrap for any command; "none" runs the
command as is.

The wall-clock watchdog of the pool bounds the CPU of a check (a worker serves many checks, so a
per-process RLIMIT_CPU cannot); RLIMIT_AS bounds its address space (`address_space_mb`).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from stp.errors import EnvironmentSetupError

if TYPE_CHECKING:
    from stp.config import STPConfig

log = logging.getLogger(__name__)

# Read-only system directories every dynamically linked program needs (bound when present;
# a merged-/usr symlink such as /lib -> usr/lib is recreated as the same symlink).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime")
# Environment variables passed into the sandbox when the driver has them (nothing else is).
PASS_ENV = ("HOME", "LANG", "LC_ALL", "ELAN_HOME", "ELAN_TOOLCHAIN", "LEAN_PATH", "LEAN_SYSROOT",
            "LAKE_HOME", "LEAN_NUM_THREADS")
OLEAN_HEADROOM_MB = 4096

_warned = False


def bwrap_path() -> str | None:
    return shutil.which("bwrap")


def use_bwrap(cfg: STPConfig) -> bool:
    """Whether workers run under bwrap: raises when it is required and missing."""
    global _warned
    mode = cfg.verifier.sandbox
    if mode == "none" or (mode == "auto" and cfg.lean.checker_command):
        return False
    if bwrap_path() is not None:
        return True
    if mode == "bwrap":
        raise EnvironmentSetupError(
            "verifier.sandbox = 'bwrap' but bubblewrap is not installed: apt-get install "
            "bubblewrap (or set verifier.sandbox = 'none')")
    if not _warned:
        _warned = True
        log.warning("bubblewrap not found: checker workers run without a sandbox "
                    "(apt-get install bubblewrap; verifier.sandbox = 'none' silences this)")
    return False


def _toolchain_dirs() -> list[str]:
    elan = os.environ.get("ELAN_HOME") or str(Path("~/.elan").expanduser())
    return [elan] if Path(elan).is_dir() else []


def _named_paths(command: Sequence[str]) -> list[str]:
    """Absolute paths the command names that exist (the executable, a script, ...)."""
    found = []
    for arg in command:
        if arg.startswith("/") and os.path.exists(arg):
            found.append(arg)
            found.append(os.path.realpath(arg))
    return found


def wrap(cfg: STPConfig, command: Sequence[str],
         cwd: str | None) -> tuple[list[str], str | None, dict[str, str] | None]:
    """(argv, cwd, env) of one worker: the command under bwrap, or unchanged without sandbox."""
    if not use_bwrap(cfg):
        return list(command), cwd, None
    bwrap = bwrap_path()
    assert bwrap is not None
    args = [bwrap]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in SYSTEM_FILES:
        args += ["--ro-bind-try", f, f]
    binds: list[str] = []
    if not cfg.lean.checker_command:
        from stp.lean import toolchain

        binds += [*_toolchain_dirs(), str(toolchain.project_dir(cfg.lean))]
    binds += _named_paths(command)
    binds += [str(Path(p).expanduser().resolve()) for p in cfg.verifier.sandbox_binds]
    seen: set[str] = set()
    for path in binds:
        if path in seen or any(path.startswith(s.rstrip("/") + "/") for s in seen):
            continue
        seen.add(path)
        args += ["--ro-bind", path, path]
    args += ["--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev",
             "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
             "--die-with-parent", "--new-session", "--clearenv"]
    path_dirs = [os.path.join(d, "bin") for d in _toolchain_dirs()] + ["/usr/bin", "/bin"]
    env_pairs = {"PATH": ":".join(path_dirs), "TMPDIR": "/tmp"}
    for name in PASS_ENV:
        if name in os.environ:
            env_pairs[name] = os.environ[name]
    for name, value in env_pairs.items():
        args += ["--setenv", name, value]
    # the workspace is bound at its own path, so cwd stays valid; otherwise start in /tmp
    args += ["--chdir", cwd if cwd is not None else "/tmp", "--", *command]
    return args, None, None


def olean_megabytes(root: Path) -> int:
    """Total size of the .olean files under a Lake workspace's `.lake` (mmap'd by Lean)."""
    lake = root / ".lake"
    if not lake.is_dir():
        return 0
    total = 0
    for dirpath, _dirs, files in os.walk(lake):
        for name in files:
            if name.endswith(".olean"):
                try:
                    total += os.stat(os.path.join(dirpath, name)).st_size
                except OSError:
                    continue
    return total // (1024 * 1024)


def address_space_mb(cfg: STPConfig) -> int:
    """The RLIMIT_AS of one worker in MiB (0 = none).

    `verifier.rlimit_as_mb = -1` derives it: the private-memory cap (`memory_mb`) plus every
    .olean of the workspace (Lean mmaps them, and mappings count against RLIMIT_AS although they
    are shared page cache) plus 4 GiB for stacks, the runtime and the checker binary."""
    v = cfg.verifier
    if v.rlimit_as_mb >= 0:
        return v.rlimit_as_mb
    from stp.lean import toolchain

    return v.memory_mb + olean_megabytes(toolchain.project_dir(cfg.lean)) + OLEAN_HEADROOM_MB
