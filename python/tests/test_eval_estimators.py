"""Both pass@k estimators against values computed by hand on tiny logs."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from stp.eval.estimators import (
    chunk_pass_at_k,
    per_statement_counts,
    unbiased_pass_at_k,
    unbiased_per_statement,
)

# Three statements, max_iter 5. A (0): passes at samples 1 and 4; B (1): passes at sample 3;
# C (2): no attempt at all.
STMT = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1])
SAMPLE = np.array([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
PASSED = np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0], dtype=bool)
MULT = np.ones(10, dtype=np.int64)


def test_chunk_k1_has_five_chunks_and_a_population_std() -> None:
    e = chunk_pass_at_k(STMT, SAMPLE, PASSED, 3, k=1, max_iter=5)
    assert e is not None
    # Per chunk fraction solved: [0, 1/3, 0, 1/3, 1/3].
    fractions = np.array([0, 1 / 3, 0, 1 / 3, 1 / 3])
    assert e.chunks == 5 and e.unused_samples == 0
    assert e.mean == pytest.approx(0.2)
    assert e.std == pytest.approx(math.sqrt(((fractions - 0.2) ** 2).mean()))
    assert e.std == pytest.approx(0.163299316)


def test_chunk_k_not_dividing_max_iter_drops_the_tail() -> None:
    # k=2: chunks {0,1} (A solved) and {2,3} (B solved); sample 4 (A's second pass) unused.
    e = chunk_pass_at_k(STMT, SAMPLE, PASSED, 3, k=2, max_iter=5)
    assert e is not None
    assert (e.chunks, e.unused_samples) == (2, 1)
    assert e.mean == pytest.approx(1 / 3)
    assert e.std is None  # fewer than 4 chunks
    e4 = chunk_pass_at_k(STMT, SAMPLE, PASSED, 3, k=4, max_iter=5)
    assert e4 is not None and e4.chunks == 1 and e4.mean == pytest.approx(2 / 3)
    assert chunk_pass_at_k(STMT, SAMPLE, PASSED, 3, k=8, max_iter=5) is None


def test_chunk_max_iter_ignores_later_samples() -> None:
    # With max_iter 3 only samples 0..2 count: A solved (sample 1), B not (its pass is at 3).
    e = chunk_pass_at_k(STMT, SAMPLE, PASSED, 3, k=3, max_iter=3)
    assert e is not None and e.mean == pytest.approx(1 / 3)


def _exact(n: int, c: int, k: int) -> float:
    k = min(k, n)
    if n == 0:
        return 0.0
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def test_unbiased_matches_hand_values_with_zero_attempt_statement() -> None:
    n, c = per_statement_counts(STMT, PASSED, MULT, 3)
    assert n.tolist() == [5, 5, 0] and c.tolist() == [2, 1, 0]
    est = unbiased_pass_at_k(n, c, [1, 2, 4], resamples=0)
    # k=1: (2/5 + 1/5 + 0)/3; k=2: (1-3/10 + 1-6/10 + 0)/3; k=4: (1 + 1-1/5 + 0)/3.
    assert [e.mean for e in est] == pytest.approx([0.2, 1.1 / 3, 0.6])
    assert all(e.short_statements == 0 for e in est)


def test_unbiased_counts_multiplicities() -> None:
    # One statement: a passing record of multiplicity 3 and a failing one of multiplicity 2.
    stmt = np.array([0, 0])
    passed = np.array([True, False])
    mult = np.array([3, 2])
    n, c = per_statement_counts(stmt, passed, mult, 1)
    assert (n[0], c[0]) == (5, 3)
    assert unbiased_per_statement(n, c, 2)[0] == pytest.approx(0.9)  # 1 - C(2,2)/C(5,2)
    # The chunk estimator places a record at its sample index whatever its multiplicity.
    e = chunk_pass_at_k(stmt, np.array([0, 1]), passed, 1, k=1, max_iter=2)
    assert e is not None and e.mean == pytest.approx(0.5)


def test_unbiased_short_statements_use_their_own_n() -> None:
    n = np.array([2, 8])
    c = np.array([1, 1])
    est = unbiased_pass_at_k(n, c, [4], resamples=0)[0]
    # First statement has n=2 < k=4: estimated at k=2 (=1); second 1 - C(7,4)/C(8,4) = 1/2.
    assert est.mean == pytest.approx((1.0 + 0.5) / 2)
    assert est.short_statements == 1


def test_unbiased_is_exact_and_stable_for_large_n() -> None:
    rng = np.random.default_rng(0)
    n = rng.integers(1, 30000, size=200)
    c = (rng.random(200) * n * rng.choice([0.0, 1e-4, 0.01, 0.5, 1.0], 200)).astype(np.int64)
    for k in (1, 32, 640, 3200, 25600):
        got = unbiased_per_statement(n, c, k)
        want = np.array([_exact(int(a), int(b), k) for a, b in zip(n, c, strict=True)])
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)


def test_bootstrap_interval_is_seeded_and_brackets_the_mean() -> None:
    rng = np.random.default_rng(1)
    n = np.full(300, 64)
    c = rng.binomial(64, rng.random(300) * 0.1)
    a = unbiased_pass_at_k(n, c, [1, 32], resamples=500, seed=7)
    b = unbiased_pass_at_k(n, c, [1, 32], resamples=500, seed=7)
    assert a == b
    for e in a:
        assert e.ci_low < e.mean < e.ci_high
        # A 95 % interval of a mean of 300 values in [0, 1] is well under +-10 points wide.
        assert e.ci_high - e.ci_low < 0.2
    assert a[0].ci_low <= a[1].ci_low  # same resamples for every k: intervals are monotone


def test_invalid_inputs_raise() -> None:
    with pytest.raises(ValueError):
        unbiased_per_statement(np.array([2]), np.array([3]), 1)
    with pytest.raises(ValueError):
        chunk_pass_at_k(STMT, SAMPLE, PASSED, 3, k=0, max_iter=5)
