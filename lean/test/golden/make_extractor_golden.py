"""Derive `extractor_out.jsonl` from the real sources under `mathlib/` (run by hand; the tests
read the committed output and re-check every offset against the sources).

This is the one golden generator of the project: the Lean smoke run compares the real extractor
with its output, and the Python tests (assembly, driver, SFT, the fake extractor) replay it.

Sources: `mathlib/Mathlib/Algebra/Group/Semiconj/Defs.lean` is Mathlib's file byte for byte at
the project pin d1d1e4b72c6e009edd97cabe1d661b021fe8eeae (git blob 9cbd88eb…).
`mathlib/Mathlib/Algebra/Group/Semiconj/Basic.lean` is Mathlib's file at 0327127c (the pin's
version was not available to read); it brings `lemma`, `alias ⟨_, n⟩ := …`, `variable … in` and
an equation-style `lemma`. `mathlib/Mathlib/Golden/Broken.lean` is ours: a two-theorem module
with one Lean error, for the `done.errors` path.

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
* `lemma` (Mathlib's `Mathlib.Tactic.Lemma`) is a command of kind `lemma` with the theorem's
  child layout (`decl_id`, `val_start_byte`); an `alias ⟨_, n⟩ := t` command
  (`Batteries.Tactic.Alias.aliasLR`) adds a theorem whose range is the command and whose
  selection is `n`; `variable … in <decl>` is one `Lean.Parser.Command.in` command whose theorem's
  range starts at the inner declaration.
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
ALIAS_KIND = "Batteries.Tactic.Alias.aliasLR"
IN_KIND = "Lean.Parser.Command.in"
DECL_KINDS = {"theorem": "Lean.Parser.Command.theorem", "def": "Lean.Parser.Command.definition"}
# A declaration keyword at the start of a line, or after a one-line attribute (`@[…] lemma x`).
KEYWORD = re.compile(r"^(?:@\[[^\]\n]*\] )?(?:protected |private |noncomputable )*"
                     r"(theorem|lemma|def) ([^\s\[({:]+)", re.M)
ALIAS = re.compile(r"^(?:@\[[^\]\n]*\] )?alias ⟨_, ([^⟩\s]+)⟩", re.M)

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
    "Mathlib.Algebra.Group.Semiconj.Basic": (
        "mathlib/Mathlib/Algebra/Group/Semiconj/Basic.lean", True, {
            "inv_inv_symm_iff": ("AddSemiconjBy.neg_neg_symm_iff",
                                 ["SemiconjBy", "mul_inv_rev", "inv_inj", "eq_comm"]),
            "inv_symm_left_iff": ("AddSemiconjBy.neg_symm_left_iff",
                                  ["SemiconjBy", "eq_mul_inv_iff_mul_eq", "mul_assoc",
                                   "inv_mul_eq_iff_eq_mul", "eq_comm"]),
            "inv_right_iff": ("AddSemiconjBy.neg_right_iff",
                              ["SemiconjBy", "SemiconjBy.inv_symm_left_iff",
                               "SemiconjBy.inv_inv_symm_iff"]),
            "zpow_right": ("AddSemiconjBy.zsmul_right",
                           ["SemiconjBy", "zpow_natCast", "SemiconjBy.pow_right",
                            "zpow_negSucc", "SemiconjBy.inv_right_iff"]),
            "eq_one_iff": ("AddSemiconjBy.eq_zero_iff",
                           ["SemiconjBy", "conj_eq_one_iff", "SemiconjBy.eq",
                            "mul_inv_cancel_right"]),
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
            awaiting_keyword = not (KEYWORD.match(line) or ALIAS.match(line))
            continue
        starts.append(here)
        if line.rstrip().endswith(" in"):  # `variable … in`: the next declaration belongs to it
            awaiting_keyword = True
        elif line.startswith(("/--", "@[")):
            awaiting_keyword = not (KEYWORD.match(line) or ALIAS.match(line))
        if line.startswith(("/-!", "/--")) and "-/" not in line:
            in_block = True
    return starts


def kind_of(cmd: str) -> str:
    if cmd.split("\n", 1)[0].endswith(" in"):
        return IN_KIND
    if ALIAS.search(cmd):
        return ALIAS_KIND
    m = KEYWORD.search(cmd)
    if m is not None and m.group(1) == "lemma":
        return "lemma"
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
        if kind == ALIAS_KIND:
            m = ALIAS.search(body)
            assert m, body[:80]
            line, col = src.pos(start)
            eline, ecol = src.pos(end)
            sline, scol = src.pos(start + m.start(1))
            decls.append({"t": "decl", "module": module,
                          "name": ".".join([*namespace, m.group(1)]), "line": line,
                          "column": col, "end_line": eline, "end_column": ecol,
                          "sel_line": sline, "sel_column": scol, "sel_end_line": sline,
                          "sel_end_column": scol + len(m.group(1))})
        if kind in (DECL, "lemma", IN_KIND):
            m = KEYWORD.search(body)
            assert m, body[:80]
            keyword, ident = m.group(1), m.group(2)
            # The declaration starts at its doc comment/attribute; inside `… in` after the `in`.
            decl_start = start if kind != IN_KIND else start + body.index("\n") + 1
            after = body[m.end():]
            simple = after.find(":=")
            eqns = re.search(r"\n\s*\|", after)
            if eqns is not None and (simple < 0 or eqns.start() < simple):
                val = eqns.start() + eqns.group().index("|")
            else:
                val = simple
            if kind == DECL:
                cmd.update(decl_kind=DECL_KINDS[keyword])
            if kind != IN_KIND:
                cmd.update(decl_id=ident, val_start_byte=src.byte(start + m.end() + val))
            if keyword in ("theorem", "lemma"):
                additive, prem = theorems[ident]
                full = ".".join([*namespace, ident])
                line, col = src.pos(decl_start)
                eline, ecol = src.pos(end)
                sline, scol = src.pos(start + m.start(2))
                decls.append({"t": "decl", "module": module, "name": full, "line": line,
                              "column": col, "end_line": eline, "end_column": ecol,
                              "sel_line": sline, "sel_column": scol, "sel_end_line": sline,
                              "sel_end_column": scol + len(ident),
                              **({"premises": prem} if premises else {})})
                if additive:
                    attr = body.index("to_additive")
                    close = body.index("]", attr)
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
           *module_lines("Mathlib.Algebra.Group.Semiconj.Basic"),
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
