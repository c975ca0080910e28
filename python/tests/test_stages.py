"""The one stage driver (`stp.stages.drive`) and its logs: what is skipped, what is recorded,
in which order the metrics event, the record and the hook happen, and that the three levels (a
self-play round, the pipeline, the re-training) all go through it."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from stp import storage
from stp.stages import JsonStageLog, Stage, StageEvent, drive


class MemoryLog:
    """A StageLog in memory that also notes the order of calls."""

    def __init__(self, done: dict[str, dict[str, Any]] | None = None,
                 calls: list[str] | None = None) -> None:
        self.done = dict(done or {})
        self.calls = calls if calls is not None else []
        self.seconds: dict[str, float] = {}

    def finished(self) -> dict[str, dict[str, Any]]:
        return dict(self.done)

    def record(self, stage: str, seconds: float, summary: dict[str, Any]) -> None:
        self.calls.append(f"record {stage}")
        self.seconds[stage] = seconds
        self.done[stage] = summary


def test_recorded_stages_are_skipped_and_every_summary_is_returned_in_order() -> None:
    ran: list[str] = []

    def stage(name: str) -> Stage:
        return Stage(name, lambda: ran.append(name) or {"n": len(ran)})

    log = MemoryLog({"b": {"n": 99}})
    out = drive([stage("a"), stage("b"), stage("c")], log, level="pipeline", run_dir="r",
                log_event=lambda *a, **k: None)
    assert ran == ["a", "c"]
    assert list(out) == ["a", "b", "c"]
    assert out == {"a": {"n": 1}, "b": {"n": 99}, "c": {"n": 2}}
    assert set(log.done) == {"a", "b", "c"} and log.seconds["a"] >= 0.0
    # A second drive over the same log runs nothing and returns the same summaries.
    again = drive([stage("a"), stage("b"), stage("c")], log, level="pipeline", run_dir="r",
                  log_event=lambda *a, **k: None)
    assert ran == ["a", "c"] and again == out


def test_event_is_written_before_the_record_and_the_hook_sees_it_after() -> None:
    calls: list[str] = []
    events: list[tuple[str, dict[str, Any]]] = []
    seen: list[StageEvent] = []

    def log_event(name: str, **fields: Any) -> None:
        calls.append(f"event {fields['stage']}")
        events.append((name, fields))

    def hook(event: StageEvent) -> None:
        calls.append(f"hook {event.stage}")
        seen.append(event)

    drive([Stage("x", lambda: {"k": 1})], MemoryLog(calls=calls), level="round",
          run_dir="/runs/a", log_event=log_event, hook=hook, round_index=3)
    assert calls == ["event x", "record x", "hook x"]
    name, fields = events[0]
    # A round's stages write `stage` events with their round; the others write their level.
    assert name == "stage" and fields["round"] == 3 and fields["k"] == 1
    assert isinstance(fields["seconds"], float)
    assert seen == [StageEvent(level="round", stage="x", run_dir="/runs/a", round=3)]
    retrain: list[str] = []
    drive([Stage("data", lambda: {})], MemoryLog(), level="retrain", run_dir="r",
          log_event=lambda name, **f: retrain.append(name))
    assert retrain == ["retrain"]


def test_a_failing_stage_records_nothing_and_a_crash_after_the_event_repeats_it() -> None:
    log = MemoryLog()
    events: list[str] = []

    def boom() -> dict[str, Any]:
        raise RuntimeError("stage failed")

    with pytest.raises(RuntimeError, match="stage failed"):
        drive([Stage("a", lambda: {}), Stage("b", boom)], log, level="pipeline", run_dir="r",
              log_event=lambda name, **f: events.append(f["stage"]))
    assert list(log.done) == ["a"] and events == ["a"]

    class CrashingRecord(MemoryLog):
        def record(self, stage: str, seconds: float, summary: dict[str, Any]) -> None:
            raise OSError("killed between event and record")

    with pytest.raises(OSError):
        drive([Stage("b", lambda: {})], CrashingRecord(), level="pipeline", run_dir="r",
              log_event=lambda name, **f: events.append(f["stage"]))
    # The event was written; the stage is not recorded, so a rerun runs it (and logs it) again.
    assert events == ["a", "b"]


def test_a_hook_that_raises_leaves_its_stage_recorded() -> None:
    log = MemoryLog()

    def kill(event: StageEvent) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        drive([Stage("a", lambda: {}), Stage("b", lambda: {})], log, level="pipeline",
              run_dir="r", log_event=lambda *a, **k: None, hook=kill)
    assert list(log.done) == ["a"]


def test_json_stage_log_keeps_its_file_format(tmp_path: Path) -> None:
    nested = JsonStageLog(str(tmp_path / "pipeline.json"), section="stages")
    assert nested.finished() == {}
    nested.record("sft", 1.23456, {"model": "m"})
    assert json.loads((tmp_path / "pipeline.json").read_text()) == {
        "stages": {"sft": {"model": "m", "seconds": 1.235}}}
    flat = JsonStageLog(str(tmp_path / "retrain" / "manifest.json"))
    flat.record("data", 2.0, {"examples": 3})
    flat.record("train", 0.5, {"model": "x"})
    assert json.loads((tmp_path / "retrain" / "manifest.json").read_text()) == {
        "data": {"examples": 3, "seconds": 2.0}, "train": {"model": "x", "seconds": 0.5}}
    assert list(flat.finished()) == ["data", "train"]


@pytest.mark.parametrize("content", ["[1, 2]", '{"stages": []}', '{"stages": {"a": 1}}'])
def test_a_damaged_stage_log_is_a_corrupt_record_naming_the_file(tmp_path: Path,
                                                                 content: str) -> None:
    path = tmp_path / "pipeline.json"
    path.write_text(content)
    with pytest.raises(storage.CorruptRecordError, match=r"pipeline\.json"):
        JsonStageLog(str(path), section="stages").finished()


def test_a_damaged_log_says_which_part_is_wrong(tmp_path: Path) -> None:
    nested, flat = tmp_path / "pipeline.json", tmp_path / "manifest.json"
    nested.write_text('{"stages": {"a": 1}}')
    flat.write_text('{"data": []}')
    with pytest.raises(storage.CorruptRecordError, match="stages must map stage names"):
        JsonStageLog(str(nested), section="stages").finished()
    with pytest.raises(storage.CorruptRecordError, match="the file must map stage names"):
        JsonStageLog(str(flat)).finished()


def test_seconds_are_the_stage_s_own_duration(monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """What is recorded and logged is the time between the stage's start and end on the
    monotonic clock, to the millisecond, and the log line names the level and round."""
    import stp.stages

    clock = iter([100.0, 102.5004])
    monkeypatch.setattr(stp.stages.time, "monotonic", lambda: next(clock))
    log = MemoryLog()
    fields: dict[str, Any] = {}
    with caplog.at_level(logging.INFO, logger="stp.stages"):
        drive([Stage("x", lambda: {})], log, level="round", run_dir="r", round_index=7,
              log_event=lambda name, **f: fields.update(f))
    assert log.seconds["x"] == pytest.approx(2.5004)
    assert fields["seconds"] == 2.5
    assert "round 7: x done in 2.5s" in caplog.text
    caplog.clear()
    clock = iter([0.0, 1.0])
    with caplog.at_level(logging.INFO, logger="stp.stages"):
        drive([Stage("y", lambda: {})], MemoryLog(), level="pipeline", run_dir="r",
              log_event=lambda *a, **k: None)
    assert "pipeline: y done in 1.0s" in caplog.text


def test_stages_and_events_cannot_be_changed_after_they_are_made() -> None:
    """A hook cannot alter the event the next hook sees, nor a table its stage."""
    event = StageEvent(level="round", stage="x", run_dir="r", round=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.stage = "y"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        Stage("a", dict).name = "b"  # type: ignore[misc]


def test_every_level_runs_through_the_one_driver(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    """The round, the pipeline and the re-training each call `stp.stages.drive` (none keeps a
    loop of its own): with the driver replaced, none of them runs a stage."""
    import stp.pipeline.run as pipeline_run
    import stp.selfplay.loop as loop
    import stp.selfplay.retrain as retrain

    levels: list[str] = []

    def fake_drive(stages: Any, stage_log: Any, *, level: str, **kw: Any) -> dict[str, Any]:
        levels.append(level)
        return {}

    for module in (loop, pipeline_run, retrain):
        monkeypatch.setattr(module, "drive", fake_drive)
    from selfplay_helpers import make_config, scripted_backends
    from standin import standin_command, with_checker

    cfg = with_checker(make_config(tmp_path, "run", ["selfplay.rounds=1", "pipeline.blocks=1",
                                                     'pipeline.stages=["selfplay"]']),
                       standin_command({}))
    sp = loop.SelfPlay(cfg, backends=scripted_backends())
    try:
        sp.initialise()
        sp.run_round(0)
    finally:
        sp.close()
    retrain.run_retrain(cfg, backends=scripted_backends())
    pipeline_run.Pipeline(cfg, backends=scripted_backends())._run()
    assert levels == ["round", "retrain", "pipeline"]
