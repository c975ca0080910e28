"""Each selection/weighting rule of the self-play round pinned on small hand-made cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stp.data.records import TrainingExample, statement_key
from stp.selfplay import rules
from stp.selfplay.records import (
    NO_LEMMA_STATEMENT,
    ConjectureExample,
    ConjectureInput,
    CorrectProof,
    StatementRow,
)
from stp.selfplay.training_sets import (
    conjecturer_examples,
    dedup_examples,
    prover_examples,
    retrain_proofs,
    shuffled,
)


def rng(tag: str = "t") -> np.random.Generator:
    return rules.stage_rng(0, 0, tag)


def row(sid: int, statement: str = "", **kw) -> StatementRow:
    return StatementRow(sid=sid, statement=statement or f"theorem t{sid} : True := by", **kw)


# ----------------------------------------------------------------------------- randomness


def test_stage_rng_is_reproducible_and_independent_per_stage() -> None:
    a = rules.stage_rng(7, 3, "select").random(5)
    b = rules.stage_rng(7, 3, "select").random(5)
    c = rules.stage_rng(7, 3, "targets").random(5)
    d = rules.stage_rng(7, 4, "select").random(5)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)


def test_request_seed_differs_per_sample() -> None:
    seeds = {rules.request_seed(0, 1, "prove", 5, i) for i in range(100)}
    assert len(seeds) == 100
    assert rules.request_seed(0, 1, "prove", 5, 3) == rules.request_seed(0, 1, "prove", 5, 3)


# ----------------------------------------------------------------------------- rates


def test_rates_count_multiplicity_and_best_rate_never_drops() -> None:
    sids = np.array([0, 0, 1, 1, 1])
    mult = np.array([3, 1, 2, 1, 1])
    passed = np.array([True, False, False, False, True])
    attempts, successes = rules.attempt_counts(sids, mult, passed, 3)
    assert attempts.tolist() == [4, 4, 0] and successes.tolist() == [3, 1, 0]
    rate = rules.solve_rates(attempts, successes)
    assert rate[0] == 0.75 and rate[1] == 0.25 and np.isnan(rate[2])
    best, solved = rules.update_best(np.array([0.9, np.nan]), np.array([True, False]), rate)
    assert best[0] == 0.9 and best[1] == 0.25 and np.isnan(best[2])
    assert solved.tolist() == [True, True, False]
    later = np.array([0.0, np.nan, 0.0])
    best2, solved2 = rules.update_best(best, solved, later)
    assert best2[0] == 0.9 and best2[2] == 0.0 and solved2.tolist() == [True, True, False]


def test_histogram_ignores_unattempted() -> None:
    hist = rules.solve_rate_histogram(np.array([0.0, 0.05, 0.5, 1.0, np.nan]))
    assert sum(hist) == 4 and hist[0] == 2 and hist[5] == 1 and hist[9] == 1


# ----------------------------------------------------------------------------- seeds, pairs


def test_seeds_need_rate_strictly_above_threshold_and_no_conjectures() -> None:
    best = np.array([0.35, 0.36, 0.9, 1.0])
    conj = np.array([False, False, False, True])
    correct = [CorrectProof(sid=s, proof=f"p{s}", round=0) for s in range(4)]
    seeds = rules.select_seeds(correct, best, conj, 0.35, rng())
    assert sorted(p.sid for p in seeds) == [1, 2]


def test_pairing_caps_lemmas_skips_unknown_and_repeated_pairs() -> None:
    rows = [row(i) for i in range(30)]
    lemma_dict = {"A": "theorem A : 1 = 1", "B": "theorem B : 2 = 2"}
    seeds = [CorrectProof(sid=i, proof="p", round=0, premises=["A", "A", "Unknown", "B"])
             for i in range(30)]
    seeds.append(CorrectProof(sid=0, proof="q", round=0, premises=["A"]))
    # N = 30, cap 0.1·N = 3 pairs per lemma; "no lemma" never drawn (p = 0).
    pairs = rules.pair_lemmas(seeds, rows, lemma_dict, 30, 0.1, 0.0, rng())
    lemmas = [p.lemma for p in pairs]
    assert lemmas.count("A") == 3 and lemmas.count("B") == 3 and "Unknown" not in lemmas
    assert len({(p.seed_sid, p.lemma) for p in pairs}) == len(pairs)
    assert pairs[0].lemma_statement == "theorem A : 1 = 1"


def test_pairing_no_lemma_probability_and_cap() -> None:
    rows = [row(i) for i in range(1000)]
    seeds = [CorrectProof(sid=i, proof="p", round=0) for i in range(1000)]
    pairs = rules.pair_lemmas(seeds, rows, {}, 1000, 1.0, 0.5, rng("half"))
    assert all(p.lemma == "" and p.lemma_statement == NO_LEMMA_STATEMENT for p in pairs)
    assert 440 < len(pairs) < 560  # ~Binomial(1000, 0.5)
    capped = rules.pair_lemmas(seeds, rows, {}, 1000, 0.1, 1.0, rng("half"))
    assert len(capped) == 100  # 0.1·N pairs for the "no lemma" lemma


def test_pairing_replicates_by_matching_weight_and_truncates_to_n() -> None:
    rows = [row(0, matching_weight=4), row(1, matching_weight=4)]
    seeds = [CorrectProof(sid=0, proof="p", round=0), CorrectProof(sid=1, proof="p", round=0)]
    pairs = rules.pair_lemmas(seeds, rows, {}, 6, 1.0, 1.0, rng())
    assert [p.seed_sid for p in pairs] == [0, 0, 0, 0, 1, 1]


def test_pairing_does_not_mutate_premises() -> None:
    seed = CorrectProof(sid=0, proof="p", round=0, premises=["A"])
    rules.pair_lemmas([seed], [row(0)], {"A": "a"}, 10, 1.0, 1.0, rng())
    assert seed.premises == ["A"]


@pytest.mark.parametrize("window", [1, 3, 7, 1000])
def test_streamed_seed_pairs_equal_shuffle_then_pair(window: int) -> None:
    rows = [row(i, matching_weight=1 + i % 2) for i in range(40)]
    lemma_dict = {f"L{k}": f"theorem L{k} : True" for k in range(5)}
    gen = np.random.default_rng(5)
    candidates = [CorrectProof(sid=int(gen.integers(40)), proof=f"p{i}", round=0,
                               premises=[f"L{int(k)}" for k in gen.integers(0, 7, 3)])
                  for i in range(60)]
    best = np.ones(40)
    expected = rules.pair_lemmas(
        rules.select_seeds(candidates, best, np.zeros(40, dtype=bool), 0.35, rng("s")),
        rows, lemma_dict, 25, 0.2, 0.5, rng("p"))
    pairer = rules.LemmaPairer(rows, lemma_dict, 25, 0.2, 0.5, rng("p"))
    passes: list[int] = []

    def again():
        passes.append(1)
        return iter(candidates)

    count = rules.stream_seed_pairs(again, pairer, rng("s"), window)
    assert count == 60 and pairer.pairs == expected and len(expected) == 25
    # Streaming stops reading once the pairs are full: the count pass plus the windows needed.
    assert len(passes) <= 1 + -(-60 // window)


def test_pairing_at_lemma_cap_boundary() -> None:
    # N = 20, cap 0.1·N = 2: the third seed using A is refused; "no lemma" has its own cap.
    rows = [row(i) for i in range(5)]
    seeds = [CorrectProof(sid=i, proof="p", round=0, premises=["A"]) for i in range(5)]
    pairs = rules.pair_lemmas(seeds, rows, {"A": "a"}, 20, 0.1, 1.0, rng())
    assert [p.lemma for p in pairs].count("A") == 2
    assert [p.lemma for p in pairs].count("") == 2
    assert len(pairs) == 4


@pytest.mark.parametrize(("n", "k", "expected"), [(100, 100, 3), (100, 50, 6), (100, 10, 8),
                                                  (100, 37, 8), (100, 0, 0), (100, 60, 5)])
def test_conjecture_multiplier_clamps(n: int, k: int, expected: int) -> None:
    assert rules.conjecture_multiplier(n, k, 3, 8) == expected


def test_conjecture_dedup_ignores_whitespace_and_dataset() -> None:
    dataset = {statement_key("theorem d : 1 = 1 := by")}
    candidates = [(0, "theorem d :  1 = 1 := by", ""), (1, "theorem x : 2 = 2 := by", ""),
                  (2, "theorem x :\n2 = 2 := by", ""), (3, "theorem y : 3 = 3 := by", ""),
                  (4, "theorem x : 2 = 2 := by", "import Other")]
    kept = rules.dedup_conjectures(candidates, dataset, 10, rng())
    texts = {candidates[i][1].replace(" ", "").replace("\n", "") + candidates[i][2]
             for i in kept}
    assert len(kept) == 3 and 0 not in kept and len(texts) == 3
    assert len(rules.dedup_conjectures(candidates, dataset, 2, rng())) == 2


# ----------------------------------------------------------------------------- targets


def test_targets_unsolved_plus_rechecks() -> None:
    n = 2000
    dataset = np.arange(n)
    solved = np.zeros(n + 3, dtype=bool)
    solved[:1000] = True
    best = np.full(n + 3, np.nan)
    best[:1000] = 0.9
    best[:10] = 0.349  # always re-checked
    solved[n] = True  # a solved conjecture
    conj = np.array([n, n + 1, n + 2])
    targets = rules.select_targets(dataset, conj, solved, best, 0.05, 0.35, rng())
    tset = set(targets.tolist())
    assert set(range(1000, n)) <= tset and set(range(10)) <= tset
    assert n not in tset and {n + 1, n + 2} <= tset
    rechecked = len([s for s in tset if 10 <= s < 1000])
    assert 25 < rechecked < 75  # ~Binomial(990, 0.05)
    assert rules.select_targets(dataset, conj, solved, best, 0.0, 0.35, rng()).size == 1012


# ----------------------------------------------------------------------------- rewards


def conj_rows() -> dict[int, StatementRow]:
    rows = {0: row(0)}
    for sid, lemma in [(1, "A"), (2, "A"), (3, ""), (4, "B"), (5, "A")]:
        rows[sid] = row(sid, conjecture=True, lemma=lemma, round=1, pair=sid)
    return rows


def pair_of(row: StatementRow) -> ConjectureInput:
    """The pair a conjecture row came from (entry `row.pair` of its round's pairs)."""
    return ConjectureInput(seed_sid=0, seed_statement=f"seed {row.pair}", seed_proof="sp",
                           lemma=row.lemma, lemma_statement=f"stmt {row.lemma}")


def test_rewards_need_rate_strictly_between_zero_and_threshold() -> None:
    rows = conj_rows()
    rate = np.array([0.1, 0.1, 0.25, 0.24, 0.0, 1 / 32])
    correct = [CorrectProof(sid=s, proof=f"p{s}", round=1, premises=["A"]) for s in range(6)]
    examples = rules.conjecture_rewards(correct, rows, rate, 0.25, 20, 4096, pair_of)
    sids = [e.sid for e in examples]
    assert sids == [1, 5, 3]  # invoking first (1, 5), then the others; 0 is not a conjecture
    assert examples[0].lemma == "A" and examples[0].lemma_statement == "stmt A"
    assert examples[0].seed_statement == "seed 1" and examples[0].proof == "p1"
    assert examples[2].lemma == "" and examples[2].lemma_statement == NO_LEMMA_STATEMENT


def test_rewards_relabel_unused_lemma_and_cap_others() -> None:
    rows = conj_rows()
    rate = np.full(6, 0.1)
    correct = [CorrectProof(sid=s, proof="p", round=1, premises=[]) for s in range(1, 6)]
    # No invoking conjecture: I = 0, others capped at max(20·0, floor=2) = 2.
    examples = rules.conjecture_rewards(correct, rows, rate, 0.25, 20, 2, pair_of)
    assert [e.sid for e in examples] == [1, 2] and all(e.lemma == "" for e in examples)
    # One invoking conjecture (sid 4 uses B): others capped at max(1·1, 0) = 1.
    correct.append(CorrectProof(sid=4, proof="q", round=1, premises=["B"]))
    examples = rules.conjecture_rewards(correct, rows, rate, 0.25, 1, 0, pair_of)
    assert [e.sid for e in examples] == [4, 1]


def example(sid: int, lemma: str) -> ConjectureExample:
    return ConjectureExample(sid=sid, statement="s", seed_statement="e", seed_proof="p",
                             lemma=lemma, lemma_statement="l", proof="x")


def test_elegance_filter_drops_bottom_fifth_per_lemma() -> None:
    examples = [example(i, "A") for i in range(10)] + [example(10, "B")]
    ratios = {i: float(i) for i in range(11)}
    ratios[3] = 1.0  # tie with sid 1 at the cutoff value
    kept = rules.elegance_filter(examples, ratios, 0.2)
    # group A: sorted ratios [0,1,1,2,4,...]; index floor(0.2·10)=2 -> cutoff 1.0; B kept whole.
    assert sorted(e.sid for e in kept) == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    assert kept[0].ratio == 1.0
    small = rules.elegance_filter([example(0, "C"), example(1, "C")], {0: 5.0, 1: 1.0}, 0.2)
    assert len(small) == 2  # floor(0.4) = 0: nothing dropped


def test_proof_ratios_take_minimum() -> None:
    rows = {0: row(0, statement="x" * 10)}
    proofs = [CorrectProof(sid=0, proof="y" * 30, round=0),
              CorrectProof(sid=0, proof="y" * 5, round=1)]
    assert rules.proof_ratios(proofs, rows, {0}) == {0: 0.5}


# ----------------------------------------------------------------------------- matching


def test_matching_is_nearest_neighbour_with_cap() -> None:
    p = np.eye(3, dtype=np.float32)
    # Five unsolved statements all nearest to p0, one nearest to p2.
    q = np.array([[1, 0.1, 0]] * 5 + [[0, 0, 1]], dtype=np.float32)
    w = np.ones(6, dtype=np.int64)
    weights = rules.match_weights(p, q, w, 1.5, rng())
    inc = 3 / 6
    # p0 saturates after three votes (weight 1.5 >= cap); the rest spill to p1, the next nearest.
    assert weights[0] == pytest.approx(3 * inc)
    assert weights[1] == pytest.approx(2 * inc)
    assert weights[2] == pytest.approx(1 * inc)
    unused = rules.match_weights(np.eye(3), np.array([[1.0, 0, 0]]), np.array([1]), 4.0, rng())
    assert unused.tolist() == [3.0, 0.0, 0.0]


def test_matching_weight_votes_several_neighbours() -> None:
    p = np.eye(4)
    q = np.array([[1.0, 0.9, 0.8, 0.0]])
    weights = rules.match_weights(p, q, np.array([3]), 4.0, rng())
    assert weights.tolist() == pytest.approx([4 / 3, 4 / 3, 4 / 3, 0.0])


# ----------------------------------------------------------------------------- training set


def build_prover(statement: str, header: str, proof: str, weight: float) -> TrainingExample:
    return TrainingExample(prompt=statement, target=proof, weight=weight)


def test_prover_examples_filter_rate_and_weight_by_distinct_correct() -> None:
    rows = [row(0), row(1), row(2)]
    rate = np.array([0.5, 0.51, 0.1])
    window = [CorrectProof(sid=0, proof="ab", round=2, seconds=1.0),
              CorrectProof(sid=0, proof="ab", round=1, seconds=2.0),
              CorrectProof(sid=0, proof="abcd", round=1),
              CorrectProof(sid=1, proof="x", round=2),
              CorrectProof(sid=2, proof="z", round=0)]
    out = list(prover_examples(lambda: window, rate, rows, build_prover, rate_max=0.5,
                               length_penalty=0.001, time_penalty=0.01))
    assert [e.target for e in out] == ["ab", "ab", "abcd", "z"]
    assert out[0].weight == pytest.approx(math.exp(-0.002 - 0.01) / 2)
    assert out[2].weight == pytest.approx(math.exp(-0.004) / 2)
    assert out[3].weight == pytest.approx(math.exp(-0.001))
    deduped = list(dedup_examples(out))
    assert [e.target for e in deduped] == ["ab", "abcd", "z"]
    assert deduped[0].weight == out[0].weight  # first (newest) wins


def test_conjecturer_examples_carry_matching_weight_and_shuffle_is_seeded() -> None:
    e = example(0, "A")
    e.weight = 2.5

    def build(lemma, seed_statement, seed_proof, conjecture, weight):
        return TrainingExample(prompt=lemma + seed_statement, target=conjecture, weight=weight)

    out = list(conjecturer_examples([e], build))
    assert out[0].weight == 2.5 and out[0].prompt == "le"
    items = [TrainingExample(prompt=str(i), target="t") for i in range(20)]
    a = shuffled(items, rules.stage_rng(1, 0, "shuffle"))
    b = shuffled(items, rules.stage_rng(1, 0, "shuffle"))
    assert [x.prompt for x in a] == [x.prompt for x in b] != [x.prompt for x in items]


class Source:
    def __init__(self, proofs, rate, rows):
        self._proofs, self.round_rate, self.rows = proofs, rate, rows

    def correct(self):
        return self._proofs


def test_retrain_proofs_caps_per_statement_and_filters_conjectures() -> None:
    rows = [row(0), row(1, conjecture=True), row(2, conjecture=True)]
    r0 = Source([CorrectProof(sid=0, proof=f"p{i}", round=0) for i in range(10)]
                + [CorrectProof(sid=1, proof="c", round=0), CorrectProof(sid=2, proof="e", round=0)],
                np.array([0.9, 0.25, 0.26]), rows)
    # A later round repeats a proof and adds more; the same statement with other whitespace.
    rows1 = [row(0, statement=rows[0].statement.replace(" ", "  "))]
    r1 = Source([CorrectProof(sid=0, proof=f"p{i}", round=1) for i in range(5, 15)],
                np.array([1.0]), rows1)
    out = retrain_proofs([r0, r1], max_per_statement=4, include_conjectures=True,
                         conjecture_rate_max=0.25, seed=0)
    by_stmt: dict = {}
    for statement, _, proof in out:
        by_stmt.setdefault(statement_key(statement), []).append(proof)
    assert len(by_stmt[statement_key(rows[0].statement)]) == 4
    assert by_stmt[statement_key(rows[1].statement)] == ["c"]
    assert statement_key(rows[2].statement) not in by_stmt
    again = retrain_proofs([r1, r0], max_per_statement=4, include_conjectures=True,
                           conjecture_rate_max=0.25, seed=0)
    assert sorted(p for _, _, p in again) == sorted(p for _, _, p in out)
    none = retrain_proofs([r0], max_per_statement=16, include_conjectures=False,
                          conjecture_rate_max=0.25, seed=0)
    assert {p for _, _, p in none} == {f"p{i}" for i in range(10)}
