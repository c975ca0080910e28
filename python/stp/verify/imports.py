"""The modules a Lean header imports, read by Python for the judge (protocol 4).

The judge never parses or elaborates any text, the header included: Python reads the header's
`import` lines itself and the judge only imports those modules. Header commands after the
imports (`open`, `namespace`, `variable`, ...) are not needed there: the terms the judge checks
(REFERENCE and EXPORT) are fully elaborated, names resolved.

The reader is deliberately narrow: the header must begin with `import A.B C ...` lines (blank
lines and `--` line comments allowed between them) and nothing it cannot read unambiguously
(block comments, `prelude`, quoted «names», `import` after the first other command) is
guessed at; such a header is refused with HeaderImportsError, and its items are answered
`error` instead of being judged against imports that might differ from what the header means.
"""

from __future__ import annotations

import re

from stp.errors import STPError

_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_'!?]*(?:\.[A-Za-z_][A-Za-z0-9_'!?]*)*")
_LINE_COMMENT = re.compile(r"--.*$")


class HeaderImportsError(STPError):
    """The imports of a header cannot be read unambiguously."""


def header_imports(header: str) -> list[str]:
    """The module names the header's leading `import` lines name, in order, without duplicates.

    Raises HeaderImportsError for anything the narrow grammar above does not cover."""
    if "/-" in header:
        raise HeaderImportsError("a block comment in the header (imports are read line by line)")
    modules: list[str] = []
    in_imports = True
    for n, raw in enumerate(header.splitlines(), start=1):
        line = _LINE_COMMENT.sub("", raw).strip()
        if not line:
            continue
        words = line.split()
        if words[0] == "prelude":
            raise HeaderImportsError(f"header line {n}: `prelude` is not supported")
        if words[0] != "import":
            in_imports = False
            if re.search(r"(^|\s)import(\s|$)", line):
                raise HeaderImportsError(f"header line {n}: `import` after other commands")
            continue
        if not in_imports:
            raise HeaderImportsError(f"header line {n}: `import` after other commands")
        if len(words) == 1:
            raise HeaderImportsError(f"header line {n}: `import` without a module")
        for word in words[1:]:
            if word == "runtime" or not _MODULE.fullmatch(word):
                raise HeaderImportsError(f"header line {n}: cannot read module name {word!r}")
            if word not in modules:
                modules.append(word)
    return modules
