"""Records produced by the Mathlib extraction."""

from __future__ import annotations

import msgspec


class TheoremContext(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What is needed to restate a theorem outside its file.

    `commands` is the ordered list of scope commands active at the theorem (namespace/section
    openers and the open/variable/universe/set_option/local commands inside them); `text` is
    the imports followed by those commands, ready to be used as a checker header."""

    imports: list[str] = msgspec.field(default_factory=list)
    namespaces: list[str] = msgspec.field(default_factory=list)
    opens: list[str] = msgspec.field(default_factory=list)
    variables: list[str] = msgspec.field(default_factory=list)
    universes: list[str] = msgspec.field(default_factory=list)
    other: list[str] = msgspec.field(default_factory=list)
    commands: list[str] = msgspec.field(default_factory=list)
    text: str = ""


class ExtractedTheorem(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One Mathlib theorem. `statement + proof` reproduces the source from the `theorem`/`lemma`
    keyword to the end; `modifiers` (doc comment, attributes, `protected`) precede it and
    `inline_prefix` holds a `variable ... in`/`open ... in` wrapper when there is one.

    `val_kind` is "term" when the value starts with `:=` (then `statement` ends in `:=`),
    "eqns" for `| pat => ...` values, "where" for structure-instance values."""

    name: str
    module: str
    path: str
    keyword: str
    statement: str
    proof: str
    val_kind: str
    modifiers: str = ""
    inline_prefix: str = ""
    context: TheoremContext = msgspec.field(default_factory=TheoremContext)
    premises: list[str] | None = None
    # Byte range of the whole declaration (modifiers included) in the module source, the
    # start of its first line (the end of the STP file-prefix context) and its 1-based line.
    start_byte: int = 0
    end_byte: int = 0
    line_start_byte: int = 0
    line: int = 0

    @property
    def full_text(self) -> str:
        return self.modifiers + self.statement + self.proof

    @property
    def lemma_statement(self) -> str:
        """The original's lemma text: the declaration before its value, stripped."""
        if self.val_kind == "term":
            return (self.modifiers + self.statement)[:-2].strip()
        return (self.modifiers + self.statement).strip()


class ModuleSummary(msgspec.Struct, kw_only=True, omit_defaults=True):
    module: str
    status: str  # "done" | "failed"
    commands: int = 0
    decls: int = 0
    theorems: int = 0
    lean_errors: int = 0
    ms: int = 0
    message: str = ""
