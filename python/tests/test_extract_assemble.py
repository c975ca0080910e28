"""Assembly of extractor output (golden lines derived from real Mathlib files) into records."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest

from stp.extract.assemble import AssemblyError, assemble_module
from stp.lean.protocol import (
    ExtractCommand,
    ExtractDecl,
    ExtractFailed,
    encode_line,
    extractor_output_decoder,
)

# The one extractor fixture tree (sources + golden lines), shared with the Lean smoke run.
FIXTURES = Path(__file__).resolve().parents[2] / "lean" / "test" / "golden"
GOLDEN = FIXTURES / "extractor_out.jsonl"


def _messages(path: Path) -> dict[str, list]:
    out: dict[str, list] = defaultdict(list)
    for line in path.read_bytes().splitlines():
        if line.strip():
            msg = extractor_output_decoder.decode(line)
            out[msg.module].append(msg)
    return out


def _assemble(module: str):
    msgs = _messages(GOLDEN)[module]
    rel = module.replace(".", "/") + ".lean"
    source = (FIXTURES / "mathlib" / rel).read_bytes()
    return assemble_module(module, rel, source, msgs), source


def test_golden_lines_roundtrip_through_protocol() -> None:
    for line in GOLDEN.read_bytes().splitlines():
        if line.strip():
            msg = extractor_output_decoder.decode(line)
            assert extractor_output_decoder.decode(encode_line(msg)) == msg


def test_defs_module_records() -> None:
    result, source = _assemble("Mathlib.Algebra.Group.Semiconj.Defs")
    by_name = {t.name: t for t in result.theorems}
    assert list(by_name) == [
        "SemiconjBy.eq", "SemiconjBy.mul_right", "SemiconjBy.mul_left", "SemiconjBy.transitive",
        "SemiconjBy.one_right", "SemiconjBy.one_left", "SemiconjBy.reflexive",
        "SemiconjBy.pow_right", "SemiconjBy.conj_mk", "SemiconjBy.conj_iff",
        "semiconjBy_iff_eq"]
    eq = by_name["SemiconjBy.eq"]
    assert eq.statement == ("theorem eq [Mul S] {a x y : S} (h : SemiconjBy a x y) : "
                            "a * x = y * a :=")
    assert eq.proof == "\n  h" and eq.val_kind == "term"
    assert eq.modifiers.startswith("/-- Equality behind") and "protected " in eq.modifiers
    assert eq.premises == ["Mul", "SemiconjBy"]
    # The 11 to_additive copies (selection = the attribute token) are not separate records.
    assert result.skipped["generated_or_duplicate"] == 11
    # statement + proof reproduce the source exactly.
    for t in result.theorems:
        assert source[t.start_byte:t.end_byte].decode() == t.full_text
    mul_left = by_name["SemiconjBy.mul_left"]
    assert mul_left.context.namespaces == ["SemiconjBy"]
    assert mul_left.context.variables == ["variable {S M G : Type*}",
                                          "variable [Semigroup S] {a b x y z x' y' : S}"]
    assert mul_left.context.text == (
        "import Mathlib.Algebra.Group.Defs\nimport Mathlib.Init.Logic\n"
        "import Mathlib.Tactic.Cases\nvariable {S M G : Type*}\nnamespace SemiconjBy\n"
        "section Semigroup\nvariable [Semigroup S] {a b x y z x' y' : S}\n")
    assert mul_left.premises == ["SemiconjBy", "mul_assoc", "SemiconjBy.eq"]
    assert by_name["SemiconjBy.transitive"].val_kind == "eqns"
    assert by_name["SemiconjBy.transitive"].proof.startswith("| _, _, _")
    last = by_name["semiconjBy_iff_eq"]
    assert last.context.namespaces == [] and last.context.commands == ["variable {S M G : Type*}"]
    assert last.lemma_statement == ("@[to_additive (attr := simp)]\ntheorem semiconjBy_iff_eq "
                                    "[CancelCommMonoid M] {a x y : M} : SemiconjBy a x y ↔ x = y")
    assert last.line == source[:last.start_byte].count(b"\n") + 1


def test_basic_module_lemma_alias_and_in() -> None:
    result, _source = _assemble("Mathlib.Algebra.Group.Semiconj.Basic")
    by_name = {t.name: t for t in result.theorems}
    assert set(by_name) == {"SemiconjBy.inv_inv_symm_iff", "SemiconjBy.inv_symm_left_iff",
                            "SemiconjBy.inv_right_iff", "SemiconjBy.zpow_right",
                            "SemiconjBy.eq_one_iff"}
    # alias commands add theorems, but they are not theorem commands with a proof of their own.
    assert result.skipped["not_a_theorem_command:Batteries.Tactic.Alias.aliasLR"] == 3
    lemma = by_name["SemiconjBy.inv_right_iff"]
    assert lemma.keyword == "lemma"
    assert lemma.statement.startswith("lemma inv_right_iff : SemiconjBy a x⁻¹ y⁻¹")
    assert lemma.proof == " by\n  rw [← inv_symm_left_iff, inv_inv_symm_iff]"
    wrapped = by_name["SemiconjBy.eq_one_iff"]
    assert wrapped.inline_prefix == "variable (a) in\n"
    assert wrapped.statement.endswith("x = 1 ↔ y = 1 :=") and wrapped.val_kind == "term"
    assert wrapped.context.commands == ["namespace SemiconjBy", "variable {G : Type*}",
                                        "section Group", "variable [Group G] {a x y : G}"]
    assert by_name["SemiconjBy.zpow_right"].val_kind == "eqns"


def test_mismatched_source_is_an_error() -> None:
    msgs = _messages(GOLDEN)["Mathlib.Algebra.Group.Semiconj.Defs"]
    with pytest.raises(AssemblyError, match="wrong file"):
        assemble_module("Mathlib.Algebra.Group.Semiconj.Defs", "x.lean", b"short", msgs)


def test_golden_file_assembles_against_its_sources() -> None:
    assembled = 0
    for module, msgs in _messages(GOLDEN).items():
        if all(isinstance(m, ExtractFailed) for m in msgs):
            continue  # a module the extractor could not process has nothing to assemble
        rel = module.replace(".", "/") + ".lean"
        source = (FIXTURES / "mathlib" / rel).read_bytes()
        result = assemble_module(module, rel, source, msgs)
        cmds = [m for m in msgs if isinstance(m, ExtractCommand)]
        assert all(source[c.start_byte:c.end_byte].strip() for c in cmds)
        assert len(result.theorems) <= sum(isinstance(m, ExtractDecl) for m in msgs)
        for t in result.theorems:
            assert source[t.start_byte:t.end_byte].decode() == t.full_text
        assembled += 1
    assert assembled == 3
