"""The seccomp filter every sandboxed checker process runs under (bwrap `--seccomp FD`).

A checker elaborates model-written Lean and is assumed compromised: whatever it answers is a
claim. What it must not do is reach *other* processes: read or write another worker's (or the
judge's) memory, stop a process and answer its pipe, or start a helper process that does so (the
request nonce was read back from `/proc/<ppid>/mem` by a child spawned from proof code). The pid
namespace (`--unshare-pid --as-pid-1`, a fresh `/proc`) hides every other process; this filter
closes the calls that act on processes at all:

- process creation: `fork`, `vfork`, `clone` without `CLONE_THREAD` are EPERM, `clone3` is ENOSYS
  (its flags sit in a struct seccomp cannot read, so it is refused as "not implemented", and
  glibc falls back to `clone`, where the flags are checked). Threads keep working: Lean runs its
  tasks on threads (`clone` with `CLONE_THREAD`).
- new programs: bwrap loads the filter right before it execs the checker, so `execve` itself must
  stay allowed for that one exec; a filter cannot tell "the first exec" from a later one. With no
  process creation, a later `execve` can only *replace* the checker: the new program inherits its
  pipes and this filter (no_new_privs is set, so no setuid gain) and is just another compromised
  checker, one that has lost the checker's state; it cannot run beside the checker.
- other processes' memory and control: `ptrace`, `process_vm_readv`/`writev`, `kcmp`,
  `pidfd_open`/`pidfd_getfd`/`pidfd_send_signal` are EPERM; `kill` and `tgkill` are EPERM unless
  aimed at pid 0 or 1, the checker itself (it is pid 1 of its namespace under `--as-pid-1`).
- namespace and kernel-surface calls a checker never needs (`unshare`, `setns`, `mount`, `bpf`,
  `perf_event_open`, `userfaultfd`, keyrings, ...) are EPERM.

Calls of another architecture (32-bit calls from a 64-bit process) kill the process: libseccomp's
default for a foreign architecture. The rules read syscall arguments only where the argument is
a plain integer (clone's flags are its first argument on x86-64 and aarch64, the architectures
this project supports).

The BPF is compiled by libseccomp (the maintained compiler systemd, Docker and Flatpak use)
through `pyseccomp`, a small ctypes binding API-compatible with libseccomp's own Python bindings;
no BPF is written by hand here. The choice, as of this writing: libseccomp's official bindings
are not on PyPI (distribution packages only: python3-seccomp); `pyseccomp` (0.1.2, 2021, MIT) is
a thin, finished wrapper whose every rule is compiled by the system's libseccomp; `seccompy`
(0.2.0, beta) assembles BPF itself in Python, i.e. a new compiler of its own. The least-bad
option is the thin wrapper over the maintained compiler.
"""

from __future__ import annotations

import errno
import os
from typing import Any

# clone(2) flag that makes the new task a thread of the caller (include/uapi/linux/sched.h).
CLONE_THREAD = 0x00010000
# The checker's pid inside its own pid namespace (bwrap --as-pid-1).
SELF_PID = 1

# Refused outright: acting on other processes, creating processes, kernel surface.
DENIED = (
    "fork", "vfork",
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp",
    "pidfd_open", "pidfd_getfd", "pidfd_send_signal",
    "unshare", "setns", "mount", "umount2", "pivot_root", "chroot",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "open_by_handle_at", "name_to_handle_at",
)


class SeccompUnavailable(RuntimeError):
    """pyseccomp or the system's libseccomp is missing (the caller names the fix)."""


def _library() -> Any:
    try:
        import pyseccomp
    except ImportError as err:  # the package, or libseccomp.so.2 (pyseccomp loads it on import)
        raise SeccompUnavailable(
            f"the seccomp filter needs pyseccomp and libseccomp ({err}): pip install pyseccomp; "
            "apt-get install libseccomp2") from err
    except (OSError, TypeError, AttributeError) as err:
        raise SeccompUnavailable(
            f"libseccomp cannot be loaded ({err}): apt-get install libseccomp2") from err
    return pyseccomp


def build_filter() -> Any:
    """The checker's filter as a pyseccomp SyscallFilter (default: allow)."""
    sc = _library()
    filt = sc.SyscallFilter(sc.ALLOW)
    eperm = sc.ERRNO(errno.EPERM)
    for name in DENIED:
        filt.add_rule(eperm, name)
    filt.add_rule(sc.ERRNO(errno.ENOSYS), "clone3")
    filt.add_rule(eperm, "clone", sc.Arg(0, sc.MASKED_EQ, CLONE_THREAD, 0))
    # pid > 1 as an unsigned 64-bit value: every other pid, and negative ones (process groups,
    # -1 = every process) too
    filt.add_rule(eperm, "kill", sc.Arg(0, sc.GT, SELF_PID))
    filt.add_rule(eperm, "tgkill", sc.Arg(0, sc.GT, SELF_PID))
    return filt


class _Fd:
    def __init__(self, fd: int) -> None:
        self.fd = fd

    def fileno(self) -> int:
        return self.fd


def filter_bpf() -> bytes:
    """The compiled BPF program (what bwrap's --seccomp reads)."""
    read_end, write_end = os.pipe()
    try:
        build_filter().export_bpf(_Fd(write_end))
        os.close(write_end)
        write_end = -1
        chunks = []
        while chunk := os.read(read_end, 1 << 16):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(read_end)
        if write_end >= 0:
            os.close(write_end)
