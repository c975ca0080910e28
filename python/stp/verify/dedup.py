"""Collapse identical items of a batch so each distinct proof is checked once.

Self-play samples many proofs per statement and a model often repeats itself; the original STP
deduplicated attempts before checking too (docs/reference.md §4.4). Identity is the content key
(header, statement, proof, premises flag), the same key the persistent cache uses.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stp.verify.types import VerifyItem


@dataclass
class Deduplicated:
    """`unique[g]` stands for the input positions `groups[g]`; `keys[g]` is its content key."""

    unique: list[VerifyItem]
    keys: list[str]
    groups: list[list[int]]

    @property
    def multiplicity(self) -> list[int]:
        """How many input items each unique item stands for."""
        return [len(g) for g in self.groups]

    def multiplicity_of_input(self, total: int) -> list[int]:
        """For every input position, the size of its duplicate group."""
        out = [0] * total
        for group in self.groups:
            for i in group:
                out[i] = len(group)
        return out


def deduplicate(items: Sequence[VerifyItem], key: Callable[[VerifyItem], str]) -> Deduplicated:
    index: dict[str, int] = {}
    result = Deduplicated([], [], [])
    for position, item in enumerate(items):
        k = key(item)
        g = index.get(k)
        if g is None:
            index[k] = len(result.unique)
            result.unique.append(item)
            result.keys.append(k)
            result.groups.append([position])
        else:
            result.groups[g].append(position)
    return result
