"""The final re-training from the base model (reference §4.11); `python -m stp.retrain` and the
pipeline's `retrain` stage run it.

Collects every round of the self-play runs named by `retrain.merge_from` (default: `run.run_dir`):
at most `retrain.max_proofs_per_statement` distinct correct proofs per statement across rounds —
all dataset statements, and conjectures only where that round's solve rate was
≤ `retrain.conjecture_rate_max` — as prover examples weighted exp(−a·len(proof)); adds the
Mathlib SFT set; shuffles; and fine-tunes `retrain.base_model` on it once.

    python -m stp.retrain --config configs/stp-7b.toml
    python -m stp.retrain --config configs/tiny-cpu.toml --set 'retrain.merge_from=["runs/a"]'

Outputs go to `<run.run_dir>/retrain/`: `train.jsonl.gz`, `manifest.json` (stages `data`, `train`;
a rerun skips finished stages) and the checkpoint under `model/`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from typing import Any

from stp import storage
from stp.backends import Backends
from stp.config import STPConfig
from stp.data.records import TrainingExample
from stp.errors import UsageError
from stp.metrics import MetricsWriter
from stp.selfplay import rules
from stp.selfplay.records import CorrectProof, StatementRow
from stp.selfplay.rundir import RunDir
from stp.selfplay.training_sets import dedup_examples, retrain_proofs, shuffled
from stp.stages import Stage, StageHook, drive, no_hook

log = logging.getLogger(__name__)


class RoundSource:
    """One finished round of a run, as `retrain_proofs` reads it."""

    def __init__(self, run_dir: RunDir, r: int, rows: list[StatementRow]) -> None:
        self.run_dir, self.r, self.rows = run_dir, r, rows
        counts = run_dir.load_arrays(run_dir.counts_path(r))
        self.round_rate = rules.solve_rates(counts["attempts"], counts["successes"])

    def correct(self) -> Iterable[CorrectProof]:
        return self.run_dir.correct(self.r)


def round_sources(run_dirs: list[str]) -> Iterator[RoundSource]:
    """The finished rounds of `run_dirs`, read one at a time. Every run is checked when this is
    called (a run without a finished round is a UsageError then), before any round is read."""
    runs = []
    for path in run_dirs:
        rd = RunDir(path)
        rounds = [r for r in rd.rounds() if "bookkeeping" in rd.manifest(r).stages]
        if not rounds:
            raise UsageError(f"{path}: no self-play round with finished bookkeeping to merge")
        runs.append((rd, rounds))

    def read() -> Iterator[RoundSource]:
        for rd, rounds in runs:
            rows = rd.statement_rows(rounds[-1] + 1)
            for r in rounds:
                yield RoundSource(rd, r, rows)

    return read()


def sft_path(cfg: STPConfig) -> str:
    """The Mathlib-only SFT set re-added (`data.sft_mathlib`, else
    `<data_dir>/mathlib/sft-mathlib-only.jsonl.gz`); never the whole SFT set, whose
    LeanWorkbook proofs the original does not re-add."""
    from stp.selfplay.inputs import retrain_sft_path

    return retrain_sft_path(cfg)


def retrain_examples(cfg: STPConfig, sources: Iterable[RoundSource], *,
                     include_conjectures: bool, seen: set[bytes]
                     ) -> tuple[list[TrainingExample], list[tuple[str, str, str]]]:
    """The RL_step3_final_model.py selection of `sources` (`retrain_proofs` with the `[retrain]`
    limits) as prover examples weighted exp(−`length_penalty`·len(proof)), deduplicated against
    `seen`; also the selected (statement, header, proof) triples. The final re-training and the
    expert-iteration rounds (`selfplay.round_training = "restart"`) both build their sets here."""
    from stp.model import prompts

    rc = cfg.retrain
    proofs = retrain_proofs(sources, max_per_statement=rc.max_proofs_per_statement,
                            include_conjectures=include_conjectures,
                            conjecture_rate_max=rc.conjecture_rate_max, seed=cfg.run.seed)
    examples = [prompts.prover_training_example(statement, header, proof,
                                                math.exp(-rc.length_penalty * len(proof)),
                                                cfg.model.prompt_format)
                for statement, header, proof in proofs]
    return list(dedup_examples(examples, seen)), proofs


def build_retrain_set(cfg: STPConfig) -> tuple[list[TrainingExample], dict[str, Any]]:
    rc = cfg.retrain
    run_dirs = rc.merge_from or [cfg.run.run_dir]
    sources = round_sources(run_dirs)  # checks the runs first: their error is the one to report
    sft_file = sft_path(cfg)
    if not storage.exists(sft_file):
        raise UsageError(f"re-training SFT set not found: {sft_file} (build it with `python -m "
                         "stp.extract sft --from-hf` or `python -m stp.extract sft`, or set "
                         "data.sft_mathlib)")
    sft = list(storage.iter_jsonl(sft_file, type=TrainingExample))
    seen = {rules.dedup_key(e.prompt, e.target) for e in sft}
    selfplay, proofs = retrain_examples(cfg, sources,
                                        include_conjectures=rc.include_conjectures, seen=seen)
    examples = shuffled(selfplay + sft, rules.stage_rng(cfg.run.seed, 0, "final-retrain"))
    summary = {"runs": len(run_dirs), "selfplay_examples": len(selfplay),
               "statements": len({(s, h) for s, h, _ in proofs}), "sft_examples": len(sft),
               "examples": len(examples)}
    return examples, summary


def run_retrain(cfg: STPConfig, *, backends: Backends | None = None,
                hook: StageHook = no_hook) -> dict[str, Any]:
    """Build the data (once) and train (once) with `backends.train` (default: the production
    trainer); returns the manifest's stage summaries (`data`, `train`).

    Holds the run directory's lock (`stp.lock`): re-training while self-play still writes rounds
    there would train on the rounds finished so far and record that stale result as done."""
    from stp.lock import lock_dir

    with lock_dir(cfg.run.run_dir, purpose="stp.retrain"):
        run_dir = RunDir(cfg.run.run_dir)
        train = (backends if backends is not None else Backends.from_config(cfg)).train
        train_path = run_dir.retrain_train_set_path

        def data() -> dict[str, Any]:
            examples, summary = build_retrain_set(cfg)
            storage.write_jsonl(train_path, examples)
            return summary

        def train_stage() -> dict[str, Any]:
            from stp.config import stage_trainer, train_kwargs

            trainer = stage_trainer(cfg, "retrain")
            result = train(cfg.retrain.base_model, str(storage.local_cache_path(train_path)),
                           run_dir.retrain_model_dir, trainer, cfg.model,
                           **train_kwargs(trainer))
            losses = list(result.losses)
            return {"model": str(result.hf_path), "steps": int(result.steps),
                    "last_loss": float(losses[-1]) if losses else None}

        stage_log = run_dir.retrain_log()
        with MetricsWriter(run_dir.metrics) as metrics:
            drive([Stage("data", data), Stage("train", train_stage)], stage_log,
                  level="retrain", run_dir=run_dir.root, log_event=metrics.log, hook=hook)
        return dict(stage_log.finished())
