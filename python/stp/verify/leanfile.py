"""Split a .lean file into one check per theorem, and map checker positions back to the file.

The header of a theorem is everything above it except other declarations to be checked: the
leading imports/opens/set_options, plus any non-theorem commands met on the way (`open`,
`namespace`, `variable`, a helper `def`, ...), so each theorem sees the context the file gives it.
Each `theorem`/`lemma`/`example` is split at its first top-level `:=` into statement and proof,
keeping the text verbatim; an `example` becomes `theorem example_L<line>` (the checker checks the
constant a statement declares). `TextMap` records these edits and turns a (line, column) of the
submitted `statement + proof` text into a file line and column.

Top-level commands are recognised as lines that start at column 0 (outside comments and strings)
with a command keyword, the way Mathlib and generated proof files are laid out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from stp.errors import InputFormatError
from stp.verify.pool import join_proof

_MODIFIERS = r"(?:(?:private|protected|noncomputable|nonrec|unsafe|partial)\s+)*"
_DECL = re.compile(rf"(?:@\[[^\]]*\]\s*)?{_MODIFIERS}(theorem|lemma|example)\b")
_COMMAND_START = re.compile(
    r"(?:@\[|/--|#|theorem\b|lemma\b|example\b|def\b|abbrev\b|instance\b|structure\b|class\b|"
    r"inductive\b|open\b|namespace\b|section\b|end\b|variable\b|universe\b|set_option\b|"
    r"import\b|noncomputable\b|private\b|protected\b|attribute\b|macro\b|syntax\b|notation\b|"
    r"infix\b|infixl\b|infixr\b|prefix\b|postfix\b|axiom\b|opaque\b|mutual\b|local\b|scoped\b|"
    r"elab\b|macro_rules\b|elab_rules\b|initialize\b|unsafe\b|partial\b|nonrec\b|deriving\b)"
)


_LONE_ATTR = re.compile(r"@\[[^\]]*\]\s*")
_OPEN_IN = re.compile(r"open\b[^\n]*\bin\s*")


class LeanFileError(InputFormatError):
    """The file cannot be split (e.g. a theorem without `:=`); the message names file and line
    (an `STPError`: the CLI prints it as one line)."""


@dataclass
class TextMap:
    """Maps offsets of the submitted text to offsets of the file.

    `pieces` are (submitted_start, length, file_start): a run copied from the file. Offsets are
    in code points (Python str indices), like Lean's columns."""

    file_text: str
    submitted: str
    pieces: list[tuple[int, int, int]] = field(default_factory=list)

    def to_file(self, line: int, column: int) -> tuple[int, int]:
        """(1-based line, 0-based column) in the submitted text → the same in the file."""
        offset = _offset(self.submitted, line, column)
        file_offset = self.pieces[0][2] if self.pieces else 0
        for start, length, fstart in self.pieces:
            if offset < start:
                break  # inside synthetic text: anchor at the start of the next copied run
            file_offset = fstart + min(offset - start, length)
        return _position(self.file_text, file_offset)


@dataclass
class LeanTheorem:
    name: str
    header: str
    statement: str
    proof: str
    line: int  # 1-based line of the declaration in the file
    text_map: TextMap


def _offset(text: str, line: int, column: int) -> int:
    """Code-point offset of (1-based line, 0-based column), clamped to the text."""
    pos = 0
    for _ in range(max(line, 1) - 1):
        nl = text.find("\n", pos)
        if nl < 0:
            return len(text)
        pos = nl + 1
    end = text.find("\n", pos)
    end = len(text) if end < 0 else end
    return min(pos + max(column, 0), end)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    return line, offset - start


def mask_comments_and_strings(text: str) -> str:
    """Same length as `text`, with comments and string literals replaced by spaces (newlines kept),
    so that keyword and `:=` searches ignore them."""
    out = list(text)
    i, n = 0, len(text)

    def blank(a: int, b: int) -> None:
        for k in range(a, b):
            if out[k] != "\n":
                out[k] = " "

    while i < n:
        if text.startswith("--", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            blank(i, j)
            i = j
        elif text.startswith("/-", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/-", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("-/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            blank(i, j)
            i = j
        elif (raw := _RAW_STRING_START.match(text, i)) and not _ident_before(text, i):
            # r"..." / r#"..."#: no escapes; a backslash right before the quote ends nothing
            close = '"' + raw.group(1)
            j = text.find(close, raw.end())
            j = n if j < 0 else j + len(close)
            blank(i, j)
            i = j
        elif text[i] == "'" and not _ident_before(text, i) and (ch := _CHAR.match(text, i)):
            blank(i, ch.end())  # a char literal such as '"' must not open a string
            i = ch.end()
        elif text[i] == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            blank(i, min(j + 1, n))
            i = j + 1
        else:
            i += 1
    return "".join(out)


_RAW_STRING_START = re.compile(r'r(#*)"')
_CHAR = re.compile(r"'(?:\\(?:u\{[0-9a-fA-F]+\}|x[0-9a-fA-F]{2}|.)|[^\\'\n])'")


def _ident_before(text: str, i: int) -> bool:
    """Whether position i continues an identifier (`h'`, `xr"` are not literal starts)."""
    if i == 0:
        return False
    prev = text[i - 1]
    return prev.isalnum() or prev in "_'!?." or "\u2080" <= prev <= "\u209c"


_DECLARED = re.compile(
    r"(?<![\w.'])(theorem|lemma|def|abbrev|instance)\s+([^\s:({\[]+)")


def declared_name(statement: str) -> str | None:
    """The name a statement declares, read with comments and string literals blanked out, so a
    docstring that mentions `theorem other` is not taken for the declaration."""
    m = _DECLARED.search(mask_comments_and_strings(statement))
    return m.group(2) if m else None


def _top_level_assign(masked: str, start: int, end: int) -> int:
    """Offset of the first `:=` outside brackets in masked[start:end], or -1."""
    depth = 0
    i = start
    while i < end:
        c = masked[i]
        if c in "([{⟨":
            depth += 1
        elif c in ")]}⟩":
            depth = max(0, depth - 1)
        elif c == ":" and depth == 0 and masked.startswith(":=", i):
            return i
        i += 1
    return -1


def split_lean_file(text: str, source: str = "<file>") -> list[LeanTheorem]:
    """One LeanTheorem per theorem/lemma/example of the file, in file order."""
    masked = mask_comments_and_strings(text)
    # top-level command starts: line starts (column 0) with a command keyword, outside comments
    starts: list[int] = []
    pos = 0
    for line in masked.split("\n"):
        if _COMMAND_START.match(line):
            starts.append(pos)
        pos += len(line) + 1
    # a doc comment belongs to the declaration that follows it: look in the raw text for them
    doc_starts = [m.start() for m in re.finditer(r"(?m)^/--", text)]
    starts = sorted(set(starts) | set(doc_starts))
    bounds = [*starts, len(text)]
    theorems: list[LeanTheorem] = []
    header_parts: list[str] = [text[:starts[0]] if starts else text]
    begin: int | None = None  # start of pending doc comments / lone attributes
    for i, chunk_start in enumerate(starts):
        chunk_end = bounds[i + 1]
        if begin is None:
            begin = chunk_start
        chunk = masked[chunk_start:chunk_end]
        is_prefix = (text.startswith("/--", chunk_start) or _LONE_ATTR.fullmatch(chunk)
                     or _OPEN_IN.fullmatch(chunk))
        if is_prefix and i + 1 < len(starts):
            continue  # glue to the command that follows
        m = _DECL.match(masked, chunk_start)
        if m is None:
            header_parts.append(text[begin:chunk_end])
        else:
            theorems.append(_theorem(text, masked, source, "".join(header_parts), begin,
                                     chunk_start, m, chunk_end))
        begin = None
    return theorems


def _theorem(text: str, masked: str, source: str, header: str, begin: int, decl_start: int,
             m: re.Match[str], end: int) -> LeanTheorem:
    line = text.count("\n", 0, decl_start) + 1
    assign = _top_level_assign(masked, m.end(), end)
    if assign < 0:
        raise LeanFileError(f"{source}:{line}: declaration has no `:=` (cannot split statement "
                            "and proof)")
    cut = assign + 2
    # keep `:= by` together when `by` follows directly (`:=by simp`), so the proof keeps its
    # leading whitespace and no newline needs to be inserted
    if masked.startswith("by", cut) and (cut + 2 == len(masked) or not masked[cut + 2].isalnum()):
        cut += 2
    # trailing blank lines and comments between this declaration and the next are not proof
    proof_end = len(masked[:end].rstrip())
    proof_end = max(proof_end, cut)
    pieces: list[tuple[int, int, int]] = []
    if m.group(1) == "example":
        name = f"example_L{line}"
        kw = m.start(1)
        prefix = text[begin:kw] + f"theorem {name}"
        statement = prefix + text[kw + len("example"):cut]
        pieces.append((0, kw - begin, begin))
        pieces.append((len(prefix), cut - kw - len("example"), kw + len("example")))
    else:
        statement = text[begin:cut]
        pieces.append((0, cut - begin, begin))
        after = masked[m.end():cut]
        nm = re.match(r"\s*([^\s:({\[]+)", after)
        name = nm.group(1) if nm else f"theorem_L{line}"
    proof = text[cut:proof_end]
    sent = join_proof(statement, proof)
    pieces.append((len(statement) + len(sent) - len(proof), len(proof), cut))
    submitted = statement + sent
    return LeanTheorem(name=name, header=header, statement=statement, proof=proof, line=line,
                       text_map=TextMap(text, submitted, pieces))
