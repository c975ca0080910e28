"""Tests for the gaps `benchmarks/mutation.py` found (issue #24, item 9): each pins behaviour that
a surviving mutant changed and no test looked at. The mutant each one kills is named in its
docstring; README's "Mutation score" paragraph lists them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from stp.verify.runner import verify_with_retries


@dataclass
class Verdict:
    item: str
    status: str


def test_retries_resend_only_attempts_without_a_verdict_and_stop_when_all_have_one() -> None:
    """Kills `if not again: break` -> `if again: break` (no retry at all) and a retry loop that
    re-sends every item or keeps calling the checker once every attempt has a verdict."""
    answers = {"a": ["pass"], "b": ["crash", "fail"], "c": ["error", "error", "pass"]}
    calls: list[list[str]] = []

    def verify_all(items: list[str]) -> list[Verdict]:
        calls.append(list(items))
        return [Verdict(i, answers[i].pop(0)) for i in items]

    results, unverified = verify_with_retries(verify_all, ["a", "b", "c"], retries=5)
    assert [r.status for r in results] == ["pass", "fail", "pass"]
    assert unverified == 0
    # Round 1 sends all; round 2 the two without a verdict; round 3 only "c"; then it stops
    # (retries left over are not spent).
    assert calls == [["a", "b", "c"], ["b", "c"], ["c"]]


def test_retries_are_bounded_and_the_remaining_unverified_are_counted() -> None:
    calls: list[list[str]] = []

    def always_crash(items: list[str]) -> list[Verdict]:
        calls.append(list(items))
        return [Verdict(i, "crash") for i in items]

    results, unverified = verify_with_retries(always_crash, ["a", "b"], retries=2)
    assert unverified == 2 and len(calls) == 3 and [r.item for r in results] == ["a", "b"]
    assert verify_with_retries(always_crash, ["a"], retries=0)[1] == 1 and len(calls) == 4


def test_first_unfinished_round_starts_at_round_zero(tmp_path) -> None:
    """Kills `r = 0` -> `r = 1` in `RunDir.first_unfinished_round`: a fresh run, or one whose
    round 0 is half done, must resume at round 0, not skip it."""
    from stp.selfplay.rundir import RunDir

    rd = RunDir(str(tmp_path / "run"))
    assert rd.first_unfinished_round() == 0
    rd.mark_done(0, "pairs", 1.0, {})
    assert rd.first_unfinished_round() == 0
    rd.mark_done(0, "done", 1.0, {})
    assert rd.first_unfinished_round() == 1
    rd.mark_done(1, "done", 1.0, {})
    rd.mark_done(2, "pairs", 1.0, {})
    assert rd.first_unfinished_round() == 2


def test_unsolved_and_always_solved_statements_are_exact() -> None:
    """pass@k is exactly 0 for a statement with no pass and exactly 1 where every draw of k
    attempts holds one, at every k (including k > n), so `solved` counts and the means of
    unsolved splits stay exact."""
    from stp.eval.estimators import unbiased_per_statement

    n = np.array([0, 5, 5, 5, 2, 3200, 3200])
    c = np.array([0, 0, 5, 3, 2, 0, 3199])
    for k in (1, 2, 3, 4, 5, 8, 3200, 10_000):
        got = unbiased_per_statement(n, c, k)
        assert got[0] == 0.0 and got[1] == 0.0 and got[5] == 0.0
        assert got[2] == 1.0 and got[4] == 1.0
        # n = 5, c = 3: 1 - C(2, k)/C(5, k) = 0.6, 0.9 at k = 1, 2; certain from k = 3 on.
        assert got[3] == ({1: pytest.approx(0.6), 2: pytest.approx(0.9)}.get(k, 1.0))
        assert got[6] == (1.0 if k >= 2 else pytest.approx(3199 / 3200))
        assert not np.isnan(got).any()


def test_a_no_lemma_conjecture_is_never_counted_as_invoking_its_lemma() -> None:
    """Kills `row.lemma != NO_LEMMA` -> `row.lemma >= NO_LEMMA` in `conjecture_rewards`: premises
    are the checker's claim, and an empty name among them (a malformed list) must not turn a
    conjecture generated without a lemma into one that "used its lemma" (ranked first, with the
    pair's lemma statement)."""
    from stp.selfplay import rules
    from stp.selfplay.records import (
        NO_LEMMA,
        NO_LEMMA_STATEMENT,
        ConjectureInput,
        CorrectProof,
        StatementRow,
    )

    rows = [StatementRow(sid=0, statement="seed"),
            StatementRow(sid=1, statement="c1", conjecture=True, lemma=NO_LEMMA, round=1),
            StatementRow(sid=2, statement="c2", conjecture=True, lemma="A", round=1)]

    def pair_of(row: StatementRow) -> ConjectureInput:
        return ConjectureInput(seed_sid=0, seed_statement="seed", seed_proof="sp",
                               lemma=row.lemma, lemma_statement=f"stmt {row.lemma}")

    correct = [CorrectProof(sid=1, proof="p1", round=1, premises=["", "A"]),
               CorrectProof(sid=2, proof="p2", round=1, premises=["A"])]
    examples = rules.conjecture_rewards(correct, rows, np.array([0.0, 0.1, 0.1]), 0.25, 20,
                                        4096, pair_of)
    assert [e.sid for e in examples] == [2, 1]  # the invoking conjecture first
    assert (examples[1].lemma, examples[1].lemma_statement) == (NO_LEMMA, NO_LEMMA_STATEMENT)


def test_matching_votes_for_exactly_the_k_nearest() -> None:
    """Kills `np.argpartition(-row, k - 1)` -> `(-row, k % 1)`: a query with weight k votes for
    its k most similar statements, not the nearest plus k - 1 others. (numpy happens to return
    the k nearest for kth=0 on small inputs, hence 300 statements with spread similarities.)"""
    from stp.selfplay import rules

    similarity = np.random.default_rng(8).random(300)
    weights = rules.match_weights(np.eye(300), similarity[None, :], np.array([150]), 100.0,
                                  np.random.default_rng(0))
    nearest = np.argsort(-similarity.astype(np.float32), kind="stable")[:150]
    assert np.flatnonzero(weights).tolist() == sorted(nearest.tolist())
    assert weights[nearest] == pytest.approx(np.full(150, 2.0))


def test_empty_query_or_statement_sets_give_zero_weights() -> None:
    from stp.selfplay import rules

    rng = np.random.default_rng(0)
    assert rules.match_weights(np.eye(3), np.zeros((0, 3)), np.zeros(0, np.int64), 2.0,
                               rng).tolist() == [0.0, 0.0, 0.0]
    assert rules.match_weights(np.zeros((0, 3)), np.eye(3), np.ones(3, np.int64), 2.0,
                               rng).tolist() == []


def test_proof_ratio_of_an_empty_statement_is_the_proof_length() -> None:
    """Kills `max(1, len(statement))` -> `max(0, ...)` in `proof_ratios` (a division by zero
    for an empty statement text)."""
    from stp.selfplay import rules
    from stp.selfplay.records import CorrectProof, StatementRow

    rows = {0: StatementRow(sid=0, statement="")}
    assert rules.proof_ratios([CorrectProof(sid=0, proof="abc", round=0)], rows, {0}) == {0: 3.0}


def test_unbiased_estimate_is_the_same_in_small_blocks_and_a_first_statement_over_a_block(
        monkeypatch) -> None:
    """The ragged log-ratio terms are processed in blocks of `_RAGGED_TERMS`; a statement with
    more terms than a block (here the first one) is processed alone. Kills `hi = max(hi, lo + 1)`
    -> `max(hi, lo << 1)`, which loops forever on such a first statement."""
    from stp.eval import estimators

    n = np.array([40, 40, 7, 0, 40, 12, 40])
    c = np.array([30, 3, 7, 0, 1, 6, 20])
    whole = {k: estimators.unbiased_per_statement(n, c, k) for k in (1, 5, 17, 40)}
    monkeypatch.setattr(estimators, "_RAGGED_TERMS", 4)
    for k, expected in whole.items():
        assert estimators.unbiased_per_statement(n, c, k) == pytest.approx(expected, abs=1e-15)
    # n = 40, c = 3, k = 17: 1 - C(37, 17) / C(40, 17).
    assert whole[17][1] == pytest.approx(1 - np.prod([(37 - i) / (40 - i) for i in range(17)]))
