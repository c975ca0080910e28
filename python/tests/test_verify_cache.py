"""Deduplication inside a batch and the persistent cache across verifiers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from standin import count_checks, standin_command, with_checker

from stp.config import STPConfig, load_config
from stp.verify import VerifyItem, VerifyResult, make_verifier
from stp.verify.cache import ResultCache, cacheable
from stp.verify.service import cache_directory

SPEC_RULES = [{"pattern": "bad", "action": "fail"}, {"pattern": "HANG", "action": "hang"}]


def make(tmp_path: Path, log: Path, cache: str | None = None,  # type: ignore[no-untyped-def]
         extra: tuple[str, ...] = (), **spec: Any):
    overrides = ["verifier.workers=2", "verifier.timeout_s=1.0", "verifier.recheck='off'",
                 f"run.run_dir={str(tmp_path / 'run')!r}", *extra]
    if cache is not None:
        overrides.append(f"verifier.cache_dir={cache!r}")
    cfg: STPConfig = load_config(None, overrides)
    return make_verifier(with_checker(cfg, standin_command(
        {"log": str(log), "rules": SPEC_RULES, **spec})))


def items(n: int, distinct: int) -> list[VerifyItem]:
    return [VerifyItem(statement="theorem t : True :=",
                       proof=f" by {'bad' if (i % distinct) % 3 == 0 else 'simp'} {i % distinct}")
            for i in range(n)]


def test_duplicates_are_checked_once_and_fanned_out(tmp_path: Path) -> None:
    log = tmp_path / "log"
    with make(tmp_path, log, cache="off") as v:
        batch = items(100, 10)
        results = v.verify_all(batch)
        assert count_checks(log) == 10
        assert v.last_stats.unique == 10 and v.last_stats.items == 100
        assert v.last_stats.multiplicity == [10] * 100
        assert [r.status for r in results] == [
            "fail" if (i % 10) % 3 == 0 else "pass" for i in range(100)]
        assert len({id(r) for r in results}) == 100, "duplicates must not share one object"


def test_cache_hits_skip_work_across_verifiers(tmp_path: Path) -> None:
    log = tmp_path / "log"
    cache = str(tmp_path / "cache")
    batch = items(50, 50)
    with make(tmp_path, log, cache=cache) as v:
        first = v.verify_all(batch)
    assert count_checks(log) == 50 and not any(r.cached for r in first)
    with make(tmp_path, log, cache=cache) as v:
        second = v.verify_all([*batch, VerifyItem(statement="theorem n : True :=", proof=" new")])
        assert v.last_stats.cache_hits == 50 and v.last_stats.checked == 1
    assert count_checks(log) == 51, "cached items were re-checked"
    assert all(r.cached for r in second[:50]) and not second[50].cached
    assert [r.status for r in second[:50]] == [r.status for r in first]


def test_default_cache_lives_in_the_run_dir_and_skips_infrastructure_failures(
        tmp_path: Path) -> None:
    log = tmp_path / "log"
    hang = VerifyItem(statement="theorem h : True :=", proof=" HANG")
    with make(tmp_path, log) as v:
        assert v.verify_all([hang])[0].status == "timeout"
    assert (tmp_path / "run" / "verify-cache" / "results.sqlite").is_file()
    with make(tmp_path, log) as v:
        assert v.verify_all([hang])[0].status == "timeout"
    assert count_checks(log) == 2, "a timeout must be retried by the next run"


def test_different_checker_commands_do_not_share_entries(tmp_path: Path) -> None:
    log = tmp_path / "log"
    cache = str(tmp_path / "cache")
    it = VerifyItem(statement="theorem t : True :=", proof=" by simp")
    with make(tmp_path, log, cache=cache) as v:
        assert v.verify_all([it])[0].passed
    with make(tmp_path, log, cache=cache, default="fail",
              rules=[{"pattern": "simp", "action": "fail"}]) as v:
        assert v.verify_all([it])[0].status == "fail"


def test_result_cache_roundtrip_and_fingerprint_in_key(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c")
    it = VerifyItem(statement="theorem t : True :=", proof=" trivial")
    k1, k2 = it.key("fingerprint-1"), it.key("fingerprint-2")
    assert k1 != k2
    stored = cache.put_many([(k1, VerifyResult(status="pass", axioms=["propext"])),
                             ("k-timeout", VerifyResult(status="timeout", detail="x"))])
    assert stored == 1 and len(cache) == 1
    got = cache.get_many([k1, k2])
    assert list(got) == [k1] and got[k1].cached and got[k1].axioms == ["propext"]
    cache.close()
    assert cacheable(VerifyResult(status="fail"))
    assert not cacheable(VerifyResult(status="error", reasons=["header_error"]))
    assert not cacheable(VerifyResult(status="error", detail="checker could not start: x"))
    assert not cacheable(VerifyResult(status="memory"))


@pytest.mark.parametrize(("run_dir", "cache_dir", "expected"), [
    ("runs/x", "", "runs/x/verify-cache"),
    ("runs/x", "off", None),
    ("runs/x", "/tmp/c", "/tmp/c"),
])
def test_cache_directory_rules(run_dir: str, cache_dir: str, expected: str | None) -> None:
    cfg: STPConfig = load_config(None, [f"run.run_dir={run_dir!r}", f"verifier.cache_dir={cache_dir!r}"])
    got = cache_directory(cfg)
    assert (str(got) if got else None) == expected


def test_gcs_run_dir_gets_a_local_cache() -> None:
    cfg: STPConfig = load_config(None, ["run.run_dir='gs://bucket/run'"])
    got = cache_directory(cfg)
    assert got is not None and "://" not in str(got) and ".cache/stp/verify-cache" in str(got)


def test_nul_shifted_fields_do_not_share_a_key(tmp_path: Path) -> None:
    """Fields joined with NUL bytes collided: ("a\\0b", "c") and ("a", "b\\0c") had one key, so
    one item inherited the other's verdict. Length-prefixed fields keep them apart."""
    one = VerifyItem(statement="theorem t : True :=\0 by", proof=" bad")
    two = VerifyItem(statement="theorem t : True :=", proof=" by\0 bad")
    assert one.key("fp") != two.key("fp")
    shifted_header = VerifyItem(header="import A\0theorem t : True :=", statement="", proof="p")
    plain = VerifyItem(header="import A", statement="theorem t : True :=", proof="p")
    assert shifted_header.key() != plain.key()
    log = tmp_path / "log"
    a = VerifyItem(statement="theorem t : True :=\0", proof=" by simp")
    b = VerifyItem(statement="theorem t : True :=", proof="\0 by simp")
    with make(tmp_path, log, cache="off", rules=[{"pattern": "\0", "action": "fail"}]) as v:
        results = v.verify_all([a, b])
    assert [r.status for r in results] == ["pass", "fail"]
    assert count_checks(log) == 2


def test_cache_entries_do_not_outlive_the_policy(tmp_path: Path) -> None:
    """A verdict cached under one policy (mode, axioms, heartbeats, profile, re-check) or one
    checker build is never served under another."""
    log = tmp_path / "log"
    cache = str(tmp_path / "cache")
    it = VerifyItem(statement="theorem t : True :=", proof=" by simp")
    with make(tmp_path, log, cache=cache) as v:
        assert v.verify_all([it])[0].passed
    assert count_checks(log) == 1
    changes = [("lean.mode='lenient'",), ("lean.allowed_axioms=['propext']",),
               ("lean.max_heartbeats=1000",), ("lean.profile='paper'",),
               ("verifier.recheck='fresh'",), ("verifier.recheck='replay'",)]
    for n, change in enumerate(changes, start=2):
        with make(tmp_path, log, cache=cache, extra=change) as v:
            result = v.verify_all([it])[0]
            assert not result.cached and v.last_stats.cache_hits == 0, change
        assert count_checks(log) >= n, change
    with make(tmp_path, log, cache=cache) as v:  # the original policy still hits
        assert v.verify_all([it])[0].cached


def test_a_changed_checker_file_invalidates_the_cache(tmp_path: Path) -> None:
    """The fingerprint hashes the files the checker command names, not a version string."""
    import json
    import shutil
    import sys

    from standin import STANDIN

    copy = tmp_path / "standin_copy.py"
    shutil.copy(STANDIN, copy)
    log = tmp_path / "log"
    cache = str(tmp_path / "cache")
    it = VerifyItem(statement="theorem t : True :=", proof=" by simp")

    def verifier():  # type: ignore[no-untyped-def]
        cfg: STPConfig = load_config(None, ["verifier.workers=1", "verifier.recheck='off'",
                                 f"verifier.cache_dir={cache!r}"])
        return make_verifier(with_checker(cfg, [sys.executable, str(copy),
                                                json.dumps({"log": str(log), "default": "pass"})]))

    with verifier() as v:
        assert not v.verify_all([it])[0].cached
    with verifier() as v:
        assert v.verify_all([it])[0].cached
    copy.write_text(copy.read_text() + "\n# rebuilt\n")
    with verifier() as v:
        assert not v.verify_all([it])[0].cached
    assert count_checks(log) == 2


def test_references_are_made_once_and_kept_per_limits(tmp_path: Path) -> None:
    """A statement's REFERENCE is made once (statement process), persisted with the result cache
    and reused by a later run; under other limits (heartbeats: a heartbeat `statement_error`
    must not be served to larger limits) it is made again."""
    from standin import read_log

    cache = str(tmp_path / "cache")
    log = tmp_path / "log"  # one checker command (its argv is part of the fingerprint)

    def run(tag: str, *extra: str) -> list[VerifyResult]:
        v = make(tmp_path, log, cache, ("verifier.recheck='replay'", *extra))
        try:
            # distinct proofs each run: the result cache does not answer them
            return v.verify_all([VerifyItem(statement=f"theorem t{i % 2} : True :=",
                                            proof=f" by simp {tag} {i}") for i in range(6)])
        finally:
            v.close()

    def references() -> int:
        return sum(1 for e in read_log(log) if e["ev"] == "reference")

    assert all(r.passed for r in run("a"))
    assert references() == 2, "one reference per statement"
    assert all(r.passed for r in run("b"))
    assert references() == 2, "served from the persistent reference store"
    assert all(r.passed for r in run("c", "lean.max_heartbeats=1000"))
    assert references() == 4, "other limits: made again"
