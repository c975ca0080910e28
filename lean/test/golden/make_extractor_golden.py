"""Derive `extractor_out.jsonl` from the real sources under `mathlib/` (run by hand; the tests
read the committed output and re-check every offset against the sources).

Sources: `mathlib/Mathlib/Algebra/Group/Semiconj/Defs.lean` is Mathlib's file byte for byte at
the project pin d1d1e4b72c6e009edd97cabe1d661b021fe8eeae (git blob 9cbd88eb…).
`mathlib/Mathlib/Golden/Broken.lean` is ours: a two-theorem module with one Lean error, for the
`done.errors` path.

What is derived here, and the Lean rule it imitates (lean/STP/Extract.lean):
* `cmd`: one per top-level command; the range runs from the command's first token (its doc
  comment for a declaration) to the end of its last token (`getPos?`/`getTailPos?`), so trailing
  blank lines are excluded. `val_start_byte` is the start of the `declVal` child: the first `:=`
  after the keyword, or the first `|` of an equation-style body.
* `decl`: each theorem constant with `findDeclarationRanges?`. For a theorem the range is the
  whole declaration (doc comment and attributes included) and the selection range its name. For
  an `@[to_additive]` copy Mathlib's `ToAdditive.lean` (at the pin, `transformDecl`) records
  range = the attribute syntax `to_additive …` and selection range = the `to_additive` token.
  Lines are sorted by (line, column, name) as the extractor sorts them.
* `premises`: the constants original identifiers inside the declaration range resolve to, first
  appearance, declaration-binder infos excluded. These lists are PREDICTIONS of Lean's info trees
  (not computed by Lean); an additive copy's range holds only the attribute, hence `[]`.

Usage: python lean/test/golden/make_extractor_golden.py > lean/test/golden/extractor_out.jsonl
"""

from __future__ import annotations

import json
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
DECL = "Lean.Parser.Command.declaration"
KINDS = {
    "#align_import": "Mathlib.Prelude.Rename.alignImport",
    "#align": "Mathlib.Prelude.Rename.align",
    "/-!": "Lean.Parser.Command.moduleDoc",
    "assert_not_exists": "commandAssert_not_exists_",
    "variable": "Lean.Parser.Command.variable",
    "namespace": "Lean.Parser.Command.namespace",
    "section": "Lean.Parser.Command.section",
    "end": "Lean.Parser.Command.end",
    "open": "Lean.Parser.Command.open",
}
DECL_KINDS = {"theorem": "Lean.Parser.Command.theorem", "def": "Lean.Parser.Command.definition"}
KEYWORD = re.compile(r"^(?:protected |private |noncomputable )*(theorem|def) ([^\s\[({:]+)", re.M)

# module -> (source path, premises requested, {theorem short name: (additive name | None,
# predicted premises)}, errors).
MODULES = {
    "Mathlib.Algebra.Group.Semiconj.Defs": (
        "mathlib/Mathlib/Algebra/Group/Semiconj/Defs.lean", True, {
            "eq": ("AddSemiconjBy.eq", ["Mul", "SemiconjBy"]),
            "mul_right": ("AddSemiconjBy.add_right", ["SemiconjBy", "mul_assoc", "SemiconjBy.eq"]),
            "mul_left": ("AddSemiconjBy.add_left", ["SemiconjBy", "mul_assoc", "SemiconjBy.eq"]),
            "transitive": ("AddSemiconjBy.transitive",
                           ["Transitive", "SemiconjBy", "SemiconjBy.mul_left"]),
            "one_right": ("AddSemiconjBy.zero_right", ["SemiconjBy", "mul_one", "one_mul"]),
            "one_left": ("AddSemiconjBy.zero_left",
                         ["SemiconjBy", "Eq.symm", "SemiconjBy.one_right"]),
            "reflexive": ("AddSemiconjBy.reflexive",
                          ["Reflexive", "SemiconjBy", "SemiconjBy.one_left"]),
            "pow_right": ("AddSemiconjBy.nsmul_right",
                          ["SemiconjBy", "pow_zero", "SemiconjBy.one_right", "pow_succ",
                           "SemiconjBy.mul_right"]),
            "conj_mk": ("AddSemiconjBy.conj_mk",
                        ["SemiconjBy", "mul_assoc", "inv_mul_self", "mul_one"]),
            "conj_iff": ("AddSemiconjBy.conj_iff",
                         ["SemiconjBy", "mul_assoc", "inv_mul_cancel_right", "mul_left_cancel_iff",
                          "mul_right_cancel_iff"]),
            "semiconjBy_iff_eq": ("addSemiconjBy_iff_eq",
                                  ["CancelCommMonoid", "SemiconjBy", "mul_left_cancel", "Eq.trans",
                                   "mul_comm"]),
        }, None),
    "Mathlib.Golden.Broken": (
        "mathlib/Mathlib/Golden/Broken.lean", False, {
            "golden_ok": (None, []), "golden_broken": (None, []),
        }, ("golden_no_such_lemma", "unknown identifier 'golden_no_such_lemma'")),
}


class Source:
    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts = [0] + [m.end() for m in re.finditer("\n", text)]

    def byte(self, i: int) -> int:
        return len(self.text[:i].encode("utf-8"))

    def pos(self, i: int) -> tuple[int, int]:
        """Lean Position of character index i: 1-based line, 0-based code-point column."""
        line = max(n for n, s in enumerate(self.line_starts) if s <= i)
        return line + 1, i - self.line_starts[line]


def command_starts(text: str) -> list[int]:
    """Character index of every top-level command after the imports. A command starts at a
    column-0 line; a declaration starts at its doc comment or first attribute and runs through
    its keyword line (attribute strings may continue at column 0)."""
    starts: list[int] = []
    offset = 0
    in_block = False
    awaiting_keyword = False
    for line in text.splitlines(keepends=True):
        here = offset
        offset += len(line)
        if in_block:
            in_block = "-/" not in line
            continue
        if line.startswith("/-") and not line.startswith(("/-!", "/--")):
            in_block = "-/" not in line  # a plain comment (the copyright block)
            continue
        if line.startswith("import ") or not line.strip() or line[0] in " \t|" or \
                line.startswith("--"):
            continue
        if awaiting_keyword:
            awaiting_keyword = not KEYWORD.match(line)
            continue
        starts.append(here)
        if line.startswith(("/--", "@[")):
            awaiting_keyword = not KEYWORD.match(line)
        if line.startswith(("/-!", "/--")) and "-/" not in line:
            in_block = True
    return starts


def kind_of(cmd: str) -> str:
    if cmd.startswith(("/--", "@[", "theorem", "def", "protected")):
        return DECL
    for prefix, kind in KINDS.items():
        if cmd.startswith(prefix):
            return kind
    raise ValueError(f"unknown command: {cmd[:40]!r}")


def module_lines(module: str) -> list[dict]:
    rel, premises, theorems, error = MODULES[module]
    src = Source((HERE / rel).read_text(encoding="utf-8"))
    text = src.text
    starts = command_starts(text)
    cmds, decls = [], []
    namespace: list[str] = []
    for n, start in enumerate(starts):
        stop = starts[n + 1] if n + 1 < len(starts) else len(text)
        body = text[start:stop].rstrip()
        end = start + len(body)
        kind = kind_of(body)
        cmd = {"t": "cmd", "module": module, "kind": kind, "start_byte": src.byte(start),
               "end_byte": src.byte(end)}
        if kind == "Lean.Parser.Command.namespace":
            namespace.append(body.split()[1])
        elif kind == "Lean.Parser.Command.end" and namespace and body.split()[-1] == namespace[-1]:
            namespace.pop()
        if kind == DECL:
            m = KEYWORD.search(body)
            assert m, body[:80]
            keyword, ident = m.group(1), m.group(2)
            after = body[m.end():]
            simple = after.find(":=")
            eqns = re.search(r"\n\s*\|", after)
            val = simple if simple >= 0 else (eqns.start() + eqns.group().index("|"))
            cmd.update(decl_kind=DECL_KINDS[keyword], decl_id=ident,
                       val_start_byte=src.byte(start + m.end() + val))
            if keyword == "theorem":
                additive, prem = theorems[ident]
                full = ".".join([*namespace, ident])
                line, col = src.pos(start)
                eline, ecol = src.pos(end)
                sline, scol = src.pos(start + m.start(2))
                decls.append({"t": "decl", "module": module, "name": full, "line": line,
                              "column": col, "end_line": eline, "end_column": ecol,
                              "sel_line": sline, "sel_column": scol, "sel_end_line": sline,
                              "sel_end_column": scol + len(ident),
                              **({"premises": prem} if premises else {})})
                if additive:
                    attr = body.index("to_additive")
                    close = body.index("]\n", attr)
                    a_line, a_col = src.pos(start + attr)
                    ae_line, ae_col = src.pos(start + close)
                    decls.append({"t": "decl", "module": module, "name": additive,
                                  "line": a_line, "column": a_col, "end_line": ae_line,
                                  "end_column": ae_col, "sel_line": a_line, "sel_column": a_col,
                                  "sel_end_line": a_line,
                                  "sel_end_column": a_col + len("to_additive"),
                                  **({"premises": []} if premises else {})})
        cmds.append(cmd)
    decls.sort(key=lambda d: (d["line"], d["column"], d["name"]))
    assert {d["name"].rsplit(".", 1)[-1] for d in decls} >= set(theorems), module
    done: dict = {"t": "done", "module": module, "commands": len(cmds), "decls": len(decls),
                  "ms": 2874 if premises else 1906}
    if error:
        ident, message = error
        i = text.index(ident)
        line, col = src.pos(i)
        done["errors"] = [{"severity": "error", "line": line, "column": col, "text": message,
                           "end_line": line, "end_column": col + len(ident)}]
    return decls + cmds + [done]


def main() -> None:
    out = [*module_lines("Mathlib.Algebra.Group.Semiconj.Defs"),
           *module_lines("Mathlib.Golden.Broken"),
           {"t": "error", "module": "Mathlib.Does.Not.Exist",
            "message": "cannot read lean/test/golden/mathlib/Mathlib/Does/Not/Exist.lean: "
                       "no such file or directory (error code: 2)\n"
                       "  file: lean/test/golden/mathlib/Mathlib/Does/Not/Exist.lean"},
           {"t": "error", "module": "", "message": "unknown op \"modules\" (expected \"module\")"}]
    for line in out:
        print(json.dumps(line, ensure_ascii=False, separators=(",", ":")))


if __name__ == "__main__":
    main()
