"""An adversarial checker (issue #20): every answer a compromised check or statement process can
give gets NO pass through the verifier.

The threat model (docs/verify.md "Trust base"): a process that elaborates model-written text
(check workers: proofs; statement processes: conjectured statements) may be taken over by that
text and print anything on its stdout. Its answers are claims; only the judge, which reads no
text, decides. Each case below is one way such a process can answer (the stand-in's
ADVERSARIAL_CHECK / ADVERSARIAL_STATEMENT tables, kept in step with the lists here); each runs
between honest items, which must still pass, and must itself never come back `pass`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standin import read_log, standin_command, with_checker
from standin_checker import ADVERSARIAL_CHECK, ADVERSARIAL_STATEMENT

from stp.config import load_config
from stp.verify import Verifier, VerifyItem, make_verifier

HONEST = "theorem honest (n : ℕ) : n + 0 = n :="
TARGET = "theorem target (n : ℕ) : n = n + 1 :="  # false: only a forged answer can pass it
EXPLOITED = "theorem exploited_EXPLOIT (n : ℕ) : n = n + 1 :="

# What a compromised CHECK process can answer for a false proof (the list is the test).
CHECK_CASES = [
    "forge_pass", "dup_verdict", "wrong_nonce", "no_nonce", "sorry_pass", "bad_axiom_pass",
    "mismatch_pass", "hijack", "forge_consistent", "no_export", "export_not_object",
    "export_garbage", "export_other_theorem", "export_and_chunks", "chunks_short",
    "chunks_wrong_nonce", "chunks_wrong_index", "chunks_one", "stray_chunk",
    "reference_on_check", "other_id", "previous_nonce", "late", "double",
]
# What a compromised STATEMENT process can answer for a statement (the list is the test).
STATEMENT_CASES = [
    "misstate", "ref_missing", "ref_not_object", "ref_wrong_nonce", "ref_other_id",
    "ref_double", "ref_with_export", "ref_forge_fail", "ref_then_exit_1",
]


def test_the_case_lists_cover_every_forged_answer_the_stand_in_knows() -> None:
    assert set(CHECK_CASES) == set(ADVERSARIAL_CHECK)
    assert set(STATEMENT_CASES) == set(ADVERSARIAL_STATEMENT)


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    made: list[Verifier] = []

    def build(spec: dict[str, Any], *overrides: str) -> tuple[Verifier, Path]:
        log = tmp_path / f"log-{len(made)}"
        cfg = load_config(None, [
            "verifier.workers=2", "verifier.timeout_s=5", "verifier.cache_dir='off'",
            "verifier.start_timeout_s=60", "verifier.recheck='replay'",
            f"run.run_dir={str(tmp_path / 'run')!r}", *overrides])
        v = make_verifier(with_checker(cfg, standin_command({"log": str(log), **spec})))
        made.append(v)
        return v, log

    yield build
    for v in made:
        v.close()


@pytest.mark.parametrize("action", CHECK_CASES)
def test_no_forged_check_answer_passes(make: Any, action: str) -> None:
    """A false proof answered by a compromised check process: never `pass`. The judge (which
    reads no text) rejects the false proof whatever export it is shown (`fail`), and every
    inconsistent answer is a protocol error (retried once on another worker, then `error`)."""
    spec = {"default": "fail", "rules": [
        {"pattern": "EXPLOIT", "action": action, "as": HONEST},
        {"pattern": "honest", "action": "pass"}]}
    v, log = make(spec, "verifier.pipeline_depth=2")
    items = [VerifyItem(statement=HONEST, proof=" by honest 1"),
             VerifyItem(statement=TARGET, proof=" by EXPLOIT"),
             VerifyItem(statement=HONEST, proof=" by honest 2"),
             VerifyItem(statement=HONEST, proof=" by honest 3")]
    results = v.verify_all(items)
    assert results[1].status != "pass", (action, results[1])
    # (an answer that never completes, e.g. chunks announced and not sent, is a timeout)
    assert results[1].status in ("fail", "error", "timeout"), results[1]
    if action != "hijack":  # a hijacked process passes everything after it: judged, refuted
        assert [r.status for r in (results[0], results[2], results[3])] == ["pass"] * 3, results
    else:
        assert all(r.status in ("pass", "fail") for r in results), results
    # the judge was never shown any text
    assert all("statement" not in e["fields"] and "proof" not in e["fields"]
               for e in read_log(log) if e["ev"] == "replay")


@pytest.mark.parametrize("action", STATEMENT_CASES)
def test_no_forged_statement_answer_passes(make: Any, action: str) -> None:
    """A statement answered by a compromised statement process: neither a forged pass of a
    false proof nor an honest check of another proof of it passes (a misstated reference does
    not match the exported type; a forged `fail` is a false negative, never a pass; a reference
    that breaks the protocol, or a process that does not exit cleanly, discards the batch:
    retried once, then `error`)."""
    spec = {"default": "fail", "rules": [
        {"pattern": "EXPLOIT", "field": "statement", "role": "statement", "action": action,
         "as": "theorem exploited_EXPLOIT (n : ℕ) : n = n :="},
        {"pattern": "forged", "action": "forge_consistent"},
        {"pattern": "honest", "action": "pass"}]}
    v, log = make(spec)
    items = [VerifyItem(statement=HONEST, proof=" by honest 1"),
             VerifyItem(statement=EXPLOITED, proof=" by forged"),
             VerifyItem(statement=EXPLOITED, proof=" by honest"),
             VerifyItem(statement=HONEST, proof=" by honest 2")]
    results = v.verify_all(items)
    assert results[1].status != "pass" and results[2].status != "pass", (action, results)
    # after a failed batch each statement is retried alone: the honest one is not dragged down
    assert results[0].status == results[3].status == "pass", results
    # statement processes are single-use: each started process got one batch and exited
    starts = [e for e in read_log(log) if e["ev"] == "start" and e["role"] == "statement"]
    refs = [e for e in read_log(log) if e["ev"] == "reference"]
    assert len({e["pid"] for e in refs}) <= len(starts)


def test_a_worker_caught_lying_plants_no_persistent_fail(tmp_path: Path) -> None:
    """A compromised check worker answers consistent `fail`s for true proofs (false negatives),
    then forges a pass the judge refutes. Its fails were provisional: they are never written to
    the persistent cache, so a later run checks those proofs again (and passes them)."""
    cache = tmp_path / "cache"
    common = ["verifier.workers=1", "verifier.timeout_s=5", f"verifier.cache_dir={str(cache)!r}",
              "verifier.recheck='replay'", "verifier.pipeline_depth=1",
              f"run.run_dir={str(tmp_path / 'run')!r}"]
    liar = {"default": "pass", "rules": [
        {"pattern": "true", "action": "fail"},  # forged false negatives
        {"pattern": "FORGE", "action": "forge_consistent"}]}
    items = [VerifyItem(statement=HONEST, proof=f" by true {i}") for i in range(3)]
    v = make_verifier(with_checker(load_config(None, common), standin_command(liar)))
    try:
        first = v.verify_all([*items, VerifyItem(statement=TARGET, proof=" by FORGE")])
    finally:
        v.close()
    assert [r.status for r in first] == ["fail", "fail", "fail", "fail"]
    assert all(r.provisional for r in first[:3])
    honest = {"default": "pass"}
    v = make_verifier(with_checker(load_config(None, common), standin_command(honest)))
    try:
        again = v.verify_all(items)
    finally:
        v.close()
    assert [r.status for r in again] == ["pass"] * 3
    assert not any(r.cached for r in again), "the liar's fails were not persisted"


def test_fails_of_a_consistent_worker_persist_once_it_retires(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    common = ["verifier.workers=1", "verifier.timeout_s=5", f"verifier.cache_dir={str(cache)!r}",
              "verifier.recheck='replay'", f"run.run_dir={str(tmp_path / 'run')!r}"]
    spec = {"default": "pass", "rules": [{"pattern": "wrong", "action": "fail"}]}
    items = [VerifyItem(statement=HONEST, proof=f" by wrong {i}") for i in range(3)]
    v = make_verifier(with_checker(load_config(None, common), standin_command(spec)))
    try:
        first = v.verify_all(items)
        assert all(r.provisional for r in first)
        again = v.verify_all(items)  # same run: served from memory
        assert all(r.cached for r in again)
    finally:
        v.close()  # the worker retires consistent: its fails are persisted
    v = make_verifier(with_checker(load_config(None, common), standin_command(spec)))
    try:
        later = v.verify_all(items)
    finally:
        v.close()
    assert [r.status for r in later] == ["fail"] * 3 and all(r.cached for r in later)
