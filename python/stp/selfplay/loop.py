"""The self-play loop: rounds of conjecture → prove → verify → reward → train (docs/reference.md §4).

Each round is a fixed sequence of stages (`rundir.STAGES`). A stage reads the outputs of earlier
stages from the run directory, writes its own outputs atomically, and only then is recorded in
the round's manifest, so rerunning the same command after a crash skips finished stages and
continues a sampling stage from its last finished shard. All randomness comes from
`rules.stage_rng(run.seed, round, stage)` and per-request sampler seeds, so a resumed run
produces the same files as an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import logging
import math
from array import array
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np

from stp import storage
from stp.backends import Backends
from stp.config import STPConfig, resolve_data_dir
from stp.data.records import TrainingExample, statement_key
from stp.errors import ConfigError, UsageError
from stp.metrics import MetricsWriter, progress
from stp.model.types import Sampler, SampleRequest
from stp.selfplay import rules
from stp.selfplay.records import (
    ConjectureExample,
    ConjectureInput,
    CorrectProof,
    ProofAttempt,
    RawConjecture,
    StatementRow,
    StatementTable,
)
from stp.selfplay.rundir import STAGES, RunDir
from stp.selfplay.training_sets import (
    conjecturer_examples,
    dedup_examples,
    prover_examples,
    shuffled,
)
from stp.stages import Stage, StageEvent, StageHook, drive, no_hook
from stp.verify.runner import NO_VERDICT

if TYPE_CHECKING:
    from stp.verify.service import Verifier

log = logging.getLogger(__name__)


@dataclass
class RoundSummary:
    round: int
    model: str
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)


def run_selfplay(
    cfg: STPConfig,
    *,
    rounds: int | None = None,
    backends: Backends | None = None,
    hook: StageHook = no_hook,
    allow_changed_settings: bool = False,
) -> list[RoundSummary]:
    """Run (or continue) self-play in `cfg.run.run_dir` until `rounds` rounds are complete,
    sampling, verifying and training with `backends` (default: `Backends.from_config(cfg)`).
    `hook` sees a `StageEvent` after every recorded stage and every stored sampling shard.

    Continuing a run with settings that change results (seed, sample counts, sampler, trainer,
    ...) other than its `config.toml` is refused unless `allow_changed_settings`; then the change
    is recorded with the round it first applies to (`stp.settings_guard`).

    The checker (`lean.checker_command`, else the built stp_check, which needs Lean) is resolved
    before anything else starts, so a missing Lean fails in a second, not after sampling.
    """
    from stp.lean.toolchain import checker_command

    checker_command(cfg.lean)
    from stp.lock import lock_dir

    # One process per run directory: a second one would claim shards of the same rounds.
    with lock_dir(cfg.run.run_dir, purpose="self-play"):
        loop = SelfPlay(cfg, backends=backends, hook=hook)
        loop.allow_changed_settings = allow_changed_settings
        try:
            return loop.run(cfg.selfplay.rounds if rounds is None else rounds)
        finally:
            loop.close()


class SelfPlay:
    """One run directory's self-play state and the stage implementations."""

    def __init__(self, cfg: STPConfig, *, backends: Backends | None = None,
                 hook: StageHook = no_hook) -> None:
        if cfg.lean.profile == "paper":
            # the paper rule compares no statement and yields no export to judge: its passes are
            # never rewards (evaluation may still count them under eval.profiles)
            raise ConfigError("lean.profile = \"paper\" cannot reward self-play (its passes are "
                              "not judged); use \"strict\" (eval.profiles may list \"paper\")")
        self.cfg = cfg
        self.sp = cfg.selfplay
        self.fmt = cfg.model.prompt_format
        self.run_dir = RunDir(cfg.run.run_dir)
        self.hook = hook
        self.backends = backends if backends is not None else Backends.from_config(cfg)
        self._sampler: Sampler | None = None
        self._sampler_model: str | None = None
        self._verifier: Verifier | None = None
        self._cluster = False
        self.metrics = MetricsWriter(self.run_dir.metrics)
        # The statement table of the round being run (dataset rows, then conjectures).
        self.rows = StatementTable([], 0)
        self.dataset_size = 0
        self.lemma_dict: dict[str, str] = {}
        # Work done by this process (samples drawn, attempts re-verified, training steps): what a
        # resumed run redoes is measurable, and the tests compare it with what was left.
        self.counters: Counter[str] = Counter()
        self.allow_changed_settings = False

    # ------------------------------------------------------------------ resources
    def close(self) -> None:
        self._close_sampler()
        if self._verifier is not None:
            self._verifier.close()
            self._verifier = None
        self.metrics.close()
        if self._cluster:
            from stp.cluster import shutdown_cluster

            shutdown_cluster()

    def _close_sampler(self) -> None:
        if self._sampler is not None:
            self._sampler.close()
            self._sampler = None
            self._sampler_model = None

    def sampler(self, model_path: str) -> Sampler:
        if self._sampler is not None and self._sampler_model == model_path:
            return self._sampler
        self._close_sampler()
        self._sampler = self.backends.sampler(model_path)
        self._sampler_model = model_path
        return self._sampler

    def verifier(self) -> Verifier:
        if self._verifier is None:
            self._verifier = self.backends.verifier(selfplay_check_config(self.cfg))
        return self._verifier

    # ------------------------------------------------------------------ set-up
    def initialise(self) -> None:
        """Record the config, the dataset statement table (once) and load the lemma dict."""
        cfg = self.cfg
        if cfg.cluster.address or cfg.verifier.backend == "ray":
            from stp.cluster import init_cluster

            init_cluster(cfg.cluster)
            self._cluster = True
        data_dir = resolve_data_dir(cfg.run.data_dir)
        if not storage.exists(self.run_dir.dataset_statements):
            self.run_dir.record_config(cfg)
            storage.write_jsonl(self.run_dir.dataset_statements, self._dataset_rows(data_dir))
        else:
            self.run_dir.check_settings(cfg, self.allow_changed_settings)
        from stp.verify.identity import describe_checker, write_record

        # The checker this start judges with, for the report's first lines (rewritten on every
        # start: a resumed run names the checker of its latest start).
        write_record(self.run_dir.root, {"self-play": describe_checker(
            selfplay_check_config(cfg))})
        from stp.data.lemmas import load_lemma_dict
        from stp.selfplay.inputs import lemma_dict_path

        self.lemma_dict = load_lemma_dict(lemma_dict_path(cfg), cfg.data.lemma_vocabulary)
        dataset = list(storage.iter_jsonl(self.run_dir.dataset_statements, type=StatementRow))
        self.dataset_size = len(dataset)

    def _dataset_rows(self, data_dir: Path) -> list[StatementRow]:
        from stp.data import load_dataset

        rows: list[StatementRow] = []
        seen: set[tuple[str, str]] = set()
        for ref in self.cfg.data.selfplay:
            for st in load_dataset(ref.name, data_dir, ref.split or None,
                                   allow_download=self.cfg.data.allow_download):
                key = statement_key(st.statement, st.header)
                if key in seen:
                    continue
                seen.add(key)
                rows.append(StatementRow(sid=len(rows), statement=st.statement, header=st.header,
                                         source_id=st.id, matching_weight=ref.weight))
        if not rows:
            raise UsageError("data.selfplay names no statements")
        return rows

    # ------------------------------------------------------------------ driver
    def run(self, rounds: int) -> list[RoundSummary]:
        self.initialise()
        out = []
        for r in range(rounds):
            out.append(self.run_round(r))
        return out

    def model_for(self, r: int) -> str:
        if r == 0:
            return self.cfg.model.name
        train = self.run_dir.manifest(r - 1).stages.get("train")
        if train is None:
            raise RuntimeError(f"round {r - 1} has not finished training")
        return str(train.summary["model"])

    def run_round(self, r: int) -> RoundSummary:
        """Round r through the stage driver (`stp.stages.drive`) over its manifest."""
        model = self.model_for(r)
        round_log = self.run_dir.round_log(r)
        finished = round_log.finished()
        self.rows = StatementTable(self.run_dir.statement_rows(r), self.dataset_size)
        if "conjectures" in finished:  # this round's conjectures already have ids
            self.rows.add(storage.iter_jsonl(
                self.run_dir.new_statements_path(r), type=StatementRow))
        if "done" not in finished:
            log.info("round %d (model %s)", r, model)
        stages = drive(self.stage_table(r, model), round_log, level="round",
                       run_dir=self.run_dir.root, round_index=r, log_event=self.metrics.log,
                       hook=self.hook)
        return RoundSummary(round=r, model=model, stages=stages)

    def stage_table(self, r: int, model: str) -> list[Stage]:
        """Round r's stages in order, each with its implementation (names: `rundir.STAGES`,
        which the manifests and the report use)."""
        def stage(name: str, run: Callable[[int, str], dict[str, Any]]) -> Stage:
            return Stage(name, lambda: run(r, model))

        table = [
            stage("pairs", self.stage_pairs),
            stage("conjectures", self.stage_conjectures),
            stage("targets", self.stage_targets),
            stage("proving", self.stage_proving),
            stage("bookkeeping", self.stage_bookkeeping),
            stage("conjecture_examples", self.stage_conjecture_examples),
            stage("train_set", self.stage_train_set),
            stage("train", self.stage_train),
            stage("done", self.stage_done),
        ]
        assert tuple(s.name for s in table) == STAGES
        return table

    def stage_done(self, r: int, model: str) -> dict[str, Any]:
        """Close the round: free the sampler and write the round's flattened metrics event
        (every earlier stage is recorded in the round's manifest by now)."""
        self._close_sampler()
        stages = self.run_dir.round_log(r).finished()
        book = stages.get("bookkeeping", {})
        self.metrics.log("round", round=r, model=model, **_flatten(stages))
        return {"model": stages.get("train", {}).get("model", model),
                "dataset_solved_total": book.get("dataset_solved_total", 0),
                "dataset_size": book.get("dataset_size", self.dataset_size)}

    def shard_stored(self, r: int, stage: str, shard: int) -> None:
        """Tell the hook that a sampling stage stored a shard (a resume restarts after it)."""
        self.hook(StageEvent(level="round", stage=stage, run_dir=self.run_dir.root, round=r,
                             shard=shard))

    # ------------------------------------------------------------------ helpers
    def rng(self, r: int, stage: str) -> np.random.Generator:
        return rules.stage_rng(self.cfg.run.seed, r, stage)

    def previous_state(self, r: int) -> tuple[np.ndarray, np.ndarray]:
        """(best rate, solved) after round r-1, grown to the current statement table."""
        size = len(self.rows)
        if r == 0:
            return np.full(size, np.nan), np.zeros(size, dtype=bool)
        state = self.run_dir.load_arrays(self.run_dir.state_path(r - 1))
        return (rules.grow(state["best_rate"], size, np.nan),
                rules.grow(state["solved"], size, False))

    def round_subset(self, r: int) -> np.ndarray:
        """The dataset statements of this round (N of them): all, or a seeded random subset."""
        d = self.dataset_size
        k = self.sp.statements_per_round
        if k <= 0 or k >= d:
            return np.arange(d, dtype=np.int64)
        return np.sort(self.rng(r, "subset").choice(d, size=k, replace=False)).astype(np.int64)

    def is_conjecture(self) -> np.ndarray:
        return self.rows.is_conjecture()

    # ------------------------------------------------------------------ stages
    def stage_pairs(self, r: int, model: str) -> dict[str, Any]:
        """Seeds (solved, easy, not conjectures) paired with lemmas their proofs used (§4.3).

        Seed candidates are the correct proofs of dataset statements of every earlier round (the
        original kept dataset records forever), newest round first. They are streamed twice or
        more (`rules.stream_seed_pairs`) rather than held: after many paper-scale rounds there
        are millions of them.
        """
        n = len(self.round_subset(r))
        if not self.sp.conjecturing:  # expert iteration: no pairs, so no conjectures
            storage.write_jsonl(self.run_dir.pairs_path(r), [])
            return {"seeds": 0, "pairs": 0, "distinct_lemmas": 0, "no_lemma_pairs": 0,
                    "conjecturing": False}
        best, _ = self.previous_state(r)
        rate = np.nan_to_num(best, nan=0.0)
        conj = self.is_conjecture()
        threshold = self.sp.seed_threshold

        def candidates() -> Iterator[CorrectProof]:
            for prev in range(r - 1, -1, -1):
                for p in self.run_dir.correct(prev):
                    if rate[p.sid] > threshold and not conj[p.sid]:
                        yield p

        pairer = rules.LemmaPairer(self.rows, self.lemma_dict, n, self.sp.lemma_cap_fraction,
                                   self.sp.no_lemma_probability, self.rng(r, "pair"))
        seeds = rules.stream_seed_pairs(candidates, pairer, self.rng(r, "select"), window=n)
        pairs = pairer.pairs
        storage.write_jsonl(self.run_dir.pairs_path(r), pairs)
        lemmas = Counter(p.lemma for p in pairs)
        return {"seeds": seeds, "pairs": len(pairs), "distinct_lemmas": len(lemmas),
                "no_lemma_pairs": lemmas.get("", 0)}

    def stage_conjectures(self, r: int, model: str) -> dict[str, Any]:
        """Sample the conjecturer on the pairs, parse, dedup, keep ≤ N, assign statement ids."""
        from stp.model import prompts

        n = len(self.round_subset(r))
        pairs = list(storage.iter_jsonl(self.run_dir.pairs_path(r),
                                        type=ConjectureInput))
        m = rules.conjecture_multiplier(n, len(pairs), self.sp.min_conjecture_samples,
                                        self.sp.max_conjecture_samples)
        raw_dir = self.run_dir.raw_conjectures_dir(r)
        if pairs:
            requests = [
                SampleRequest(
                    prompt=prompts.conjecturer_prompt(p.lemma_statement, p.seed_statement,
                                                      p.seed_proof, self.fmt),
                    seed=rules.request_seed(self.cfg.run.seed, r, "conjecture", i, 0), n=m,
                    temperature=self.cfg.sampler.temperature, top_p=self.cfg.sampler.top_p,
                    max_tokens=self.cfg.sampler.max_tokens,
                    stop=tuple(prompts.conjecture_stop(self.fmt)))
                for i, p in enumerate(pairs)
            ]
            per_shard = max(1, self.cfg.sampler.shard_size // max(1, m))
            writer = storage.ShardedJsonlWriter(raw_dir)
            shards = _chunks(len(requests), per_shard)
            first = writer.next_index
            for index in progress(range(first, len(shards)), total=len(shards) - first,
                                  desc=f"round {r} conjectures"):
                lo, hi = shards[index]
                completions = self.sampler(model).generate(requests[lo:hi])
                self.counters["conjecture_samples"] += sum(len(t) for t in completions)
                records = []
                for i, texts in zip(range(lo, hi), completions, strict=True):
                    for j, text in enumerate(texts):
                        conjecture = prompts.parse_conjecture(text, self.fmt)
                        records.append(RawConjecture(input_index=i, sample=j, completion=text,
                                                     statement=conjecture.statement,
                                                     reason=conjecture.reason))
                writer.write(records)
                self.metrics.log("progress", task=f"round {r} conjectures", round=r,
                                 stage="conjectures", done=hi, total=len(requests))
                self.shard_stored(r, "conjectures", index)
        # Only parsed statements are held (completions can be long): position k in `raw_input`
        # is the k-th completion's pair index.
        raw_input = array("q")
        parsed: list[tuple[int, str, str]] = []
        failures: Counter[str] = Counter()
        for k, c in enumerate(storage.iter_sharded_jsonl(raw_dir, type=RawConjecture)):
            raw_input.append(c.input_index)
            if c.statement is None:
                failures[c.reason] += 1
            else:
                parsed.append((k, c.statement, pairs[c.input_index].header))
        statements = {k: statement for k, statement, _ in parsed}
        dataset_keys = {statement_key(row.statement, row.header)
                        for row in self.rows.dataset}
        kept = rules.dedup_conjectures(parsed, dataset_keys, n, self.rng(r, "conjecture"))
        # A conjecture generated again keeps its first id (and provenance); 16-byte hashes keep
        # this lookup small over ~1M earlier conjectures.
        known = {_statement_hash(row.statement, row.header): row.sid
                 for row in self.rows.conjectures}
        new_rows: list[StatementRow] = []
        sids: list[int] = []
        for k in kept:
            pair = pairs[raw_input[k]]
            key = _statement_hash(statements[k], pair.header)
            if key in known:
                sids.append(known[key])
                continue
            row = StatementRow(sid=self.rows.next_sid + len(new_rows), statement=statements[k],
                               header=pair.header, conjecture=True, round=r,
                               seed_sid=pair.seed_sid, lemma=pair.lemma, pair=raw_input[k])
            known[key] = row.sid
            new_rows.append(row)
            sids.append(row.sid)
        storage.write_jsonl(self.run_dir.new_statements_path(r), new_rows)
        self.run_dir.save_arrays(self.run_dir.conjecture_sids_path(r),
                                 sids=np.array(sids, dtype=np.int64))
        self.rows.add(new_rows)
        return {"multiplier": m, "generated": len(raw_input), "parsed": len(parsed),
                "kept": len(sids), "new": len(new_rows), "parse_failures": dict(failures)}

    def stage_targets(self, r: int, model: str) -> dict[str, Any]:
        """Unsolved dataset statements and conjectures, plus a re-check sample of solved ones."""
        subset = self.round_subset(r)
        conj = self.run_dir.load_arrays(self.run_dir.conjecture_sids_path(r))["sids"]
        best, solved = self.previous_state(r)
        targets = rules.select_targets(subset, conj, solved, best, self.sp.recheck_probability,
                                       self.sp.seed_threshold, self.rng(r, "targets"))
        order = self.rng(r, "prove-order").permutation(len(targets))
        self.run_dir.save_arrays(self.run_dir.targets_path(r),
                                 sids=targets[order])
        n_conj = int(np.isin(targets, conj).sum())
        return {"targets": len(targets), "dataset_targets": len(targets) - n_conj,
                "conjecture_targets": n_conj,
                "rechecks": int(solved[targets].sum()) if len(targets) else 0}

    def samples_per_statement(self, r: int) -> int:
        return self.sp.samples_first_round if r == 0 else self.sp.samples_per_statement

    def stage_proving(self, r: int, model: str) -> dict[str, Any]:
        """Sample proofs shard by shard; each shard is verified while the next one is sampled
        (`stp.verify.runner`). Attempts left without a verdict by an earlier, failed run are
        verified again first; above `verifier.max_unverified_fraction` the stage fails."""
        from stp.model import prompts
        from stp.verify import VerifyItem, VerifyResult
        from stp.verify.runner import (
            ShardRunner,
            check_outage,
            count_unverified,
            reverify_stored_shards,
            verify_with_retries,
        )

        targets = self.run_dir.load_arrays(self.run_dir.targets_path(r))["sids"]
        sps = self.samples_per_statement(r)
        per_shard = max(1, self.cfg.sampler.shard_size // sps)
        shards = _chunks(len(targets), per_shard)
        attempts_dir = self.run_dir.attempts_dir(r)
        writer = storage.ShardedJsonlWriter(attempts_dir)
        first = writer.next_index
        retries = self.cfg.verifier.unverified_retries

        def item(sid: int, proof: str) -> VerifyItem:
            return VerifyItem(statement=self.rows[sid].statement, proof=proof,
                              header=self.rows[sid].header, premises=True)

        def attempt(sid: int, proof: str, multiplicity: int, res: VerifyResult) -> ProofAttempt:
            return ProofAttempt(sid=sid, proof=proof, multiplicity=multiplicity, passed=res.passed,
                           status=res.status,
                           premises=list(res.premises or []) if res.passed else [],
                           seconds=res.seconds)

        def sample(index: int) -> tuple[list[int], list[list[str]]]:
            lo, hi = shards[index]
            sids = [int(s) for s in targets[lo:hi]]
            requests = [
                SampleRequest(
                    prompt=prompts.prover_prompt(self.rows[s].statement, self.rows[s].header,
                                                 self.fmt),
                    seed=rules.request_seed(self.cfg.run.seed, r, "prove", s, 0), n=sps,
                    temperature=self.cfg.sampler.temperature, top_p=self.cfg.sampler.top_p,
                    max_tokens=self.cfg.sampler.max_tokens,
                    stop=tuple(prompts.prover_stop(self.fmt)))
                for s in sids
            ]
            completions = self.sampler(model).generate(requests)
            if len(completions) != len(requests):
                raise RuntimeError(f"sampler returned {len(completions)} results for "
                                   f"{len(requests)} requests")
            return sids, completions

        def store(index: int, sampled: tuple[list[int], list[list[str]]]) -> int:
            sids, completions = sampled
            counts: Counter[tuple[int, str]] = Counter()
            for sid, texts in zip(sids, completions, strict=True):
                for text in texts:
                    counts[(sid, prompts.extract_proof(text))] += 1
            keys = list(counts)
            results, _ = verify_with_retries(self.verifier().verify_all,
                                             [item(sid, proof) for sid, proof in keys], retries)
            writer.write([attempt(sid, proof, counts[(sid, proof)], res)
                          for (sid, proof), res in zip(keys, results, strict=True)])
            self.counters["proving_samples"] += sum(counts.values())
            self.shard_stored(r, "proving", index)
            return sum(counts.values())

        def verify_again(stored: list[ProofAttempt]) -> list[ProofAttempt]:
            results, _ = verify_with_retries(self.verifier().verify_all,
                                             [item(a.sid, a.proof) for a in stored], retries)
            return [attempt(a.sid, a.proof, a.multiplicity, res)
                    for a, res in zip(stored, results, strict=True)]

        # Resume policy "reverify" (`stp.verify.runner`): shards stored by an earlier run keep
        # their verdicts; only their attempts without one are verified again, in place.
        done_before, reverified = reverify_stored_shards(attempts_dir, ProofAttempt,
                                                         verify_again)
        self.counters["reverified"] += reverified
        ShardRunner(f"round {r} proving", sample, store, metrics=self.metrics,
                    event={"round": r, "stage": "proving"}).run(
            first, len(shards), len(targets) * sps, done_before)
        unverified = count_unverified(attempts_dir, ProofAttempt)
        check_outage(f"round {r} proving", unverified, len(targets) * sps,
                     self.cfg.verifier.max_unverified_fraction)
        return {"samples_per_statement": sps, "shards": len(shards),
                "samples": len(targets) * sps, "unverified": unverified}

    def stage_bookkeeping(self, r: int, model: str) -> dict[str, Any]:
        """Per-round counts, best rates, the solved set, and this round's correct proofs."""
        size = len(self.rows)
        # Typed arrays: ~13 bytes per attempt instead of ~100 for Python lists of ints.
        sids, mult, passed = array("q"), array("q"), array("b")
        lengths = array("q")
        statuses: Counter[str] = Counter()
        lemma_use: Counter[str] = Counter()
        correct: list[CorrectProof] = []
        for a in storage.iter_sharded_jsonl(self.run_dir.attempts_dir(r),
                                            type=ProofAttempt):
            statuses[a.status] += a.multiplicity
            if a.status in NO_VERDICT:
                continue  # no verdict (below the outage limit): neither a pass nor a failure
            sids.append(a.sid)
            mult.append(a.multiplicity)
            passed.append(a.passed)
            if a.passed:
                correct.append(CorrectProof(sid=a.sid, proof=a.proof, round=r,
                                            premises=a.premises, seconds=a.seconds,
                                            multiplicity=a.multiplicity))
                lengths.append(len(a.proof))
                lemma_use.update(set(a.premises))
        attempts, successes = rules.attempt_counts(
            np.frombuffer(sids, dtype=np.int64), np.frombuffer(mult, dtype=np.int64),
            np.frombuffer(passed, dtype=np.int8).astype(bool), size)
        rate = rules.solve_rates(attempts, successes)
        best, solved = self.previous_state(r)
        best, solved = rules.update_best(best, solved, rate)
        storage.write_jsonl(self.run_dir.correct_path(r), correct)
        self.run_dir.save_arrays(self.run_dir.counts_path(r),
                                 attempts=attempts, successes=successes)
        self.run_dir.save_arrays(self.run_dir.state_path(r),
                                 best_rate=best, solved=solved)
        d = self.dataset_size
        conj = self.is_conjecture()
        attempted = attempts > 0
        return {
            "attempts": int(attempts.sum()), "distinct_attempts": len(sids),
            "correct_attempts": int(successes.sum()), "distinct_correct": len(correct),
            "statuses": dict(statuses),
            "dataset_attempted": int(attempted[:d].sum()),
            "dataset_solved_this_round": int((successes[:d] > 0).sum()),
            "dataset_solved_total": int(solved[:d].sum()), "dataset_size": d,
            "conjectures_attempted": int((attempted & conj).sum()),
            "conjectures_solved": int(((successes > 0) & conj).sum()),
            "solve_rate_histogram": rules.solve_rate_histogram(rate[:d]),
            "conjecture_rate_histogram": rules.solve_rate_histogram(rate[conj]),
            "proof_length_mean": float(np.mean(lengths)) if lengths else 0.0,
            "proof_length_median": float(np.median(lengths)) if lengths else 0.0,
            "distinct_lemmas_used": len(lemma_use),
            "top_lemmas": dict(lemma_use.most_common(10)),
        }

    def window_rounds(self, r: int) -> list[int]:
        """The rounds of the history window, newest first (r, r-1, r-2 by default)."""
        return list(range(r, max(-1, r - self.sp.window_rounds), -1))

    def stage_conjecture_examples(self, r: int, model: str) -> dict[str, Any]:
        """Barely-provable conjectures, the elegance filter, and the re-weighting (§4.6-4.8)."""
        counts = self.run_dir.load_arrays(self.run_dir.counts_path(r))
        rate = rules.solve_rates(counts["attempts"], counts["successes"])
        pairs: dict[int, list[ConjectureInput]] = {}

        def pair_of(row: StatementRow) -> ConjectureInput:
            if row.round not in pairs:
                pairs[row.round] = self.run_dir.pairs(row.round)
            return pairs[row.round][row.pair]

        raw = rules.conjecture_rewards(self.run_dir.correct(r), self.rows, rate,
                                       self.sp.conjecture_threshold, self.sp.no_lemma_factor,
                                       self.sp.no_lemma_floor, pair_of)
        pairs.clear()
        sids = {e.sid for e in raw}
        ratios: dict[int, float] = {}
        for prev in self.window_rounds(r):
            for sid, value in rules.proof_ratios(self.run_dir.correct(prev), self.rows,
                                                 sids).items():
                ratios[sid] = min(ratios.get(sid, math.inf), value)
        filtered = rules.elegance_filter(raw, ratios, self.sp.elegance_drop_fraction)
        state = self.run_dir.load_arrays(self.run_dir.state_path(r))
        solved = state["solved"]
        unsolved = [row for row in self.rows.dataset if not solved[row.sid]]
        kept: list[ConjectureExample] = []
        if filtered and unsolved:
            sampler = self.sampler(model)
            p_emb = _embed(sampler, [e.statement for e in filtered])
            q_emb = _embed(sampler, [row.statement for row in unsolved])
            weights = rules.match_weights(
                p_emb, q_emb, np.array([row.matching_weight for row in unsolved]),
                self.sp.matching_cap, self.rng(r, "reward"))
            for e, w in zip(filtered, weights, strict=True):
                if w > 0:
                    e.weight = float(w)
                    kept.append(e)
        elif filtered:
            # Nothing left unsolved to match toward: every filtered conjecture keeps weight 1.
            kept = filtered
        storage.write_jsonl(self.run_dir.conjecture_examples_path(r), kept)
        return {"rewarded": len(raw), "lemma_invoking": sum(1 for e in raw if e.lemma),
                "after_elegance": len(filtered), "weighted": len(kept),
                "weight_sum": float(sum(e.weight for e in kept))}

    def stage_train_set(self, r: int, model: str) -> dict[str, Any]:
        """Prover examples from the window + weighted conjecturer examples, deduped, shuffled
        (`round_training = "restart"`: the expert-iteration set, `restart_train_set`)."""
        from stp.model import prompts

        if self.sp.round_training == "restart":
            return self.restart_train_set(r)
        size = len(self.rows)
        window = self.window_rounds(r)
        attempts = np.zeros(size, dtype=np.int64)
        successes = np.zeros(size, dtype=np.int64)
        for prev in window:
            counts = self.run_dir.load_arrays(self.run_dir.counts_path(prev))
            attempts += rules.grow(counts["attempts"], size, 0)
            successes += rules.grow(counts["successes"], size, 0)
        window_rate = rules.solve_rates(attempts, successes)

        def window_correct() -> Iterator[CorrectProof]:
            for prev in window:
                yield from self.run_dir.correct(prev)

        def build_prover(statement: str, header: str, proof: str, weight: float
                         ) -> TrainingExample:
            return prompts.prover_training_example(statement, header, proof, weight, self.fmt)

        def build_conj(lemma: str, seed_statement: str, seed_proof: str, conjecture: str,
                       weight: float) -> TrainingExample:
            return prompts.conjecture_training_example(lemma, seed_statement, seed_proof,
                                                       conjecture, weight, self.fmt)

        seen: set[bytes] = set()
        prover = list(dedup_examples(prover_examples(
            window_correct, window_rate, self.rows, build_prover,
            rate_max=self.sp.prover_rate_max, length_penalty=self.sp.length_penalty,
            time_penalty=self.sp.time_penalty), seen))
        examples = storage.iter_jsonl(
            self.run_dir.conjecture_examples_path(r), type=ConjectureExample)
        conj = list(dedup_examples(conjecturer_examples(examples, build_conj), seen))
        replay = self._replay(r, len(prover) + len(conj))
        train = shuffled(prover + conj + replay, self.rng(r, "dataset"))
        storage.write_jsonl(self.run_dir.train_set_path(r), train)
        return {"prover_examples": len(prover), "conjecturer_examples": len(conj),
                "replay_examples": len(replay), "examples": len(train),
                "mean_target_chars": float(np.mean([len(e.target) for e in train]))
                if train else 0.0}

    def restart_train_set(self, r: int) -> dict[str, Any]:
        """Expert iteration (RL_step3_final_model.py without `--include_synthetic_examples`):
        at most `retrain.max_proofs_per_statement` distinct correct proofs per dataset statement
        over rounds 0..r, weighted exp(−`retrain.length_penalty`·len(proof)), deduped, shuffled.
        No conjecture is ever included and no SFT set is added."""
        from stp.selfplay.retrain import RoundSource, retrain_examples

        rows = list(self.rows)
        examples, proofs = retrain_examples(
            self.cfg, (RoundSource(self.run_dir, i, rows) for i in range(r + 1)),
            include_conjectures=False, seen=set())
        train = shuffled(examples, self.rng(r, "dataset"))
        storage.write_jsonl(self.run_dir.train_set_path(r), train)
        return {"prover_examples": len(train), "conjecturer_examples": 0,
                "replay_examples": 0, "examples": len(train),
                "statements": len({(s, h) for s, h, _ in proofs}),
                "mean_target_chars": float(np.mean([len(e.target) for e in train]))
                if train else 0.0}

    def _replay(self, r: int, n: int) -> list[TrainingExample]:
        """`sft_replay_fraction · n` SFT examples mixed in (0 = the original: no replay)."""
        k = round(self.sp.sft_replay_fraction * n)
        if k <= 0:
            return []
        from stp.selfplay.inputs import stage1_sft_path

        path = stage1_sft_path(self.cfg)
        if not storage.exists(path):
            raise UsageError(f"selfplay.sft_replay_fraction > 0 but the SFT set {path} is missing")
        pool = list(storage.iter_jsonl(path, type=TrainingExample))
        idx = np.sort(self.rng(r, "replay").choice(len(pool), size=min(k, len(pool)),
                                                   replace=False))
        return [pool[i] for i in idx]

    def stage_train(self, r: int, model: str) -> dict[str, Any]:
        """One weighted fine-tuning pass; the checkpoint drives the next round."""
        train_path = self.run_dir.train_set_path(r)
        if not self.sp.train:  # repeated sampling: the model never changes
            return {"model": model, "skipped": True, "steps": 0, "training": False}
        n = sum(1 for _ in storage.iter_jsonl(train_path, type=TrainingExample))
        if n == 0:
            log.warning("round %d: no training examples; the model is carried over", r)
            return {"model": model, "skipped": True, "steps": 0}
        self._close_sampler()  # free accelerator memory for the trainer
        # "restart" (expert iteration) trains the round-0 model again each round; "continue"
        # trains the previous round's model. Both with the [selfplay.trainer] settings.
        from stp.config import stage_trainer, train_kwargs

        base = self.model_for(0) if self.sp.round_training == "restart" else model
        trainer = stage_trainer(self.cfg, "selfplay")
        result = self.backends.train(base, str(storage.local_cache_path(train_path)),
                                     self.run_dir.model_dir(r), trainer, self.cfg.model,
                                     **train_kwargs(trainer))
        self.counters["train_runs"] += 1
        self.counters["train_steps"] += int(result.steps)
        losses = list(result.losses)
        return {"model": str(result.hf_path), "skipped": False, "steps": int(result.steps),
                "first_loss": float(losses[0]) if losses else None,
                "last_loss": float(losses[-1]) if losses else None,
                "tokens": int(result.tokens)}


def selfplay_check_config(cfg: STPConfig) -> STPConfig:
    """The config self-play proofs are judged under. `selfplay.check_budget = "original"` gives
    them the original's budget, no heartbeat limit and a 200 s wall clock per proof
    (RL_step1_generate.py checks under `set_option maxHeartbeats 0` with a 200 s timeout), under
    `lean.profile`: the reward then differs from the original's rule only by the soundness
    checks. "config" leaves `lean.max_heartbeats` and `verifier.timeout_s` as configured."""
    if cfg.selfplay.check_budget == "config":
        return cfg
    from stp.lean.config import PAPER_MAX_HEARTBEATS
    from stp.selfplay.config import ORIGINAL_PROOF_TIMEOUT_S

    return msgspec.structs.replace(
        cfg, lean=msgspec.structs.replace(cfg.lean, max_heartbeats=PAPER_MAX_HEARTBEATS),
        verifier=msgspec.structs.replace(cfg.verifier, timeout_s=ORIGINAL_PROOF_TIMEOUT_S))


def _embed(sampler: Sampler, texts: list[str], chunk: int = 4096) -> np.ndarray:
    """Embeddings stored as float16, computed `chunk` texts at a time: ~60K unsolved statements
    × 4096 dimensions is 0.5 GiB this way instead of 1 GiB (cosine ranking barely changes)."""
    out: np.ndarray | None = None
    for lo in range(0, len(texts), chunk):
        part = np.asarray(sampler.embed(texts[lo:lo + chunk]))
        if out is None:
            out = np.empty((len(texts), part.shape[1]), dtype=np.float16)
        out[lo:lo + len(part)] = part
    return out if out is not None else np.zeros((0, 0), dtype=np.float16)


def _statement_hash(statement: str, header: str) -> bytes:
    header_key, statement_key_ = statement_key(statement, header)
    return hashlib.blake2b(f"{header_key}\x00{statement_key_}".encode(), digest_size=16).digest()


def _chunks(total: int, size: int) -> list[tuple[int, int]]:
    return [(lo, min(total, lo + size)) for lo in range(0, total, size)]


def _flatten(stages: dict[str, dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for stage, summary in stages.items():
        for key, value in summary.items():
            out[f"{stage}.{key}"] = value
    return out
