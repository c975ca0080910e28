"""Cross-checking passing proofs with a second backend: disagreement reporting."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from standin import standin_command, with_checker

from stp.config import STPConfig, load_config
from stp.verify import VerifyItem, VerifyResult, make_verifier
from stp.verify.crosscheck import CrossChecker, CrossVerdict, axioms_from_messages
from stp.verify.service import Verifier


class FakeBackend:
    """Rejects proofs containing `native_decide` (as if the second checker caught an exploit)."""

    def __init__(self, explode_on: str = "") -> None:
        self.seen: list[str] = []
        self.explode_on = explode_on
        self.closed = False

    def judge(self, item: VerifyItem) -> CrossVerdict:
        self.seen.append(item.proof)
        if self.explode_on and self.explode_on in item.proof:
            raise RuntimeError("REPL died")
        if "native_decide" in item.proof:
            return CrossVerdict(False, "REPL: depends on axioms ['Lean.ofReduceBool']")
        return CrossVerdict(True)

    def close(self) -> None:
        self.closed = True


def test_only_passing_proofs_are_cross_checked_and_disagreements_reported(
        tmp_path: Path) -> None:
    cfg: STPConfig = load_config(None, ["verifier.workers=1", "verifier.cache_dir='off'",
                             "verifier.recheck='off'"])
    spec = {"rules": [{"pattern": "bad", "action": "fail"}]}
    engine_verifier = make_verifier(with_checker(cfg, standin_command(spec)))
    fake = FakeBackend(explode_on="boom")
    v = Verifier(engine_verifier.backend, default_header=cfg.lean.default_header,
                 cross_checker=CrossChecker(fake))
    items = [VerifyItem(statement="theorem a : 2 + 2 = 4 :=", proof=" by native_decide",
                        name="a"),
             VerifyItem(statement="theorem b : True :=", proof=" trivial"),
             VerifyItem(statement="theorem c : True :=", proof=" bad"),
             VerifyItem(statement="theorem d : True :=", proof=" boom")]
    with v:
        results = v.verify_all(items)
        found = v.last_stats.disagreements
    # a disagreement (or a failing second opinion) makes the item `error`, never a pass
    assert [r.status for r in results] == ["error", "pass", "fail", "error"]
    assert results[0].reasons == ["crosscheck_disagreement"] and results[1].cross_checked
    assert sorted(fake.seen) == sorted([" by native_decide", " trivial", " boom"])
    assert [(d.name, d.ours, d.theirs) for d in found] == [("a", "pass", "fail"),
                                                           ("d", "pass", "fail")]
    assert "ofReduceBool" in found[0].detail
    assert "backend error: RuntimeError: REPL died" in found[1].detail
    assert fake.closed


def test_cross_checker_ignores_failures() -> None:
    fake = FakeBackend()
    checker = CrossChecker(fake)
    it = VerifyItem(statement="theorem a : True :=", proof=" native_decide")
    assert checker.check(it, VerifyResult(status="fail")) is None
    assert fake.seen == []


def test_print_axioms_parsing() -> None:
    assert axioms_from_messages(["'foo' depends on axioms: [propext, Classical.choice]"]) == [
        "propext", "Classical.choice"]
    assert axioms_from_messages(["'foo' does not depend on any axioms"]) == []
    assert axioms_from_messages(["something else"]) is None


@pytest.mark.lean
def test_lean_interact_backend_agrees_on_a_true_proof(tmp_path: Path) -> None:
    assert shutil.which("lake")
    cfg: STPConfig = load_config(None, ["lean.project_dir='lean'", "verifier.cross_check=true",
                             "verifier.workers=1", f"verifier.cache_dir={str(tmp_path)!r}"])
    with make_verifier(cfg) as v:
        results = v.verify_all([VerifyItem(statement="theorem two : (2 : ℕ) + 2 = 4 :=",
                                           proof=" by norm_num")])
        assert results[0].passed
        assert v.last_stats.disagreements == []


def test_disagreements_are_not_cached_and_old_hits_are_cross_checked(tmp_path: Path) -> None:
    """A pass the second checker rejects must not reach the cache; a cached pass that was never
    cross-checked is cross-checked when it is served with the cross-check on."""
    from stp.verify.cache import ResultCache

    cfg: STPConfig = load_config(None, ["verifier.workers=1", "verifier.recheck='off'",
                             f"verifier.cache_dir={str(tmp_path / 'cache')!r}"])
    items = [VerifyItem(statement="theorem a : True :=", proof=" by native_decide"),
             VerifyItem(statement="theorem b : True :=", proof=" trivial")]

    def verifier(cross: bool) -> Verifier:
        base = make_verifier(with_checker(cfg, standin_command({})))
        assert base.cache is not None
        return Verifier(base.backend, default_header=cfg.lean.default_header, cache=base.cache,
                        fingerprint=base.fingerprint,
                        cross_checker=CrossChecker(FakeBackend()) if cross else None)

    with verifier(cross=False) as v:  # cached without a cross-check
        assert [r.status for r in v.verify_all(items)] == ["pass", "pass"]
    with verifier(cross=True) as v:
        again = v.verify_all(items)
        assert v.last_stats.cache_hits == 2
    assert [r.status for r in again] == ["error", "pass"]
    assert again[1].cross_checked and len(v.last_stats.disagreements) == 1
    fresh = [VerifyItem(statement="theorem c : True :=", proof=" by native_decide 2")]
    with verifier(cross=True) as v:
        assert v.verify_all(fresh)[0].status == "error"
        keys = [v.normalize(it).key(v.fingerprint + "|lean=4.9.0-rc1-standin") for it in fresh]
    cache = ResultCache(tmp_path / "cache")
    assert cache.get_many(keys) == {}, "a disagreement was cached"
    cache.close()


def test_theorem_name_comes_from_the_declaration_not_a_docstring() -> None:
    from stp.verify.crosscheck import _theorem_name

    statement = '/-- Unlike theorem decoy, this one is hard. -/\ntheorem real_one : True :='
    assert _theorem_name(statement) == "real_one"
    assert _theorem_name("-- theorem fake\ndef exercise_1 : Nat :=") == "exercise_1"
