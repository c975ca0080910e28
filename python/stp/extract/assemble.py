"""Joining the extractor's command and declaration lines with the source bytes.

"Dumb Lean, smart Python" (docs/reference.md §13.2): Lean reports byte ranges of top-level commands and
declaration ranges of theorem constants; this module slices the source, splits statement from
proof at the value start, and folds the scope commands (namespace/section/end/open/variable/...)
that precede each theorem into the context needed to restate it.
"""

from __future__ import annotations

import bisect
import re
from collections import Counter
from dataclasses import dataclass, field

from stp.data import mathlib_files
from stp.errors import InputFormatError
from stp.extract.records import ExtractedTheorem, TheoremContext
from stp.lean.protocol import ExtractCommand, ExtractDecl, ExtractDone, ExtractFailed

P = "Lean.Parser.Command."
NAMESPACE, SECTION, END = P + "namespace", P + "section", P + "end"
NONCOMPUTABLE_SECTION = P + "noncomputableSection"
IN = P + "in"
DECLARATION = P + "declaration"
THEOREM_KINDS = {P + "theorem", "lemma", "Mathlib.Tactic.lemma"}
# Commands that change the scope of everything after them until the enclosing `end`.
SCOPE_KINDS = {
    P + "open": "opens",
    P + "variable": "variables",
    P + "universe": "universes",
    P + "set_option": "other",
    P + "include": "other",
    P + "omit": "other",
}
_IMPORT = re.compile(rb"^\s*(?:public\s+)?(?:meta\s+)?import\s+([^\s]+)", re.M)
_KEYWORD = re.compile(r"\b(theorem|lemma)\b")


@dataclass
class _Frame:
    kind: str  # "namespace" | "section"
    name: str
    opener: str
    commands: list[tuple[str, str]] = field(default_factory=list)  # (category, text)


@dataclass
class ModuleAssembly:
    theorems: list[ExtractedTheorem]
    skipped: Counter[str]
    lean_errors: int


class AssemblyError(InputFormatError):
    """The extractor output does not fit the source (wrong file or a protocol bug).

    An input-format error like any malformed file: `assemble_directory` turns it into that
    module's failure (one bad module never stops the others), and a direct caller that lets it
    through gets one line from the CLI, never a traceback."""


def _line_starts(source: bytes) -> list[int]:
    starts = [0]
    for m in re.finditer(rb"\n", source):
        starts.append(m.end())
    return starts


def _byte_of(source: bytes, starts: list[int], line: int, column: int) -> int:
    """Byte offset of a Lean position (1-based line, 0-based column in code points)."""
    if line < 1 or line > len(starts):
        raise AssemblyError(f"line {line} outside the source ({len(starts)} lines)")
    begin = starts[line - 1]
    end = starts[line] if line < len(starts) else len(source)
    text = source[begin:end].decode("utf-8")
    if column > len(text):
        raise AssemblyError(f"column {column} outside line {line}")
    return begin + len(text[:column].encode("utf-8"))


def _imports(source: bytes, first_command: int) -> list[str]:
    return [m.group(1).decode("utf-8") for m in _IMPORT.finditer(source[:first_command])]


def _is_theorem_command(cmd: ExtractCommand) -> bool:
    if cmd.kind in THEOREM_KINDS:
        return True
    return cmd.kind == DECLARATION and cmd.decl_kind in THEOREM_KINDS


def _scope_category(cmd: ExtractCommand, text: str) -> str | None:
    category = SCOPE_KINDS.get(cmd.kind)
    if category is not None:
        return category
    head = text.lstrip()
    if cmd.kind == P + "attribute" and ("[local" in head or "[scoped" in head):
        return "other"
    if head.startswith(("local ", "scoped ")) and cmd.kind != DECLARATION:
        return "other"  # local notation / infix / macro_rules
    return None


def _find_value_start(text: str, start: int) -> int | None:
    """Index of the first top-level `:=` or `|` at/after `start`, skipping brackets, comments
    and strings. Used for declarations nested in `... in` commands, whose value start the
    extractor does not report."""
    depth = 0
    i, n = start, len(text)
    while i < n:
        c = text[i]
        if text.startswith("--", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
            continue
        if text.startswith("/-", i):
            j = text.find("-/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            i = j + 1
            continue
        if c in "([{⟨⦃":
            depth += 1
        elif c in ")]}⟩⦄":
            depth -= 1
        elif depth == 0 and (text.startswith(":=", i) or c == "|"):
            return i
        i += 1
    return None


def _context(imports: list[str], stack: list[_Frame]) -> TheoremContext:
    ctx = TheoremContext(imports=list(imports))
    lines = [f"import {m}" for m in imports]
    for frame in stack:
        if frame.opener:
            lines.append(frame.opener)
            ctx.commands.append(frame.opener)
        if frame.kind == "namespace":
            ctx.namespaces.append(frame.name)
        for category, text in frame.commands:
            getattr(ctx, category).append(text)
            ctx.commands.append(text)
            lines.append(text)
    ctx.text = "\n".join(lines) + ("\n" if lines else "")
    return ctx


def _namespace_prefix(stack: list[_Frame]) -> str:
    return ".".join(f.name for f in stack if f.kind == "namespace" and f.name)


def _expected_name(stack: list[_Frame], decl_id: str) -> str:
    if decl_id.startswith("_root_."):
        return decl_id[len("_root_."):]
    prefix = _namespace_prefix(stack)
    return f"{prefix}.{decl_id}" if prefix else decl_id


def assemble_module(module: str, path: str, source: bytes,
                    messages: list[ExtractCommand | ExtractDecl | ExtractDone | ExtractFailed]
                    ) -> ModuleAssembly:
    """Theorem records of one module from its extractor lines and its source bytes."""
    commands = sorted((m for m in messages if isinstance(m, ExtractCommand)),
                      key=lambda c: c.start_byte)
    decls = [m for m in messages if isinstance(m, ExtractDecl)]
    done = [m for m in messages if isinstance(m, ExtractDone)]
    skipped: Counter[str] = Counter()
    for m in messages:
        if getattr(m, "module", module) != module:
            raise AssemblyError(f"{module}: a line for module {m.module!r} in its output")
    for c in commands:
        if not 0 <= c.start_byte <= c.end_byte <= len(source):
            raise AssemblyError(f"{module}: command range {c.start_byte}..{c.end_byte} outside "
                                f"the source ({len(source)} bytes): wrong file?")
    text_cache: dict[int, str] = {}

    def cmd_text(i: int) -> str:
        if i not in text_cache:
            c = commands[i]
            text_cache[i] = source[c.start_byte:c.end_byte].decode("utf-8")
        return text_cache[i]

    starts = _line_starts(source)
    cmd_starts = [c.start_byte for c in commands]
    imports = _imports(source, commands[0].start_byte if commands else len(source))

    # Which decls belong to which command.
    by_cmd: dict[int, list[tuple[ExtractDecl, int, int, int, int]]] = {}
    for d in decls:
        try:
            begin = _byte_of(source, starts, d.line, d.column)
            end = _byte_of(source, starts, d.end_line, d.end_column)
            sel = _byte_of(source, starts, d.sel_line, d.sel_column)
            sel_end = _byte_of(source, starts, d.sel_end_line, d.sel_end_column)
        except AssemblyError as err:
            raise AssemblyError(f"{module}: decl {d.name} (lines {d.line}-{d.end_line}): "
                                f"{err}") from None
        i = bisect.bisect_right(cmd_starts, begin) - 1
        if i < 0 or begin >= commands[i].end_byte:
            skipped["outside_commands"] += 1
            continue
        by_cmd.setdefault(i, []).append((d, begin, end, sel, sel_end))

    stack: list[_Frame] = []
    theorems: list[ExtractedTheorem] = []
    for i, cmd in enumerate(commands):
        text = cmd_text(i)
        if cmd.kind == NAMESPACE:
            name = text.split(None, 1)[1].strip() if len(text.split()) > 1 else ""
            stack.append(_Frame("namespace", name, text.strip()))
            continue
        if cmd.kind in (SECTION, NONCOMPUTABLE_SECTION):
            parts = text.split()
            name = parts[-1] if parts and parts[-1] != "section" else ""
            stack.append(_Frame("section", name, text.strip()))
            continue
        if cmd.kind == END:
            if stack and stack[-1].kind != "root":
                stack.pop()
            else:
                skipped["unmatched_end"] += 1
            continue
        category = _scope_category(cmd, text)
        if category is not None:
            target = stack[-1].commands if stack else None
            if target is None:
                stack.insert(0, _Frame("root", "", ""))
                target = stack[0].commands
            target.append((category, text.strip()))
            continue
        entries = by_cmd.get(i)
        if not entries:
            continue
        theorem_like = _is_theorem_command(cmd) or cmd.kind == IN
        if not theorem_like:
            skipped[f"not_a_theorem_command:{cmd.kind}"] += len(entries)
            continue
        record = _build(module, path, source, starts, cmd, text, stack, imports, entries,
                        skipped)
        if record is not None:
            theorems.append(record)
    lean_errors = sum(len(d.errors) for d in done)
    return ModuleAssembly(theorems, skipped, lean_errors)


def _build(module: str, path: str, source: bytes, starts: list[int], cmd: ExtractCommand,
           cmd_text: str, stack: list[_Frame], imports: list[str],
           entries: list[tuple[ExtractDecl, int, int, int, int]],
           skipped: Counter[str]) -> ExtractedTheorem | None:
    # Choose the constant the source declares (generated to_additive/alias constants share the
    # range): the name the namespace stack predicts, else one whose last component is the
    # identifier written at the selection.
    _, _begin0, _, sel0, sel_end0 = entries[0]
    ident = source[sel0:sel_end0].decode("utf-8")
    decl_id = cmd.decl_id or ident
    expected = _expected_name([f for f in stack if f.kind != "root"], decl_id)
    chosen = [e for e in entries if e[0].name == expected]
    if not chosen:
        last = decl_id.rsplit(".", 1)[-1]
        chosen = [e for e in entries if e[0].name.rsplit(".", 1)[-1] == last]
    if not chosen:
        skipped["name_not_in_source"] += len(entries)
        return None
    skipped["generated_or_duplicate"] += len(entries) - 1
    d, begin, end, sel, _ = chosen[0]
    head = source[begin:sel].decode("utf-8")
    kw = None
    for m in _KEYWORD.finditer(head):
        kw = m
    if kw is None:
        skipped["no_theorem_keyword"] += 1
        return None
    kw_start = begin + len(head[: kw.start()].encode("utf-8"))
    decl_text = source[kw_start:end].decode("utf-8")
    if cmd.val_start_byte is not None and cmd.kind != IN:
        if not kw_start <= cmd.val_start_byte <= end:
            raise AssemblyError(f"{module}: value start {cmd.val_start_byte} outside "
                                f"declaration {d.name} ({kw_start}..{end})")
        split = len(source[kw_start:cmd.val_start_byte].decode("utf-8"))
    else:
        ident_end = len(source[kw_start:sel].decode("utf-8")) + len(
            source[sel:sel_end0].decode("utf-8"))
        found = _find_value_start(decl_text, ident_end)
        if found is None:
            skipped["no_value"] += 1
            return None
        split = found
    statement, proof = decl_text[:split], decl_text[split:]
    if proof.startswith(":="):
        val_kind, statement, proof = "term", statement + ":=", proof[2:]
    elif proof.startswith("|"):
        val_kind = "eqns"
    elif proof.startswith("where"):
        val_kind = "where"
    else:
        val_kind = "unknown"
    line = bisect.bisect_right(starts, begin)
    return ExtractedTheorem(
        name=d.name, module=module, path=path, keyword=kw.group(1),
        statement=statement, proof=proof, val_kind=val_kind,
        modifiers=source[begin:kw_start].decode("utf-8"),
        inline_prefix=source[cmd.start_byte:begin].decode("utf-8") if cmd.kind == IN else "",
        context=_context(imports, stack),
        premises=d.premises, start_byte=begin, end_byte=end,
        line_start_byte=starts[line - 1], line=line,
    )


@dataclass
class DirectoryAssembly:
    modules: int
    failed_modules: list[tuple[str, str]]
    theorems: int
    lean_errors: int
    skipped: Counter[str]
    path: str


def assemble_directory(out_dir: str, modules: list[str] | None = None) -> DirectoryAssembly:
    """Assemble every extracted module under `out_dir` into `theorems.jsonl.gz` (module order,
    then source order) and write `summary.json`."""
    from stp import storage
    from stp.extract.driver import done_modules, read_raw, source_path, summarize

    names = sorted(done_modules(out_dir) if modules is None else modules)
    failed: list[tuple[str, str]] = []
    skipped: Counter[str] = Counter()
    lean_errors = 0
    records: list[ExtractedTheorem] = []
    for module in names:
        lines = read_raw(out_dir, module)
        status = summarize(module, lines)
        if status.status != "done":
            failed.append((module, status.message))
            continue
        source = storage.read_bytes(source_path(out_dir, module))
        rel = module.replace(".", "/") + ".lean"
        try:
            result = assemble_module(module, rel, source, lines)
        except AssemblyError as err:
            failed.append((module, f"assembly: {err}"))
            continue
        records.extend(result.theorems)
        skipped.update(result.skipped)
        lean_errors += result.lean_errors
    path = storage.join(out_dir, mathlib_files.THEOREMS)
    storage.write_jsonl(path, records)
    storage.write_json(storage.join(out_dir, "summary.json"), {
        "modules": len(names), "failed_modules": len(failed), "theorems": len(records),
        "lean_errors": lean_errors, "skipped": dict(skipped),
        "failures": [{"module": m, "message": msg} for m, msg in failed],
    })
    return DirectoryAssembly(len(names), failed, len(records), lean_errors, skipped, path)
