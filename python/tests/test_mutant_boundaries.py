"""Boundary tests written to kill mutants that survived the audit of issue #24 (item 9).

Each test pins one threshold at exactly its value and one step beside it, so a comparison
weakened from `<` to `<=` (or a constant moved by one) fails here.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from selfplay_helpers import RULES, ScriptedSampler, make_config, scripted_backends
from standin import standin_command, with_checker

from stp.eval import estimators
from stp.selfplay import rules
from stp.selfplay.loop import run_selfplay
from stp.selfplay.records import CorrectProof
from stp.selfplay.rundir import STAGES
from stp.stages import StageEvent
from stp.verify.runner import VerificationOutage, check_outage


def test_outage_limit_at_exactly_its_threshold() -> None:
    check_outage("x", 5, 1000, 0.005)  # exactly 0.5 %: allowed (the limit is "more than")
    with pytest.raises(VerificationOutage, match="6 of 1000"):
        check_outage("x", 6, 1000, 0.005)
    check_outage("x", 0, 0, 0.0)
    with pytest.raises(VerificationOutage):
        check_outage("x", 1, 1000, 0.0)


def test_seed_threshold_is_strict_at_its_value() -> None:
    threshold = 0.35
    best = np.array([threshold, math.nextafter(threshold, 1.0), math.nextafter(threshold, 0.0)])
    correct = [CorrectProof(sid=s, proof=f"p{s}", round=0) for s in range(3)]
    seeds = rules.select_seeds(correct, best, np.zeros(3, bool), threshold,
                               np.random.default_rng(0))
    assert [p.sid for p in seeds] == [1]


def test_recheck_threshold_is_strict_at_its_value() -> None:
    threshold = 0.35
    best = np.array([threshold, math.nextafter(threshold, 0.0), 0.9])
    solved = np.ones(3, bool)
    targets = rules.select_targets(np.arange(3), np.zeros(0, np.int64), solved, best, 0.0,
                                   threshold, np.random.default_rng(0))
    assert targets.tolist() == [1]  # only the rate below the threshold is forced
    every = rules.select_targets(np.arange(3), np.zeros(0, np.int64), solved, best, 1.0,
                                 threshold, np.random.default_rng(0))
    assert every.tolist() == [0, 1, 2]


def test_chunk_std_needs_exactly_four_chunks() -> None:
    assert estimators.MIN_CHUNKS_FOR_STD == 4
    stmt = np.zeros(8, np.int64)
    sample = np.arange(8, dtype=np.int64)
    passed = np.array([1, 0, 0, 0, 1, 0, 0, 0], bool)
    four = estimators.chunk_pass_at_k(stmt, sample, passed, 1, 2, 8)
    three = estimators.chunk_pass_at_k(stmt, sample, passed, 1, 2, 6)
    assert four is not None and four.chunks == 4 and four.std == pytest.approx(0.5)
    assert three is not None and three.chunks == 3 and three.std is None


def test_bootstrap_interval_is_the_central_95_percent_quantiles() -> None:
    n = np.full(50, 10)
    c = np.arange(50) % 11
    [est] = estimators.unbiased_pass_at_k(n, c, [1], resamples=400, seed=7)
    values = estimators.unbiased_per_statement(n, c, 1)
    rng = np.random.default_rng(7)
    weights = rng.multinomial(50, np.full(50, 1 / 50), size=400)
    boot = weights @ values / 50
    assert est.ci_low == pytest.approx(float(np.quantile(boot, 0.025)), abs=1e-12)
    assert est.ci_high == pytest.approx(float(np.quantile(boot, 0.975)), abs=1e-12)
    assert est.ci_low < est.mean < est.ci_high


def test_selfplay_resume_does_not_redo_finished_stages(tmp_path) -> None:
    cfg = with_checker(make_config(tmp_path, "run"), standin_command(RULES))
    done: list[tuple[int, str]] = []

    def crash_after_proving(event: StageEvent) -> None:
        r, stage, shard = event.round, event.stage, event.shard
        assert r is not None
        if shard is None:
            done.append((r, stage))
        if (r, stage, shard) == (0, "proving", None):
            raise RuntimeError("simulated crash")

    with pytest.raises(RuntimeError, match="simulated crash"):
        run_selfplay(cfg, rounds=1, hook=crash_after_proving, backends=scripted_backends())
    assert [s for _, s in done] == list(STAGES[:STAGES.index("proving") + 1])
    again: list[tuple[int, str]] = []
    samplers: list[ScriptedSampler] = []

    def sampler(path: str) -> ScriptedSampler:
        samplers.append(ScriptedSampler(path))
        return samplers[-1]

    run_selfplay(cfg, rounds=1, hook=lambda e: again.append((e.round, e.stage))
                 if e.shard is None else None, backends=scripted_backends(sampler))
    assert [s for _, s in again] == list(STAGES[STAGES.index("proving") + 1:])
    # A finished run resumed again does nothing at all.
    nothing: list[tuple[int, str]] = []
    run_selfplay(cfg, rounds=1, hook=lambda e: nothing.append((e.round, e.stage)),
                 backends=scripted_backends())
    assert nothing == []


def test_estimators_and_outage_on_the_smallest_inputs() -> None:
    # One statement is a split (the guard is for zero); the outage check of zero attempts is a
    # no-op even when a caller passes unverified > 0 (no division by zero).
    [est] = estimators.unbiased_pass_at_k(np.array([4]), np.array([1]), [1], resamples=10)
    assert est.mean == pytest.approx(0.25) and est.ci_low == est.ci_high == pytest.approx(0.25)
    with pytest.raises(ValueError, match="no statements"):
        estimators.unbiased_pass_at_k(np.zeros(0, np.int64), np.zeros(0, np.int64), [1])
    check_outage("x", 3, 0, 0.0)
    # A statement whose attempts pass only beyond the used chunks counts as unsolved there.
    ch = estimators.chunk_pass_at_k(np.zeros(3, np.int64), np.array([0, 1, 2]),
                                    np.array([False, False, True]), 1, 2, 3)
    assert ch is not None and ch.mean == 0.0 and ch.unused_samples == 1


def test_rundir_lists_rounds_and_checks_the_statement_table(tmp_path) -> None:
    from stp import storage
    from stp.selfplay.records import StatementRow
    from stp.selfplay.rundir import RunDir

    assert RunDir(str(tmp_path / "missing")).rounds() == []
    rd = RunDir(str(tmp_path / "run"))
    for r in (0, 1, 10):
        rd.mark_done(r, "pairs", 1.0, {})
    (tmp_path / "run" / "round-0002").mkdir()  # no manifest: not a round
    (tmp_path / "run" / "round-abcd").mkdir()
    (tmp_path / "run" / "rounds-0003").mkdir()
    assert rd.rounds() == [0, 1, 10]
    rows = [StatementRow(sid=i, statement=f"s{i}", header="", source_id=f"x{i}",
                         matching_weight=1) for i in range(3)]
    storage.write_jsonl(rd.dataset_statements, rows)
    assert [r.sid for r in rd.statement_rows(0)] == [0, 1, 2]
    storage.write_jsonl(rd.dataset_statements, [rows[0], rows[2], rows[1]])
    with pytest.raises(storage.CorruptRecordError, match="row 1 has sid 2"):
        rd.statement_rows(0)
    storage.write_jsonl(rd.dataset_statements, [rows[1]])
    with pytest.raises(storage.CorruptRecordError, match="row 0 has sid 1"):
        rd.statement_rows(0)


def test_rundir_reads_four_digit_rounds_and_earlier_rounds_conjectures(tmp_path) -> None:
    from stp import storage
    from stp.selfplay.records import StatementRow
    from stp.selfplay.rundir import RunDir

    rd = RunDir(str(tmp_path / "run"))
    for r in (7, 1234):
        rd.mark_done(r, "pairs", 1.0, {})
    assert rd.rounds() == [7, 1234]
    rows = [StatementRow(sid=i, statement=f"s{i}", header="", source_id=f"x{i}",
                         matching_weight=1) for i in range(3)]
    storage.write_jsonl(rd.dataset_statements, rows[:2])
    storage.write_jsonl(rd.new_statements_path(0), rows[2:])
    assert [r.sid for r in rd.statement_rows(0)] == [0, 1]
    assert [r.sid for r in rd.statement_rows(1)] == [0, 1, 2]


def test_settings_guard_compares_and_describes_exactly() -> None:
    from stp import settings_guard as guard

    assert guard.changed({"k": "b"}, {"k": "a"}) == {"k": ("b", "a")}
    assert guard.changed({"k": 1}, {"k": 1.0}) == {}
    assert guard.changed({"k": [1, 2]}, {"k": [1, 2, 3]}) == {"k": ([1, 2], [1, 2, 3])}
    assert guard.changed({"a": 1, "only_old": 2}, {"a": 1, "only_new": 3}) == {}
    many = {f"k{i}": (i, i + 1) for i in range(11)}
    text = guard.describe(many)
    assert text.endswith(", and 3 more") and text.count("->") == 8
    # Values are shown as their repr, cut to 37 characters + "..." beyond 40.
    assert guard.describe({"k": ("x" * 39, "y" * 38)}) == f"k '{'x' * 36}... -> '{'y' * 38}'"
    assert guard.describe({"k": ("x" * 38, 1)}) == f"k '{'x' * 38}' -> 1"
