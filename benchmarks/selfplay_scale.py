"""Time and peak memory of the self-play bookkeeping stages on a synthetic paper-scale run.

Builds a run directory as the stages would leave it after `--table-rounds` rounds (default 12):
≈89K dataset statements, up to N conjectures added per round (so the statement table has the
size it reaches after 12 paper-scale rounds), and for the last `--history` rounds (default 3, the
training window) ≈3.5M attempts each (89K dataset statements + 20K conjectures × 32 samples,
written as the proving stage writes them). It then runs the real stage code
(`stp.selfplay.loop.SelfPlay.stage_*`) of the last round — bookkeeping, conjecture examples
(reward, elegance filter, re-weighting with random 4096-d embeddings), training-set assembly —
and of the next round: seed/lemma pairing over every earlier round's correct proofs, conjecture
parsing/dedup (a scripted conjecturer), target selection. Sampling and Lean are not measured
(they are the GPU/CPU-farm cost, benchmarked elsewhere).

    python benchmarks/selfplay_scale.py                  # paper scale (~4 min, ~2 GiB disk)
    python benchmarks/selfplay_scale.py --scale 0.1      # quicker

Peak memory is the process RSS sampled every 20 ms during each step, minus the RSS before it.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil

from stp import storage
from stp.backends import Backends
from stp.config import load_config
from stp.metrics import describe_machine
from stp.model.types import SampleRequest
from stp.selfplay.loop import SelfPlay
from stp.selfplay.records import ConjectureInput, ProofAttempt, StatementRow, StatementTable


class PeakRSS:
    def __init__(self) -> None:
        self.proc = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakRSS:
        gc.collect()
        self.base = self.proc.memory_info().rss
        self.peak = self.base
        self.start = time.perf_counter()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        self._stop.set()
        self.thread.join()
        self.peak = max(self.peak, self.proc.memory_info().rss)


def synthesize(root: Path, n_dataset: int, n_conj: int, sps: int, n_lemmas: int,
               table_rounds: int, history: int) -> dict:
    """Write the run directory; returns {last round, attempts per history round, table size}."""
    rng = np.random.default_rng(0)
    lemmas = {f"Mathlib.Lemma{i}": f"theorem Mathlib.Lemma{i} (a b : ℕ) : a + {i} = b"
              for i in range(n_lemmas)}
    (root / "lemmas.json").write_text(json.dumps(lemmas))
    run = root / "run"
    storage.write_jsonl(str(run / "dataset_statements.jsonl.gz"), (
        StatementRow(sid=i, statement=f"theorem lw_{i} (x y : ℝ) (h₀ : 0 < x ∧ 0 < y) "
                     f"(h₁ : x + y = {i}) : x * y ≤ ({i} : ℝ) ^ 2 / 4 := by")
        for i in range(n_dataset)))
    # Per-statement success probability: 70 % of dataset statements never solved.
    p_dataset = np.where(rng.random(n_dataset) < 0.7, 0.0, rng.random(n_dataset))
    size = n_dataset
    attempts_per_round = 0
    first_history = table_rounds - history
    for r in range(table_rounds):
        rd = run / f"round-{r:04d}"
        # Old rounds only grow the statement table (≤ N conjectures each); the window rounds
        # carry full attempt logs.
        k = n_dataset if r < first_history else n_conj
        seed_proof = "\n  nlinarith [sq_nonneg (a - b), sq_nonneg (b - c), mul_pos ha hb]" * 3
        storage.write_jsonl(str(rd / "pairs.jsonl.gz"), [ConjectureInput(
            seed_sid=j, seed_statement=f"theorem lw_{j} (a b c : ℝ) (ha : 0 < a) : a ^ 2 ≥ 0 "
            ":= by", seed_proof=seed_proof, lemma=f"Mathlib.Lemma{j % n_lemmas}",
            lemma_statement=lemmas[f"Mathlib.Lemma{j % n_lemmas}"]) for j in range(min(k, 1000))])
        storage.write_jsonl(str(rd / "statements.jsonl.gz"), (
            StatementRow(sid=size + j, conjecture=True, round=r, seed_sid=j % n_dataset,
                         statement=f"theorem conj_{r}_{j} (n : ℕ) (h : 2 < n) (h' : n % 7 = "
                                   f"{j % 7}) : n ^ 2 + {j} > {j % 9} * n := by",
                         lemma=f"Mathlib.Lemma{j % n_lemmas}", pair=j % 1000)
            for j in range(k)))
        conj_sids = np.arange(size, size + k)
        size += k
        if r < first_history:
            storage.write_jsonl(str(rd / "correct.jsonl.gz"), [])
            if r == first_history - 1:
                save_arrays(run, r, "state.npz", best_rate=np.full(size, np.nan),
                            solved=np.zeros(size, dtype=bool))
            continue
        save_arrays(run, r, "conjectures.npz", sids=conj_sids)
        p = np.concatenate([p_dataset, np.zeros(size - n_dataset)])
        p[conj_sids] = rng.choice([0.0, 0.05, 0.1, 0.2, 0.6], size=k)
        writer = storage.ShardedJsonlWriter(str(rd / "attempts"))
        attempts = 0
        batch: list[ProofAttempt] = []
        for sid in np.concatenate([np.arange(n_dataset), conj_sids]):
            succ = rng.binomial(sps, p[sid])
            # Distinct failing/passing proofs with some repeats (multiplicity).
            for passed, count in ((True, succ), (False, sps - succ)):
                while count > 0:
                    mult = int(min(count, rng.choice([1, 1, 1, 2, 3])))
                    count -= mult
                    body = ("nlinarith [sq_nonneg (x - y), sq_nonneg (x + y)]"
                            * int(rng.integers(1, 5)))
                    batch.append(ProofAttempt(
                        sid=int(sid), proof=f"\n  {body} -- {rng.integers(1 << 30)}",
                        multiplicity=mult, passed=passed, status="pass" if passed else "fail",
                        premises=[f"Mathlib.Lemma{int(x)}" for x in rng.integers(0, n_lemmas, 3)]
                        if passed else [], seconds=float(rng.random() * 5)))
                    attempts += mult
            if len(batch) >= 100_000:
                writer.write(batch)
                batch = []
        writer.write(batch)
        attempts_per_round = attempts
    return {"last": table_rounds - 1, "attempts": attempts_per_round, "rows": size}


def save_arrays(run: Path, r: int, name: str, **arrays: np.ndarray) -> None:
    from stp.selfplay.rundir import RunDir

    rd = RunDir(str(run))
    rd.save_arrays(rd.round_path(r, name), **arrays)


class SyntheticSampler:
    """Conjectures parse (a fixed pattern with a per-request name); embeddings are random."""

    def __init__(self, dim: int = 4096) -> None:
        self.dim = dim

    def generate(self, requests: list[SampleRequest]) -> list[list[str]]:
        return [[f"c{r.seed % 50000}_{j} (x : ℕ) (h : x > {j}) : x + {r.seed % 97} > {j} := by"
                 "\n</hard theorem>" for j in range(r.n)] for r in requests]

    def embed(self, texts: list[str]) -> np.ndarray:
        rng = np.random.default_rng(len(texts))
        out = rng.standard_normal((len(texts), self.dim), dtype=np.float32)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def close(self) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of paper scale")
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--table-rounds", type=int, default=12,
                        help="rounds whose conjectures fill the statement table")
    parser.add_argument("--history", type=int, default=3, help="rounds with full attempt logs")
    parser.add_argument("--embed-dim", type=int, default=4096)
    args = parser.parse_args()
    print(f"machine: {describe_machine()}", flush=True)
    n_dataset = int(89_000 * args.scale)
    n_conj = int(20_000 * args.scale)
    history = min(args.history, args.table_rounds)
    with tempfile.TemporaryDirectory(prefix="stp-selfplay-bench-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        info = synthesize(root, n_dataset, n_conj, args.samples, 5000, args.table_rounds,
                          history)
        last = info["last"]
        print(f"synthetic run: {n_dataset:,} dataset statements, {args.table_rounds} rounds, "
              f"statement table {info['rows']:,} rows; the last {history} rounds each "
              f"{n_dataset + n_conj:,} statements × {args.samples} samples = "
              f"{info['attempts']:,} attempts ({time.perf_counter() - t0:.0f}s to write)")
        cfg = load_config(None, [f'run.run_dir="{root / "run"}"',
                                 f'data.lemma_dict="{root / "lemmas.json"}"',
                                 "sampler.shard_size=65536"])
        backends = dataclasses.replace(Backends.from_config(cfg),
                                       sampler=lambda model: SyntheticSampler(args.embed_dim))
        sp = SelfPlay(cfg, backends=backends)
        from stp.data.lemmas import load_lemma_dict

        sp.lemma_dict = load_lemma_dict(root / "lemmas.json")
        sp.dataset_size = n_dataset
        run_dir = sp.run_dir
        gc.collect()
        before = psutil.Process().memory_info().rss
        with PeakRSS() as m:
            sp.rows = StatementTable(run_dir.statement_rows(last + 1), n_dataset)
        print(f"statement table loaded: {len(sp.rows):,} rows in {m.seconds:.1f}s, "
              f"{(psutil.Process().memory_info().rss - before) / 2**20:.0f} MiB held")
        for r in range(last - history + 1, last):  # earlier window rounds: not timed
            sp.stage_bookkeeping(r, "synthetic")
        print(f"{'step':<34}{'seconds':>9}{'peak MiB':>10}  summary")
        steps = [(last, "bookkeeping"), (last, "conjecture_examples"), (last, "train_set"),
                 (last + 1, "pairs"), (last + 1, "conjectures"), (last + 1, "targets")]
        for r, stage in steps:
            if r == last + 1 and stage == "pairs":
                run_dir.mark_done(last, "train", 0.0, {"model": "synthetic"})
            with PeakRSS() as m:
                summary = getattr(sp, f"stage_{stage}")(r, "synthetic")
            run_dir.mark_done(r, stage, m.seconds, summary)
            brief = {k: v for k, v in summary.items() if not isinstance(v, dict | list)}
            print(f"round {r} {stage:<25}{m.seconds:>9.1f}{(m.peak - m.base) / 2**20:>10.0f}  "
                  f"{json.dumps(brief)[:140]}")
        print(f"RSS of the whole process at the end: "
              f"{psutil.Process().memory_info().rss / 2**20:.0f} MiB")
        sp.metrics.close()


if __name__ == "__main__":
    main()
