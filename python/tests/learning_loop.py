"""The learning check: Stage 1 then self-play rounds on the synthetic task (learning_task.py),
with the project's real parts end to end, once as shipped and once per deliberate breakage.

- a tiny Llama created from scratch (`stp.model.tiny`), Stage 1 by the pipeline's `sft` stage
  (`stp.pipeline`, Levanter trainer) on a small synthetic SFT set (prover and conjecturer
  examples);
- self-play rounds by `stp.selfplay.loop.run_selfplay` (transformers sampler, the stand-in checker
  spoken to over the real protocol and judging with the task's exact logic, kernel-replay
  re-checks, every selection, reward and re-weighting rule, the Levanter trainer);
- after Stage 1 and after every round, the held-out solve rate: `eval_samples` sampled proofs
  (temperature 1, the self-play sampler settings, fixed seeds) of each held-out statement, judged
  by the same checker; the rate is the fraction of passing samples (pass@1).

Breakages are monkeypatches of functions the loop really calls (no flag in product code):
`weights` inverts the trainer's loss mask (`levanter_trainer.build_row` puts the weights on the
prompt tokens instead of the proof), `selection` makes every reader of a round's correct proofs
(`RunDir.correct`: seeds, rewards, prover training data) get its verified failures instead.
The Stage-1 model is shared by all runs. Tests only (and benchmarks/learning_curve.py).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from learning_task import DATASET, HEADER, Item, lemma_dict, split_items
from standin import standin_command, with_checker

from stp import storage
from stp.config import STPConfig, load_config
from stp.data.records import TrainingExample
from stp.model.prompts import conjecture_training_example, prover_prompt, prover_training_example

FORMAT = "clean"  # one conjecturer format for sampling and training: the model starts from zero


@dataclass(frozen=True)
class Settings:
    """Sizes and rates of the check, chosen from measured runs (docs/selfplay.md)."""

    n_sft: int = 96
    n_sft_conjectures: int = 16
    n_pool: int = 96
    n_heldout: int = 48
    hidden_size: int = 64
    layers: int = 2
    sft_steps: int = 115
    sft_learning_rate: float = 5e-3
    batch_size: int = 16
    rounds: int = 2
    statements_per_round: int = 48
    samples_first_round: int = 4
    # 5, not 4: a conjecture is rewarded at 0 < rate < 0.25, which 4 samples cannot give.
    samples: int = 5
    round_steps: int = 30
    round_learning_rate: float = 3e-3
    eval_samples: int = 4
    seed: int = 0


@dataclass
class Curve:
    """Held-out solve rate after Stage 1 (index 0) and after each self-play round."""

    name: str
    rates: list[float]
    seconds: float
    rounds: list[dict[str, Any]] = field(default_factory=list)

    @property
    def gain(self) -> float:
        return self.rates[-1] - self.rates[0]


# -- breakages ---------------------------------------------------------------------------------


def break_weights(mp: pytest.MonkeyPatch) -> None:
    """The trainer's loss mask inverted: each example's weight lands on its prompt tokens and
    none on its target (a classic off-by-mask bug)."""
    from stp.model.training import levanter_trainer

    original = levanter_trainer.build_row

    def inverted(toks: Any, ids: Any, seq_len: int, pad_id: int, scale: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        tokens, weights, segments, positions = original(toks, ids, seq_len, pad_id, scale)
        flipped = np.zeros_like(weights)
        at = 0
        for i in ids:
            n, n_tgt = len(toks.example(i)), int(toks.n_target[i])
            flipped[at:at + n - n_tgt - 1] = scale * toks.weights[i]  # predicting prompt tokens
            at += n
        return tokens, flipped, segments, positions

    mp.setattr(levanter_trainer, "build_row", inverted)


def break_selection(mp: pytest.MonkeyPatch) -> None:
    """Every reader of a round's correct proofs gets the round's verified failures instead."""
    from stp.selfplay.records import CorrectProof, ProofAttempt
    from stp.selfplay.rundir import RunDir

    def failed(self: RunDir, r: int) -> Iterator[CorrectProof]:
        for a in storage.iter_sharded_jsonl(self.attempts_dir(r), type=ProofAttempt):
            if a.status == "fail" and a.proof.strip():  # the trainer refuses empty targets
                yield CorrectProof(sid=a.sid, proof=a.proof, round=r, premises=[],
                                   seconds=a.seconds, multiplicity=a.multiplicity)

    mp.setattr(RunDir, "correct", failed)


BREAKAGES: dict[str, Callable[[pytest.MonkeyPatch], None] | None] = {
    "shipped": None, "weights": break_weights, "selection": break_selection}


# -- the experiment ----------------------------------------------------------------------------


class Experiment:
    """One working directory: task files, Stage 1 (once), then one self-play run per name."""

    def __init__(self, root: Path, settings: Settings | None = None) -> None:
        self.root = root
        self.s = settings or Settings()
        self.split = split_items(self.s.n_sft, self.s.n_pool, self.s.n_heldout, self.s.seed)
        self.data_dir = root / "data"
        self.checker = standin_command({"default": "judge", "judge": "learning_task"})
        self._write_task()

    def _write_task(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        rows = [{"name": f"syn_{i}", "split": "train", "formal_statement": item.statement(
                 f"syn_{i}"), "header": HEADER} for i, item in enumerate(self.split.pool)]
        (self.data_dir / f"{DATASET}.jsonl").write_text(
            "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
        (self.root / "lemmas.json").write_text(json.dumps(lemma_dict(), ensure_ascii=False),
                                               encoding="utf-8")
        storage.write_jsonl(str(self.root / "sft.jsonl"), self.sft_examples())

    def sft_examples(self) -> list[TrainingExample]:
        """Prover examples of the SFT statements, and conjecturer examples: (the operation's
        lemma, an SFT statement with its proof) -> another statement of that operation."""
        base = len(self.split.pool)
        named = [(f"syn_{base + i}", item) for i, item in enumerate(self.split.sft)]
        out = [prover_training_example(item.statement(name), HEADER, item.proof(), 1.0, FORMAT)
               for name, item in named]
        rng = np.random.default_rng(self.s.seed)
        lemmas = lemma_dict()
        by_op: dict[int, list[tuple[str, Item]]] = {}
        for name, item in named:
            by_op.setdefault(item.op, []).append((name, item))
        for k in range(self.s.n_sft_conjectures):
            name, seed = named[k % len(named)]
            others = [x for x in by_op[seed.op] if x[1] != seed]
            _, target = others[int(rng.integers(len(others)))]
            lemma = list(lemmas.values())[seed.op]
            out.append(conjecture_training_example(
                lemma, seed.statement(name), seed.proof(), target.statement(f"syn_c{k}"), 1.0,
                FORMAT))
        return out

    def config(self, name: str, model: str) -> STPConfig:
        s = self.s
        cfg = load_config(None, [
            f'run.run_dir="{self.root / name}"', f"run.seed={s.seed}",
            f'run.data_dir="{self.data_dir}"',
            f'data.selfplay=[{{name="{DATASET}", split="train"}}]',
            f'data.lemma_dict="{self.root / "lemmas.json"}"', "data.allow_download=false",
            'verifier.backend="local"', "verifier.workers=1", "verifier.timeout_s=60.0",
            f'model.name="{model}"', f'model.prompt_format="{FORMAT}"',
            "model.max_prompt_tokens=256", "model.max_model_len=320", 'model.dtype="float32"',
            'sampler.backend="hf"', "sampler.max_tokens=40", "sampler.shard_size=256",
            "sampler.embed_max_tokens=64", "sampler.embed_batch_size=16",
            f"trainer.batch_size={s.batch_size}", "trainer.per_device_batch_size=8",
            f"trainer.min_steps={s.round_steps}", "trainer.warmup_steps=0",
            "trainer.max_seq_len=256", 'trainer.mp="p=f32,c=f32"',
            "trainer.checkpoint_every_steps=1000",
            f"selfplay.rounds={s.rounds}", f"selfplay.samples_first_round={s.samples_first_round}",
            f"selfplay.samples_per_statement={s.samples}",
            f"selfplay.statements_per_round={s.statements_per_round}",
            "selfplay.min_conjecture_samples=1", "selfplay.max_conjecture_samples=1",
            "selfplay.no_lemma_floor=16", f"selfplay.trainer.learning_rate={s.round_learning_rate}",
            f"selfplay.trainer.max_steps={s.round_steps}",
            f'sft.base_model="{model}"', f'sft.data="{self.root / "sft.jsonl"}"',
            f"sft.trainer.min_steps={s.sft_steps}", f"sft.trainer.max_steps={s.sft_steps}",
            f"sft.trainer.batch_size={s.batch_size}",
            f"sft.trainer.learning_rate={s.sft_learning_rate}", "sft.trainer.warmup_steps=0",
            'pipeline.stages=["sft"]',
        ])
        return with_checker(cfg, list(self.checker))

    def registered(self, mp: pytest.MonkeyPatch) -> None:
        """The synthetic statements as a dataset the loaders know (in the data directory)."""
        from stp.data import registry

        mp.setitem(registry.DATASETS, DATASET, registry.DatasetInfo(
            name=DATASET, kind="statements", description="learning check (tests only)",
            licence="tests", source="python/tests/learning_task.py",
            files=(registry.DataFile(f"{DATASET}.jsonl", "jsonl", {"train": "train"}),)))

    def stage1(self) -> str:
        """The tiny model from scratch, then Stage 1 by the pipeline's `sft` stage."""
        from stp.model.tiny import create_tiny_model
        from stp.pipeline.run import run_pipeline

        base = create_tiny_model(self.root / "tiny-model", hidden_size=self.s.hidden_size,
                                 num_layers=self.s.layers, seed=self.s.seed)
        manifest = run_pipeline(self.config("stage1", base))
        return str(manifest.stages["sft"]["model"])

    def heldout_rate(self, model: str, verifier: Any) -> float:
        """Fraction of passing samples over the held-out statements (pass@1)."""
        from stp.model import prompts
        from stp.model.sampling import make_sampler
        from stp.model.types import SampleRequest
        from stp.verify import VerifyItem

        cfg = self.config("eval", model)
        statements = [item.statement(f"held_{i}") for i, item in enumerate(self.split.heldout)]
        sampler = make_sampler(model, cfg.model, cfg.sampler)
        try:
            completions = sampler.generate([
                SampleRequest(prompt=prover_prompt(st, HEADER, FORMAT), seed=10_000 + i,
                              n=self.s.eval_samples, temperature=cfg.sampler.temperature,
                              top_p=cfg.sampler.top_p, max_tokens=cfg.sampler.max_tokens,
                              stop=tuple(prompts.prover_stop(FORMAT)))
                for i, st in enumerate(statements)])
        finally:
            sampler.close()
        items = [VerifyItem(statement=st, proof=prompts.extract_proof(text), header=HEADER)
                 for st, texts in zip(statements, completions, strict=True) for text in texts]
        results = verifier.verify_all(items)
        if any(r.status not in ("pass", "fail") for r in results):
            raise AssertionError(f"held-out checks without a verdict: "
                                 f"{sorted({r.status for r in results})}")
        return sum(r.passed for r in results) / len(results)

    def run(self, name: str, stage1: str, verifier: Any, rate0: float) -> Curve:
        """Self-play from the Stage-1 model with breakage `name` applied for the whole run."""
        from stp.selfplay.loop import run_selfplay

        start = time.monotonic()
        with pytest.MonkeyPatch.context() as mp:
            self.registered(mp)
            breakage = BREAKAGES[name]
            if breakage is not None:
                breakage(mp)
            summaries = run_selfplay(self.config(name, stage1))
        rates = [rate0]
        rounds = []
        for summary in summaries:
            train = summary.stages["train"]
            rates.append(self.heldout_rate(train["model"], verifier))
            book = summary.stages["bookkeeping"]
            rounds.append({"solved": book["dataset_solved_this_round"],
                           "correct": book["correct_attempts"], "attempts": book["attempts"],
                           "prover_examples": summary.stages["train_set"]["prover_examples"],
                           "conjecturer_examples":
                               summary.stages["train_set"]["conjecturer_examples"],
                           "conjectures": summary.stages["conjectures"]["kept"],
                           "steps": train["steps"]})
        return Curve(name, rates, time.monotonic() - start, rounds)

    def curves(self, names: list[str] | None = None) -> tuple[dict[str, Curve], dict[str, float]]:
        """Stage 1 once, its held-out rate, then one run per breakage name; with timings."""
        from stp.verify import make_verifier

        timings: dict[str, float] = {}
        start = time.monotonic()
        stage1 = self.stage1()
        timings["stage1"] = time.monotonic() - start
        verifier = make_verifier(self.config("eval", stage1))
        try:
            start = time.monotonic()
            rate0 = self.heldout_rate(stage1, verifier)
            timings["eval"] = time.monotonic() - start
            out = {}
            for name in names or list(BREAKAGES):
                out[name] = self.run(name, stage1, verifier, rate0)
                timings[name] = out[name].seconds
        finally:
            verifier.close()
        return out, timings
