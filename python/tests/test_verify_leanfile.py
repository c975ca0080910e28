"""Splitting .lean files into per-theorem checks and mapping positions back to file lines."""

from __future__ import annotations

import pytest

from stp.verify.leanfile import LeanFileError, split_lean_file

FILE = """\
import Mathlib
import Aesop
set_option maxHeartbeats 400000
-- a comment mentioning theorem fake : := at column 3
open BigOperators Real

/-- The doc comment belongs to the theorem. -/
theorem first (a b : ℕ) (h : a = b) : b = a := by
  -- := inside a comment
  exact h.symm

/- a block comment
theorem hidden : True := trivial
-/
lemma second : (2 : ℕ) + 2 = 4 :=by norm_num

open Nat

example (n : ℕ) : n + 0 = n :=rfl

@[simp]
theorem third {α : Type} (f : α → α := id) : True := by
  trivial
"""


def test_split_finds_each_declaration_with_its_header() -> None:
    ths = split_lean_file(FILE, "demo.lean")
    assert [t.name for t in ths] == ["first", "second", "example_L19", "third"]
    assert [t.line for t in ths] == [8, 15, 19, 22]
    first, second, example, third = ths
    assert first.header.startswith("import Mathlib\nimport Aesop\nset_option")
    assert "open BigOperators Real" in first.header and "theorem" not in first.header.replace(
        "theorem fake", "")
    assert first.statement.startswith("/-- The doc comment")
    assert first.statement.endswith("(h : a = b) : b = a :=")
    assert first.proof == " by\n  -- := inside a comment\n  exact h.symm"
    assert second.statement.endswith(":=by") and second.proof == " norm_num"
    assert "open Nat" in example.header and "open Nat" not in first.header
    assert example.statement == "theorem example_L19 (n : ℕ) : n + 0 = n :="
    assert example.proof == "rfl"
    # `:=` inside binders (default argument) is not the proof's `:=`
    assert third.statement.startswith("@[simp]\ntheorem third")
    assert third.statement.endswith(": True :=") and third.proof == " by\n  trivial"


def test_positions_map_back_to_file_lines() -> None:
    first, second, example, third = split_lean_file(FILE, "demo.lean")
    lines = FILE.split("\n")
    # `exact` is on line 4 of the submitted text (doc comment, theorem, comment, exact)
    assert first.text_map.to_file(4, 2) == (10, 2)
    assert lines[9][2:7] == "exact"
    assert second.text_map.to_file(1, 32) == (15, 32)
    # the example is renamed and its proof gets a newline inserted: "rfl" is on submitted line 2
    submitted = example.text_map.submitted
    assert submitted == "theorem example_L19 (n : ℕ) : n + 0 = n :=\nrfl"
    line, col = example.text_map.to_file(2, 0)
    assert (line, lines[line - 1][col:col + 3]) == (19, "rfl")
    # columns after the renamed keyword shift back by the length difference
    col_sub = submitted.index("n + 0")
    line, col = example.text_map.to_file(1, col_sub)
    assert lines[line - 1][col:col + 5] == "n + 0"
    assert third.text_map.to_file(3, 2) == (23, 2)  # "  trivial"


def test_declaration_without_assign_is_an_error_naming_the_line() -> None:
    with pytest.raises(LeanFileError, match=r"bad.lean:3: declaration has no `:=`"):
        split_lean_file("import Mathlib\n\ntheorem oops : True\n", "bad.lean")


def test_file_without_theorems() -> None:
    assert split_lean_file("import Mathlib\nopen Nat\n") == []


def test_raw_and_char_literals_do_not_hide_a_theorem() -> None:
    r"""`r"\"` is a complete raw string (no escapes) and `'"'` a char literal; read as an escaped
    quote / the start of a string they swallowed the next theorem."""
    text = (
        'import Mathlib\n\n'
        'theorem raw_one : r"\\" = "\\\\" := by rfl\n\n'
        'theorem after_raw : True := trivial\n\n'
        "theorem char_one : ('\"' : Char) = '\"' := rfl\n\n"
        'theorem after_char : True := trivial\n\n'
        'theorem hashes : r#"a"b"# = "a\\"b" := by rfl\n\n'
        "theorem primes (h' : True) : True := h'\n\n"
        'theorem last : True := trivial\n'
    )
    names = [t.name for t in split_lean_file(text, "raw.lean")]
    assert names == ["raw_one", "after_raw", "char_one", "after_char", "hashes", "primes", "last"]
