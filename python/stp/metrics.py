"""Human logs, a machine-readable JSONL metrics stream per run, and progress reporting.

Logs are for people watching a run; the metrics stream is for plots and post-mortems: one JSON
object per line, `{"time": <unix seconds>, "event": <name>, ...fields}`, so a crashed run's file is
still readable up to its last complete line and tools can filter by `event`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import msgspec

from stp import storage

T = TypeVar("T")

PROGRESS_ENV = "STP_PROGRESS"
RESERVED_FIELDS = frozenset({"time", "event"})


def get_logger(name: str) -> logging.Logger:
    """A logger in the `stp` hierarchy, so one `setup_logging` call configures every module."""
    if name == "stp" or name.startswith("stp."):
        return logging.getLogger(name)
    return logging.getLogger(f"stp.{name}")


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
        get_logger("metrics").warning(
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
                self._file.write(line)
                self._file.flush()
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


def _progress_enabled(force: bool | None) -> bool:
    if force is not None:
        return force
    env = os.environ.get(PROGRESS_ENV, "")
    if env:
        return env.lower() not in ("0", "false", "no", "off")
    return sys.stderr.isatty()


def progress(
    iterable: Iterable[T],
    total: int | None = None,
    desc: str = "",
    *,
    enabled: bool | None = None,
    log_every_s: float = 60.0,
    logger: logging.Logger | None = None,
) -> Iterator[T]:
    """Iterate with a progress bar on a terminal, or periodic log lines otherwise.

    Bars are drawn only on a TTY (or when `STP_PROGRESS=1`/`enabled=True`), because carriage-return
    bars turn cluster logs into noise; elsewhere a `desc: done/total (rate/s)` line is logged at
    most every `log_every_s` seconds (and once at the end of a loop that long).
    """
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    if _progress_enabled(enabled):
        from tqdm.auto import tqdm

        yield from tqdm(iterable, total=total, desc=desc or None, dynamic_ncols=True)
        return
    log = logger or get_logger("progress")
    start = last = time.monotonic()
    count = 0

    def report() -> None:
        elapsed = max(time.monotonic() - start, 1e-9)
        of = f"/{total}" if total is not None else ""
        log.info("%s: %d%s (%.1f/s, %.0fs)", desc or "progress", count, of, count / elapsed, elapsed)

    for item in iterable:
        yield item
        count += 1
        now = time.monotonic()
        if now - last >= log_every_s:
            last = now
            report()
    if count and time.monotonic() - start >= log_every_s:
        report()
