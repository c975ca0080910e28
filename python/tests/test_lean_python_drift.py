"""Drift guard between the Lean checker and Python, without Lean: the closed sets of the wire.

The Lean side writes each closed set once, as an inductive with one table
`def X.wire : X → String` in `lean/STP/Protocol.lean` (issue #23). This test reads those tables
with regular expressions and compares them with the `Literal` sets and the `REASONS` mapping of
`python/stp/lean/protocol.py`, so a reason, verdict, severity, mode, profile or role renamed,
added or dropped on one side only fails here (the mutation tests below prove it on temporary
copies), long before a machine with Lean runs the golden files.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

import pytest

from stp.lean import protocol as P

REPO = Path(__file__).resolve().parents[2]
LEAN_PROTOCOL = REPO / "lean" / "STP" / "Protocol.lean"

# Lean set name -> Python's closed set of wire strings. `Reason` is the key set of `REASONS`.
PYTHON_SETS_OF = {
    "Verdict": lambda: set(get_args(P.Verdict)),
    "Severity": lambda: set(get_args(P.Severity)),
    "Mode": lambda: set(get_args(P.Mode)),
    "Profile": lambda: set(get_args(P.Profile)),
    "Role": lambda: set(get_args(P.Role)),
    "Reason": lambda: set(P.REASONS),
}

# The sets Lean reads from the wire: they also have `X.all`, which `parseWire` searches.
INPUT_SETS = ("Mode", "Profile", "Role")

# Reasons that exist in Python's REASONS only, each with why the Lean checker never sends it.
# (None today: reasons the Python driver makes itself live in `stp.verify.types.DRIVER_REASONS`,
# not in `REASONS`.)
PYTHON_ONLY_REASONS: dict[str, str] = {}

# Protocol 4 reached the Lean side (helper L1) before the Python side (helper P1, same session).
# While Python still speaks protocol 3 the ONLY accepted differences are exactly these, Lean-only;
# once Python's PROTOCOL_VERSION is 4 the sets must agree exactly and this table is inert
# (delete it then).
PROTOCOL_4_LEAN_ONLY = {"Reason": {"forbidden_declaration"}, "Role": {"statement"}}

_WIRE_TABLE = re.compile(
    r'^def (\w+)\.wire : \1 → String\n((?:  \| \.\w+ => "[^"\n]*"\n)+)', re.MULTILINE)
_WIRE_LINE = re.compile(r'^  \| \.(\w+) => "([^"\n]*)"$', re.MULTILINE)
_INDUCTIVE = re.compile(r"^inductive (\w+) where\n((?:  \| \w+\n)+)  deriving ", re.MULTILINE)
_ALL_LIST = re.compile(r"^def (\w+)\.all : List \1 := \[([^\]\n]*)\]$", re.MULTILINE)
_PROTOCOL_VERSION = re.compile(r"^def protocolVersion : Nat := (\d+)$", re.MULTILINE)
_CHUNK_BYTES = re.compile(r"^def exportChunkBytes : Nat := ([\d *]+)$", re.MULTILINE)


def lean_wire_tables(text: str) -> dict[str, list[tuple[str, str]]]:
    """{set: [(constructor, wire string), ...]} in table order, from every `X.wire` table."""
    return {m.group(1): _WIRE_LINE.findall(m.group(2)) for m in _WIRE_TABLE.finditer(text)}


def lean_constructors(text: str) -> dict[str, list[str]]:
    """{inductive: [constructor, ...]} for the field-less inductives (one `| c` per line)."""
    return {m.group(1): re.findall(r"^  \| (\w+)$", m.group(2), re.MULTILINE)
            for m in _INDUCTIVE.finditer(text)}


def lean_all_lists(text: str) -> dict[str, list[str]]:
    """{set: [constructor, ...]} from `def X.all : List X := [.a, .b]`."""
    return {m.group(1): [c.strip().removeprefix(".") for c in m.group(2).split(",") if c.strip()]
            for m in _ALL_LIST.finditer(text)}


def lean_protocol_version(text: str) -> int:
    m = _PROTOCOL_VERSION.search(text)
    assert m, f"{LEAN_PROTOCOL}: no `def protocolVersion : Nat := N` line"
    return int(m.group(1))


def lean_export_chunk_bytes(text: str) -> int:
    """`def exportChunkBytes : Nat := 4 * 1024 * 1024` (a product of literals)."""
    m = _CHUNK_BYTES.search(text)
    assert m, f"{LEAN_PROTOCOL}: no `def exportChunkBytes : Nat := a * b * …` line"
    value = 1
    for factor in m.group(1).split("*"):
        value *= int(factor)
    return value


def constant_drift(lean_text: str, python_protocol: int, python_chunk_bytes: int | None) -> list[str]:
    """Protocol constants written on both sides: the version and the export chunk size
    (Python's `EXPORT_CHUNK_BYTES` exists from protocol 4 on)."""
    lean_version = lean_protocol_version(lean_text)
    if python_protocol == 3 and lean_version == 4:
        return [] if python_chunk_bytes is None else ["EXPORT_CHUNK_BYTES at protocol 3"]
    problems = []
    if lean_version != python_protocol:
        problems.append(f"protocol version: Lean {lean_version}, Python {python_protocol}")
    lean_chunk = lean_export_chunk_bytes(lean_text)
    if lean_chunk != python_chunk_bytes:
        problems.append(f"export chunk bytes: Lean {lean_chunk}, Python {python_chunk_bytes}")
    return problems


def table_problems(text: str) -> list[str]:
    """Each closed set's table names every constructor exactly once with a distinct wire string,
    and each input set's `X.all` lists exactly its constructors."""
    tables, ctors, alls = lean_wire_tables(text), lean_constructors(text), lean_all_lists(text)
    problems = []
    for name in PYTHON_SETS_OF:
        if name not in tables or name not in ctors:
            problems.append(f"{name}: no `inductive {name}` or no `def {name}.wire` table")
            continue
        table_ctors = [c for c, _ in tables[name]]
        wires = [w for _, w in tables[name]]
        if sorted(table_ctors) != sorted(ctors[name]):
            problems.append(f"{name}: table constructors {table_ctors} != inductive {ctors[name]}")
        if len(set(wires)) != len(wires):
            problems.append(f"{name}: a wire string appears twice: {wires}")
        if name in INPUT_SETS and sorted(alls.get(name, [])) != sorted(ctors[name]):
            problems.append(f"{name}.all {alls.get(name)} != constructors {ctors[name]}")
    return problems


def drift(lean_text: str, python_sets: dict[str, set[str]], python_protocol: int) -> list[str]:
    """Every difference between Lean's wire strings and Python's sets that is not accepted."""
    lean_version = lean_protocol_version(lean_text)
    pending = python_protocol == 3 and lean_version == 4
    if lean_version != python_protocol and not pending:
        return [f"protocol version: Lean {lean_version}, Python {python_protocol}"]
    tables = lean_wire_tables(lean_text)
    problems = []
    for name, py in python_sets.items():
        lean = {w for _, w in tables.get(name, [])}
        lean_only = lean - py
        python_only = py - lean
        if name == "Reason":
            python_only -= set(PYTHON_ONLY_REASONS)
        expected_lean_only = PROTOCOL_4_LEAN_ONLY.get(name, set()) if pending else set()
        if lean_only != expected_lean_only:
            problems.append(f"{name}: only in Lean {sorted(lean_only)}, expected "
                            f"{sorted(expected_lean_only)}")
        if python_only:
            problems.append(f"{name}: only in Python {sorted(python_only)}")
    return problems


def python_sets() -> dict[str, set[str]]:
    return {name: get() for name, get in PYTHON_SETS_OF.items()}


@pytest.fixture(scope="module")
def lean_text() -> str:
    return LEAN_PROTOCOL.read_text(encoding="utf-8")


def test_tables_are_complete(lean_text: str) -> None:
    assert table_problems(lean_text) == []
    # The parser really saw the tables (a regex that matched nothing would pass vacuously).
    tables = lean_wire_tables(lean_text)
    assert set(PYTHON_SETS_OF) <= set(tables)
    assert ("usesSorry", "sorry") in tables["Reason"]
    assert len(tables["Reason"]) >= 16


def test_lean_and_python_closed_sets_agree(lean_text: str) -> None:
    assert drift(lean_text, python_sets(), P.PROTOCOL_VERSION) == []


def test_python_only_reasons_are_documented() -> None:
    for reason, why in PYTHON_ONLY_REASONS.items():
        assert reason in P.REASONS and why


def test_no_reason_string_outside_the_table() -> None:
    """The other Lean modules name reasons by constructor, never by wire string."""
    wires = {w for _, w in lean_wire_tables(LEAN_PROTOCOL.read_text(encoding="utf-8"))["Reason"]}
    for path in sorted((REPO / "lean" / "STP").glob("*.lean")):
        if path.name == "Protocol.lean":
            continue
        code = path.read_text(encoding="utf-8")
        # The gate's syntax lists name the keyword `sorry` (not the reason).
        exempt = {"sorry"} if path.name.startswith("Gate") else set()
        for quoted in re.findall(r'"([a-z_]+)"', code):
            if quoted in wires and quoted not in exempt:
                pytest.fail(f"{path.name}: reason string \"{quoted}\" written inline")


def test_renaming_a_reason_in_lean_only_is_caught(lean_text: str, tmp_path: Path) -> None:
    line = '  | .parseError => "parse_error"\n'
    assert line in lean_text
    copy = tmp_path / "Protocol.lean"
    copy.write_text(lean_text.replace(line, '  | .parseError => "parse_failure"\n'), "utf-8")
    problems = drift(copy.read_text("utf-8"), python_sets(), P.PROTOCOL_VERSION)
    assert any("parse_failure" in p for p in problems), problems
    assert any("parse_error" in p for p in problems), problems


def test_renaming_a_reason_in_python_only_is_caught(lean_text: str) -> None:
    sets = python_sets()
    sets["Reason"] = (sets["Reason"] - {"bad_axiom"}) | {"axiom_not_allowed"}
    problems = drift(lean_text, sets, P.PROTOCOL_VERSION)
    assert any("bad_axiom" in p for p in problems), problems
    assert any("axiom_not_allowed" in p for p in problems), problems


def test_other_sets_and_tables_are_checked_too(lean_text: str) -> None:
    sets = python_sets()
    sets["Severity"] = {"error", "warning", "information"}
    assert any(p.startswith("Severity") for p in drift(lean_text, sets, P.PROTOCOL_VERSION))
    # A constructor left out of its table, or of `X.all`, is a table problem.
    dropped = lean_text.replace('  | .lenient => "lenient"\n', "")
    assert any(p.startswith("Mode") for p in table_problems(dropped))
    narrowed = lean_text.replace("[.check, .statement, .replay]", "[.check, .replay]")
    assert any(p.startswith("Role.all") for p in table_problems(narrowed))


def test_protocol_versions_must_agree(lean_text: str) -> None:
    version = lean_protocol_version(lean_text)
    assert drift(lean_text, python_sets(), version + 1)[0].startswith("protocol version")


def test_protocol_constants_agree(lean_text: str) -> None:
    chunk = getattr(P, "EXPORT_CHUNK_BYTES", None)
    assert constant_drift(lean_text, P.PROTOCOL_VERSION, chunk) == []
    assert lean_export_chunk_bytes(lean_text) == 4 * 1024 * 1024
    # Once both sides speak protocol 4, a chunk size changed on one side only is caught.
    version = lean_protocol_version(lean_text)
    assert constant_drift(lean_text, version, 8 * 1024 * 1024)[0].startswith("export chunk")
    assert constant_drift(lean_text, version, lean_export_chunk_bytes(lean_text)) == []
