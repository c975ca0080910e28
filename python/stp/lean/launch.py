"""Start one checker process: check the binary's digest, hand bwrap its seccomp filter, exec.

Every checker worker (check, replay, fresh and statement workers alike, and the lean-interact
cross-check's REPL) is started through this launcher, so each start, not just the first, checks
that the program is still the one the verifier was made with: code that got out of an unsandboxed
process (or anything else) and rewrote `.lake/build/bin/stp_check` would otherwise make every
later worker a forger. A changed file is a start failure whose message names the path.

It runs as a separate short-lived interpreter (`python -I -c BOOT SPEC`), never as a `preexec_fn`
of the driver (which may hold JAX's and Ray's threads), and ends in `execv` of bwrap (or of the
checker itself without a sandbox), so the pool's pid, process group and pipes are the checker's.

SPEC is one JSON object: {"verify": [[path, blake2b-hex], ...], "seccomp_bpf": hex, "argv": [...]};
with "seccomp_bpf" (the filter, compiled once by the driver: stp.lean.seccomp) the argv element
SECCOMP_FD is replaced by a descriptor from which bwrap reads it. The launcher itself needs only
the standard library, so a start costs one bare interpreter start plus the hash.
Arguments after SPEC are appended to argv (the cross-check's `lake env <repl>` wrapper).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

SECCOMP_FD = "@STP_SECCOMP_FD@"
EXIT_CHANGED = 3
EXIT_SETUP = 4


def file_digest(path: str | Path) -> str:
    """blake2b-128 of a file's bytes (the checker binary, a few hundred MB at most)."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def changed_files(expected: Sequence[Sequence[str]]) -> list[str]:
    """One line per file whose digest differs from the expected one (or that is gone)."""
    problems = []
    for path, digest in expected:
        try:
            now = file_digest(path)
        except OSError as err:
            problems.append(f"{path} cannot be read ({err.strerror})")
            continue
        if now != digest:
            problems.append(f"{path} changed since the verifier was made "
                            f"(blake2b {now}, expected {digest})")
    return problems


def readable_fd(data: bytes) -> int:
    """An inheritable descriptor from which `data` (a BPF program: a few hundred bytes, far
    below a pipe's 64 KiB) can be read to its end."""
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    os.set_inheritable(read_end, True)
    return read_end


def bootstrap_argv(spec: dict[str, object], extra_paths: Sequence[str]) -> list[str]:
    """The argv that runs this launcher with `spec` in a fresh, isolated interpreter."""
    boot = ("import sys; sys.path[:0] = " + repr(list(extra_paths))
            + "; from stp.lean.launch import main; main(sys.argv[1:])")
    return [sys.executable, "-I", "-c", boot, json.dumps(spec)]


def main(args: list[str]) -> None:
    spec = json.loads(args[0])
    argv = [*spec["argv"], *args[1:]]
    problems = changed_files(spec.get("verify", []))
    if problems:
        sys.stderr.write("stp: refusing to start the checker: " + "; ".join(problems)
                         + " (rebuild, then start a new verifier)\n")
        sys.stderr.flush()
        os._exit(EXIT_CHANGED)
    if spec.get("seccomp_bpf"):
        fd = readable_fd(bytes.fromhex(spec["seccomp_bpf"]))
        argv = [str(fd) if a == SECCOMP_FD else a for a in argv]
    try:
        os.execv(argv[0], argv)
    except OSError as err:
        sys.stderr.write(f"stp: cannot run {argv[0]!r}: {err.strerror}\n")
        sys.stderr.flush()
        os._exit(EXIT_SETUP)
