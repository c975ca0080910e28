"""One small storage API for run artifacts on local disk or Google Cloud Storage.

Every artifact a run writes (round records, checkpoints metadata, metrics) goes through here so a
run directory can live on a laptop disk or in a `gs://bucket/prefix` without code changes, and so
that no reader ever sees a half-written file:

* Local paths are written to a temporary file in the destination directory, flushed, fsync'ed and
  then renamed over the destination with `os.replace`. A crash at any point leaves either the old
  file or the new one, never a mixture. Temporary names start with `.` and end in `.stp-tmp`; they
  are never listed.
* `gs://` objects are uploaded in one request (or one resumable session for large files) from a
  complete local file. Cloud Storage only makes an object visible once its upload has finished
  and its checksum verified, so readers see the previous generation until then. Streaming writers
  (`write_jsonl`, `ShardedJsonlWriter`) therefore first spool to a local temporary file and upload
  it once. Shards are uploaded with the precondition `if_generation_match=0` so two writers can
  never overwrite each other's shard (the emulator used in tests ignores preconditions; the local
  path enforces the same rule with a hard link, which is tested directly).

The Cloud Storage client is imported lazily (`pip install 'stp-prover[cluster]'`), and honours the
standard `STORAGE_EMULATOR_HOST` environment variable, which is how the tests use
`gcp-storage-emulator`.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import gzip
import os
import posixpath
import re
import shutil
import tempfile
import threading
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, TypeVar

import msgspec

from stp.errors import EnvironmentSetupError, InputFormatError

T = TypeVar("T")

GCS_SCHEME = "gs://"
# Gzip level 5 is ~3x faster than the default 9 on JSONL and only a few percent larger.
GZIP_LEVEL = 5
TMP_SUFFIX = ".stp-tmp"
SHARD_PATTERN = "{prefix}-{index:05d}.jsonl.gz"
CACHE_DIR_ENV = "STP_CACHE_DIR"
DEFAULT_CACHE_DIR = "~/.cache/stp/gcs"

PathLike = str | os.PathLike[str]


class CorruptRecordError(InputFormatError):
    """A stored record cannot be decoded; the message names the file and (when known) the line."""

    def __init__(self, path: str, lineno: int | None, reason: str) -> None:
        self.path = path
        self.lineno = lineno
        self.reason = reason
        where = f"{path}:{lineno}" if lineno is not None else path
        super().__init__(f"{where}: {reason}")


# ---------------------------------------------------------------------------------------------
# Paths


def is_gcs(path: PathLike) -> bool:
    return str(path).startswith(GCS_SCHEME)


def split_gcs(uri: str) -> tuple[str, str]:
    """`gs://bucket/a/b` -> ("bucket", "a/b"); the key may be empty for the bucket root."""
    if not is_gcs(uri):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, key = uri[len(GCS_SCHEME) :].partition("/")
    if not bucket:
        # Every command takes paths; a user's typo is one line (exit 2), not a traceback.
        raise InputFormatError(f"{uri!r}: a gs:// path needs a bucket (gs://BUCKET/path)")
    return bucket, key.strip("/")


def join(base: PathLike, *parts: str) -> str:
    """Join path components; `gs://` URIs always use `/` whatever the local OS."""
    base = os.fspath(base)
    if is_gcs(base):
        return posixpath.join(base, *parts)
    return os.path.join(base, *parts)


def parent(path: PathLike) -> str:
    path = os.fspath(path)
    if is_gcs(path):
        bucket, key = split_gcs(path)
        head = posixpath.dirname(key)
        return f"{GCS_SCHEME}{bucket}/{head}" if head else f"{GCS_SCHEME}{bucket}"
    return os.path.dirname(os.path.abspath(path))


def basename(path: PathLike) -> str:
    path = os.fspath(path).rstrip("/")
    return posixpath.basename(path) if is_gcs(path) else os.path.basename(path)


# ---------------------------------------------------------------------------------------------
# Cloud Storage client (lazy)

_client_lock = threading.Lock()
_client: Any = None
_client_key: str | None = None


def _gcs_client(path: str = "") -> Any:
    """A process-wide client; rebuilt when STORAGE_EMULATOR_HOST changes (tests). `path`, the
    gs:// path being reached, opens the message when the package or the credentials are
    missing, so the one line names what the user asked for as well as what is wrong."""
    where = f"{path}: " if path else ""
    global _client, _client_key
    key = os.environ.get("STORAGE_EMULATOR_HOST", "")
    with _client_lock:
        if _client is None or _client_key != key:
            try:
                from google.cloud import storage as gcs
            except ImportError:
                raise EnvironmentSetupError(
                    f"{where}gs:// paths need google-cloud-storage, which is not installed: "
                    "pip install 'stp-prover[cluster]'") from None
            from google.auth.exceptions import DefaultCredentialsError

            try:
                _client = gcs.Client()
            except DefaultCredentialsError:
                raise EnvironmentSetupError(
                    f"{where}gs:// paths need Google Cloud credentials and none were found: "
                    "run `gcloud auth "
                    "application-default login`, set GOOGLE_APPLICATION_CREDENTIALS to a "
                    "service-account key, or run on a GCE/GKE/TPU VM with a service account"
                ) from None
            _client_key = key
        return _client


def reset_gcs_client() -> None:
    """Forget the cached client (after changing credentials or the emulator address)."""
    global _client, _client_key
    with _client_lock:
        _client = None
        _client_key = None


def _blob(uri: str) -> Any:
    bucket, key = split_gcs(uri)
    if not key:
        raise ValueError(f"gs:// URI names a bucket, not an object: {uri!r}")
    return _gcs_client(uri).bucket(bucket).blob(key)


def _no_such_object(path: str) -> FileNotFoundError:
    """A missing gs:// object as the FileNotFoundError a missing local file is: with its path as
    `filename`, so every caller (and `stp.cli`'s one-line errors) treats both alike."""
    return FileNotFoundError(errno.ENOENT, "no such object in Cloud Storage", path)


def _not_found() -> type[Exception]:
    from google.api_core.exceptions import NotFound

    return NotFound


def _precondition_failed() -> type[Exception]:
    from google.api_core.exceptions import PreconditionFailed

    return PreconditionFailed


def _content_type(path: str) -> str:
    if path.endswith(".gz"):
        return "application/gzip"
    if path.endswith((".jsonl", ".ndjson")):
        return "application/jsonl"
    if path.endswith(".json"):
        return "application/json"
    if path.endswith((".txt", ".log", ".toml", ".lean", ".md")):
        return "text/plain; charset=utf-8"
    return "application/octet-stream"


def _upload_file(local: str, uri: str, *, overwrite: bool = True) -> None:
    """Upload a complete local file; the object becomes visible only once fully received.

    No `Content-Encoding: gzip` is set on .gz objects on purpose: it would make Cloud Storage
    transcode on download and break byte-exact reads.
    """
    blob = _blob(uri)
    kwargs: dict[str, Any] = {"content_type": _content_type(uri), "checksum": "crc32c"}
    if not overwrite:
        kwargs["if_generation_match"] = 0
    try:
        blob.upload_from_filename(local, **kwargs)
    except _precondition_failed():
        raise FileExistsError(f"{uri} already exists") from None


# ---------------------------------------------------------------------------------------------
# Local atomic publication


_UMASK: list[int] = []


def _file_mode() -> int:
    """The mode a plain `open(path, "w")` would give a new file: 0o666 less the umask (read
    once: reading it means setting it, which must not race with other threads' file creation
    more than once per process)."""
    if not _UMASK:
        mask = os.umask(0o022)
        os.umask(mask)
        _UMASK.append(mask)
    return 0o666 & ~_UMASK[0]


def _local_tmp(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    # mkstemp creates 0600; a published artifact (a report, a manifest, a model file) gets the
    # permissions any other file written by this user gets, so the group can read a report.
    os.fchmod(fd, _file_mode())
    return fd, tmp


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every filesystem allows opening a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _publish_local(tmp: str, path: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
    else:
        # link() fails if the destination exists: an atomic "create only" rename.
        try:
            os.link(tmp, path)
        finally:
            os.unlink(tmp)
    _fsync_dir(path.parent)


@contextlib.contextmanager
def _atomic_local_file(path: PathLike, *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """Yield a binary file whose content replaces `path` only if the block completes."""
    path = Path(path)
    fd, tmp = _local_tmp(path)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish_local(tmp, path, overwrite=overwrite)
    except BaseException as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(err, OSError) and err.filename is None and err.errno is not None:
            # A failed write(2) names no file; name the destination so the user knows where
            # the disk is full or read-only (`stp.cli.run_main` prints it as one line).
            raise with_filename(err, str(path)) from None
        raise


def with_filename(err: OSError, filename: str) -> OSError:
    """The same OSError (same class and errno) naming `filename`."""
    return type(err)(err.errno, err.strerror, filename)


# Rust libraries (safetensors, tokenizers): "... (os error 28)"; tensorstore, which writes JAX
# and Levanter checkpoints from C++ threads: "... [os_error_code='28']" inside a ValueError.
_RUST_OS_ERROR = re.compile(r"\(os error (\d+)\)|\[os_error_code='(\d+)'\]")


def as_os_error(err: BaseException, filename: str) -> OSError | None:
    """An OSError naming `filename` for a failed write, or None if `err` is not one.

    Libraries written in Rust (safetensors, tokenizers) report a full disk as their own
    exception type with "(os error 28)" in the message, tensorstore (Levanter's checkpoints) as a
    ValueError with "[os_error_code='28']"; Python's own writes raise OSError without
    a file name. Both become an OSError naming the file being written, which `stp.cli.run_main`
    turns into one line saying what to free.
    """
    if isinstance(err, OSError):
        if err.errno is None:
            return None
        return err if err.filename is not None else with_filename(err, filename)
    match = _RUST_OS_ERROR.search(str(err))
    if match is None:
        return None
    code = int(match.group(1) or match.group(2))
    return OSError(code, os.strerror(code), filename)


@contextlib.contextmanager
def _atomic_file(path: PathLike, *, overwrite: bool = True) -> Iterator[IO[bytes]]:
    """Atomic binary writer for any path: local temp + rename, or local spool + one upload."""
    path = os.fspath(path)
    if not is_gcs(path):
        with _atomic_local_file(path, overwrite=overwrite) as handle:
            yield handle
        return
    split_gcs(path)  # validate before spooling anything
    fd, tmp = tempfile.mkstemp(prefix="stp-upload-", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
        _upload_file(tmp, path, overwrite=overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


# ---------------------------------------------------------------------------------------------
# Bytes and text


def exists(path: PathLike) -> bool:
    """True for an existing file or directory; on GCS, an object or a non-empty prefix."""
    path = os.fspath(path)
    if not is_gcs(path):
        return os.path.exists(path)
    bucket, key = split_gcs(path)
    client = _gcs_client(path)
    if not key:
        return client.bucket(bucket).exists()
    if client.bucket(bucket).blob(key).exists():
        return True
    return any(True for _ in client.list_blobs(bucket, prefix=key + "/", max_results=1))


def read_bytes(path: PathLike) -> bytes:
    path = os.fspath(path)
    if not is_gcs(path):
        return Path(path).read_bytes()
    try:
        return _blob(path).download_as_bytes()
    except _not_found():
        raise _no_such_object(path) from None


def write_bytes(path: PathLike, data: bytes, *, overwrite: bool = True) -> None:
    """Atomically replace `path` with `data` (creating parent directories).

    With `overwrite=False` the write fails with FileExistsError instead of replacing an existing
    file, which makes "first writer wins" races safe.
    """
    with _atomic_file(path, overwrite=overwrite) as handle:
        handle.write(data)


def read_text(path: PathLike, encoding: str = "utf-8") -> str:
    """The file's text; undecodable bytes raise InputFormatError naming the file and offset."""
    return decode_text(read_bytes(path), os.fspath(path), encoding)


def decode_text(data: bytes, where: str, encoding: str = "utf-8") -> str:
    """Decode bytes read from `where`, turning a UnicodeDecodeError into one line naming it.

    A Latin-1 or binary file handed to a command expecting UTF-8 text must be reported as the
    user's file being wrong (with the offset of the first bad byte), never as a traceback.
    """
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as err:
        raise InputFormatError(
            f"{where}: not {encoding.upper()} text (byte {err.start}: {err.reason}); "
            "is it the right file, or does it need converting (e.g. `iconv -f latin1 -t utf-8`)?"
        ) from None


def write_text(path: PathLike, text: str, encoding: str = "utf-8") -> None:
    write_bytes(path, text.encode(encoding))


def listdir(path: PathLike) -> list[str]:
    """Sorted child names (files and sub-directories), without in-flight temporary files.

    A missing directory raises FileNotFoundError on both backends (on GCS: no object under the
    prefix), so a mistyped run directory is an error rather than an empty listing.
    """
    path = os.fspath(path)
    if not is_gcs(path):
        names = os.listdir(path)
        return sorted(n for n in names if not (n.startswith(".") and n.endswith(TMP_SUFFIX)))
    bucket, key = split_gcs(path)
    prefix = key + "/" if key else ""
    iterator = _gcs_client(path).list_blobs(bucket, prefix=prefix, delimiter="/")
    found = {blob.name[len(prefix) :] for blob in iterator}
    found.update(p[len(prefix) :].rstrip("/") for p in iterator.prefixes)
    found.discard("")
    if not found:
        raise FileNotFoundError(f"no such directory (no objects under prefix): {path}")
    return sorted(found)


def remove(path: PathLike, *, missing_ok: bool = False) -> None:
    """Delete one file/object."""
    path = os.fspath(path)
    if not is_gcs(path):
        Path(path).unlink(missing_ok=missing_ok)
        return
    try:
        _blob(path).delete()
    except _not_found():
        if not missing_ok:
            raise _no_such_object(path) from None


def remove_tree(path: PathLike) -> None:
    """Delete a directory (or every object under a gs:// prefix); missing is not an error."""
    path = os.fspath(path)
    if not is_gcs(path):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)
        return
    bucket, key = split_gcs(path)
    if not key:
        raise ValueError(f"refusing to delete a whole bucket: {path}")
    client = _gcs_client(path)
    for blob in client.list_blobs(bucket, prefix=key + "/"):
        with contextlib.suppress(_not_found()):
            blob.delete()
    with contextlib.suppress(_not_found()):
        client.bucket(bucket).blob(key).delete()


# ---------------------------------------------------------------------------------------------
# JSON and JSONL

_encoder = msgspec.json.Encoder()


def _coerce(record: Any, type: Any, index: int, path: str) -> Any:
    """Validate/convert one record to `type`; structs already of that class pass through."""
    if type is None or (isinstance(type, builtins.type) and isinstance(record, type)):
        return record
    try:
        return msgspec.convert(record, type, from_attributes=True)
    except msgspec.ValidationError as err:
        raise ValueError(f"{path}: record {index} does not match {type!r}: {err}") from None


def read_json(path: PathLike, type: Any = None) -> Any:
    """Decode a JSON document (into `type` when given); bad content raises CorruptRecordError."""
    path = os.fspath(path)
    data = read_bytes(path)
    try:
        if type is None:
            return msgspec.json.decode(data)
        return msgspec.json.decode(data, type=type)
    except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as err:
        raise CorruptRecordError(path, None, str(err)) from None
    except RecursionError:  # nesting deep enough to exhaust the decoder's stack
        raise CorruptRecordError(path, None, "JSON nested too deeply") from None


def write_json(path: PathLike, obj: Any, *, indent: int = 2) -> None:
    """Atomically write one JSON document (msgspec structs or builtins), human-readable."""
    data = msgspec.json.format(_encoder.encode(obj), indent=indent) + b"\n"
    write_bytes(path, data)


def _encode_lines(handle: IO[bytes] | gzip.GzipFile, records: Iterable[Any], type: Any, path: str) -> int:
    buffer = bytearray()
    count = 0
    for count, record in enumerate(records, start=1):
        _encoder.encode_into(_coerce(record, type, count, path), buffer, len(buffer))
        buffer.extend(b"\n")
        if len(buffer) >= 1 << 20:
            handle.write(buffer)
            buffer.clear()
    handle.write(buffer)
    return count


def _write_jsonl(
    path: str, records: Iterable[Any], type: Any = None, *, overwrite: bool = True
) -> int:
    with _atomic_file(path, overwrite=overwrite) as raw:
        if path.endswith(".gz"):
            # mtime=0 keeps identical content byte-identical (useful for caches and tests).
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) as gz:
                return _encode_lines(gz, records, type, path)
        return _encode_lines(raw, records, type, path)


def write_jsonl(path: PathLike, records: Iterable[Any], type: Any = None) -> int:
    """Atomically write records one JSON object per line (gzip when the path ends in .gz).

    Records may be msgspec structs or builtins; with `type`, each record is validated/converted to
    it first. Records are streamed, so a generator of millions is fine. If the iterable raises, the
    previous content of `path` is left untouched. Returns the number of records written.
    """
    return _write_jsonl(os.fspath(path), records, type)


@contextlib.contextmanager
def _open_read(path: str) -> Iterator[IO[bytes]]:
    if not is_gcs(path):
        with open(path, "rb") as handle:
            yield handle
        return
    blob = _blob(path)
    try:
        blob.reload()  # pin one generation so a concurrent overwrite cannot mix versions
    except _not_found():
        raise _no_such_object(path) from None
    with blob.open("rb", chunk_size=8 << 20) as handle:
        yield handle


def iter_jsonl(path: PathLike, type: Any = None) -> Iterator[Any]:
    """Stream records from a .jsonl or .jsonl.gz file (decoded into `type` when given).

    A line that is not valid JSON or does not match `type` raises CorruptRecordError naming the
    file and the 1-based line; a truncated or damaged gzip stream raises it too. Blank lines are
    skipped.
    """
    path = os.fspath(path)
    decoder = msgspec.json.Decoder(type) if type is not None else msgspec.json.Decoder()
    gzipped = path.endswith(".gz")
    lineno = 0
    with _open_read(path) as raw:
        stream: IO[bytes] | gzip.GzipFile = (gzip.GzipFile(fileobj=raw, mode="rb") if gzipped
                                             else raw)
        try:
            for lineno, line in enumerate(stream, start=1):
                if not line.strip():
                    continue
                try:
                    record = decoder.decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as err:
                    raise CorruptRecordError(path, lineno, str(err)) from None
                except RecursionError:  # nesting deep enough to exhaust the decoder's stack
                    raise CorruptRecordError(path, lineno, "JSON nested too deeply") from None
                yield record
        except (EOFError, gzip.BadGzipFile, zlib.error) as err:
            if not gzipped:
                raise
            raise CorruptRecordError(
                path, lineno + 1, f"truncated or corrupt gzip stream ({err})"
            ) from None


def read_jsonl(path: PathLike, type: Any = None) -> list[Any]:
    """All records of a JSONL file as a list (see `iter_jsonl`)."""
    return list(iter_jsonl(path, type))


# ---------------------------------------------------------------------------------------------
# Append-only logs made of shards

_SHARD_RE_CACHE: dict[str, re.Pattern[str]] = {}


def _shard_re(prefix: str) -> re.Pattern[str]:
    if prefix not in _SHARD_RE_CACHE:
        _SHARD_RE_CACHE[prefix] = re.compile(rf"^{re.escape(prefix)}-(\d{{5,}})\.jsonl\.gz$")
    return _SHARD_RE_CACHE[prefix]


def list_shards(dir_path: PathLike, prefix: str = "part") -> list[str]:
    """Full paths of the complete shards of a log, in write order; [] if the log is missing."""
    dir_path = os.fspath(dir_path)
    try:
        names = listdir(dir_path)
    except FileNotFoundError:
        return []
    pattern = _shard_re(prefix)
    numbered = sorted((int(m.group(1)), n) for n in names if (m := pattern.match(n)))
    return [join(dir_path, name) for _, name in numbered]


class ShardedJsonlWriter:
    """An append-only record log stored as numbered, atomically written gzip JSONL shards.

    Each `write(records)` publishes one new shard `<prefix>-NNNNN.jsonl.gz`; a shard is either
    entirely present or absent, so a crash loses at most the batch being written and a restarted
    writer simply continues numbering after the last complete shard. Shards are created with
    "create only" semantics, so if two writers race for the same number the loser re-lists and
    takes the next one instead of overwriting.
    """

    def __init__(self, dir_path: PathLike, prefix: str = "part", type: Any = None) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_.]+", prefix):
            raise ValueError(f"shard prefix must be alphanumeric/underscore/dot, got {prefix!r}")
        self.dir_path = os.fspath(dir_path)
        self.prefix = prefix
        self.type = type
        self._next = self._scan_next()

    def _scan_next(self) -> int:
        shards = list_shards(self.dir_path, self.prefix)
        if not shards:
            return 0
        match = _shard_re(self.prefix).match(basename(shards[-1]))
        assert match is not None
        return int(match.group(1)) + 1

    @property
    def next_index(self) -> int:
        return self._next

    def shard_path(self, index: int) -> str:
        return join(self.dir_path, SHARD_PATTERN.format(prefix=self.prefix, index=index))

    def write(self, records: Iterable[Any]) -> str | None:
        """Publish `records` as the next shard and return its path (None if there were none)."""
        records = list(records)
        if not records:
            return None
        for _ in range(100):
            path = self.shard_path(self._next)
            try:
                _write_jsonl(path, records, self.type, overwrite=False)
            except FileExistsError:
                self._next = max(self._next + 1, self._scan_next())
                continue
            self._next += 1
            return path
        raise RuntimeError(f"{self.dir_path}: could not claim a shard number after 100 attempts")

    def shards(self) -> list[str]:
        return list_shards(self.dir_path, self.prefix)


def iter_sharded_jsonl(dir_path: PathLike, type: Any = None, prefix: str = "part") -> Iterator[Any]:
    """Stream every record of a sharded log in write order; a missing log yields nothing."""
    for shard in list_shards(dir_path, prefix):
        yield from iter_jsonl(shard, type)


# ---------------------------------------------------------------------------------------------
# Local cache of remote files


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_DIR_ENV) or DEFAULT_CACHE_DIR).expanduser()


def local_cache_path(path: PathLike) -> Path:
    """A local file with the content of `path`: itself if local, else a cached download.

    The cache is keyed by bucket/key and revalidated against the object's generation, so a
    re-uploaded object is downloaded again; downloads are atomic (temp + rename).
    """
    path = os.fspath(path)
    if not is_gcs(path):
        local = Path(path)
        if not local.exists():
            raise FileNotFoundError(f"no such file: {path}")
        return local
    bucket, key = split_gcs(path)
    blob = _blob(path)
    try:
        blob.reload()
    except _not_found():
        raise _no_such_object(path) from None
    target = cache_root() / bucket / key
    stamp = target.with_name(target.name + ".generation")
    generation = str(blob.generation)
    if target.exists() and stamp.exists() and stamp.read_text().strip() == generation:
        return target
    with _atomic_local_file(target) as handle:
        blob.download_to_file(handle, if_generation_match=blob.generation)
    with _atomic_local_file(stamp) as handle:
        handle.write(generation.encode())
    return target
