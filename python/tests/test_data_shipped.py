"""The benchmark files shipped in data/benchmarks/ and `python -m stp.data download`."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from stp.data import DownloadError, load_dataset, registry
from stp.data import download as dl
from stp.data.__main__ import main

SHIPPED = {f.filename: f for info in registry.list_datasets() for f in info.files if f.shipped}


def test_shipped_files_match_the_release_checksums(data_dir: Path) -> None:
    assert registry.shipped_dir() == data_dir
    assert set(SHIPPED) == {"miniF2F_lean.json", "proofnet.jsonl", "putnam_bench.jsonl"}
    sources = (data_dir / "SOURCES.md").read_text(encoding="utf-8")
    for name, data_file in SHIPPED.items():
        assert dl.file_digests(data_dir / name) == (data_file.sha256, data_file.git_blob)
        assert data_file.sha256 in sources and name in sources
    for name, sha in registry.SHIPPED_EXTRA_FILES.items():
        assert dl.file_digests(data_dir / name)[0] == sha
        assert sha in sources
    listed = {p.name for p in data_dir.iterdir()} - {"SOURCES.md"}
    assert listed == set(SHIPPED) | set(registry.SHIPPED_EXTRA_FILES)


def test_valid_only_files_equal_the_valid_rows(data_dir: Path) -> None:
    combined = json.loads((data_dir / "miniF2F_lean.json").read_text(encoding="utf-8"))
    valid = json.loads((data_dir / "miniF2F_lean_valid.json").read_text(encoding="utf-8"))
    assert valid == [r for r in combined if r["split"] == "miniF2F valid"]
    rows = [json.loads(line) for line in
            (data_dir / "proofnet.jsonl").read_text(encoding="utf-8").splitlines()]
    pn_valid = json.loads((data_dir / "proofnet_valid.json").read_text(encoding="utf-8"))
    assert [r["name"] for r in pn_valid] == [r["name"] for r in rows
                                             if r["split"] == "Proofnet valid"]


def test_benchmarks_load_with_an_empty_data_dir(tmp_path: Path) -> None:
    """A fresh machine: nothing in the data directory, downloads off; the shipped files serve."""
    assert len(load_dataset("minif2f", tmp_path, split="test", allow_download=False)) == 244
    assert len(load_dataset("putnam", tmp_path, allow_download=False)) == 644
    assert not list(tmp_path.iterdir())


def test_info_without_a_data_dir(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STP_DATA_DIR", str(tmp_path / "not-yet"))
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "(does not exist yet)" in out
    assert "minif2f" in out and "valid 244, test 244" in out
    assert "python -m stp.data download lean_workbook" in out


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A real HTTP server on localhost serving a folder (the download code runs unchanged)."""
    root = tmp_path / "served"
    root.mkdir()
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # no request log on stderr
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


def _point_workbook_at(monkeypatch: pytest.MonkeyPatch, url: str, content: bytes) -> None:
    info = registry.DATASETS["lean_workbook"]
    import hashlib

    blob = hashlib.sha1(f"blob {len(content)}\0".encode() + content).hexdigest()
    data_file = registry.DataFile("lean_workbook_dedup.json", "json", {"lean_workbook": "train"},
                                  url=url, git_blob=blob)
    monkeypatch.setitem(registry.DATASETS, "lean_workbook",
                        registry.DatasetInfo(**{**info.__dict__, "files": (data_file,)}))


WORKBOOK = json.dumps([{"formal_statement": "theorem lw_1 : 1 = 1 := by", "split":
                        "lean_workbook"}]).encode()


def test_download_fetches_and_checks_the_blob_id(
        file_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    base, served = file_server
    (served / "lw.json").write_bytes(WORKBOOK)
    _point_workbook_at(monkeypatch, f"{base}/lw.json", WORKBOOK)
    data = tmp_path / "data"
    assert main(["download", "--data-dir", str(data), "lean_workbook"]) == 0
    assert (data / "lean_workbook_dedup.json").read_bytes() == WORKBOOK
    assert "downloaded, git blob id checked" in capsys.readouterr().out
    # A second run finds the file, checks it and does not fetch again.
    (served / "lw.json").unlink()
    assert main(["download", "--data-dir", str(data), "lean_workbook"]) == 0
    assert "present, git blob id checked" in capsys.readouterr().out
    assert [r.name for r in load_dataset("lean_workbook", data)] == ["lw_1"]
    # A present file that differs is refused, naming it.
    (data / "lean_workbook_dedup.json").write_bytes(WORKBOOK + b" ")
    with pytest.raises(DownloadError, match=r"lean_workbook_dedup\.json: its git blob id is"):
        main(["download", "--data-dir", str(data), "lean_workbook"])


def test_download_refuses_a_changed_upstream_file(
        file_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base, served = file_server
    (served / "lw.json").write_bytes(WORKBOOK.replace(b"1 = 1", b"2 = 2"))
    _point_workbook_at(monkeypatch, f"{base}/lw.json", WORKBOOK)
    data = tmp_path / "data"
    with pytest.raises(DownloadError, match=r"its git blob id is .* place a known-good copy at"):
        main(["download", "--data-dir", str(data), "lean_workbook"])
    assert not (data / "lean_workbook_dedup.json").exists()
    assert not [p for p in data.iterdir() if p.name.startswith(".lean_workbook")]


def test_download_offline_names_the_file_to_place(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    _point_workbook_at(monkeypatch, "http://127.0.0.1:9/lw.json", WORKBOOK)
    data = tmp_path / "data"
    with pytest.raises(DownloadError) as err:
        main(["download", "--data-dir", str(data), "lean_workbook"])
    message = str(err.value)
    assert "\n" not in message
    assert f"Place the file at {data / 'lean_workbook_dedup.json'} by hand" in message


def test_download_of_shipped_benchmarks_checks_them(tmp_path: Path, data_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["download", "--data-dir", str(tmp_path), "minif2f", "putnam"]) == 0
    out = capsys.readouterr().out
    assert f"{data_dir / 'miniF2F_lean.json'} (present, SHA-256 checked)" in out
    assert not list(tmp_path.iterdir())
