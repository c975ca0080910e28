"""Drift guard between the Python protocol mirror and the Lean checker sources (issue #23 item 6).

The golden files pin the wire format by example; this test reads lean/STP/*.lean directly and
fails when a protocol field name, an op tag, a reason string or a shared constant exists on one
side only. No Lean toolchain is needed: it compares names as text.

Both sides are edited by different people (the Lean side by the Lean helpers, Python here), so a
transition is allowed only in exactly one known state: Lean still at protocol 3 while Python
speaks protocol 4 (`TRANSITION`), with exactly the listed differences. Any other difference
fails; once the Lean side declares `protocolVersion := 4`, nothing may differ at all.
"""

from __future__ import annotations

import re
import typing
from pathlib import Path

import msgspec

from stp.lean import protocol as P

REPO = Path(__file__).resolve().parents[2]
LEAN = REPO / "lean" / "STP"
# Every checker source but these (the extractor's files are covered by its golden test; the
# gate's keyword lists, e.g. "native_decide", hold no protocol names). New files are scanned.
NOT_PROTOCOL = {"Gate.lean", "GateAllowList.lean", "Extract.lean", "ExtractMain.lean"}

# String literals of the checker sources that are not wire names: the prefix of the matcher
# names the judge admits (`<target>.match_<k>`, Export.lean).
NOT_NAMES = {"match_"}

# Lean at protocol 3 while Python speaks protocol 4: the only tolerated difference.
TRANSITION: dict[int, tuple[set[str], set[str]]] = {
    3: (
        # in Python (protocol 4) and not yet in the Lean sources
        {"imports", "reference", "export_chunks", "export_chunk", "index", "data",
         "forbidden_declaration"},
        # in the Lean sources (protocol 3) and no longer in Python
        {"export_omitted", "too_large"},
    ),
}

# The checker's messages (the extractor's are pinned by its golden files and Extract.lean).
WIRE_STRUCTS = (P.CheckerConfig, P.Ready, P.CheckRequest, P.ReferenceRequest, P.ReplayRequest,
                P.CheckResponse, P.ExportChunk, P.LeanMessage)
CLOSED_SETS = (P.Role, P.Mode, P.Profile, P.Verdict, P.Severity)


def _lean_text() -> str:
    return "\n".join(path.read_text(encoding="utf-8") for path in sorted(LEAN.glob("*.lean"))
                     if path.name not in NOT_PROTOCOL)


def _lean_strings(text: str) -> set[str]:
    """Every string literal of the checker sources that looks like a protocol name (the C
    symbol names of `@[extern "…"]` attributes are not)."""
    text = re.sub(r'@\[extern\s+"[^"]*"\]', "", text)
    return set(re.findall(r'"([a-z][a-z0-9_]*)"', text))


def _lean_constant(text: str, name: str) -> int | None:
    """The value of `def <name> : Nat := <expr>` (products of integer literals only)."""
    m = re.search(rf"def\s+{name}\s*:\s*Nat\s*:=\s*([0-9 *]+)", text)
    if m is None:
        return None
    value = 1
    for factor in m.group(1).split("*"):
        value *= int(factor.strip())
    return value


def python_names() -> set[str]:
    """Field names, op/t tags, closed-set values and reasons of the Python mirror."""
    names: set[str] = set(P.REASONS)
    for struct in WIRE_STRUCTS:
        names |= {f.encode_name for f in msgspec.structs.fields(struct)}
        config = struct.__struct_config__
        names |= {config.tag_field, config.tag} if isinstance(config.tag, str) else set()
    for closed in CLOSED_SETS:
        names |= set(typing.get_args(closed))
    return {n for n in names if n}


def _difference() -> tuple[int | None, set[str], set[str]]:
    text = _lean_text()
    strings = _lean_strings(text)
    ours = python_names()
    lean_version = _lean_constant(text, "protocolVersion")
    python_only = {n for n in ours if n not in strings}
    # Lean-side names that look like protocol names (snake_case with an underscore: the reason
    # codes and most field names) but are unknown to Python
    lean_only = {s for s in strings if "_" in s and s not in ours and s not in NOT_NAMES}
    return lean_version, python_only, lean_only


def test_every_protocol_name_exists_on_both_sides() -> None:
    lean_version, python_only, lean_only = _difference()
    assert lean_version is not None, "lean/STP/Protocol.lean defines no protocolVersion"
    if lean_version == P.PROTOCOL_VERSION:
        assert not python_only, f"only in Python (add them to the Lean side): {python_only}"
        assert not lean_only, f"only in the Lean sources (mirror them in Python): {lean_only}"
        return
    assert lean_version in TRANSITION, (
        f"Lean speaks protocol {lean_version}, Python {P.PROTOCOL_VERSION}: no known transition")
    expected_python_only, expected_lean_only = TRANSITION[lean_version]
    assert python_only == expected_python_only, (
        f"protocol {lean_version} -> {P.PROTOCOL_VERSION} transition: only in Python "
        f"{sorted(python_only)}, expected {sorted(expected_python_only)}")
    assert lean_only == expected_lean_only, (
        f"protocol {lean_version} -> {P.PROTOCOL_VERSION} transition: only in Lean "
        f"{sorted(lean_only)}, expected {sorted(expected_lean_only)}")


def test_shared_constants_agree() -> None:
    text = _lean_text()
    lean_version = _lean_constant(text, "protocolVersion")
    if lean_version == P.PROTOCOL_VERSION:
        assert _lean_constant(text, "exportChunkBytes") == P.EXPORT_CHUNK_BYTES
        assert _lean_constant(text, "exportMaxBytes") is None, "protocol 4 never omits exports"
    else:
        assert lean_version in TRANSITION
        # protocol 3 had a cap instead of chunks: nothing to compare with EXPORT_CHUNK_BYTES yet
        assert _lean_constant(text, "exportChunkBytes") is None


def test_the_guard_sees_a_drift() -> None:
    """The guard itself: a name added on one side only is reported."""
    text = _lean_text() + '\n("made_up_field", Json.null)\n'
    strings = _lean_strings(text)
    assert "made_up_field" in strings and "made_up_field" not in python_names()
    assert "verdict" in strings and "verdict" in python_names()
