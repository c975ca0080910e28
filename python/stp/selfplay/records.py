"""Records a self-play run stores: statements with integer ids, attempts, conjecture inputs.

Every statement a run ever attempts (dataset statements first, then conjectures in the order
rounds create them) gets a dense integer id `sid`, so per-statement bookkeeping over millions of
attempts is a `numpy.bincount` rather than a dict of strings.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import overload

import msgspec
import numpy as np

# The "no lemma" pairing: the original mapped "" to this placeholder lemma statement.
NO_LEMMA = ""
NO_LEMMA_STATEMENT = "theorem true: True"


class StatementRow(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A statement of the run. A conjecture points at the (seed, lemma) pair that produced it:
    entry `pair` of round `round`'s `pairs.jsonl.gz`. The seed's text is not copied here because
    the whole table stays in memory (≈1M rows after 12 paper-scale rounds)."""

    sid: int
    statement: str
    header: str = ""
    # Dataset statements: the Statement id and the re-weighting replication factor.
    source_id: str = ""
    matching_weight: int = 1
    conjecture: bool = False
    # Round that created a conjecture (-1 for dataset statements).
    round: int = -1
    seed_sid: int = -1
    lemma: str = ""
    pair: int = -1


class ProofAttempt(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Identical samples of one statement collapse into one attempt with a multiplicity."""

    sid: int
    proof: str
    multiplicity: int = 1
    passed: bool = False
    status: str = ""
    premises: list[str] = msgspec.field(default_factory=list)
    seconds: float = 0.0


class CorrectProof(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A passing attempt as kept in a round's `correct.jsonl.gz` (the cheap-to-read subset)."""

    sid: int
    proof: str
    round: int
    premises: list[str] = msgspec.field(default_factory=list)
    seconds: float = 0.0
    multiplicity: int = 1


class ConjectureInput(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One (seed proof, lemma) pair handed to the conjecturer."""

    seed_sid: int
    seed_statement: str
    seed_proof: str
    header: str = ""
    lemma: str = ""
    lemma_statement: str = NO_LEMMA_STATEMENT


class RawConjecture(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One conjecturer completion, parsed (statement None when parsing failed)."""

    input_index: int
    sample: int
    completion: str
    statement: str | None = None
    reason: str = ""


class ConjectureExample(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A rewarded conjecture: trains the conjecturer with `weight` (the matching weight)."""

    sid: int
    statement: str
    seed_statement: str
    seed_proof: str
    lemma: str
    lemma_statement: str
    proof: str
    ratio: float = 0.0
    weight: float = 1.0


class StatementTable(Sequence[StatementRow]):
    """The run's growing statement table: the dataset's rows (sids 0..dataset_size-1), then the
    conjectures in the order rounds created them; a row's `sid` is its index. One object holds
    it for a round and grows only through `add` (the conjectures stage), which checks that."""

    def __init__(self, rows: Iterable[StatementRow], dataset_size: int) -> None:
        self._rows: list[StatementRow] = []
        self.dataset_size = dataset_size
        self.add(rows)

    def add(self, rows: Iterable[StatementRow]) -> None:
        for row in rows:
            if row.sid != len(self._rows):
                raise ValueError(f"statement table out of order: row {len(self._rows)} has sid "
                                 f"{row.sid}")
            self._rows.append(row)

    @overload
    def __getitem__(self, sid: int) -> StatementRow: ...

    @overload
    def __getitem__(self, sid: slice) -> list[StatementRow]: ...

    def __getitem__(self, sid: int | slice) -> StatementRow | list[StatementRow]:
        return self._rows[sid]

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[StatementRow]:
        return iter(self._rows)

    @property
    def dataset(self) -> Sequence[StatementRow]:
        return self._rows[: self.dataset_size]

    @property
    def conjectures(self) -> Sequence[StatementRow]:
        return self._rows[self.dataset_size:]

    @property
    def next_sid(self) -> int:
        return len(self._rows)

    def is_conjecture(self) -> np.ndarray:
        return np.array([row.conjecture for row in self._rows], dtype=bool)
