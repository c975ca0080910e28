"""Turning completions into proofs and conjectures (docs/reference.md §3.1, §3.2, §11 item 10).

The original's conjecture rule was: text up to the first `</hard theorem>`, stripped, prefixed with
`theorem `, cut at the first `:=`, `:= by` appended. It accepted anything. We keep the same cut but
reject, with a short machine-readable reason, every completion whose statement cannot be the one
the model meant: truncated output (no end tag), text after the end tag, several declarations,
leftover prompt tags, unbalanced brackets, a `:=` inside a binder (the original cut such
statements in half), `sorry` in the statement, or no `name : type` shape. Parsing never raises.
"""

from __future__ import annotations

import re
from typing import NamedTuple

END_THM = "</hard theorem>"
_TAGS = ("<lemma>", "<easy theorem>", "<hard theorem>", "</hard theorem>", "```")
_OPEN = {"(": ")", "[": "]", "{": "}", "⟨": "⟩", "⦃": "⦄", "⌊": "⌋", "⌈": "⌉"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_DECL = re.compile(r"(?m)^\s*(?:@\[[^\]]*\]\s*)?(?:(?:private|protected|noncomputable)\s+)*"
                   r"(?:theorem|lemma|def|example|axiom|instance|abbrev|structure|inductive"
                   r"|class|opaque)\b")
_NAME = re.compile(r"theorem\s+[^\s:(\[{⦃⟨]+")
_SORRY = re.compile(r"\bsorry\b")

# Reasons (stable strings: self-play counts them per round).
OK = "ok"
MISSING_END_TAG = "missing_end_tag"
TRAILING_TEXT = "trailing_text"
NOT_A_THEOREM = "not_a_theorem"
STRAY_TAG = "stray_tag"
UNBALANCED = "unbalanced_brackets"
ASSIGN_IN_BINDER = "assign_in_binder"
SEVERAL = "several_declarations"
MALFORMED = "malformed"
SORRY = "sorry"


class ParsedConjecture(NamedTuple):
    """`statement` ends in ` := by` when `reason == "ok"`, else it is None."""

    statement: str | None
    reason: str

    @property
    def ok(self) -> bool:
        return self.statement is not None


def extract_proof(completion: str) -> str:
    """The proof: the completion up to the closing code fence (first "\\n```"), as the original
    cut it; the whole completion when there is no fence."""
    cut = completion.find("\n```")
    return completion if cut < 0 else completion[:cut]


def _scan(text: str) -> tuple[bool, int, int]:
    """(balanced up to the first top-level `:=`, first `:=` at any depth, first at depth 0)."""
    stack: list[str] = []
    first_any = first_top = -1
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _OPEN:
            stack.append(ch)
        elif ch in _CLOSE:
            if not stack or stack[-1] != _CLOSE[ch]:
                return False, first_any, first_top
            stack.pop()
        elif text.startswith(":=", i):
            if first_any < 0:
                first_any = i
            if not stack:
                first_top = i
                return True, first_any, first_top
            i += 1
        i += 1
    return not stack, first_any, first_top


def parse_conjecture(completion: str, fmt: str = "stp") -> ParsedConjecture:
    """The conjectured statement of a conjecturer completion, or None with the reason.

    "stp": the completion continues the prompt's trailing "theorem", so `theorem ` is prefixed.
    "clean": the completion is "\\ntheorem ...\\n</hard theorem>" and must start with `theorem`.
    Samplers leave the matched stop string on the completion, so the end tag is still there."""
    end = completion.find(END_THM)
    if end < 0:
        return ParsedConjecture(None, MISSING_END_TAG)
    if completion[end + len(END_THM):].strip():
        return ParsedConjecture(None, TRAILING_TEXT)
    body = completion[:end].strip()
    if fmt == "stp":
        text = "theorem " + body
    else:
        if not re.match(r"theorem\s", body):
            return ParsedConjecture(None, NOT_A_THEOREM if body else MALFORMED)
        text = body
    if not body:
        return ParsedConjecture(None, MALFORMED)
    if any(tag in body for tag in _TAGS):
        return ParsedConjecture(None, STRAY_TAG)
    balanced, first_any, first_top = _scan(text)
    if not balanced:
        return ParsedConjecture(None, UNBALANCED)
    if first_any != first_top:
        return ParsedConjecture(None, ASSIGN_IN_BINDER)
    if len(_DECL.findall(text)) > 1:
        return ParsedConjecture(None, SEVERAL)
    head = (text if first_top < 0 else text[:first_top]).rstrip()
    name = _NAME.match(head)
    if name is None or _scan_top_colon(head[name.end():]) < 0:
        return ParsedConjecture(None, MALFORMED)
    if _SORRY.search(head):
        return ParsedConjecture(None, SORRY)
    return ParsedConjecture(head + " := by", OK)


def _scan_top_colon(text: str) -> int:
    """Index of the first `:` outside brackets that is not part of `:=`, or -1."""
    depth = 0
    for i, ch in enumerate(text):
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif ch == ":" and depth == 0 and not text.startswith(":=", i):
            return i
    return -1
