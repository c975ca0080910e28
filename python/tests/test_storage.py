"""stp.storage on local disk and on gs:// (through gcp-storage-emulator), incl. failure paths."""

from __future__ import annotations

import gzip
import os
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from stp import storage

# gcs_emulator / gcs_root fixtures (an in-process gcp-storage-emulator).
pytest_plugins = ["gcs_emulator"]


class Rec(msgspec.Struct, kw_only=True):
    id: int
    text: str = ""



@pytest.fixture(params=["local", "gcs"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "local":
        return str(tmp_path / "store")
    return request.getfixturevalue("gcs_root")


def _tmp_leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.rglob("*") if p.name.endswith(storage.TMP_SUFFIX)]


# --- both backends ---------------------------------------------------------------------------


def test_bytes_text_roundtrip_and_exists(root: str) -> None:
    path = storage.join(root, "a", "b.bin")
    assert not storage.exists(path)
    storage.write_bytes(path, b"\x00\x01payload")
    assert storage.exists(path)
    assert storage.exists(storage.join(root, "a"))  # directory / prefix
    assert storage.read_bytes(path) == b"\x00\x01payload"
    storage.write_bytes(path, b"new")  # overwrite
    assert storage.read_bytes(path) == b"new"
    storage.write_text(storage.join(root, "t.txt"), "héllo\n")
    assert storage.read_text(storage.join(root, "t.txt")) == "héllo\n"


def test_missing_file_raises_file_not_found(root: str) -> None:
    with pytest.raises(FileNotFoundError):
        storage.read_bytes(storage.join(root, "nope.bin"))
    with pytest.raises(FileNotFoundError):
        list(storage.iter_jsonl(storage.join(root, "nope.jsonl.gz")))
    with pytest.raises(FileNotFoundError):
        storage.listdir(storage.join(root, "no-dir"))
    with pytest.raises(FileNotFoundError):
        storage.remove(storage.join(root, "nope.bin"))
    storage.remove(storage.join(root, "nope.bin"), missing_ok=True)
    with pytest.raises(FileNotFoundError):
        storage.local_cache_path(storage.join(root, "nope.bin"))


def test_listdir_sorted_with_subdirs_and_remove(root: str) -> None:
    for name in ["b.txt", "a.txt", "sub/c.txt", "sub/deeper/d.txt"]:
        storage.write_text(storage.join(root, *name.split("/")), name)
    assert storage.listdir(root) == ["a.txt", "b.txt", "sub"]
    assert storage.listdir(storage.join(root, "sub")) == ["c.txt", "deeper"]
    storage.remove(storage.join(root, "a.txt"))
    assert storage.listdir(root) == ["b.txt", "sub"]
    storage.remove_tree(storage.join(root, "sub"))
    assert storage.listdir(root) == ["b.txt"]
    assert not storage.exists(storage.join(root, "sub", "c.txt"))
    storage.remove_tree(storage.join(root, "sub"))  # missing tree is fine


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_jsonl_roundtrip_typed_and_untyped(root: str, suffix: str) -> None:
    path = storage.join(root, "recs" + suffix)
    records = [Rec(id=i, text="x" * (i % 7) + "\n\"") for i in range(500)]
    assert storage.write_jsonl(path, (r for r in records)) == 500
    assert list(storage.iter_jsonl(path, Rec)) == records
    untyped = storage.read_jsonl(path)
    assert untyped[3] == {"id": 3, "text": "xxx\n\""}
    if suffix.endswith(".gz"):
        assert storage.read_bytes(path)[:2] == b"\x1f\x8b"  # really gzip
    # builtins validated against a type on the way in
    storage.write_jsonl(path, [{"id": 7}], type=Rec)
    assert storage.read_jsonl(path, Rec) == [Rec(id=7)]


def test_json_roundtrip(root: str) -> None:
    path = storage.join(root, "meta.json")
    storage.write_json(path, {"round": 3, "rec": Rec(id=1)})
    assert storage.read_json(path) == {"round": 3, "rec": {"id": 1, "text": ""}}
    storage.write_json(path, Rec(id=2, text="t"))
    assert storage.read_json(path, Rec) == Rec(id=2, text="t")


def test_sharded_writer_resumes_numbering(root: str) -> None:
    log = storage.join(root, "log")
    assert list(storage.iter_sharded_jsonl(log, Rec)) == []  # missing log is empty
    writer = storage.ShardedJsonlWriter(log)
    assert writer.write([Rec(id=0), Rec(id=1)]) == storage.join(log, "part-00000.jsonl.gz")
    assert writer.write([]) is None  # empty batch publishes nothing
    writer.write([Rec(id=2)])
    # A new writer (e.g. after a crash) continues after the last complete shard.
    again = storage.ShardedJsonlWriter(log)
    assert again.next_index == 2
    again.write([Rec(id=3)])
    assert [storage.basename(p) for p in again.shards()] == [
        "part-00000.jsonl.gz",
        "part-00001.jsonl.gz",
        "part-00002.jsonl.gz",
    ]
    assert [r.id for r in storage.iter_sharded_jsonl(log, Rec)] == [0, 1, 2, 3]
    # Other prefixes in the same directory are separate logs.
    storage.ShardedJsonlWriter(log, prefix="other").write([Rec(id=9)])
    assert [r.id for r in storage.iter_sharded_jsonl(log, Rec)] == [0, 1, 2, 3]
    assert [r.id for r in storage.iter_sharded_jsonl(log, Rec, prefix="other")] == [9]


def test_local_cache_path(root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(storage.CACHE_DIR_ENV, str(tmp_path / "cache"))
    path = storage.join(root, "m", "weights.bin")
    storage.write_bytes(path, b"v1")
    local = storage.local_cache_path(path)
    assert isinstance(local, Path) and local.read_bytes() == b"v1"
    if storage.is_gcs(path):
        assert str(local).startswith(str(tmp_path / "cache"))
        storage.write_bytes(path, b"v2")  # new generation -> fresh download
        assert storage.local_cache_path(path).read_bytes() == b"v2"
    else:
        assert local == Path(path)


# --- failure paths: corrupt data ------------------------------------------------------------


def test_corrupt_line_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": 2}\n{"id": \n')
    it = storage.iter_jsonl(path, Rec)
    assert next(it) == Rec(id=1)
    with pytest.raises(storage.CorruptRecordError) as info:
        list(it)
    assert f"{path}:3:" in str(info.value)
    assert info.value.lineno == 3


def test_deeply_nested_record_names_file_and_line(tmp_path: Path) -> None:
    """A record nested deeper than the decoder's stack is that line's error, not a
    RecursionError traceback (issue #24 item 8)."""
    path = tmp_path / "deep.jsonl"
    path.write_bytes(b'{"id": 1}\n{"id": ' + b"[" * 200_000 + b"]" * 200_000 + b"}\n")
    with pytest.raises(storage.CorruptRecordError, match="nested too deeply") as info:
        list(storage.iter_jsonl(path))
    assert info.value.lineno == 2
    doc = tmp_path / "deep.json"
    doc.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(storage.CorruptRecordError, match="nested too deeply"):
        storage.read_json(doc)


def test_wrong_type_record_names_line(tmp_path: Path) -> None:
    path = tmp_path / "typed.jsonl.gz"
    storage.write_jsonl(path, [{"id": 1}, {"id": "two"}])
    with pytest.raises(storage.CorruptRecordError, match=r"typed\.jsonl\.gz:2: .*int"):
        storage.read_jsonl(path, Rec)


def test_truncated_gzip_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "cut.jsonl.gz"
    storage.write_jsonl(path, [Rec(id=i, text=os.urandom(30).hex()) for i in range(2000)])
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(storage.CorruptRecordError, match="truncated or corrupt gzip"):
        storage.read_jsonl(path, Rec)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(storage.CorruptRecordError, match=r"cut\.jsonl\.gz"):
        storage.read_jsonl(path)


def test_corrupt_json_document(tmp_path: Path) -> None:
    path = tmp_path / "meta.json"
    path.write_text("{oops")
    with pytest.raises(storage.CorruptRecordError, match=r"meta\.json"):
        storage.read_json(path)


def test_write_rejects_record_of_wrong_type(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    with pytest.raises(ValueError, match=r"record 2 does not match"):
        storage.write_jsonl(path, [{"id": 1}, {"id": "nope"}], type=Rec)
    assert not path.exists()
    assert _tmp_leftovers(tmp_path) == []


def test_bad_gcs_uris() -> None:
    with pytest.raises(ValueError, match="needs a bucket"):
        storage.split_gcs("gs:///key")
    with pytest.raises(ValueError, match="not a gs://"):
        storage.split_gcs("/local/path")
    assert storage.split_gcs("gs://b/a/b/") == ("b", "a/b")
    assert storage.join("gs://b/run", "r1", "x.json") == "gs://b/run/r1/x.json"
    assert storage.parent("gs://b/run/x.json") == "gs://b/run"


# --- atomicity of the local path ------------------------------------------------------------


class Crash(RuntimeError):
    pass


def _records_then_crash(n: int) -> Iterator[Rec]:
    for i in range(n):
        yield Rec(id=i, text="y" * 100)
    raise Crash("simulated crash mid-write")


@pytest.mark.parametrize("name", ["data.jsonl", "data.jsonl.gz"])
def test_interrupted_jsonl_write_keeps_old_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / "run" / name
    storage.write_jsonl(path, [Rec(id=-1, text="old")])
    old = path.read_bytes()
    # Enough records that the writer has flushed buffers to the temp file before the crash.
    with pytest.raises(Crash):
        storage.write_jsonl(path, _records_then_crash(30_000))
    assert path.read_bytes() == old
    assert storage.read_jsonl(path, Rec) == [Rec(id=-1, text="old")]
    assert _tmp_leftovers(tmp_path) == []
    assert storage.listdir(path.parent) == [name]


def test_interrupted_first_write_creates_nothing(tmp_path: Path) -> None:
    path = tmp_path / "fresh.jsonl.gz"
    with pytest.raises(Crash):
        storage.write_jsonl(path, _records_then_crash(10))
    assert not path.exists()
    assert _tmp_leftovers(tmp_path) == []


def test_crash_before_rename_leaves_old_and_hides_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kill the process between writing the temp file and renaming it (os.replace fails)."""
    path = tmp_path / "state.json"
    storage.write_json(path, {"v": 1})

    def dying_replace(src: str, dst: str) -> None:
        raise Crash("power cut before rename")

    monkeypatch.setattr(storage.os, "replace", dying_replace)
    with pytest.raises(Crash):
        storage.write_json(path, {"v": 2})
    monkeypatch.undo()
    assert storage.read_json(path) == {"v": 1}
    assert _tmp_leftovers(tmp_path) == []


def test_stale_temp_from_killed_writer_is_ignored(tmp_path: Path) -> None:
    """A SIGKILLed writer can leave its temp file; it is never listed nor counted as a shard."""
    log = tmp_path / "log"
    writer = storage.ShardedJsonlWriter(log)
    writer.write([Rec(id=0)])
    stale = log / f".part-00001.jsonl.gz.abc123{storage.TMP_SUFFIX}"
    stale.write_bytes(gzip.compress(b'{"id": 99}\n')[:10])
    assert storage.listdir(log) == ["part-00000.jsonl.gz"]
    assert storage.ShardedJsonlWriter(log).next_index == 1
    assert [r.id for r in storage.iter_sharded_jsonl(log, Rec)] == [0]


def test_create_only_write_and_shard_race(tmp_path: Path) -> None:
    path = tmp_path / "once.txt"
    storage.write_bytes(path, b"first", overwrite=False)
    with pytest.raises(FileExistsError):
        storage.write_bytes(path, b"second", overwrite=False)
    assert path.read_bytes() == b"first"
    # Two writers that both believe shard 0 is next: the second must not overwrite the first.
    log = tmp_path / "log"
    a = storage.ShardedJsonlWriter(log)
    b = storage.ShardedJsonlWriter(log)
    a.write([Rec(id=1)])
    assert b.write([Rec(id=2)]) == str(log / "part-00001.jsonl.gz")
    assert [r.id for r in storage.iter_sharded_jsonl(log, Rec)] == [1, 2]
    assert _tmp_leftovers(tmp_path) == []


def test_gcs_interrupted_write_uploads_nothing(gcs_root: str) -> None:
    path = storage.join(gcs_root, "data.jsonl.gz")
    storage.write_jsonl(path, [Rec(id=-1)])
    with pytest.raises(Crash):
        storage.write_jsonl(path, _records_then_crash(100))
    assert storage.read_jsonl(path, Rec) == [Rec(id=-1)]
    assert storage.listdir(gcs_root) == ["data.jsonl.gz"]
