"""stp.metrics: the JSONL metrics stream (local and gs://), loggers and progress reporting."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from stp import metrics, storage

pytest_plugins = ["gcs_emulator"]


def test_each_log_is_one_flushed_line(tmp_path: Path) -> None:
    path = tmp_path / "run" / "metrics.jsonl"
    writer = metrics.MetricsWriter(path)
    record = writer.log("round_end", round=1, solved=np.int64(7), rate=np.float32(0.5))
    # Visible on disk before close: a crash loses nothing already logged.
    lines = path.read_text().splitlines()
    assert len(lines) == 1
    on_disk = json.loads(lines[0])
    assert on_disk == {"time": record["time"], "event": "round_end", "round": 1,
                       "solved": 7, "rate": 0.5}
    writer.log("train_step", loss=[1.5, 2.0], path=tmp_path)
    writer.close()
    assert [r["event"] for r in metrics.read_metrics(path)] == ["round_end", "train_step"]
    assert metrics.read_metrics(path, event="train_step")[0]["path"] == str(tmp_path)


def test_resume_appends(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    with metrics.MetricsWriter(path) as writer:
        writer.log("a")
    with metrics.MetricsWriter(path) as writer:
        writer.log("b")
    assert [r["event"] for r in metrics.read_metrics(path)] == ["a", "b"]


def test_bad_events_are_rejected(tmp_path: Path) -> None:
    writer = metrics.MetricsWriter(tmp_path / "m.jsonl")
    with pytest.raises(ValueError, match="reserved"):
        writer.log("x", time=3)
    with pytest.raises(ValueError, match="non-empty"):
        writer.log("")
    with pytest.raises(TypeError, match="cannot record a object"):
        writer.log("x", value=object())
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.log("late")


def test_crash_cut_last_line_is_ignored_but_damage_is_not(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_bytes(b'{"time": 1, "event": "a"}\n{"time": 2, "ev')
    assert [r["event"] for r in metrics.read_metrics(path)] == ["a"]
    path.write_bytes(b'{"time": 1, "event": "a"}\n{"oops\n{"time": 3, "event": "c"}\n')
    with pytest.raises(storage.CorruptRecordError, match=r"m\.jsonl:2:"):
        metrics.read_metrics(path)


@pytest.mark.parametrize("backend", ["local", "gcs"])
def test_resume_after_a_torn_line_appends_readable_records(
        tmp_path: Path, backend: str, request: pytest.FixtureRequest,
        caplog: pytest.LogCaptureFixture) -> None:
    # A full disk cut the last write: the file ends in half a record without a newline.
    root = str(tmp_path) if backend == "local" else request.getfixturevalue("gcs_root")
    path = storage.join(root, "metrics.jsonl")
    storage.write_bytes(path, b'{"time": 1, "event": "a"}\n{"time": 2, "event": "tr')
    with caplog.at_level(logging.WARNING, logger="stp.metrics"), \
            metrics.MetricsWriter(path) as writer:
        writer.log("b", step=2)
    assert "removed a torn last line (24 bytes" in caplog.text
    # The resumed run's record follows the last complete line, so the file reads back whole.
    assert [r["event"] for r in metrics.read_metrics(path)] == ["a", "b"]
    assert storage.read_bytes(path).count(b"\n") == 2
    # A corrupt complete line is not "torn": it is left alone and reading still reports it.
    storage.write_bytes(path, b'{"time": 1, "event": "a"}\n{"oops\n')
    metrics.MetricsWriter(path).close()
    with pytest.raises(storage.CorruptRecordError, match=r"metrics\.jsonl:2:"):
        metrics.read_metrics(path)


def test_gcs_metrics_upload_on_flush_and_resume(gcs_root: str) -> None:
    path = storage.join(gcs_root, "metrics.jsonl")
    writer = metrics.MetricsWriter(path, upload_interval_s=3600)
    writer.log("a", n=1)
    assert not storage.exists(path)  # buffered: GCS objects cannot be appended to
    writer.flush()
    assert [r["n"] for r in metrics.read_metrics(path)] == [1]
    writer.log("b", n=2)
    writer.close()
    with metrics.MetricsWriter(path) as again:  # resume keeps earlier events
        again.log("c", n=3)
    assert [r["event"] for r in metrics.read_metrics(path)] == ["a", "b", "c"]


def test_gcs_metrics_periodic_upload(gcs_root: str) -> None:
    path = storage.join(gcs_root, "m.jsonl")
    writer = metrics.MetricsWriter(path, upload_interval_s=0)
    writer.log("a")
    assert [r["event"] for r in metrics.read_metrics(path)] == ["a"]
    writer.close()


def test_progress_logs_when_not_a_tty(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="stp.progress"):
        items = list(metrics.progress(range(5), desc="checking", enabled=False, log_every_s=0))
    assert items == [0, 1, 2, 3, 4]
    messages = [r.getMessage() for r in caplog.records]
    assert messages and messages[-1].startswith("checking: 5/5")


def test_progress_bar_when_forced(capsys: pytest.CaptureFixture[str]) -> None:
    assert list(metrics.progress(iter("abc"), total=3, desc="bar", enabled=True)) == ["a", "b", "c"]
    assert "bar" in capsys.readouterr().err


def test_progress_env_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(metrics.PROGRESS_ENV, "0")
    assert metrics._progress_enabled(None) is False
    monkeypatch.setenv(metrics.PROGRESS_ENV, "1")
    assert metrics._progress_enabled(None) is True


def test_progress_writes_done_total_rate_and_eta_to_the_metrics_stream(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "metrics.jsonl"
    # A stage resumed at 2 of 6: the bar starts there and the rate counts only new work.
    with caplog.at_level(logging.INFO, logger="stp.progress"), \
            metrics.MetricsWriter(path) as writer, \
            metrics.Progress(6, "proving", done=2, enabled=False, log_every_s=0,
                             metrics=writer) as bar:
        for _ in range(4):
            bar.advance()
    events = metrics.read_metrics(path, "progress")
    assert [e["done"] for e in events] == [3, 4, 5, 6, 6]
    assert all(e["stage"] == "proving" and e["total"] == 6 for e in events)
    assert events[-1]["rate"] > 0 and events[-1]["eta_s"] == 0
    assert "proving: 6/6 items" in caplog.text and "ETA 0:00" in caplog.text


def test_progress_bar_shows_count_rate_and_eta(capsys: pytest.CaptureFixture[str]) -> None:
    with metrics.Progress(4, "checking", enabled=True) as bar:
        bar.advance(4)
    err = capsys.readouterr().err
    assert "checking" in err and "4/4" in err and "/s" in err and "ETA" in err
