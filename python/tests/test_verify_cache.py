"""Deduplication inside a batch and the persistent cache across verifiers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from standin import count_checks, standin_command, with_checker

from stp.config import load_config
from stp.verify import VerifyItem, VerifyResult, make_verifier
from stp.verify.cache import ResultCache, cacheable
from stp.verify.service import cache_directory

SPEC_RULES = [{"pattern": "bad", "action": "fail"}, {"pattern": "HANG", "action": "hang"}]


def make(tmp_path: Path, log: Path, cache: str | None = None, **spec: Any):  # type: ignore[no-untyped-def]
    overrides = ["verifier.workers=2", "verifier.timeout_s=1.0",
                 f"run.run_dir={str(tmp_path / 'run')!r}"]
    if cache is not None:
        overrides.append(f"verifier.cache_dir={cache!r}")
    cfg = load_config(None, overrides)
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


def test_result_cache_roundtrip_and_versions_in_key(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "c")
    it = VerifyItem(statement="theorem t : True :=", proof=" trivial")
    k1, k2 = it.key("ck1", "lean1"), it.key("ck2", "lean1")
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
    cfg = load_config(None, [f"run.run_dir={run_dir!r}", f"verifier.cache_dir={cache_dir!r}"])
    got = cache_directory(cfg)
    assert (str(got) if got else None) == expected


def test_gcs_run_dir_gets_a_local_cache() -> None:
    cfg = load_config(None, ["run.run_dir='gs://bucket/run'"])
    got = cache_directory(cfg)
    assert got is not None and "://" not in str(got) and ".cache/stp/verify-cache" in str(got)
