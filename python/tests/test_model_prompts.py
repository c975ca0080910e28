"""Golden tests of the prompt formats against the literal strings of docs/reference.md §3."""

from __future__ import annotations

import pytest

from stp.model import prompts as P

# docs/reference.md §3, written out literally (Python escapes as in the reference).
REF_PROVER_PROMPT = ('Complete the following Lean 4 code:\n\n```lean4\nimport Mathlib\nimport '
                     'Aesop\nset_option maxHeartbeats 0\nopen BigOperators Real Nat Topology Rat\n')
STMT = "theorem lean_workbook_214 (x y : ℝ) : (x - y) ^ 2 ≥ 0  :=  by"
RENDERED = """Complete the following Lean 4 code:

```lean4
import Mathlib
import Aesop
set_option maxHeartbeats 0
open BigOperators Real Nat Topology Rat

theorem lean_workbook_214 (x y : ℝ) : (x - y) ^ 2 ≥ 0  :=  by"""


def test_prover_prompt_golden() -> None:
    assert P.PROVER_PROMPT == REF_PROVER_PROMPT
    assert P.prover_prompt("  " + STMT + "\n") == RENDERED
    assert P.prover_prompt(STMT, fmt="clean") == RENDERED
    header = "import Mathlib\n\nopen Real\n\n"
    assert P.prover_prompt(STMT, header) == (
        "Complete the following Lean 4 code:\n\n```lean4\n" + header + STMT)


def test_prover_training_example_and_extract() -> None:
    ex = P.prover_training_example(STMT, "", "\n  nlinarith [sq_nonneg (x - y)]", 0.5)
    assert ex.prompt == RENDERED
    assert ex.target == "\n  nlinarith [sq_nonneg (x - y)]"
    assert ex.weight == 0.5
    assert P.extract_proof("\n  simp\n```\nmore ```") == "\n  simp"
    assert P.extract_proof("\n  simp") == "\n  simp"
    assert P.prover_stop() == ("\n```",)


LEMMA = "theorem add_comm (a b : ℕ) : a + b = b + a"
SEED_S = "theorem foo (x : ℕ) : x + 0 = x := by"
SEED_P = "\n  simp\n"


def test_conjecturer_sampling_prompt_golden() -> None:
    expected = ('Complete the following Lean 4 code:\n\n```lean4\n' + '<lemma>' + '\n'
                + LEMMA.strip() + '\n' + '<easy theorem>' + '\n' + (SEED_S + SEED_P).strip()
                + '\n' + '<hard theorem>' + '\n theorem')
    assert P.conjecturer_prompt(" " + LEMMA + "\n", SEED_S, SEED_P) == expected
    assert expected.endswith("<hard theorem>\n theorem")
    no_lemma = P.conjecturer_prompt("", SEED_S, SEED_P)
    assert "<lemma>\ntheorem true: True\n<easy theorem>" in no_lemma


def test_conjecturer_training_example_golden() -> None:
    conj = "theorem bar (y : ℕ) : 0 + y = y := by"
    ex = P.conjecture_training_example(LEMMA, SEED_S, SEED_P, "  " + conj, 2.0)
    assert ex.prompt == (REF_PROVER_PROMPT + '\n' + '<lemma>' + '\n' + LEMMA.strip() + '\n'
                         + '<easy theorem>' + '\n' + (SEED_S + SEED_P).strip() + '\n'
                         + '<hard theorem>')
    assert ex.target == '\n' + conj + '\n' + '</hard theorem>'
    assert ex.weight == 2.0


def test_clean_format_is_consistent() -> None:
    """Clean: the sampling prompt is exactly the training prompt, and a completion equal to the
    training target parses back to the conjecture (round trip)."""
    conj = "theorem bar (y : ℕ) : 0 + y = y := by"
    ex = P.conjecture_training_example(LEMMA, SEED_S, SEED_P, conj, 1.0, fmt="clean")
    assert P.conjecturer_prompt(LEMMA, SEED_S, SEED_P, fmt="clean") == ex.prompt
    assert P.parse_conjecture(ex.target, "clean") == P.ParsedConjecture(conj, "ok")


def test_stp_round_trip() -> None:
    """The stp sampling prompt ends with 'theorem'; the completion continues the name."""
    out = P.parse_conjecture(" bar (y : ℕ) : 0 + y = y := by\n  simp\n</hard theorem>")
    assert out == P.ParsedConjecture("theorem bar (y : ℕ) : 0 + y = y := by", "ok")
    # No `:=` at all: the statement gets one (with a space, unlike the original).
    out = P.parse_conjecture(" bar : True\n</hard theorem>\n")
    assert out.statement == "theorem bar : True := by"


@pytest.mark.parametrize("completion,reason", [
    (" bar : True := by", "missing_end_tag"),
    (" bar : True := by\n</hard theorem> and more", "trailing_text"),
    (" bar : True := by\n  trivial\ntheorem baz : True := by\n</hard theorem>",
     "several_declarations"),
    (" bar (h : let x := 1; x = 1) : True := by\n</hard theorem>", "assign_in_binder"),
    (" bar (h : x = 1 : True := by\n</hard theorem>", "unbalanced_brackets"),
    (" bar : True := by\n<easy theorem>\n</hard theorem>", "stray_tag"),
    (" bar : sorry = sorry := by\n</hard theorem>", "sorry"),
    (" bar := by\n</hard theorem>", "malformed"),
    ("", "missing_end_tag"),
    ("</hard theorem>", "malformed"),
    ("\x00\x01 ⟩⟩ :=\n</hard theorem>", "unbalanced_brackets"),
])
def test_parse_conjecture_rejects(completion: str, reason: str) -> None:
    assert P.parse_conjecture(completion) == P.ParsedConjecture(None, reason)


def test_parse_clean_requires_theorem() -> None:
    assert P.parse_conjecture("lemma x : True\n</hard theorem>", "clean").reason == "not_a_theorem"
    assert P.conjecture_stop("clean") == ("</hard theorem>", "```")


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown prompt format"):
        P.prover_prompt("x", fmt="nope")
