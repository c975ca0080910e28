"""What every client of one of our Lean subprocesses shares, whatever its I/O style.

Two clients exist: the checker's (`stp.lean.client`, asyncio callbacks, many processes on one event
loop) and the extractor's (`stp.lean.extractor`, a blocking reader on one thread per process). They
differ in how they read, not in how a Lean process is started, watched and ended, which lives here:

- start in a session of its own (`start_new_session=True`), so the process-group id is the pid and
  one SIGKILL to the group also ends `lake env`'s child and anything Lean started (`kill_group`);
- keep a bounded tail of stderr for failure reports (`StderrTail`), never an unbounded buffer and
  never a pipe nobody drains (a full pipe would block Lean);
- cap the length of a protocol line (`read_capped_line`): stdout is untrusted output of a program
  that elaborates arbitrary text, so one line must not cost unbounded driver memory;
- an optional address-space limit set in the child before exec (`rlimit_preexec`).

This module imports nothing from other `stp` packages (it sits at the bottom layer).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections import deque
from collections.abc import Callable
from typing import IO

STDERR_TAIL_BYTES = 4096


def kill_group(pid: int | None) -> None:
    """SIGKILL the process group led by `pid` (a process started with start_new_session=True).

    Already-gone groups and groups we may not signal are ignored: the caller reaps the process
    and reports its exit status, which is the information that matters."""
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class StderrTail:
    """The last `limit` bytes (about) of a stream, kept as the chunks that arrived."""

    def __init__(self, limit: int = STDERR_TAIL_BYTES) -> None:
        self.limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def append(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        while self._size > self.limit and len(self._chunks) > 1:
            self._size -= len(self._chunks.popleft())

    def text(self) -> str:
        return b"".join(self._chunks).decode("utf-8", "replace").strip()


class LineTooLong(Exception):
    """A protocol line exceeded the cap (internal signal; callers turn it into a protocol error)."""


def read_capped_line(stream: IO[bytes], cap: int) -> bytes:
    """The next line of `stream` (b"" at end of file), raising LineTooLong past `cap` bytes.

    The rest of an over-long line is not read: the caller kills the process instead."""
    line = stream.readline(cap + 1)
    if len(line) > cap:
        raise LineTooLong(f"protocol line longer than {cap} bytes: {clip(line)}")
    return line


def clip(line: bytes | bytearray, limit: int = 200) -> str:
    """A protocol line for an error message: decoded leniently and cut to `limit` characters."""
    text = line[: 4 * limit].decode("utf-8", "replace")
    return text if len(text) <= limit else text[:limit] + "…"


def rlimit_preexec(limit_mb: int) -> Callable[[], None]:
    """Address-space cap set in the child before exec (inherited by `lake env`'s child)."""
    import resource

    limit = limit_mb * 1024 * 1024

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    return apply
