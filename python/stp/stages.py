"""The one stage driver: a self-play round, the pipeline and the final re-training each run a
table of named stages through `drive`, over a log of finished stages.

Every long command of STP is a sequence of stages whose outputs are written atomically before
the stage is recorded as finished, so rerunning the command after a crash skips what is recorded
and redoes only the stage that was interrupted (which resumes inside itself where it can: the
sampling stages from their last stored shard, the trainer from its last checkpoint). The three
levels differ only in where they record a finished stage (`StageLog`: a round's
`manifest.json`, the run's `pipeline.json`, `retrain/manifest.json`) and in the metrics event
they write; the order of what happens around a stage is defined once, here:

1. a stage recorded in the log is skipped (its recorded summary is returned);
2. otherwise it runs, and returns its summary (a JSON object);
3. the metrics event is written *before* the stage is recorded: a crash in between repeats the
   event on resume (the reports read the logs, not the events) instead of losing it;
4. the log records the stage with its duration;
5. the hook sees a `StageEvent` (tests raise from it to stand in for a kill at that point).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from stp import storage

log = logging.getLogger(__name__)

# Which driver recorded a stage: a self-play round, the pipeline, or the final re-training.
StageLevel = Literal["round", "pipeline", "retrain"]


@dataclass(frozen=True)
class Stage:
    """One named step of a stage table: `run()` does the work and returns its summary."""

    name: str
    run: Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class StageEvent:
    """What a hook is told: a stage of `level` was recorded (`shard` None), or a sampling stage
    stored shard `shard`. `run_dir` is the run directory whose log holds it (the pipeline's
    alternation blocks each have their own), `round` the self-play round of a round stage."""

    level: StageLevel
    stage: str
    run_dir: str
    round: int | None = None
    shard: int | None = None


# Called at every StageEvent; one hook given to the pipeline sees its self-play rounds' and its
# re-training's events too.
StageHook = Callable[[StageEvent], None]


def no_hook(event: StageEvent) -> None:
    """The default hook: nothing to observe."""


class StageLog(Protocol):
    """Where a level records its finished stages (each level keeps its file format)."""

    def finished(self) -> Mapping[str, dict[str, Any]]:
        """Every recorded stage's summary, read now from storage."""
        ...

    def record(self, stage: str, seconds: float, summary: dict[str, Any]) -> None:
        """Record `stage` as finished (atomically; after this a rerun skips it)."""
        ...


class JsonStageLog:
    """A JSON object `{stage: summary}` (under `section` when given) in one file; each summary
    carries its `seconds`. The pipeline's `pipeline.json` (section "stages") and the re-training's
    `retrain/manifest.json` (no section) are such logs."""

    def __init__(self, path: str, section: str | None = None) -> None:
        self.path = path
        self.section = section

    def _read(self) -> dict[str, Any]:
        if not storage.exists(self.path):
            return {}
        data = storage.read_json(self.path)
        if not isinstance(data, dict):
            raise storage.CorruptRecordError(self.path, None, "expected a JSON object")
        return data

    def _stages(self, data: dict[str, Any]) -> dict[str, dict[str, Any]]:
        stages = data.get(self.section, {}) if self.section else data
        if not isinstance(stages, dict) or not all(isinstance(v, dict)
                                                   for v in stages.values()):
            raise storage.CorruptRecordError(
                self.path, None, f"{self.section or 'the file'} must map stage names to objects")
        return stages

    def finished(self) -> dict[str, dict[str, Any]]:
        return self._stages(self._read())

    def record(self, stage: str, seconds: float, summary: dict[str, Any]) -> None:
        data = self._read()
        stages = self._stages(data)
        stages[stage] = {**summary, "seconds": round_seconds(seconds)}
        if self.section:
            data[self.section] = stages
        else:
            data = stages
        storage.write_json(self.path, data)


def drive(stages: Iterable[Stage], stage_log: StageLog, *, level: StageLevel, run_dir: str,
          log_event: Callable[..., object], hook: StageHook = no_hook,
          round_index: int | None = None) -> dict[str, dict[str, Any]]:
    """Run the stages of `stages` that `stage_log` has not recorded, in order (see the module
    docstring for what happens around each); returns every stage's summary, recorded earlier or
    now. `log_event(event, **fields)` writes the metrics event named by `level` (`stage` for a
    round's stages, `pipeline`, `retrain`), with `round_index` as `round` when there is one."""
    event_name = "stage" if level == "round" else level
    where = {"round": round_index} if round_index is not None else {}
    prefix = level if round_index is None else f"{level} {round_index}"
    summaries: dict[str, dict[str, Any]] = {}
    # Read once: only this loop records into the log while it runs (the run directory's lock
    # keeps every other process out).
    finished = stage_log.finished()
    for stage in stages:
        if stage.name in finished:
            summaries[stage.name] = finished[stage.name]
            continue
        start = time.monotonic()
        log.info("%s: %s", prefix, stage.name)
        summary = stage.run()
        seconds = time.monotonic() - start
        log_event(event_name, **where, stage=stage.name, seconds=round_seconds(seconds),
                  **summary)
        stage_log.record(stage.name, seconds, summary)
        log.info("%s: %s done in %.1fs", prefix, stage.name, seconds)
        summaries[stage.name] = summary
        hook(StageEvent(level=level, stage=stage.name, run_dir=run_dir,
                        round=round_index))
    return summaries


def round_seconds(seconds: float) -> float:
    """Durations are recorded to the millisecond (finer digits are noise)."""
    return round(seconds, 3)
