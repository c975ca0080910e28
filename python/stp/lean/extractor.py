"""One extractor process seen from Python: start, send module requests, read their lines, restart.

The extractor (`stp_extract`) re-elaborates a Mathlib module per request and streams
`ExtractCommand`/`ExtractDecl` lines closed by one `ExtractDone` or `ExtractFailed` line for that
module (docs/protocol.md). Unlike the checker client (`stp.lean.client`, asyncio, thousands of small
responses per second) this client is blocking and serves one module at a time from one thread:
a module takes seconds to minutes, so simplicity wins. Process start, stderr tail, line cap and
group kill are shared with the checker client through `stp.lean.process`.

Memory: each request imports the module's dependencies again. Lean mmaps an `.olean` the first time
a process imports it, but copies it into memory that is never freed on every later import, so one
long-lived extractor grows without bound over a full Mathlib run. The process is therefore
restarted after `restart_after` modules (1 = a fresh process per module, every import an mmap).

A dead, hung or babbling process never raises (only an executable that cannot be started at
all does, with EnvironmentSetupError): its module gets a synthesized `ExtractFailed` line
and the next module starts a fresh process.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading

import msgspec

from stp.errors import EnvironmentSetupError
from stp.lean.process import (
    STDERR_TAIL_BYTES,
    LineTooLong,
    StderrTail,
    clip,
    kill_group,
    read_capped_line,
)
from stp.lean.protocol import (
    ExtractDone,
    ExtractFailed,
    ExtractorOutput,
    ExtractRequest,
    encode_line,
    extractor_output_decoder,
)

# Longest extractor line accepted. Real lines are a command range or a theorem with its premise
# list (kilobytes); anything near this is a broken or hostile process.
MAX_LINE_BYTES = 16 * 1024 * 1024


class ExtractorProcess:
    """An extractor serving modules one at a time, restarted every `restart_after` modules."""

    def __init__(self, command: list[str], cwd: str | None, timeout_s: float | None, *,
                 restart_after: int = 1, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        if not command:
            raise ValueError("empty extractor command")
        self.command = list(command)
        self.cwd = cwd
        self.timeout_s = timeout_s
        # 0 = never restart a healthy process.
        self.restart_after = restart_after
        self.max_line_bytes = max_line_bytes
        # Processes started so far and modules the current one has served (for the restart rule).
        self.starts = 0
        self.served = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._stderr = StderrTail(STDERR_TAIL_BYTES)
        self._drain: threading.Thread | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        try:
            proc = subprocess.Popen(self.command, cwd=self.cwd, stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True)
        except OSError as err:
            raise EnvironmentSetupError(
                f"cannot start the extractor {self.command[0]!r}: {err}") from None
        self.proc = proc
        self.starts += 1
        self.served = 0
        self._stderr = StderrTail(STDERR_TAIL_BYTES)
        # Drained continuously: a full stderr pipe would block Lean.
        self._drain = threading.Thread(target=self._drain_stderr, args=(proc, self._stderr),
                                       name="extract-stderr", daemon=True)
        self._drain.start()
        return proc

    @staticmethod
    def _drain_stderr(proc: subprocess.Popen[bytes], tail: StderrTail) -> None:
        assert proc.stderr is not None
        fd = proc.stderr.fileno()
        # os.read returns whatever has arrived, so the tail is current while the process runs.
        while chunk := os.read(fd, 65536):
            tail.append(chunk)

    def _stderr_tail(self) -> str:
        if self._drain is not None:
            self._drain.join(timeout=5)
        return self._stderr.text()

    def kill(self) -> None:
        """End the current process (its whole group) and reap it; the next request starts anew."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            kill_group(proc.pid)
        proc.wait()
        for pipe in (proc.stdin, proc.stdout):
            if pipe is not None:
                # A request still in stdin's buffer is flushed into the dead process on close;
                # it was meant for that process only, and the file is closed all the same.
                with contextlib.suppress(BrokenPipeError):
                    pipe.close()
        if self._drain is not None:
            self._drain.join(timeout=5)
            self._drain = None
        if proc.stderr is not None:
            proc.stderr.close()

    def extract(self, module: str, path: str, premises: bool) -> list[ExtractorOutput]:
        """Protocol lines for one module, closed by its ExtractDone or ExtractFailed line."""
        proc = self.proc if self.proc is not None and self.proc.poll() is None else None
        if proc is None:
            self.kill()  # reap a process that died between modules
            proc = self._start()
        lines = self._exchange(proc, module, path, premises)
        self.served += 1
        if self.proc is not None and self.restart_after and self.served >= self.restart_after:
            self.kill()
        return lines

    def _exchange(self, proc: subprocess.Popen[bytes], module: str, path: str,
                  premises: bool) -> list[ExtractorOutput]:
        assert proc.stdin is not None and proc.stdout is not None
        timer = None
        timed_out = threading.Event()
        if self.timeout_s:
            def on_timeout() -> None:
                timed_out.set()
                kill_group(proc.pid)
            timer = threading.Timer(self.timeout_s, on_timeout)
            timer.start()
        lines: list[ExtractorOutput] = []
        try:
            try:
                proc.stdin.write(encode_line(ExtractRequest(module=module, path=path,
                                                            premises=premises)))
                proc.stdin.flush()
            except OSError:
                pass  # a dead process: reported below through its exit status
            while True:
                try:
                    raw = read_capped_line(proc.stdout, self.max_line_bytes)
                except LineTooLong as err:
                    self.kill()
                    return [*lines, ExtractFailed(module=module, message=f"protocol error: {err}")]
                if not raw:
                    break
                if not raw.strip():
                    continue
                try:
                    msg = extractor_output_decoder.decode(raw)
                except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as err:
                    self.kill()
                    return [*lines, ExtractFailed(
                        module=module, message=f"protocol error: {err}: {clip(raw)}")]
                lines.append(msg)
                if isinstance(msg, ExtractDone | ExtractFailed) and msg.module == module:
                    return lines
            code = proc.wait()
            detail = "timed out" if timed_out.is_set() else f"exited with status {code}"
            tail = self._stderr_tail()
            self.kill()
            return [*lines, ExtractFailed(
                module=module, message=f"extractor {detail}" + (f": {tail[-2000:]}" if tail else ""))]
        finally:
            if timer is not None:
                timer.cancel()
