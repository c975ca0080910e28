"""Training-set assembly: the round's prover + conjecturer examples (docs/reference.md §4.9) and the final
re-training data (§4.11), streamed over correct proofs so paper-scale rounds fit in memory.

Prompt construction is injected (`prover_example`, `conjecture_example`) so the rules are tested
without the model package; the orchestration passes `stp.model.prompts` builders.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

import numpy as np

from stp.data.records import TrainingExample, statement_key
from stp.selfplay.records import ConjectureExample, CorrectProof, StatementRow
from stp.selfplay.rules import dedup_key, prover_weight


class ProverBuilder(Protocol):
    def __call__(self, statement: str, header: str, proof: str, weight: float
                 ) -> TrainingExample: ...


class ConjectureBuilder(Protocol):
    def __call__(self, lemma: str, seed_statement: str, seed_proof: str, conjecture: str,
                 weight: float) -> TrainingExample: ...


def _pair_key(sid: int, proof: str) -> bytes:
    return hashlib.blake2b(f"{sid}\x00{proof}".encode(), digest_size=16).digest()


def prover_examples(
    window_correct: Callable[[], Iterable[CorrectProof]],
    window_rate: np.ndarray,
    rows: Sequence[StatementRow] | dict[int, StatementRow],
    build: ProverBuilder,
    *,
    rate_max: float,
    length_penalty: float,
    time_penalty: float,
) -> Iterator[TrainingExample]:
    """Correct proofs (newest first) of statements with window rate ≤ `rate_max`.

    Weight exp(-a·len - b·seconds) / c, where c is the number of *distinct* correct proofs of the
    statement in the window. (The original divided by the number of correct records, which counts
    a proof found again in a later round twice.) `window_correct` is called twice: one pass
    counts, one emits; nothing but 16-byte hashes is held in memory.
    """
    rate = np.nan_to_num(window_rate, nan=1.0)
    seen: set[bytes] = set()
    distinct = np.zeros(len(rate), dtype=np.int64)
    for proof in window_correct():
        if rate[proof.sid] > rate_max:
            continue
        key = _pair_key(proof.sid, proof.proof)
        if key not in seen:
            seen.add(key)
            distinct[proof.sid] += 1
    del seen
    for proof in window_correct():
        if rate[proof.sid] > rate_max:
            continue
        row = rows[proof.sid]
        weight = prover_weight(proof.proof, proof.seconds, int(distinct[proof.sid]),
                               length_penalty, time_penalty)
        yield build(row.statement, row.header, proof.proof, weight)


def conjecturer_examples(examples: Iterable[ConjectureExample], build: ConjectureBuilder
                         ) -> Iterator[TrainingExample]:
    """(lemma, seed) → conjecture examples weighted by their matching weight."""
    for e in examples:
        yield build(e.lemma_statement, e.seed_statement, e.seed_proof, e.statement, e.weight)


def dedup_examples(examples: Iterable[TrainingExample], seen: set[bytes] | None = None
                   ) -> Iterator[TrainingExample]:
    """Drop repeated (prompt, target); the first occurrence wins."""
    seen = set() if seen is None else seen
    for ex in examples:
        key = dedup_key(ex.prompt, ex.target)
        if key in seen:
            continue
        seen.add(key)
        yield ex


def shuffled(examples: Iterable[TrainingExample], rng: np.random.Generator
             ) -> list[TrainingExample]:
    items = list(examples)
    return [items[i] for i in rng.permutation(len(items))]


# ---------------------------------------------------------------------------------------------
# Final re-training (§4.11)


class RetrainSource(Protocol):
    """One round of one run: its correct proofs, per-sid round rate and statement rows."""

    def correct(self) -> Iterable[CorrectProof]: ...

    @property
    def round_rate(self) -> np.ndarray: ...

    @property
    def rows(self) -> Sequence[StatementRow]: ...


def retrain_proofs(
    sources: Iterable[RetrainSource],
    *,
    max_per_statement: int,
    include_conjectures: bool,
    conjecture_rate_max: float,
    seed: int,
) -> list[tuple[str, str, str]]:
    """(statement, header, proof) triples: every distinct correct proof of a dataset statement,
    and of a conjecture whose round rate ≤ `conjecture_rate_max`, at most `max_per_statement` per
    statement (whitespace-insensitive identity) across all rounds, chosen uniformly at random.

    The random choice keeps the `max_per_statement` smallest seeded hashes of (statement, proof),
    which is a uniform sample that streams and does not depend on the order rounds are read in.
    """
    salt = str(seed).encode()
    heaps: dict[tuple[str, str], list[tuple[bytes, str, str, str]]] = {}
    members: set[bytes] = set()
    for source in sources:
        rate = np.nan_to_num(source.round_rate, nan=1.0)
        rows = source.rows
        for proof in source.correct():
            row = rows[proof.sid]
            if row.conjecture and not (include_conjectures
                                       and rate[proof.sid] <= conjecture_rate_max):
                continue
            skey = statement_key(row.statement, row.header)
            h = hashlib.blake2b(salt + b"\x00" + "\x00".join(skey).encode() + b"\x00"
                                + proof.proof.encode(), digest_size=16).digest()
            if h in members:
                continue
            heap = heaps.setdefault(skey, [])
            # Max-heap on the hash via inversion: keep the smallest hashes.
            entry = (bytes(255 - b for b in h), row.statement, row.header, proof.proof)
            if len(heap) < max_per_statement:
                heapq.heappush(heap, entry)
                members.add(h)
            elif entry[0] > heap[0][0]:
                dropped = heapq.heapreplace(heap, entry)
                members.discard(bytes(255 - b for b in dropped[0]))
                members.add(h)
    out = []
    for skey in sorted(heaps):
        for _, statement, header, text in sorted(heaps[skey], reverse=True):
            out.append((statement, header, text))
    return out
