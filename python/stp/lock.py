"""One process per run directory: an exclusive lock that a crashed holder cannot leave stuck.

Two processes working in one run directory (a second `python -m stp.selfplay` started by mistake,
a scheduler retrying a job that is still alive) would each claim shards, so every round ends with
twice the attempts its manifest promises, and no error. Every command that writes a run
directory or a log therefore holds `lock_dir(path)` for as long as it works there:

* Local paths: `fcntl.flock` on `<dir>/.stp-lock`. The kernel drops the lock when the holder
  exits for any reason (exception, SIGKILL, out of memory), so a crash never leaves it stuck;
  the file itself stays and only records who held it last. (flock works on local file systems
  and on NFSv4 and Lustre mounts that emulate it.)
* `gs://` paths: Cloud Storage has no locks, so the holder writes a lease object
  `<dir>/.stp-lock.json` (owner, host, pid, expiry) created with `if_generation_match=0`, renews
  it every `ttl_s / 3` seconds from a daemon thread, and deletes it on release. A lease whose
  expiry has passed (its holder died without releasing) is taken over with a generation
  precondition, so two processes cannot both take it. A crashed holder therefore blocks the
  directory for at most `ttl_s` seconds.

A second process gets one line naming the directory and the holder, and exit status 2
(`RunDirLockedError` is a `UsageError`).

    with lock_dir(cfg.run.run_dir, purpose="self-play"):
        ...
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import IO, Any

import msgspec

from stp import storage
from stp.errors import UsageError

LOCK_NAME = ".stp-lock"
LEASE_NAME = ".stp-lock.json"
DEFAULT_LEASE_TTL_S = 300.0

logger = logging.getLogger(__name__)


class RunDirLockedError(UsageError):
    """Another live process holds the directory; the message names the directory and holder."""


class _Holder(msgspec.Struct, kw_only=True):
    owner: str
    host: str
    pid: int
    purpose: str
    since: float
    expires: float = 0.0  # leases only (unix seconds)


def _describe(raw: bytes) -> str:
    try:
        h = msgspec.json.decode(raw, type=_Holder)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
        return "another process"
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(h.since))
    return f"{h.purpose} (pid {h.pid} on {h.host}, since {started})"


def _holder(purpose: str, owner: str, expires: float = 0.0) -> _Holder:
    return _Holder(owner=owner, host=socket.gethostname(), pid=os.getpid(), purpose=purpose,
                   since=time.time(), expires=expires)


class DirLock:
    """A held lock on one directory; `release()` (or leaving the `with` block) frees it."""

    def __init__(self, path: str, purpose: str) -> None:
        self.path = path
        self.purpose = purpose
        self.owner = uuid.uuid4().hex
        self._file: IO[bytes] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._generation: int | None = None
        self.lost = False  # gs:// only: the lease was taken over while we held it
        self._key = ""
        self._depth = 0  # nested re-entries by this process (see `acquire`)
        self._created = False  # local: the lock created the directory

    # -- local --------------------------------------------------------------------------------

    def _acquire_local(self) -> None:
        import fcntl

        self._created = not os.path.exists(self.path)
        os.makedirs(self.path, exist_ok=True)
        lock_path = os.path.join(self.path, LOCK_NAME)
        handle = open(lock_path, "a+b")  # noqa: SIM115 (held open for the lock's lifetime)
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            handle.seek(0)
            holder = _describe(handle.read())
            handle.close()
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise RunDirLockedError(
                    f"{self.path} is in use by {holder}; wait for it to finish or stop it "
                    "(a crashed holder releases it automatically)") from None
            raise
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(msgspec.json.encode(_holder(self.purpose, self.owner)) + b"\n")
            handle.flush()
        except OSError as err:
            handle.close()
            raise storage.with_filename(err, lock_path) from None
        self._file = handle

    # -- gs:// ----------------------------------------------------------------------------------

    def _lease_blob(self) -> Any:
        return storage._blob(storage.join(self.path, LEASE_NAME))

    def _write_lease(self, blob: Any, match: int) -> None:
        data = msgspec.json.encode(_holder(self.purpose, self.owner, time.time() + self.ttl_s))
        blob.upload_from_string(data, content_type="application/json", if_generation_match=match)
        self._generation = blob.generation

    def _acquire_gcs(self, ttl_s: float) -> None:
        from google.api_core.exceptions import NotFound, PreconditionFailed

        self.ttl_s = ttl_s
        blob = self._lease_blob()
        try:
            blob.reload()
            raw, generation = blob.download_as_bytes(), int(blob.generation or 0)
        except NotFound:
            raw, generation = b"", 0
        if raw:
            try:
                expires = msgspec.json.decode(raw, type=_Holder).expires
            except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError):
                expires = 0.0  # an unreadable lease protects nothing
            if expires > time.time():
                raise RunDirLockedError(
                    f"{self.path} is in use by {_describe(raw)} (lease until "
                    f"{time.strftime('%H:%M:%S', time.localtime(expires))}); wait for it to "
                    "finish or stop it (a crashed holder's lease expires)")
        try:
            # Create-only when absent; when expired, replace exactly the generation we read, so
            # of two processes taking over the same expired lease only one succeeds.
            self._write_lease(self._lease_blob(), generation)
        except PreconditionFailed:
            raise RunDirLockedError(
                f"{self.path}: another process took the run-directory lease just now") from None
        if raw:
            logger.warning("%s: took over the expired lease of %s", self.path, _describe(raw))
        self._thread = threading.Thread(target=self._renew, name="stp-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        from google.api_core.exceptions import PreconditionFailed

        while not self._stop.wait(self.ttl_s / 3):
            try:
                self._write_lease(self._lease_blob(), self._generation or 0)
            except PreconditionFailed:
                self.lost = True
                logger.error("%s: the run-directory lease was taken over by another process; "
                             "stop this one", self.path)
                return
            except Exception as err:  # a transient network error: try again next period
                logger.warning("%s: renewing the lease failed (%s); retrying", self.path, err)

    # -- common ---------------------------------------------------------------------------------

    def release(self) -> None:
        with _held_lock:
            if _held.get(self._key) is self:
                del _held[self._key]
        if self._file is not None:
            if self._created:
                # A command that failed before writing anything leaves no empty output folder
                # (removed while the lock is still held; a newcomer's lock file keeps it).
                with contextlib.suppress(OSError):
                    if os.listdir(self.path) == [LOCK_NAME]:
                        os.unlink(os.path.join(self.path, LOCK_NAME))
                        os.rmdir(self.path)
            self._file.close()  # closing the descriptor drops the flock
            self._file = None
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=10)
            self._thread = None
            if not self.lost:
                from google.api_core.exceptions import NotFound, PreconditionFailed

                with contextlib.suppress(NotFound, PreconditionFailed):
                    self._lease_blob().delete(if_generation_match=self._generation)

    def __enter__(self) -> DirLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


# Locks this process holds, by directory: taking a held one again (a pipeline that locks its run
# directory and then calls `run_selfplay` on it) nests instead of refusing itself.
_held: dict[str, DirLock] = {}
_held_lock = threading.Lock()


def _key(path: str) -> str:
    return path.rstrip("/") if storage.is_gcs(path) else os.path.realpath(path)


class _Nested(DirLock):
    """A re-entry into a lock this process already holds; releasing it releases nothing."""

    def __init__(self, outer: DirLock) -> None:
        super().__init__(outer.path, outer.purpose)
        self.outer = outer

    def release(self) -> None:
        with _held_lock:
            self.outer._depth -= 1


def acquire(path: storage.PathLike, *, purpose: str = "",
            ttl_s: float = DEFAULT_LEASE_TTL_S) -> DirLock:
    """Take the directory's lock or raise RunDirLockedError at once (never waits).

    Within one process the lock is re-entrant: taking it again while held returns a nested
    handle, and the directory is released when the outermost holder releases it.
    """
    path = os.fspath(path)
    if storage.is_gcs(path):
        storage.split_gcs(path)  # `gs://` without a bucket: one line naming it
    key = _key(path)
    with _held_lock:
        outer = _held.get(key)
        if outer is not None:
            outer._depth += 1
            return _Nested(outer)
        lock = DirLock(path, purpose or " ".join(["python", *sys.argv[:1]]))
        if storage.is_gcs(path):
            lock._acquire_gcs(ttl_s)
        else:
            lock._acquire_local()
        lock._key = key
        _held[key] = lock
        return lock


@contextlib.contextmanager
def lock_dir(path: storage.PathLike, *, purpose: str = "",
             ttl_s: float = DEFAULT_LEASE_TTL_S) -> Iterator[DirLock]:
    """Hold the directory's lock for the block (see the module docstring)."""
    lock = acquire(path, purpose=purpose, ttl_s=ttl_s)
    try:
        yield lock
    finally:
        lock.release()


__all__ = ["DEFAULT_LEASE_TTL_S", "LEASE_NAME", "LOCK_NAME", "DirLock", "RunDirLockedError",
           "acquire", "lock_dir"]
