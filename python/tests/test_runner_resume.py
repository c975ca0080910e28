"""The "reverify" resume policy of the sample→verify runner (`stp.verify.runner`): stored attempts
without a verdict are verified again in place, the others are kept, and the outage count reads
what is stored."""

from __future__ import annotations

from pathlib import Path

import msgspec

from stp import storage
from stp.verify.runner import count_unverified, reverify_stored_shards


class Record(msgspec.Struct):
    key: str
    status: str
    multiplicity: int = 1


def test_only_attempts_without_a_verdict_are_verified_again_in_place(tmp_path: Path) -> None:
    directory = str(tmp_path / "attempts")
    writer = storage.ShardedJsonlWriter(directory)
    writer.write([Record("a", "pass", 2), Record("b", "crash", 3), Record("c", "fail")])
    writer.write([Record("d", "fail", 4)])
    writer.write([Record("e", "error"), Record("f", "pass")])
    asked: list[list[str]] = []

    def verify_again(records: list[Record]) -> list[Record]:
        asked.append([r.key for r in records])
        return [Record(r.key, "pass" if r.key == "b" else "crash", r.multiplicity)
                for r in records]

    stored, reverified = reverify_stored_shards(directory, Record, verify_again)
    assert asked == [["b"], ["e"]]  # one call per shard that has any, never for the others
    assert (stored, reverified) == (2 + 3 + 1 + 4 + 1 + 1, 2)
    shards = [list(storage.iter_jsonl(p, type=Record)) for p in storage.list_shards(directory)]
    assert [[(r.key, r.status) for r in shard] for shard in shards] == [
        [("a", "pass"), ("b", "pass"), ("c", "fail")], [("d", "fail")],
        [("e", "crash"), ("f", "pass")]]
    assert count_unverified(directory, Record) == 1  # "e", still without a verdict
    # Nothing left to verify in a shard without NO_VERDICT records: a second pass asks only for e.
    asked.clear()
    reverify_stored_shards(directory, Record, verify_again)
    assert asked == [["e"]]


def test_an_empty_log_has_nothing_to_verify(tmp_path: Path) -> None:
    assert reverify_stored_shards(str(tmp_path / "none"), Record, lambda r: r) == (0, 0)
    assert count_unverified(str(tmp_path / "none"), Record) == 0
