"""The run directory: layout, per-round manifests of finished stages, array and record files.

Every file is written atomically through `stp.storage`, so the directory can be local or
`gs://`, and a stage is marked done in its round's manifest only after its outputs exist: a crash
leaves either no trace of a stage or a complete one (sharded stages keep their finished shards).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any, cast

import msgspec
import numpy as np

from stp import storage
from stp.selfplay.records import ConjectureInput, CorrectProof, StatementRow
from stp.stages import JsonStageLog

# A round's stages in order; `done` closes the round (its metrics event is written) and is what
# "round complete" means. Stage outputs are listed in docs/selfplay.md.
STAGES = ("pairs", "conjectures", "targets", "proving", "bookkeeping", "conjecture_examples",
          "train_set", "train", "done")


class StageRecord(msgspec.Struct, kw_only=True):
    seconds: float
    summary: dict[str, Any] = msgspec.field(default_factory=dict)


class RoundManifest(msgspec.Struct, kw_only=True):
    round: int
    stages: dict[str, StageRecord] = msgspec.field(default_factory=dict)


class RunDir:
    """Paths and small typed readers/writers of one run directory: the only place its file and
    folder names are spelled, for the self-play rounds and for the run around them (the
    pipeline's manifest, `sft/`, `retrain/`, `eval/`, `report/`, `block-<b>/`), and the only
    writer of its `config.toml`."""

    def __init__(self, root: str) -> None:
        self.root = root

    # ------------------------------------------------------------------ layout
    def path(self, *parts: str) -> str:
        return storage.join(self.root, *parts)

    @property
    def metrics(self) -> str:
        """One event stream for every stage of the run (`stp.metrics.MetricsWriter`)."""
        return self.path("metrics.jsonl")

    # Run level (python -m stp.pipeline; stp.retrain and the report use them too).
    @property
    def pipeline_manifest_path(self) -> str:
        """The pipeline's finished stages and their summaries (JSON)."""
        return self.path("pipeline.json")

    def pipeline_log(self) -> JsonStageLog:
        """The pipeline's finished units as a `stp.stages.StageLog`."""
        return JsonStageLog(self.pipeline_manifest_path, section="stages")

    @property
    def sft_dir(self) -> str:
        """Stage 1: `train.jsonl.gz` (when materialised) and `model/`."""
        return self.path("sft")

    @property
    def sft_train_set_path(self) -> str:
        """A released SFT dataset written once for Stage 1."""
        return storage.join(self.sft_dir, "train.jsonl.gz")

    @property
    def sft_model_dir(self) -> str:
        return storage.join(self.sft_dir, "model")

    @property
    def retrain_dir(self) -> str:
        """The final re-training: `manifest.json`, `train.jsonl.gz`, `model/`."""
        return self.path("retrain")

    @property
    def retrain_manifest_path(self) -> str:
        return storage.join(self.retrain_dir, "manifest.json")

    @property
    def retrain_train_set_path(self) -> str:
        return storage.join(self.retrain_dir, "train.jsonl.gz")

    @property
    def retrain_model_dir(self) -> str:
        return storage.join(self.retrain_dir, "model")

    def retrain_log(self) -> JsonStageLog:
        """The re-training's finished stages (`data`, `train`) as a `stp.stages.StageLog`."""
        return JsonStageLog(self.retrain_manifest_path)

    @property
    def report_dir(self) -> str:
        return self.path("report")

    def eval_dir(self, name: str) -> str:
        """The evaluation log, named by `pipeline.eval_dir`."""
        return self.path(name)

    def block_dir(self, block: int) -> str:
        """Self-play block b's run directory: the run itself for block 0, `block-<b>` after."""
        return self.root if block == 0 else self.path(f"block-{block}")

    @property
    def dataset_statements(self) -> str:
        return self.path("dataset_statements.jsonl.gz")

    def round_dir(self, r: int) -> str:
        return self.path(f"round-{r:04d}")

    def round_path(self, r: int, name: str) -> str:
        return storage.join(self.round_dir(r), name)

    # Every per-round file has one typed accessor; nothing else spells a round file's name.
    def manifest_path(self, r: int) -> str:
        return self.round_path(r, "manifest.json")

    def pairs_path(self, r: int) -> str:
        """`ConjectureInput`s of round r (pairs stage)."""
        return self.round_path(r, "pairs.jsonl.gz")

    def raw_conjectures_dir(self, r: int) -> str:
        """Sharded `RawConjecture`s (conjectures stage)."""
        return self.round_path(r, "conjectures")

    def new_statements_path(self, r: int) -> str:
        """The conjecture `StatementRow`s round r added to the statement table."""
        return self.round_path(r, "statements.jsonl.gz")

    def conjecture_sids_path(self, r: int) -> str:
        """`sids` of round r's kept conjectures (npz)."""
        return self.round_path(r, "conjectures.npz")

    def targets_path(self, r: int) -> str:
        return self.round_path(r, "targets.npz")

    def attempts_dir(self, r: int) -> str:
        """Sharded `ProofAttempt`s (proving stage)."""
        return self.round_path(r, "attempts")

    def correct_path(self, r: int) -> str:
        return self.round_path(r, "correct.jsonl.gz")

    def counts_path(self, r: int) -> str:
        return self.round_path(r, "counts.npz")

    def state_path(self, r: int) -> str:
        return self.round_path(r, "state.npz")

    def conjecture_examples_path(self, r: int) -> str:
        return self.round_path(r, "conjecture_examples.jsonl.gz")

    def train_set_path(self, r: int) -> str:
        return self.round_path(r, "train.jsonl.gz")

    def model_dir(self, r: int) -> str:
        return self.round_path(r, "model")

    def rounds(self) -> list[int]:
        """Rounds that have a manifest, ascending."""
        try:
            names = storage.listdir(self.root)
        except FileNotFoundError:
            return []
        out = []
        for name in names:
            if name.startswith("round-") and name[6:].isdigit() and storage.exists(
                    self.manifest_path(int(name[6:]))):
                out.append(int(name[6:]))
        return sorted(out)

    # ------------------------------------------------------------------ manifests
    def manifest(self, r: int) -> RoundManifest:
        path = self.manifest_path(r)
        if not storage.exists(path):
            return RoundManifest(round=r)
        return storage.read_json(path, type=RoundManifest)

    def mark_done(self, r: int, stage: str, seconds: float, summary: dict[str, Any]) -> RoundManifest:
        manifest = self.manifest(r)
        manifest.stages[stage] = StageRecord(seconds=seconds, summary=summary)
        storage.write_json(self.manifest_path(r), manifest)
        return manifest

    def round_log(self, r: int) -> RoundLog:
        """Round r's manifest as a `stp.stages.StageLog`."""
        return RoundLog(self, r)

    # ------------------------------------------------------------------ settings
    @property
    def config_path(self) -> str:
        return self.path("config.toml")

    def record_config(self, cfg: Any, *, replace: bool = True) -> None:
        """Write the resolved config as `config.toml` (the reference later starts are compared
        with); `replace=False` keeps one that is already there."""
        from stp.config import to_toml

        if replace or not storage.exists(self.config_path):
            storage.write_text(self.config_path, to_toml(cfg))

    @property
    def settings_changes_path(self) -> str:
        """Accepted setting changes, each with the round it first applied to (JSON list)."""
        return self.path("settings-changes.json")

    def first_unfinished_round(self) -> int:
        r = 0
        while "done" in self.manifest(r).stages:
            r += 1
        return r

    def check_settings(self, cfg: Any, allow_changed: bool) -> None:
        """Compare `cfg` with the run's `config.toml` (see `stp.settings_guard`): refuse a
        difference in a result-changing key, or, when allowed, record it and adopt `cfg`."""
        import tomllib

        from stp import settings_guard as guard

        if not storage.exists(self.config_path):
            return
        try:
            recorded = tomllib.loads(storage.read_text(self.config_path))
        except tomllib.TOMLDecodeError as err:  # (a non-UTF-8 file: storage's InputFormatError)
            raise storage.CorruptRecordError(self.config_path, None, str(err)) from None
        current = msgspec.to_builtins(cfg)
        changes = guard.changed(guard.selfplay_result_settings(recorded),
                                guard.selfplay_result_settings(current))
        if not changes:
            return
        if not allow_changed:
            guard.refuse(self.root, changes, "run directory")
        history = (storage.read_json(self.settings_changes_path)
                   if storage.exists(self.settings_changes_path) else [])
        history.append({"round": self.first_unfinished_round(),
                        "changed": guard.json_safe(changes)})
        storage.write_json(self.settings_changes_path, history)
        self.record_config(cfg)

    # ------------------------------------------------------------------ arrays
    def save_arrays(self, path: str, **arrays: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, **cast(dict[str, Any], arrays))  # numpy's stub types **kwds as bool
        storage.write_bytes(path, buffer.getvalue())

    def load_arrays(self, path: str) -> dict[str, np.ndarray]:
        """The arrays of an .npz file; a truncated or damaged one is a CorruptRecordError naming
        it (a resume would otherwise end in a zipfile traceback). Damage surfaces as these types
        (found by damaging every byte of a saved file, python/tests/test_fault_corpus.py): a
        flipped flag bit reads as an encrypted member, a damaged method or version field as an
        unsupported one (RuntimeError, NotImplementedError). Never KeyError: the members read are
        the archive's own names."""
        import zipfile

        try:
            with np.load(io.BytesIO(storage.read_bytes(path))) as data:
                return {k: data[k] for k in data.files}
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, RuntimeError) as err:
            if isinstance(err, OSError) and err.filename is not None:
                raise
            raise storage.CorruptRecordError(
                path, None, f"truncated or damaged array file ({err}); delete this round's "
                "directory from this stage on and rerun to recompute it") from None

    # ------------------------------------------------------------------ records
    def statement_rows(self, upto_round: int) -> list[StatementRow]:
        """Dataset rows plus the conjectures created by rounds < `upto_round` (sid = index)."""
        rows = list(storage.iter_jsonl(self.dataset_statements, type=StatementRow))
        for r in range(upto_round):
            path = self.new_statements_path(r)
            if storage.exists(path):
                rows.extend(storage.iter_jsonl(path, type=StatementRow))
        for i, row in enumerate(rows):
            if row.sid != i:
                raise storage.CorruptRecordError(
                    self.root, None, f"statement table out of order: row {i} has sid {row.sid}")
        return rows

    def pairs(self, r: int) -> list[ConjectureInput]:
        """Round r's (seed, lemma) pairs; a conjecture row's `pair` indexes this list."""
        return list(storage.iter_jsonl(self.pairs_path(r), type=ConjectureInput))

    def correct(self, r: int) -> Iterator[CorrectProof]:
        return storage.iter_jsonl(self.correct_path(r), type=CorrectProof)


class RoundLog:
    """One round's `manifest.json` as a `stp.stages.StageLog` (its records keep `seconds` beside
    the summary, the format every round manifest has had)."""

    def __init__(self, run_dir: RunDir, r: int) -> None:
        self.run_dir, self.r = run_dir, r

    def finished(self) -> dict[str, dict[str, Any]]:
        return {name: record.summary
                for name, record in self.run_dir.manifest(self.r).stages.items()}

    def record(self, stage: str, seconds: float, summary: dict[str, Any]) -> None:
        self.run_dir.mark_done(self.r, stage, seconds, summary)
