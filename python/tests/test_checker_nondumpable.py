"""The built checker makes itself non-dumpable (issue #20, lean/c/nondumpable.c): another process
of the same user cannot read its /proc/<pid>/ files (memory, environment), so code running
elsewhere cannot read a request nonce out of it or attach to it. Needs the built checker."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stp.cli import UsageError
from stp.config import load_config
from stp.lean.toolchain import checker_command


def _children(pid: int) -> list[tuple[int, str]]:
    """(pid, comm) of the direct children of `pid`, from /proc/*/stat."""
    out: list[tuple[int, str]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        comm = stat[stat.index("(") + 1:stat.rindex(")")]
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        if ppid == pid:
            out.append((int(entry.name), comm))
    return out


def _checker_pid(root: int) -> int | None:
    """The `stp_check` process at or below `root` (`lake env` may run it as a child)."""
    todo = [root]
    while todo:
        pid = todo.pop()
        try:
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        if comm == "stp_check":
            return pid
        todo += [child for child, _ in _children(pid)]
    return None


@pytest.mark.lean
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl/procfs are Linux-only")
@pytest.mark.skipif(os.geteuid() == 0,
                    reason="root reads every process's /proc files (CAP_SYS_PTRACE): run as a user")
def test_checker_process_is_not_readable_by_the_same_user() -> None:
    cfg = load_config(None, [])
    try:
        argv, cwd = checker_command(cfg.lean)
    except UsageError as err:
        pytest.skip(f"needs the built checker: {err}")
    proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        # A config line it must refuse: once it answered, `main` has run its first statement.
        proc.stdin.write(json.dumps({"op": "config", "protocol": 0}) + "\n")
        proc.stdin.flush()
        answer = json.loads(proc.stdout.readline())
        assert answer["verdict"] == "error"
        pid = None
        deadline = time.monotonic() + 30
        while pid is None and time.monotonic() < deadline:
            pid = _checker_pid(proc.pid)
            time.sleep(0.1)
        assert pid is not None, "no stp_check process found"
        with pytest.raises(PermissionError):
            Path(f"/proc/{pid}/environ").read_bytes()
        with pytest.raises(PermissionError):
            Path(f"/proc/{pid}/mem").open("rb").close()
        # The same read works on an ordinary process of this user (the test can tell).
        assert Path(f"/proc/{os.getpid()}/environ").read_bytes() is not None
    finally:
        proc.kill()
        proc.wait()
