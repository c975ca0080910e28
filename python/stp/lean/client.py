"""One checker process seen from Python: spawn, configure, pipeline requests, watch, kill.

Design choices (throughput is the point: a pool must push thousands of checks per second on two
cores so that orchestration never competes with Lean):
- asyncio's low-level `SubprocessProtocol` instead of stream readers or a thread per pipe: stdout
  arrives in chunks holding many lines, each chunk is split and decoded in one callback, so there is
  no task switch or thread hand-off per response. Every worker of a pool shares one event loop.
- The process runs in its own session (`start_new_session=True`), so its process-group id is its
  pid and a SIGKILL to the group also takes `lake env`'s child and anything Lean spawned.
- stdout is untrusted: a line that is not a CheckResponse, names a key twice or is longer than
  `max_line_bytes` is reported as a protocol error and the owner kills the process (an overlong
  line is never buffered beyond the cap); id, nonce and pass-consistency checks are the owner's
  job.
- a pass whose EXPORT is chunked (`export_chunks: N`) is held until its N ExportChunk lines
  have arrived (same id and nonce, indices 0..N-1, nothing in between: anything else is a
  protocol error); their text is joined into `export` (as raw JSON, never parsed here) unless it
  exceeds `max_export_bytes`, in which case the pieces are dropped as they come and the answer
  is handed on with `export` unset and `export_chunks` kept: the owner answers that item `error`
  (`export_too_large`), it never re-checks it some other way;
- stderr is drained continuously (a full pipe would block the checker) into a bounded tail that
  failure reports quote.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import msgspec
import psutil

from stp.lean.process import (
    STDERR_TAIL_BYTES,
    StderrTail,
    clip,
    kill_group,
    with_address_space_limit,
)
from stp.lean.protocol import (
    DEFAULT_MAX_RESPONSE_MB,
    PROTOCOL_VERSION,
    CheckerConfig,
    CheckRequest,
    CheckResponse,
    ExportChunk,
    Ready,
    ReferenceRequest,
    ReplayRequest,
    checker_output_decoder,
    decode_checker_line,
    encoder,
)

# Default cap on one joined EXPORT (the default of verifier.max_export_mb).
DEFAULT_MAX_EXPORT_MB = 256


class CheckerStartError(RuntimeError):
    """The process died, timed out or answered nonsense before its Ready line."""


# How bad a bad line is: "protocol" (a line that could be a forged or oversized answer: duplicate
# keys, over the size cap) or "crash" (plain garbage).
ProtocolErrorKind = Literal["crash", "protocol"]


class CheckerListener(Protocol):
    """What the owner of a CheckerProcess is told after Ready (called on the event loop)."""

    def on_responses(self, responses: list[CheckResponse]) -> None: ...

    def on_protocol_error(self, detail: str, kind: ProtocolErrorKind = "crash") -> None:
        """`kind` "protocol": a line that could be a forged or oversized answer (duplicate keys,
        over the size cap); "crash": plain garbage."""

    def on_exit(self, detail: str) -> None: ...


class _Pipes(asyncio.SubprocessProtocol):
    def __init__(self, owner: CheckerProcess) -> None:
        self.owner = owner
        self.buffer = bytearray()

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        if fd == 1:
            self.owner._stdout(data)
        else:
            self.owner._stderr(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd == 1:
            self.owner._stdout_closed()

    def process_exited(self) -> None:
        self.owner._process_exited()

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._finished()


@dataclass
class _Chunks:
    """A pass whose EXPORT chunks are arriving."""

    resp: CheckResponse
    pieces: list[str] = field(default_factory=list)
    size: int = 0
    received: int = 0
    over: bool = False


class CheckerProcess:
    """A long-lived checker: header elaborated once at start, then any number of checks."""

    def __init__(
        self,
        command: Sequence[str],
        listener: CheckerListener,
        *,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        rlimit_as_mb: int = 0,
        max_line_bytes: int = DEFAULT_MAX_RESPONSE_MB * 1024 * 1024,
        max_export_bytes: int = DEFAULT_MAX_EXPORT_MB * 1024 * 1024,
        runs_model_text: bool = True,
    ) -> None:
        if not command:
            raise ValueError("empty checker command")
        self.command = list(command)
        self.cwd = cwd
        self.env = env
        self.rlimit_as_mb = rlimit_as_mb
        self.max_line_bytes = max_line_bytes
        self.max_export_bytes = max_export_bytes
        # The judge (role "replay") parses and elaborates no model text: its lines are read
        # without the duplicate-key scan (a second JSON parse), which guards only against
        # output rewritten by code a process ran. Every other process runs model text.
        self._decode = decode_checker_line if runs_model_text else checker_output_decoder.decode
        # A chunked pass being assembled.
        self._chunked: _Chunks | None = None
        # Told about responses, protocol errors and exits, but only once Ready has arrived:
        # before that, failures surface as CheckerStartError from start().
        self.listener = listener
        self.ready: Ready | None = None
        self.pid: int | None = None
        self._transport: asyncio.SubprocessTransport | None = None
        self._stdin: Any = None
        self._partial = bytearray()
        self._stderr_tail = StderrTail(STDERR_TAIL_BYTES)
        self._ready_future: asyncio.Future[Ready] | None = None
        self._dead = False
        self._exit_reported = False
        self._closed_waiters: list[asyncio.Future[None]] = []
        self._finished_flag = False

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self, config: CheckerConfig, timeout: float) -> Ready:
        """Spawn, send the config line and wait for Ready (header import happens here)."""
        loop = asyncio.get_running_loop()
        self._ready_future = loop.create_future()
        # start() may give up (timeout) before the exit sets an exception on this future:
        # retrieve it so asyncio never logs "Future exception was never retrieved".
        self._ready_future.add_done_callback(_retrieve)
        command = with_address_space_limit(self.command, self.rlimit_as_mb)
        try:
            transport, _ = await loop.subprocess_exec(
                lambda: _Pipes(self), *command,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE, cwd=self.cwd, env=self.env,
                start_new_session=True,
            )
        except OSError as err:
            raise CheckerStartError(f"cannot run {self.command[0]!r}: {err}") from err
        self._transport = transport
        self.pid = transport.get_pid()
        if self._dead:  # kill() came while the process was being created (no pid to kill then)
            kill_group(self.pid)
            raise CheckerStartError("killed while starting")
        # duck-typed: under uvloop (Ray installs it) pipe transports are not asyncio classes
        self._stdin = transport.get_pipe_transport(0)
        self._stdin.write(encoder.encode(config) + b"\n")
        try:
            ready = await asyncio.wait_for(asyncio.shield(self._ready_future), timeout)
        except TimeoutError:
            self.kill()
            raise CheckerStartError(f"no Ready line within {timeout:g}s") from None
        except CheckerStartError:
            self.kill()
            raise
        if ready.protocol != PROTOCOL_VERSION:
            self.kill()
            raise CheckerStartError(
                f"checker speaks protocol {ready.protocol}, this package speaks {PROTOCOL_VERSION}"
            )
        return ready

    def close_stdin(self) -> None:
        """End the request stream (a statement process answers its batch, then exits)."""
        if self._stdin is not None and not self._stdin.is_closing():
            self._stdin.close()

    def send(self, requests: Sequence[CheckRequest | ReferenceRequest | ReplayRequest]) -> None:
        """Queue request lines (one write for the whole batch)."""
        if self._dead or self._stdin is None or self._stdin.is_closing():
            return  # the exit callback reports the in-flight items
        if len(requests) == 1:
            data = encoder.encode(requests[0]) + b"\n"
        else:
            data = b"".join(encoder.encode(r) + b"\n" for r in requests)
        self._stdin.write(data)

    def kill(self) -> None:
        """SIGKILL the whole process group (the checker and everything it started)."""
        self._dead = True
        kill_group(self.pid)
        # The transport is closed in _finished, once asyncio has reaped the process: closing it
        # now would poll (and reap) the child behind the child watcher's back.

    async def wait_closed(self, timeout: float) -> None:
        """Wait until the process is reaped and its pipes are closed (after kill())."""
        if self._finished_flag or self._transport is None:
            return
        fut = asyncio.get_running_loop().create_future()
        self._closed_waiters.append(fut)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(fut, timeout)

    @property
    def alive(self) -> bool:
        return not self._dead

    def stderr_tail(self) -> str:
        return self._stderr_tail.text()

    def returncode(self) -> int | None:
        return None if self._transport is None else self._transport.get_returncode()

    # -- pipe callbacks (event loop) ----------------------------------------------------------

    def _stdout(self, data: bytes) -> None:
        if self._dead:
            return
        self._partial += data
        if b"\n" not in data:
            if len(self._partial) > self.max_line_bytes:
                self._overlong(len(self._partial))
            return
        *lines, rest = self._partial.split(b"\n")
        self._partial = bytearray(rest)
        longest = max(len(rest), *(len(line) for line in lines))
        if longest > self.max_line_bytes:
            self._overlong(longest)
            return
        if self.ready is None:
            first, lines = lines[0], lines[1:]
            self._first_line(first)
            if self.ready is None:
                self.kill()
                return
        if not lines:
            return
        responses: list[CheckResponse] = []
        for line in lines:
            if not line.strip():
                continue
            try:
                msg = self._decode(line)
            except msgspec.DecodeError as err:
                kind: ProtocolErrorKind = (
                    "protocol" if "duplicate key" in str(err) else "crash")
                self._protocol_error(responses, f"undecodable line ({err}): {clip(line)}", kind)
                return
            if self._chunked is not None:
                problem = self._chunk(msg, responses)
                if problem is not None:
                    self._protocol_error(responses, problem, "protocol")
                    return
                continue
            if not isinstance(msg, CheckResponse):
                self._protocol_error(responses, f"unexpected {type(msg).__name__} line",
                                     "protocol" if isinstance(msg, ExportChunk) else "crash")
                return
            if msg.export_chunks is not None and msg.export_chunks >= 2:
                self._chunked = _Chunks(msg)
                continue
            responses.append(msg)
        if responses:
            self.listener.on_responses(responses)

    def _chunk(self, msg: object, responses: list[CheckResponse]) -> str | None:
        """Take one line of a chunked EXPORT; the problem when it is not the expected piece."""
        state = self._chunked
        assert state is not None
        resp = state.resp
        if not isinstance(msg, ExportChunk):
            return f"{type(msg).__name__} line inside the export chunks of request {resp.id!r}"
        if msg.id != resp.id or msg.nonce != resp.nonce or msg.index != state.received:
            return (f"export chunk (id {msg.id!r}, index {msg.index}) out of sequence for "
                    f"request {resp.id!r} (expected index {state.received})")
        state.received += 1
        if not state.over:
            state.size += len(msg.data)
            state.pieces.append(msg.data)
            if state.size > self.max_export_bytes:  # keep counting, stop keeping
                state.over, state.pieces = True, []
        if state.received < (resp.export_chunks or 0):
            return None
        self._chunked = None
        if not state.over:
            text = "".join(state.pieces).encode("utf-8", "surrogatepass")
            if len(text) <= self.max_export_bytes:
                resp.export = msgspec.Raw(text)
                resp.export_chunks = None
        responses.append(resp)
        return None

    def _protocol_error(self, good: list[CheckResponse], detail: str,
                        kind: ProtocolErrorKind = "crash") -> None:
        if good:
            self.listener.on_responses(good)
        self.kill()
        if not self._exit_reported:
            self._exit_reported = True
            self.listener.on_protocol_error(detail, kind)

    def _overlong(self, size: int) -> None:
        """A line above the cap: drop the buffer at once (never hold more than cap + a chunk)."""
        self._partial = bytearray()
        detail = f"output line longer than {self.max_line_bytes} bytes ({size}+ bytes)"
        if self.ready is None:
            self.kill()
            if self._ready_future is not None and not self._ready_future.done():
                self._ready_future.set_exception(CheckerStartError(detail))
            return
        self._protocol_error([], detail, "protocol")

    def _first_line(self, line: bytes | bytearray) -> None:
        assert self._ready_future is not None
        if self._ready_future.done():  # start() already gave up (timeout)
            return
        try:
            msg = decode_checker_line(line)
        except msgspec.DecodeError as err:
            self._ready_future.set_exception(
                CheckerStartError(f"bad Ready line ({err}): {clip(line)}"))
            return
        if not isinstance(msg, Ready):
            self._ready_future.set_exception(
                CheckerStartError(f"expected a Ready line, got {type(msg).__name__}"))
            return
        self.ready = msg
        self._ready_future.set_result(msg)

    def _stderr(self, data: bytes) -> None:
        self._stderr_tail.append(data)

    def _stdout_closed(self) -> None:
        # Nothing more can be answered: make sure the whole group is gone, then report once the
        # transport has collected the exit status (connection_lost).
        kill_group(self.pid)

    def _process_exited(self) -> None:
        # A grandchild could keep the pipes open after the direct child exits: kill the group.
        kill_group(self.pid)

    def _finished(self) -> None:
        self._finished_flag = True
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
        for fut in self._closed_waiters:
            if not fut.done():
                fut.set_result(None)
        detail = f"checker exited (code {self.returncode()})"
        tail = self.stderr_tail()
        if tail:
            detail += f"; stderr: {tail[-1000:]}"
        if self._ready_future is not None and not self._ready_future.done():
            self._ready_future.set_exception(CheckerStartError(detail))
        was_dead = self._dead
        self._dead = True
        if not was_dead and self.ready is not None and not self._exit_reported:
            self._exit_reported = True
            self.listener.on_exit(detail)


def private_rss_mb(roots: list[int]) -> dict[int, float]:
    """Resident memory not backed by files of each root's process tree, in MiB.

    Oleans are mmap'd read-only and shared by every worker on the machine; counting them (plain
    RSS) would charge each worker for all of Mathlib. rss - shared is the anonymous memory a
    worker really owns, which is what grows when a proof blows up. The process table is read
    once per call (not once per worker), so the sweep stays cheap with hundreds of workers."""
    children: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["pid", "ppid"]):
        children.setdefault(proc.info["ppid"] or 0, []).append(proc.info["pid"])
    usage: dict[int, float] = {}
    for root in roots:
        total, stack = 0, [root]
        while stack:
            pid = stack.pop()
            stack.extend(children.get(pid, ()))
            with contextlib.suppress(psutil.Error):
                info = psutil.Process(pid).memory_info()
                total += info.rss - getattr(info, "shared", 0)
        usage[root] = total / (1024 * 1024)
    return usage


def _retrieve(fut: asyncio.Future[Any]) -> None:
    if not fut.cancelled():
        fut.exception()
