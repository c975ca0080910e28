"""Cross-checking passing proofs with a second backend: disagreement reporting."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from standin import standin_command, with_checker

from stp.config import load_config
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
    cfg = load_config(None, ["verifier.workers=1", "verifier.cache_dir='off'"])
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
    assert [r.status for r in results] == ["pass", "pass", "fail", "pass"]
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
    cfg = load_config(None, ["lean.project_dir='lean'", "verifier.cross_check=true",
                             "verifier.workers=1", f"verifier.cache_dir={str(tmp_path)!r}"])
    with make_verifier(cfg) as v:
        results = v.verify_all([VerifyItem(statement="theorem two : (2 : ℕ) + 2 = 4 :=",
                                           proof=" by norm_num")])
        assert results[0].passed
        assert v.last_stats.disagreements == []
