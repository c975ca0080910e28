"""Human logs, a machine-readable JSONL metrics stream per run, and progress reporting.

Logs are for people watching a run; the metrics stream is for plots and post-mortems: one JSON
object per line, `{"time": <unix seconds>, "event": <name>, ...fields}`, so a crashed run's file is
still readable up to its last complete line and tools can filter by `event`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Sized
from typing import Any, TypeVar

import msgspec

from stp import storage
from stp.host import available_cpus

T = TypeVar("T")

PROGRESS_ENV = "STP_PROGRESS"
RESERVED_FIELDS = frozenset({"time", "event"})


def describe_machine() -> str:
    """CPU model and core count, printed with every benchmark figure.

    A throughput figure means little without the machine it was measured on (the development
    machines of this project are 2-3x slower than a workstation), so benchmarks print this line
    with their results and the README quotes it with each figure.
    """
    model = platform.processor() or platform.machine()
    with contextlib.suppress(OSError), \
            open("/proc/cpuinfo", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                model = line.split(":", 1)[1].strip()
                break
    total = os.cpu_count() or 0
    usable = available_cpus()
    load = ""
    if hasattr(os, "getloadavg"):
        load = f", load average {os.getloadavg()[0]:.1f}"
    return f"{model}, {usable} cores usable of {total}{load}"


def _enc_hook(obj: Any) -> Any:
    # numpy scalars/arrays and other objects with a natural builtin form (Paths, sets, ...).
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, set | frozenset):
        return sorted(obj)
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"cannot record a {type(obj).__name__} in metrics")


class MetricsWriter:
    """Append-only JSONL metrics stream for one run.

    On a local path every `log` call appends one complete line and flushes it, so a crash loses
    nothing already logged; resuming a run appends to the same file. On a `gs://` path, objects
    cannot be appended to, so lines are kept in memory on top of the existing object and the whole
    file is re-uploaded atomically by `flush()` and `close()`, and automatically at most every
    `upload_interval_s` seconds while logging.
    """

    def __init__(self, path: storage.PathLike, *, upload_interval_s: float = 60.0) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._encoder = msgspec.json.Encoder(enc_hook=_enc_hook)
        self._closed = False
        self._remote = storage.is_gcs(self.path)
        self._upload_interval_s = upload_interval_s
        if self._remote:
            self._buffer = bytearray()
            if storage.exists(self.path):
                self._buffer.extend(storage.read_bytes(self.path))
                torn = _torn_tail(self._buffer)
                if torn:
                    del self._buffer[len(self._buffer) - torn:]
                    self._report_torn(torn)
            self._dirty = False
            self._last_upload = time.monotonic()
        else:
            directory = os.path.dirname(os.path.abspath(self.path))
            os.makedirs(directory, exist_ok=True)
            self._file = open(self.path, "ab")  # noqa: SIM115 (lives as long as the writer)
            self._drop_torn_local()

    def _drop_torn_local(self) -> None:
        """Cut a last line without its newline (a write cut by a crash or a full disk).

        Appending after it would glue the next record onto it and leave a corrupt line in the
        middle of the file, which `read_metrics` rightly rejects, so a resumed run could never
        be read again. Only the tail after the last newline is removed; damage in complete lines
        is left for `read_metrics` to report.
        """
        size = self._file.seek(0, os.SEEK_END)
        if size == 0:
            return
        with open(self.path, "rb") as reader:
            reader.seek(max(0, size - (1 << 20)))
            tail = reader.read()
        torn = _torn_tail(tail)
        if torn == len(tail) and size > len(tail):
            raise storage.CorruptRecordError(self.path, None, "last line is longer than 1 MiB "
                                             "and has no newline; not a metrics file?")
        if torn:
            self._file.truncate(size - torn)
            self._file.seek(0, os.SEEK_END)
            self._report_torn(torn)

    def _report_torn(self, torn: int) -> None:
        logging.getLogger(__name__).warning(
            "%s: removed a torn last line (%d bytes without a newline, left by an interrupted "
            "write) before appending", self.path, torn)

    def log(self, event: str, **fields: Any) -> dict[str, Any]:
        """Record one event with the current time; returns the record written."""
        if not event:
            raise ValueError("metrics event name must be non-empty")
        clash = RESERVED_FIELDS.intersection(fields)
        if clash:
            raise ValueError(f"metrics fields {sorted(clash)} are reserved (event {event!r})")
        record = {"time": time.time(), "event": event, **fields}
        line = self._encoder.encode(record) + b"\n"
        with self._lock:
            if self._closed:
                raise ValueError(f"metrics writer for {self.path} is closed")
            if self._remote:
                self._buffer.extend(line)
                self._dirty = True
                if time.monotonic() - self._last_upload >= self._upload_interval_s:
                    self._upload_locked()
            else:
                try:
                    self._file.write(line)
                    self._file.flush()
                except OSError as err:
                    raise storage.with_filename(err, self.path) from None
        return record

    def _upload_locked(self) -> None:
        storage.write_bytes(self.path, bytes(self._buffer))
        self._dirty = False
        self._last_upload = time.monotonic()

    def flush(self) -> None:
        with self._lock:
            if self._closed:
                return
            if self._remote:
                if self._dirty:
                    self._upload_locked()
            else:
                self._file.flush()
                os.fsync(self._file.fileno())

    def close(self) -> None:
        self.flush()
        with self._lock:
            if not self._closed and not self._remote:
                self._file.close()
            self._closed = True

    def __enter__(self) -> MetricsWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _torn_tail(data: bytes | bytearray) -> int:
    """Length of the incomplete last line (bytes after the last newline); 0 if none."""
    if not data or data.endswith(b"\n"):
        return 0
    return len(data) - (data.rfind(b"\n") + 1)


def read_metrics(path: storage.PathLike, event: str | None = None) -> list[dict[str, Any]]:
    """Records of a metrics file (optionally only one event).

    A final line cut short by a crash is ignored; damage anywhere else raises CorruptRecordError.
    """
    path = os.fspath(path)
    data = storage.read_bytes(path)
    lines = data.split(b"\n")
    if lines and lines[-1]:
        lines = lines[:-1]  # incomplete last line (no newline): the writer died mid-write
    records = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = msgspec.json.decode(line)
        except (msgspec.DecodeError, UnicodeDecodeError) as err:
            raise storage.CorruptRecordError(path, lineno, str(err)) from None
        if event is None or record.get("event") == event:
            records.append(record)
    return records


def train_losses(path: storage.PathLike) -> dict[int, float]:
    """Loss per optimizer step from the `train_step` records of a training run's metrics file.

    A run killed after logging a step but before that step's checkpoint was durable redoes the
    step when resumed, so a step may be logged twice; the later record is the step that the
    saved model continues from, so it wins."""
    return {int(rec["step"]): float(rec["loss"]) for rec in read_metrics(path, "train_step")}


def _progress_enabled(force: bool | None) -> bool:
    if force is not None:
        return force
    env = os.environ.get(PROGRESS_ENV, "")
    if env:
        return env.lower() not in ("0", "false", "no", "off")
    return sys.stderr.isatty()


def _eta(done: int, total: int | None, rate: float) -> float | None:
    if total is None or rate <= 0:
        return None
    return max(total - done, 0) / rate


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Progress:
    """Progress of one long stage: a rich bar on a terminal, log lines and metrics elsewhere.

    Shows items done / total, the rate and the ETA. On a terminal (or `STP_PROGRESS=1`) the bar
    is drawn on stderr; otherwise, because carriage-return bars turn cluster logs into noise, a
    `desc: done/total (rate/s, elapsed, ETA)` line is logged at most every `log_every_s` seconds.
    With a `metrics` writer the same figures are appended to the run's metrics stream as
    `progress` events (at most every `log_every_s` seconds and once at the end), so a run that
    says nothing on a terminal can still be followed and post-mortem'd from its files.

    `done` is where a resumed stage starts: the rate counts only this process's work, so the ETA
    is not flattered by work a previous process did.
    """

    def __init__(self, total: int | None, desc: str = "", *, done: int = 0,
                 enabled: bool | None = None, log_every_s: float = 60.0,
                 logger: logging.Logger | None = None, metrics: MetricsWriter | None = None,
                 unit: str = "items") -> None:
        self.total = total
        self.desc = desc or "progress"
        self.done = done
        self.unit = unit
        self._start_done = done
        self._log = logger or logging.getLogger("stp.progress")
        self._metrics = metrics
        self._every = log_every_s
        self._start = self._last = time.monotonic()
        self._bar: Any = None
        self._task: Any = None
        self._closed = False
        if _progress_enabled(enabled):
            self._bar = _rich_bar(self.desc)
            self._task = self._bar.add_task(self.desc, total=total, completed=done)
            self._bar.start()

    @property
    def rate(self) -> float:
        """Items per second done by this process."""
        elapsed = max(time.monotonic() - self._start, 1e-9)
        return (self.done - self._start_done) / elapsed

    def advance(self, n: int = 1) -> None:
        self.update(self.done + n)

    def update(self, done: int) -> None:
        """Set the absolute count (for loops that report "step k finished", e.g. trainers)."""
        self.done = done
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        now = time.monotonic()
        if now - self._last >= self._every:
            self._last = now
            self._report()

    def _report(self) -> None:
        elapsed = time.monotonic() - self._start
        rate = self.rate
        eta = _eta(self.done, self.total, rate)
        if self._bar is None:
            of = f"/{self.total}" if self.total is not None else ""
            self._log.info("%s: %d%s %s (%.1f/s, %s elapsed, ETA %s)", self.desc, self.done, of,
                           self.unit, rate, _clock(elapsed), _clock(eta))
        if self._metrics is not None:
            self._metrics.log("progress", stage=self.desc, done=self.done, total=self.total,
                              rate=round(rate, 3), elapsed_s=round(elapsed, 1),
                              eta_s=None if eta is None else round(eta, 1))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.stop()
        if self.done > self._start_done and (
                self._metrics is not None or time.monotonic() - self._start >= self._every):
            self._report()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _rich_bar(desc: str) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        ProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.progress import Progress as RichProgress
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text("?/s" if speed is None else f"{speed:.1f}/s", style="progress.data.speed")

    return RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        RateColumn(), TimeElapsedColumn(), TextColumn("ETA"),
                        TimeRemainingColumn(), console=Console(stderr=True), transient=False)


def progress(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str = "",
    *,
    enabled: bool | None = None,
    log_every_s: float = 60.0,
    logger: logging.Logger | None = None,
    metrics: MetricsWriter | None = None,
) -> Iterator[T]:
    """Iterate while reporting progress (see `Progress`: bar on a terminal, else log lines)."""
    if total is None and isinstance(iterable, Sized):
        total = len(iterable)
    with Progress(total, desc, enabled=enabled, log_every_s=log_every_s, logger=logger,
                  metrics=metrics) as bar:
        for item in iterable:
            yield item
            bar.advance()
