"""A synthetic theorem-proving task whose proofs a checker can judge exactly: the learning check's
world (python/tests/test_learning.py, benchmarks/learning_curve.py).

Statements are commutativity facts about two natural-number variables under one of six
operations, e.g.

    theorem syn_17 (m y : ℕ) : min y m = min m y := by

and the one accepted proof names the operation's commutativity lemma and the left-hand side's
operands in order:

    exact Nat.min_comm y m

So a proof depends on the statement twice over (which lemma, which argument order: the binder
lists the variables alphabetically, the left-hand side need not), and a model can only solve a
statement it never saw by generalising (6 operations × 56 ordered pairs of 8 variable names; a
constant proof solves at most 1 in 336, a guess of the right lemma 1 in 2).

`judge` is the whole logic: it is stricter than Lean, never looser (every proof it accepts, Lean
accepts too; Lean also accepts `exact Nat.min_comm _ _`, `rw [Nat.min_comm]`, ... which this
logic refuses, so that no proof is independent of the statement). The stand-in checker calls it
through the protocol (spec `{"default": "judge", "judge": "learning_task"}`, see
standin_checker.py), for checks and for kernel replays alike; a passing proof reports the lemma
it used as its premise, which the self-play loop's lemma pairing reads.

Tests only: product code never imports it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

# (how the operation is written, its commutativity lemma, the lemma's statement)
OPERATIONS: tuple[tuple[str, str, str], ...] = (
    ("{} + {}", "Nat.add_comm", "theorem Nat.add_comm (n m : ℕ) : n + m = m + n"),
    ("{} * {}", "Nat.mul_comm", "theorem Nat.mul_comm (n m : ℕ) : n * m = m * n"),
    ("max {} {}", "Nat.max_comm", "theorem Nat.max_comm (a b : ℕ) : max a b = max b a"),
    ("min {} {}", "Nat.min_comm", "theorem Nat.min_comm (a b : ℕ) : min a b = min b a"),
    ("Nat.gcd {} {}", "Nat.gcd_comm", "theorem Nat.gcd_comm (m n : ℕ) : Nat.gcd m n = Nat.gcd n m"),
    ("Nat.lcm {} {}", "Nat.lcm_comm", "theorem Nat.lcm_comm (m n : ℕ) : Nat.lcm m n = Nat.lcm n m"),
)
VARIABLES = "abcmnxyz"
# A short header keeps prompts short (the default one is ~95 tokens of the tiny tokenizer).
HEADER = "import Mathlib\n\n"
DATASET = "synthetic_comm"


@dataclass(frozen=True)
class Item:
    """One statement of the task: operation index and the left-hand side's operands."""

    op: int
    left: str
    right: str

    def statement(self, name: str) -> str:
        fmt = OPERATIONS[self.op][0]
        first, second = sorted((self.left, self.right))
        return (f"theorem {name} ({first} {second} : ℕ) : {fmt.format(self.left, self.right)} = "
                f"{fmt.format(self.right, self.left)} := by")

    def proof(self) -> str:
        return f"\n  exact {OPERATIONS[self.op][1]} {self.left} {self.right}"


def all_items() -> list[Item]:
    return [Item(op, u, v) for op in range(len(OPERATIONS)) for u in VARIABLES for v in VARIABLES
            if u != v]


@dataclass(frozen=True)
class Split:
    """Disjoint statement sets: Stage-1 SFT, the self-play pool, the held-out evaluation set."""

    sft: list[Item]
    pool: list[Item]
    heldout: list[Item]


def split_items(n_sft: int, n_pool: int, n_heldout: int, seed: int = 0) -> Split:
    items = all_items()
    if n_sft + n_pool + n_heldout > len(items):
        raise ValueError(f"the task has only {len(items)} statements")
    random.Random(seed).shuffle(items)
    return Split(items[:n_sft], items[n_sft:n_sft + n_pool],
                 items[len(items) - n_heldout:])


# -- the logic ---------------------------------------------------------------------------------

_IDENT = r"[A-Za-z_][A-Za-z0-9_'.₀-₉]*"
_STATEMENT = re.compile(
    rf"\s*theorem\s+{_IDENT}\s*\(\s*([a-z])\s+([a-z])\s*:\s*ℕ\s*\)\s*:\s*(.+?)\s*=\s*(.+?)\s*"
    r":=\s*by\s*", re.S)
_PROOF = re.compile(rf"\s*exact\s+({_IDENT})\s+([a-z])\s+([a-z])\s*")


def _operands(term: str) -> tuple[int, str, str] | None:
    """(operation, left operand, right operand) of a term written as the task writes them."""
    for op, (fmt, _lemma, _stmt) in enumerate(OPERATIONS):
        pattern = re.escape(fmt).replace(r"\{\}", "([a-z])").replace(r"\ ", r"\s+")
        m = re.fullmatch(pattern, term.strip())
        if m:
            return op, m.group(1), m.group(2)
    return None


def judge(statement: str, proof: str) -> tuple[bool, str, str]:
    """(passed, premise or "", why it failed). A statement outside the task's grammar, or a
    false one (`x + y = y * x`), has no proof; a proof is accepted only in the one form above."""
    s = _STATEMENT.fullmatch(statement)
    if s is None:
        return False, "", "statement outside the synthetic logic"
    binders = {s.group(1), s.group(2)}
    lhs, rhs = _operands(s.group(3)), _operands(s.group(4))
    if (lhs is None or rhs is None or len(binders) != 2 or lhs[0] != rhs[0]
            or (rhs[1], rhs[2]) != (lhs[2], lhs[1]) or {lhs[1], lhs[2]} != binders):
        return False, "", "not a commutativity statement over its two variables"
    p = _PROOF.fullmatch(proof)
    if p is None:
        return False, "", "proof is not `exact <lemma> <x> <y>`"
    lemma = OPERATIONS[lhs[0]][1]
    if p.group(1) != lemma:
        return False, "", f"type mismatch: {p.group(1)} does not prove this operation"
    if (p.group(2), p.group(3)) != (lhs[1], lhs[2]):
        return False, "", "type mismatch: arguments in the wrong order"
    return True, lemma, ""


def standin_verdict(statement: str, proof: str) -> tuple[str, dict]:
    """The stand-in checker's interface: (action, rule spec) for `StandIn.verdict`."""
    passed, premise, why = judge(statement, proof)
    if passed:
        return "pass", {"premises": [premise]}
    return "fail", {"reasons": ["elab_error"],
                    "errors": [{"severity": "error", "line": 1, "column": 0, "text": why}]}


def lemma_dict() -> dict[str, str]:
    """The lemma dictionary of self-play's conjecture pairing (name -> statement)."""
    return {lemma: stmt for _fmt, lemma, stmt in OPERATIONS}
