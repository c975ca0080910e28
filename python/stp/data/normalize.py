"""Statement normalisation and the defect report.

The public files carry artefacts (`by sorryby` endings, a docstring that leaked into a statement,
names that disagree with the declared theorem, duplicate names). Each rule here either fixes the
record or flags it, and always adds an entry to a `DefectReport`: nothing is changed silently.

The original (docs/reference.md §2.9.1) cut everything from the *last* `sorry`. That rule is only
safe when the sorry is a trailing artefact, so we strip a trailing `sorry` (optionally followed by
a stray `by`) after the `:=`/`:= by` ending and flag any other occurrence of `sorry`.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from stp.data.records import statement_key
from stp.data.registry import Ending
from stp.lean.config import DEFAULT_HEADER

Action = Literal["fixed", "flagged"]

# `:=`, optional `by`, then `sorry` and optionally a glued/stray `by` (the `sorryby` artefact).
_TRAILING_SORRY = re.compile(r":=(\s*by)?\s*sorry\s*(by)?\s*$")
_ENDING = re.compile(r":=(\s*by)?\s*$")
_DECL = re.compile(
    r"^[ \t]*(?:@\[[^\]]*\][ \t]*)?(?:(?:private|protected|noncomputable)[ \t]+)*"
    r"(theorem|lemma|def|abbrev|example)\b[ \t]*([^\s:({\[⦃]*)",
    re.M,
)


@dataclass(frozen=True)
class Defect:
    dataset: str
    id: str
    kind: str
    action: Action
    detail: str


@dataclass
class DefectReport:
    """Everything normalisation changed or noticed, per record."""

    defects: list[Defect] = field(default_factory=list)

    def add(self, dataset: str, rid: str, kind: str, action: Action, detail: str) -> None:
        self.defects.append(Defect(dataset, rid, kind, action, detail))

    def counts(self) -> Counter[tuple[str, str, str]]:
        return Counter((d.dataset, d.kind, d.action) for d in self.defects)

    def of_kind(self, kind: str) -> list[Defect]:
        return [d for d in self.defects if d.kind == kind]

    def summary_lines(self) -> list[str]:
        return [f"{ds}: {kind} {action} x{n}" for (ds, kind, action), n in
                sorted(self.counts().items())]


def declared_name(text: str) -> str | None:
    """Name of the first theorem/lemma/def declared in a statement (comments before it allowed)."""
    m = _DECL.search(text)
    if m is None or not m.group(2):
        return None
    return m.group(2)


def strip_trailing_sorry(text: str) -> tuple[str, bool]:
    """Remove a trailing `sorry` (and `sorryby`/`sorry\\nby` artefacts) after the `:=` ending.
    Returns the text (right-stripped) and whether anything was removed."""
    m = _TRAILING_SORRY.search(text)
    if m is None:
        return text.rstrip(), False
    return text[: m.start()] + ":=" + (m.group(1) or ""), True


def normalise_ending(text: str, ending: Ending) -> tuple[str, str | None]:
    """Make the statement end in a tactic ending (`:=` then `by`, ending "by") or a term ending
    (`:=`, ending "term"). Returns the new text and a description of the change (None when
    unchanged), or raises ValueError when the statement has no `:=` ending at all.

    Only the *kind* of ending is changed, never its spacing: LeanWorkbook's `…  :=  by` and
    miniF2F's `:=\n  by` are kept verbatim, because the released and SFT models saw exactly that
    text in their prompts (the original only cut the trailing `sorry` and stripped). Whitespace is
    ignored where it must be — in the dedup key (`statement_key`) — and nowhere else."""
    text = text.rstrip()
    m = _ENDING.search(text)
    if m is None:
        raise ValueError(f"statement does not end in ':=' or ':= by': ...{text[-40:]!r}")
    has_by = m.group(1) is not None
    if has_by == (ending == "by"):
        return text, None
    body = text[: m.start()].rstrip()
    sep = text[len(body): m.start()]
    if has_by:
        return body + sep + ":=", "tactic ending ':= by' turned into ':=' (dataset convention)"
    return text + " by", "term ending ':=' turned into ':= by' (dataset convention)"


def split_leaked_docstring(text: str) -> tuple[str, str] | None:
    """A statement that starts with prose closed by `-/` (a docstring cut in the wrong place).
    Returns (prose, statement) or None when the text is not of that shape."""
    end = text.find("-/")
    if end < 0 or "/-" in text[:end]:
        return None
    rest = text[end + 2:].lstrip()
    m = _DECL.match(rest)
    if m is None or not m.group(2):
        return None
    return text[:end].strip(), rest


def canonical_header(header: str | None) -> str:
    """"" for a missing header or one equal to the default header (modulo whitespace)."""
    if not header:
        return ""
    if statement_key(header) == statement_key(DEFAULT_HEADER):
        return ""
    return header


def short_hash(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8"), digest_size=3).hexdigest()
