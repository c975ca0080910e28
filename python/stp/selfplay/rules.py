"""The selection and weighting rules of one self-play round (docs/reference.md §4), as pure functions.

Nothing here reads files, samples a model or checks a proof: inputs are arrays indexed by integer
statement id (`sid`) and small record lists, outputs are the same, and every random choice takes
an explicit `numpy.random.Generator` (see `stage_rng`). That keeps each rule testable on
hand-made cases and fast at paper scale (≈3M attempts per round).
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from stp.data.records import statement_key
from stp.selfplay.records import (
    NO_LEMMA,
    NO_LEMMA_STATEMENT,
    ConjectureExample,
    ConjectureInput,
    CorrectProof,
    StatementRow,
)

# ---------------------------------------------------------------------------------------------
# Randomness: one generator per (run seed, round, stage)


def stage_rng(seed: int, round_index: int, stage: str) -> np.random.Generator:
    """The generator of one stage of one round; independent of every other stage's draws.

    Centralising seeding means re-running a stage after a crash draws exactly the same numbers,
    and adding a draw to one stage never shifts another stage's choices.
    """
    tag = int.from_bytes(hashlib.blake2b(stage.encode(), digest_size=8).digest(), "little")
    return np.random.default_rng(np.random.SeedSequence([seed, round_index, tag]))


def request_seed(seed: int, round_index: int, kind: str, sid: int, sample: int) -> int:
    """Per-request sampler seed from (round, statement, sample index): never shared (§11.7)."""
    data = f"{seed}|{round_index}|{kind}|{sid}|{sample}".encode()
    return int.from_bytes(hashlib.blake2b(data, digest_size=4).digest(), "little") & 0x7FFFFFFF


# ---------------------------------------------------------------------------------------------
# Solve rates


def attempt_counts(
    sids: np.ndarray, multiplicity: np.ndarray, passed: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """(attempts, successes) per sid, each attempt counted `multiplicity` times."""
    sids = np.asarray(sids, dtype=np.int64)
    mult = np.asarray(multiplicity, dtype=np.float64)
    ok = np.asarray(passed, dtype=bool)
    attempts = np.bincount(sids, weights=mult, minlength=size)
    successes = np.bincount(sids, weights=mult * ok, minlength=size)
    return attempts.astype(np.int64), successes.astype(np.int64)


def solve_rates(attempts: np.ndarray, successes: np.ndarray) -> np.ndarray:
    """successes / attempts, NaN where a statement was not attempted."""
    attempts = np.asarray(attempts, dtype=np.float64)
    out = np.full(attempts.shape, np.nan)
    mask = attempts > 0
    out[mask] = np.asarray(successes, dtype=np.float64)[mask] / attempts[mask]
    return out


def update_best(best_rate: np.ndarray, solved: np.ndarray, round_rate: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Best-ever rate (never lowered; NaN = never attempted) and the solved set after a round."""
    size = len(round_rate)
    best = np.full(size, np.nan)
    best[: len(best_rate)] = best_rate
    now = np.zeros(size, dtype=bool)
    now[: len(solved)] = solved
    attempted = ~np.isnan(round_rate)
    best[attempted] = np.fmax(best[attempted], round_rate[attempted])
    now |= np.nan_to_num(round_rate, nan=0.0) > 0
    return best, now


def grow(array: np.ndarray, size: int, fill: float | bool) -> np.ndarray:
    """`array` extended to `size` entries with `fill` (statement tables only grow)."""
    if len(array) >= size:
        return array
    out = np.full(size, fill, dtype=array.dtype)
    out[: len(array)] = array
    return out


# ---------------------------------------------------------------------------------------------
# Seeds and lemma pairing (§4.3)


def select_seeds(
    correct: Sequence[CorrectProof],
    best_rate: np.ndarray,
    is_conjecture: np.ndarray,
    threshold: float,
    rng: np.random.Generator,
) -> list[CorrectProof]:
    """Correct proofs of dataset statements whose best rate exceeds `threshold`, shuffled."""
    rate = np.nan_to_num(best_rate, nan=0.0)
    keep = [p for p in correct if rate[p.sid] > threshold and not is_conjecture[p.sid]]
    order = rng.permutation(len(keep))
    return [keep[i] for i in order]


class LemmaPairer:
    """The lemma-pairing rule applied one seed at a time, so seeds can be streamed (§4.3).

    For each seed: candidates are the lemmas its proof used (first occurrence order) plus, with
    probability `no_lemma_probability`, "no lemma". A candidate is skipped when it is not in the
    lemma dictionary, already has `cap_fraction · n` pairs this round (the cap counts accepted
    pairs before replication; same cap for "no lemma"), or is already paired with that seed
    statement. Each accepted pair is emitted `matching_weight` times; the list stops at `n`.
    Unlike the original, adding "no lemma" never mutates the proof's premise list.
    """

    def __init__(self, rows: Sequence[StatementRow] | dict[int, StatementRow],
                 lemma_dict: dict[str, str], n: int, cap_fraction: float,
                 no_lemma_probability: float, rng: np.random.Generator) -> None:
        self.rows, self.lemma_dict, self.n = rows, lemma_dict, n
        self.cap = cap_fraction * n
        self.no_lemma_probability = no_lemma_probability
        self.rng = rng
        self.per_lemma: dict[str, int] = defaultdict(int)
        self.taken: set[tuple[int, str]] = set()
        self.pairs: list[ConjectureInput] = []

    @property
    def full(self) -> bool:
        return len(self.pairs) >= self.n

    def add(self, seed: CorrectProof) -> None:
        """Pair one seed (a no-op once `n` pairs exist)."""
        if self.full:
            return
        candidates = list(dict.fromkeys(seed.premises))
        if self.rng.random() < self.no_lemma_probability:
            candidates.append(NO_LEMMA)
        row = self.rows[seed.sid]
        for lemma in candidates:
            if lemma != NO_LEMMA and lemma not in self.lemma_dict:
                continue
            if self.per_lemma[lemma] >= self.cap or (seed.sid, lemma) in self.taken:
                continue
            self.per_lemma[lemma] += 1
            self.taken.add((seed.sid, lemma))
            pair = ConjectureInput(
                seed_sid=seed.sid, seed_statement=row.statement, seed_proof=seed.proof,
                header=row.header, lemma=lemma,
                lemma_statement=self.lemma_dict[lemma] if lemma else NO_LEMMA_STATEMENT,
            )
            self.pairs.extend([pair] * max(1, row.matching_weight))
        del self.pairs[self.n:]


def pair_lemmas(
    seeds: Iterable[CorrectProof],
    rows: Sequence[StatementRow] | dict[int, StatementRow],
    lemma_dict: dict[str, str],
    n: int,
    cap_fraction: float,
    no_lemma_probability: float,
    rng: np.random.Generator,
) -> list[ConjectureInput]:
    """(seed, lemma) pairs for seeds in order; the rule is `LemmaPairer`'s."""
    pairer = LemmaPairer(rows, lemma_dict, n, cap_fraction, no_lemma_probability, rng)
    for seed in seeds:
        if pairer.full:
            break
        pairer.add(seed)
    return pairer.pairs


def stream_seed_pairs(
    candidates: Callable[[], Iterable[CorrectProof]],
    pairer: LemmaPairer,
    rng: np.random.Generator,
    window: int,
) -> int:
    """Feed `pairer` the seed candidates in a uniformly shuffled order without holding them all.

    `candidates` re-iterates the (already filtered) seed proofs in a fixed order. Pass 1 counts
    them; the shuffle is `rng.permutation(count)` exactly as `select_seeds` draws it, so the
    result equals `pair_lemmas(select_seeds(...))`. Then, `window` ranks at a time, one pass picks
    the candidates whose shuffled rank falls in the window and feeds them in rank order, until the
    pairer is full. Memory: 8 bytes per candidate plus `window` proofs. Returns the count.
    """
    count = sum(1 for _ in candidates())
    order = rng.permutation(count)
    rank = np.empty(count, dtype=np.int64)
    rank[order] = np.arange(count, dtype=np.int64)
    window = max(1, window)
    for lo in range(0, count, window):
        if pairer.full:
            break
        hi = min(count, lo + window)
        slots: list[CorrectProof | None] = [None] * (hi - lo)
        for i, proof in enumerate(candidates()):
            if lo <= rank[i] < hi:
                slots[rank[i] - lo] = proof
        for slot in slots:
            if slot is None:
                raise RuntimeError("seed candidates changed between passes")
            pairer.add(slot)
            if pairer.full:
                break
    return count


def conjecture_multiplier(n: int, num_inputs: int, low: int, high: int) -> int:
    """Samples per conjecture input: clamp(3N // inputs, low, high) (3–8 in the paper)."""
    if num_inputs <= 0:
        return 0
    return max(low, min(3 * n // num_inputs, high))


def dedup_conjectures(
    candidates: Sequence[tuple[int, str, str]],
    dataset_keys: set[tuple[str, str]],
    n: int,
    rng: np.random.Generator,
) -> list[int]:
    """Indices of the conjectures kept: (index, statement, header) candidates, shuffled, unique
    ignoring whitespace, not equal to a dataset statement, at most `n` (a random subset)."""
    order = rng.permutation(len(candidates))
    seen = set(dataset_keys)
    kept: list[int] = []
    for i in order:
        index, statement, header = candidates[i]
        key = statement_key(statement, header)
        if key in seen:
            continue
        seen.add(key)
        kept.append(index)
    if len(kept) > n:
        chosen = np.sort(rng.choice(len(kept), size=n, replace=False))
        kept = [kept[i] for i in chosen]
    return kept


# ---------------------------------------------------------------------------------------------
# What to prove (§4.3, end)


def select_targets(
    dataset_sids: np.ndarray,
    conjecture_sids: np.ndarray,
    solved: np.ndarray,
    best_rate: np.ndarray,
    recheck_probability: float,
    threshold: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Unsolved dataset statements + unsolved conjectures + solved dataset statements re-checked
    with probability `recheck_probability`, always when their best rate is below `threshold`."""
    dataset_sids = np.asarray(dataset_sids, dtype=np.int64)
    conjecture_sids = np.asarray(conjecture_sids, dtype=np.int64)
    size = max(len(solved), int(max(dataset_sids.max(initial=-1),
                                    conjecture_sids.max(initial=-1))) + 1)
    solved = grow(np.asarray(solved, dtype=bool), size, False)
    best = grow(np.asarray(best_rate, dtype=np.float64), size, np.nan)
    draws = rng.random(len(dataset_sids))
    d_solved = solved[dataset_sids]
    recheck = d_solved & ((np.nan_to_num(best[dataset_sids], nan=0.0) < threshold)
                          | (draws < recheck_probability))
    keep_dataset = dataset_sids[~d_solved | recheck]
    keep_conj = conjecture_sids[~solved[conjecture_sids]]
    return np.concatenate([keep_dataset, keep_conj])


# ---------------------------------------------------------------------------------------------
# Conjecturer reward (§4.6-4.8)


def conjecture_rewards(
    correct: Iterable[CorrectProof],
    rows: dict[int, StatementRow] | Sequence[StatementRow],
    round_rate: np.ndarray,
    threshold: float,
    factor: int,
    floor: int,
    pair_of: Callable[[StatementRow], ConjectureInput],
) -> list[ConjectureExample]:
    """Conjectures of this round with 0 < rate < threshold, one example each (§4.6).

    First every conjecture whose correct proof used its paired lemma (I of them); then the others,
    at most max(factor · I, floor), relabelled "no lemma". `correct` are this round's passing
    attempts in log order; the first qualifying proof of a statement is its example. `pair_of`
    gives the (seed, lemma) pair a conjecture row was generated from.
    """
    rate = np.nan_to_num(round_rate, nan=0.0)
    invoking: dict[int, ConjectureExample] = {}
    others: dict[int, ConjectureExample] = {}
    for proof in correct:
        row = rows[proof.sid]
        if not row.conjecture or not 0 < rate[proof.sid] < threshold:
            continue
        uses = row.lemma != NO_LEMMA and row.lemma in proof.premises
        if uses and proof.sid not in invoking:
            pair = pair_of(row)
            invoking[proof.sid] = _example(row, proof, pair, row.lemma, pair.lemma_statement)
        elif not uses and proof.sid not in others:
            others[proof.sid] = _example(row, proof, pair_of(row), NO_LEMMA, NO_LEMMA_STATEMENT)
    budget = max(factor * len(invoking), floor)
    rest = [e for sid, e in others.items() if sid not in invoking][:budget]
    return list(invoking.values()) + rest


def _example(row: StatementRow, proof: CorrectProof, pair: ConjectureInput, lemma: str,
             lemma_statement: str) -> ConjectureExample:
    return ConjectureExample(
        sid=row.sid, statement=row.statement, seed_statement=pair.seed_statement,
        seed_proof=pair.seed_proof, lemma=lemma, lemma_statement=lemma_statement,
        proof=proof.proof,
    )


def proof_ratios(correct: Iterable[CorrectProof], rows: dict[int, StatementRow] | Sequence,
                 sids: set[int]) -> dict[int, float]:
    """min over correct proofs of len(proof) / len(statement), for the statements in `sids`."""
    out: dict[int, float] = {}
    for proof in correct:
        if proof.sid not in sids:
            continue
        ratio = len(proof.proof) / max(1, len(rows[proof.sid].statement))
        out[proof.sid] = min(out.get(proof.sid, math.inf), ratio)
    return out


def elegance_filter(examples: Sequence[ConjectureExample], ratios: dict[int, float],
                    drop_fraction: float) -> list[ConjectureExample]:
    """Per lemma group, keep examples whose ratio is at least the value at index
    floor(drop_fraction · group size) of the sorted ratios (drops ≈ the shortest-proof 20 %)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for e in examples:
        groups[e.lemma].append(ratios[e.sid])
    cutoff = {
        lemma: sorted(values)[math.floor(drop_fraction * len(values))]
        for lemma, values in groups.items()
    }
    kept = []
    for e in examples:
        if ratios[e.sid] >= cutoff[e.lemma]:
            e.ratio = ratios[e.sid]
            kept.append(e)
    return kept


def match_weights(
    p_emb: np.ndarray,
    q_emb: np.ndarray,
    q_weight: np.ndarray,
    cap: float,
    rng: np.random.Generator,
    block: int = 1024,
) -> np.ndarray:
    """Capacity-limited greedy nearest-neighbour weights of P toward Q (§4.8).

    Q is visited in a random order; each q gives `n / M` (M = Σ w_q) to each of its `w_q` most
    similar P that are not saturated; a P saturates once its weight reaches `cap`. Differs from
    the original in one detail: saturated P are excluded outright (the original zeroed their
    similarity, so they could still win against negatively similar P).
    """
    n = len(p_emb)
    weights = np.zeros(n)
    if n == 0 or len(q_emb) == 0:
        return weights
    q_weight = np.asarray(q_weight, dtype=np.int64)
    if q_weight.sum() <= 0:
        return weights
    increment = n / float(q_weight.sum())
    saturated = np.zeros(n, dtype=bool)
    order = rng.permutation(len(q_emb))
    p = np.asarray(p_emb, dtype=np.float32)
    for start in range(0, len(order), block):
        idx = order[start : start + block]
        sims = np.asarray(q_emb[idx], dtype=np.float32) @ p.T
        for row, q in zip(sims, idx, strict=True):
            free = int(n - saturated.sum())
            if free == 0:
                return weights
            k = int(min(q_weight[q], free))
            row = np.where(saturated, -np.inf, row)
            chosen = np.argpartition(-row, k - 1)[:k] if k < n else np.arange(n)
            weights[chosen] += increment
            saturated[chosen] |= weights[chosen] >= cap
    return weights


# ---------------------------------------------------------------------------------------------
# Training weights (§4.9, §4.11)


def prover_weight(proof: str, seconds: float, n_correct: int,
                  length_penalty: float, time_penalty: float) -> float:
    """exp(-a·len(proof) - b·seconds) / n_correct (n_correct: distinct correct proofs)."""
    return math.exp(-length_penalty * len(proof) - time_penalty * seconds) / max(1, n_correct)


def dedup_key(prompt: str, target: str) -> bytes:
    """A compact identity for (prompt, target) so dedup sets stay small at scale."""
    h = hashlib.blake2b(digest_size=16)
    h.update(prompt.encode())
    h.update(b"\x00")
    h.update(target.encode())
    return h.digest()


def solve_rate_histogram(rates: np.ndarray, bins: int = 10) -> list[int]:
    """Counts of attempted statements per solve-rate bin [0, 0.1), ..., [0.9, 1.0]."""
    values = rates[~np.isnan(rates)]
    counts, _ = np.histogram(values, bins=bins, range=(0.0, 1.0))
    return [int(c) for c in counts]
