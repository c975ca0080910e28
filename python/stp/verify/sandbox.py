"""Run checker workers under bubblewrap with a seccomp filter, and the default address-space cap.

Every process that elaborates model-written text (proofs, conjectured statements, gated headers)
is assumed compromised (docs/verify.md, threat model). The sandbox keeps such a process away from
everything that outlives it or belongs to another process. Each worker runs as

    python -I -c <stp.lean.launch> SPEC        (checks the binary's digest, opens the filter)
      -> bwrap --tmpfs /tmp --ro-bind <system dirs, toolchain, workspace, named paths>
               --proc /proc --dev /dev --unshare-net --unshare-pid --unshare-ipc --unshare-uts
               --as-pid-1 --die-with-parent --new-session --clearenv --setenv ...
               --seccomp FD --chdir <dir> -- <checker>

so code running inside it cannot write the project tree, the checker binary, the run directory
or the result cache (the only writable mounts are a fresh private /tmp and /dev; host paths are
bound read-only on top of them, so a checkout under /tmp stays visible), reach the network, see
the driver's environment, or see, signal or read any other process: it is pid 1 of its own pid
namespace with a fresh /proc, and the seccomp filter (stp.lean.seccomp) refuses process
creation, ptrace, process_vm_readv/writev and signals to other pids. The built checker is exec'd
directly with the variables `lake env` would set (computed once, outside), since `lake env`
would have to spawn it as a child. Each start (not only the first) re-hashes the checker binary
and refuses to start a changed one (stp.lean.launch).

`verifier.sandbox`: "auto" (default) and "bwrap" both require a working bwrap, for the built
checker and for `lean.checker_command` alike: without one, making a verifier is a one-line
`EnvironmentSetupError` naming the fix. "none" runs checkers unsandboxed, but only when said
explicitly, and `describe_sandbox` (which every report and log header prints) then says so.

The wall-clock watchdog of the pool bounds the CPU of a check (a worker serves many checks, so a
per-process RLIMIT_CPU cannot); RLIMIT_AS bounds its address space (`address_space_mb`).
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from stp.errors import EnvironmentSetupError
from stp.lean.launch import SECCOMP_FD, bootstrap_argv, file_digest

if TYPE_CHECKING:
    from stp.config import STPConfig
    from stp.lean.config import LeanConfig
    from stp.verify.config import VerifierConfig

log = logging.getLogger(__name__)

# Read-only system directories every dynamically linked program needs (bound when present;
# a merged-/usr symlink such as /lib -> usr/lib is recreated as the same symlink).
SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/ld.so.conf", "/etc/localtime")
# Environment variables passed into the sandbox when the driver has them (nothing else is).
PASS_ENV = ("HOME", "LANG", "LC_ALL", "ELAN_HOME", "ELAN_TOOLCHAIN", "LEAN_PATH", "LEAN_SYSROOT",
            "LAKE_HOME", "LEAN_NUM_THREADS")
# The namespaces and isolation flags of every sandbox (the start-up probe uses the same set).
ISOLATION = ("--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--as-pid-1",
             "--die-with-parent", "--new-session")
OLEAN_HEADROOM_MB = 4096
FIX = ("install bubblewrap (apt-get install bubblewrap); on Ubuntu 24.04, where AppArmor "
       "blocks unprivileged user namespaces, also run `sysctl "
       "kernel.apparmor_restrict_unprivileged_userns=0` or give bwrap an AppArmor profile")

_probed: dict[str, str | None] = {}


def bwrap_path() -> str | None:
    """bwrap on PATH, else where distributions install it (a driver started with a minimal PATH
    still gets its sandbox)."""
    found = shutil.which("bwrap")
    if found:
        return found
    for candidate in ("/usr/bin/bwrap", "/usr/local/bin/bwrap"):
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def bwrap_problem(bwrap: str) -> str | None:
    """None when `bwrap` can build the sandbox's namespaces here, else its error (one line).

    Run once per bwrap and process: a missing setuid bit, a kernel without unprivileged user
    namespaces or Ubuntu 24.04's AppArmor restriction all show up as a failing start."""
    if bwrap in _probed:
        return _probed[bwrap]
    true = shutil.which("true") or "/bin/true"
    argv = [bwrap, "--ro-bind", "/", "/", "--tmpfs", "/tmp", "--proc", "/proc", "--dev", "/dev",
            *ISOLATION, "--", true]
    try:
        done = subprocess.run(argv, capture_output=True, timeout=60, check=False)
        problem = None if done.returncode == 0 else (
            done.stderr.decode("utf-8", "replace").strip().splitlines()[-1:]
            or [f"exit {done.returncode}"])[0]
    except (OSError, subprocess.TimeoutExpired) as err:
        problem = str(err)
    _probed[bwrap] = problem
    return problem


def sandboxed(verifier: VerifierConfig) -> bool:
    """Whether checker processes run in the sandbox. Raises EnvironmentSetupError (one line,
    naming the fix) when it is required ("auto", "bwrap") and cannot run here."""
    mode = verifier.sandbox
    if mode == "none":
        return False
    bwrap = bwrap_path()
    if bwrap is None:
        raise EnvironmentSetupError(
            f"verifier.sandbox = '{mode}' needs bubblewrap, which is not installed: {FIX} "
            "(verifier.sandbox = 'none' runs model-written Lean unsandboxed)")
    problem = bwrap_problem(bwrap)
    if problem is not None:
        raise EnvironmentSetupError(
            f"verifier.sandbox = '{mode}': bwrap cannot create its namespaces here ({problem}): "
            f"{FIX}")
    seccomp_program()
    return True


def seccomp_program() -> bytes:
    """The compiled seccomp filter (EnvironmentSetupError naming the fix when unavailable)."""
    from stp.lean.seccomp import SeccompUnavailable, filter_bpf

    try:
        return filter_bpf()
    except SeccompUnavailable as err:
        raise EnvironmentSetupError(f"the checker sandbox: {err}") from err


def use_bwrap(cfg: STPConfig) -> bool:
    return sandboxed(cfg.verifier)


def describe_sandbox(cfg: STPConfig) -> str:
    """One line saying how checker processes are isolated, for every report and log header.

    Never raises: a sandbox that cannot run is described as such (making a verifier with it
    fails with the fix)."""
    mode = cfg.verifier.sandbox
    if mode == "none":
        return ("sandbox: NONE (verifier.sandbox = 'none'): checker processes run model-written "
                "Lean unsandboxed")
    bwrap = bwrap_path()
    if bwrap is None:
        return f"sandbox: UNAVAILABLE (verifier.sandbox = '{mode}', bubblewrap not installed)"
    problem = bwrap_problem(bwrap)
    if problem is not None:
        return f"sandbox: UNAVAILABLE (verifier.sandbox = '{mode}', bwrap fails: {problem})"
    from stp.lean.seccomp import SeccompUnavailable, filter_bpf

    try:
        filter_bpf()
    except SeccompUnavailable as err:
        return f"sandbox: UNAVAILABLE (verifier.sandbox = '{mode}', {err})"
    return ("sandbox: bwrap + seccomp (no process creation, ptrace or cross-process memory "
            "access; own pid/net/ipc/uts namespaces; read-only binds; private /tmp; "
            "checker digest checked at every start)")


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


def checker_binaries(lean: LeanConfig, command: Sequence[str]) -> list[str]:
    """The files whose digest every worker start checks: the built checker, or each absolute
    file `lean.checker_command` names (its program, a script, ...), symlinks resolved."""
    from stp.lean import toolchain

    if lean.checker_command:
        named = [a for a in lean.checker_command if a.startswith("/") and os.path.isfile(a)]
    else:
        exe = toolchain.checker_exe(lean)
        named = [str(exe)] if exe.is_file() else [a for a in command[2:3] if os.path.isfile(a)]
    return list(dict.fromkeys(os.path.realpath(p) for p in named))


def _launcher_paths() -> list[str]:
    """sys.path entries the launcher needs: this `stp` (it imports nothing else)."""
    import stp

    return [str(Path(stp.__file__).resolve().parents[1])]


def wrap(cfg: STPConfig, command: Sequence[str],
         cwd: str | None) -> tuple[list[str], str | None, dict[str, str] | None]:
    """(argv, cwd, env) of one worker: the checker started through the launcher (digest check at
    every start), inside the sandbox unless verifier.sandbox = 'none'."""
    built = not cfg.lean.checker_command
    described = describe_sandbox(cfg)
    log.log(logging.WARNING if cfg.verifier.sandbox == "none" else logging.INFO, "%s", described)
    return launch_argv(cfg.verifier, cfg.lean, command, cwd,
                       binaries=checker_binaries(cfg.lean, command), lake_env=built)


def launch_argv(verifier: VerifierConfig, lean: LeanConfig, command: Sequence[str],
                cwd: str | None, *, binaries: Sequence[str],
                lake_env: bool) -> tuple[list[str], str | None, dict[str, str] | None]:
    """(argv, cwd, env) that starts `command` through the launcher. `lake_env`: `command` is
    `lake env PROGRAM ...`, run in the sandbox as PROGRAM with Lake's variables."""
    verify = [[path, file_digest(path)] for path in binaries]
    if not sandboxed(verifier):
        spec: dict[str, object] = {"verify": verify, "argv": list(command)}
        return bootstrap_argv(spec, _launcher_paths()), cwd, None
    bwrap = bwrap_path()
    assert bwrap is not None
    from stp.lean import toolchain

    program = list(command)
    env_pairs: dict[str, str] = {}
    binds: list[str] = []
    if lake_env:
        root = Path(cwd) if cwd is not None else toolchain.project_dir(lean)
        env_pairs = toolchain.lake_environment(program[0], root)
        program = program[2:]
        binds += [*_toolchain_dirs(), str(root)]
        for key in ("LEAN_SYSROOT", "LEAN_PATH"):
            binds += [p for p in env_pairs.get(key, "").split(":") if p.startswith("/")
                      and os.path.exists(p)]
    binds += _named_paths(program)
    binds += [str(Path(p).expanduser().resolve()) for p in verifier.sandbox_binds]
    # The private /tmp first: everything bound after it is mounted on top, so a checkout, venv or
    # workspace under /tmp stays visible (read-only) instead of being hidden by the fresh tmpfs.
    args = [bwrap, "--tmpfs", "/tmp"]
    for d in SYSTEM_DIRS:
        if os.path.islink(d):
            args += ["--symlink", os.readlink(d), d]
        elif os.path.isdir(d):
            args += ["--ro-bind", d, d]
    for f in SYSTEM_FILES:
        args += ["--ro-bind-try", f, f]
    seen: set[str] = set()
    for path in sorted(dict.fromkeys(binds), key=len):
        if path in seen or any(path.startswith(s.rstrip("/") + "/") for s in seen):
            continue
        seen.add(path)
        args += ["--ro-bind", path, path]
    args += ["--proc", "/proc", "--dev", "/dev", *ISOLATION, "--clearenv",
             "--seccomp", SECCOMP_FD]
    path_dirs = [os.path.join(d, "bin") for d in _toolchain_dirs()] + ["/usr/bin", "/bin"]
    sandbox_env = {"PATH": ":".join(path_dirs), "TMPDIR": "/tmp"}
    for name in PASS_ENV:
        if name in os.environ:
            sandbox_env[name] = os.environ[name]
    sandbox_env.update(env_pairs)
    for name, value in sandbox_env.items():
        args += ["--setenv", name, value]
    # the workspace is bound at its own path, so cwd stays valid; otherwise start in /tmp
    args += ["--chdir", cwd if cwd is not None else "/tmp", "--", *program]
    spec = {"verify": verify, "seccomp_bpf": seccomp_program().hex(), "argv": args}
    return bootstrap_argv(spec, _launcher_paths()), None, None


def lake_wrapper(verifier: VerifierConfig, lean: LeanConfig, program: str, cwd: str,
                 directory: Path) -> Path:
    """An executable that, run as `<it> env <program>` (how lean-interact starts its REPL with
    the `lake` it is given), starts `program` in the checker sandbox with the workspace's Lake
    variables and its digest checked at every start, and refuses any other command line."""
    from stp.lean import toolchain

    lake = toolchain.find_lake() or "lake"
    argv, _cwd, _env = launch_argv(verifier, lean, [lake, "env", program], cwd,
                                   binaries=[os.path.realpath(program)], lake_env=True)
    script = directory / "stp-sandboxed-lake"
    expected = shlex.quote(program)
    script.write_text(
        "#!/bin/sh\n"
        "# Written by stp.verify.sandbox.lake_wrapper: lean-interact's REPL in the checker sandbox\n"
        f'if [ "$#" -ne 2 ] || [ "$1" != env ] || [ "$2" != {expected} ]; then\n'
        "  echo 'stp-sandboxed-lake: runs only: env <the REPL it was made for>' >&2; exit 2\n"
        "fi\n"
        f"cd {shlex.quote(cwd)} && exec {shlex.join(argv)}\n")
    script.chmod(0o700)
    return script


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
