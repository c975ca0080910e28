"""The judge's imports are read by Python from the header (protocol 4): a narrow reader that
refuses what it cannot read unambiguously."""

from __future__ import annotations

from pathlib import Path

import pytest
from standin import read_log, standin_command, with_checker

from stp.config import load_config
from stp.lean.config import DEFAULT_HEADER
from stp.verify import VerifyItem, make_verifier
from stp.verify.imports import HeaderImportsError, header_imports


def test_the_default_header_imports() -> None:
    assert header_imports(DEFAULT_HEADER) == ["Mathlib", "Aesop"]


@pytest.mark.parametrize(("header", "modules"), [
    ("import Mathlib\nimport Aesop\nopen Nat\n", ["Mathlib", "Aesop"]),
    ("-- a comment\nimport Mathlib.Tactic Batteries  -- two\n\nimport Mathlib\nopen X", [
        "Mathlib.Tactic", "Batteries", "Mathlib"]),
    ("open Nat\n", []),
    ("", []),
])
def test_imports_are_read(header: str, modules: list[str]) -> None:
    assert header_imports(header) == modules


@pytest.mark.parametrize(("header", "why"), [
    ("/- import Evil -/\nimport Mathlib\n", "block comment"),
    ("prelude\nimport Init\n", "prelude"),
    ("import «Mathlib»\n", "cannot read module name"),
    ("import Mathlib\nopen Nat\nimport Evil\n", "after other commands"),
    ("open Nat in import Evil\n", "after other commands"),
    ("import\n", "without a module"),
])
def test_unreadable_imports_are_refused(header: str, why: str) -> None:
    with pytest.raises(HeaderImportsError, match=why):
        header_imports(header)


def test_items_whose_header_imports_cannot_be_read_are_errors(tmp_path: Path) -> None:
    """With the judge on, an item whose header's imports Python cannot read is `error` (never
    judged against imports that might differ); other items are unaffected."""
    log = tmp_path / "log"
    cfg = load_config(None, ["verifier.workers=1", "verifier.cache_dir='off'",
                             "verifier.recheck='replay'", f"run.run_dir={str(tmp_path)!r}"])
    v = make_verifier(with_checker(cfg, standin_command({"log": str(log)})))
    try:
        results = v.verify_all([
            VerifyItem(statement="theorem a : True :=", proof=" trivial",
                       header="/- x -/\nimport Mathlib\n", header_trusted=False),
            VerifyItem(statement="theorem b : True :=", proof=" trivial")])
    finally:
        v.close()
    assert [r.status for r in results] == ["error", "pass"]
    assert "imports cannot be read" in results[0].detail
    assert not [e for e in read_log(log) if e.get("header", "").startswith("/-")]
