"""The wire protocol's golden files and smoke file, decoded with the msgspec structs.

Every golden line must decode into its struct and re-encode to the same JSON value (compared
parsed, so key order and spacing do not matter): the Lean programs, the Python structs and
docs/protocol.md describe one protocol."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import msgspec
import pytest

from stp.lean import protocol as P
from stp.verify.types import DRIVER_REASONS

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "lean" / "test" / "golden"
SMOKE = REPO / "lean" / "test" / "check_smoke.jsonl"
GOLDEN_SOURCES = GOLDEN / "mathlib"


def _lines(path: Path) -> list[str]:
    return [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _without_defaults(msg: msgspec.Struct, original: dict[str, Any]) -> dict[str, Any]:
    """`original` minus the keys holding their field's default (omit_defaults drops those)."""
    defaults: dict[str, Any] = {}
    for f in msgspec.structs.fields(msg):
        if f.default is msgspec.UNSET:
            continue  # an unset field is simply absent on the wire
        if f.default is not msgspec.NODEFAULT:
            defaults[f.encode_name] = f.default
        elif f.default_factory is not msgspec.NODEFAULT:
            defaults[f.encode_name] = f.default_factory()
    return {k: v for k, v in original.items()
            if not (k in defaults and json.loads(P.encoder.encode(defaults[k])) == v)}


def _roundtrip(path: Path, decoder: msgspec.json.Decoder) -> list[Any]:
    """Decode every line and re-encode it: the same JSON value comes back (fields that only
    restate a default are dropped by `omit_defaults` and compared as such)."""
    decoded = []
    for n, line in enumerate(_lines(path), start=1):
        msg = decoder.decode(line)
        again = json.loads(P.encoder.encode(msg))
        assert _without_defaults(msg, again) == _without_defaults(msg, json.loads(line)), (
            f"{path.name}:{n} does not re-encode losslessly")
        assert decoder.decode(P.encoder.encode(msg)) == msg
        decoded.append(msg)
    return decoded


def test_checker_input_golden_roundtrips() -> None:
    msgs = _roundtrip(GOLDEN / "checker_in.jsonl", P.checker_input_decoder)
    assert any(isinstance(m, P.CheckerConfig) for m in msgs)
    reqs = [m for m in msgs if isinstance(m, P.CheckRequest)]
    assert any(r.premises and r.name and r.max_heartbeats for r in reqs)  # every optional field
    configs = [m for m in msgs if isinstance(m, P.CheckerConfig)]
    assert {m.mode for m in configs} == {"strict", "lenient"}
    assert {m.profile for m in configs} == {"strict", "paper"}
    assert {m.header_trusted for m in configs} == {True, False}
    assert all(m.protocol == P.PROTOCOL_VERSION == 4 for m in configs)
    # Every config field is required by stp_check: Python must send each one, defaults included.
    for m in configs:
        assert json.loads(P.encode_line(m))["protocol"] == 4
        assert "imports" in json.loads(P.encode_line(m))
    assert {m.role for m in configs} == {"check", "statement", "replay"}
    assert {m.export for m in configs if m.role == "check"} == {True, False}
    assert all(not m.export for m in configs if m.role != "check")
    # the judge is sent no header text, only the modules Python read from the header
    judges = [m for m in configs if m.role == "replay"]
    assert judges and all(m.header == "" and m.imports for m in judges)
    assert all(m.imports == [] for m in configs if m.role != "replay")
    assert all(len(r.nonce) == 32 for r in reqs)
    refs = [m for m in msgs if isinstance(m, P.ReferenceRequest)]
    assert refs and any(r.max_heartbeats for r in refs)
    replays = [m for m in msgs if isinstance(m, P.ReplayRequest)]
    assert replays and any(r.max_heartbeats for r in replays)
    assert all(len(r.nonce) == 32 for r in replays + refs)
    # never any text to the judge, by construction: no proof, no statement
    assert set(P.ReplayRequest.__struct_fields__) == {"id", "nonce", "reference", "export",
                                                      "max_heartbeats"}


def _golden_objects(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in _lines(GOLDEN / name)]


def _joined_chunks(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The EXPORTs of the golden output that travel in chunks, joined (id -> EXPORT)."""
    joined: dict[str, str] = {}
    for row in rows:
        if row["op"] == "export_chunk":
            joined[row["id"]] = joined.get(row["id"], "") + row["data"]
    return {k: json.loads(v) for k, v in joined.items()}


def test_golden_exports_follow_the_export_grammar() -> None:
    """Every EXPORT and REFERENCE in the golden files decodes with the stand-in's decoders
    (which check tags, arities and that every index points at an earlier entry, as the spec
    requires), and the malformed one is refused; together they use every tag of the grammar."""
    from standin_checker import ExportError, decode_export, decode_reference

    exports = {}
    references = {}
    for name in ("checker_in.jsonl", "checker_out.jsonl"):
        rows = _golden_objects(name)
        for obj in rows:
            if isinstance(obj.get("export"), dict):
                exports[(name, obj["id"])] = obj["export"]
            if isinstance(obj.get("reference"), dict):
                references[(name, obj["id"])] = obj["reference"]
        for ident, export in _joined_chunks(rows).items():
            exports[(name, ident)] = export
    bad = exports.pop(("checker_in.jsonl", "32"))
    with pytest.raises(ExportError, match="out of range"):
        decode_export(bad)
    tags: set[str] = set()
    kinds: set[str] = set()
    for export in exports.values():
        consts, exprs = decode_export(export)
        assert consts
        tags |= {e[0] for e in exprs} | {lvl[0] for lvl in export["levels"]}
        kinds |= {c["kind"] for c in export["consts"]}
    assert tags == {"bv", "so", "c", "ap", "lam", "pi", "let", "nat", "str", "prj",
                    "z", "s", "max", "imax", "p"}
    assert kinds == {"thm", "def", "opaque"}
    assert exports[("checker_in.jsonl", "30")] == exports[("checker_out.jsonl", "0")], (
        "the judge's request forwards the check's export unchanged")
    assert ("checker_out.jsonl", "1") in exports, "a chunked export joins into an EXPORT"
    for ref in references.values():
        decode_reference(ref)
    assert references[("checker_in.jsonl", "30")] == references[("checker_out.jsonl", "40")], (
        "the judge's request forwards the statement process's reference unchanged")


def test_checker_output_golden_roundtrips_and_covers_every_reason() -> None:
    msgs = _roundtrip(GOLDEN / "checker_out.jsonl", P.checker_output_decoder)
    readies = [m for m in msgs if isinstance(m, P.Ready)]
    assert {r.ok for r in readies} == {True, False}
    assert all(r.protocol == 4 for r in readies)
    assert any(r.header_errors for r in readies)
    results = [m for m in msgs if isinstance(m, P.CheckResponse)]
    assert {r.verdict for r in results} == {"pass", "fail", "error"}
    reasons = {reason for r in results for reason in r.reasons}
    assert reasons == set(P.REASONS), f"golden lacks reasons {set(P.REASONS) - reasons}"
    assert any(r.premises for r in results)
    assert any(r.warnings for r in results) and any(r.forbidden for r in results)
    assert {r.statement_match for r in results} == {True, False, None}
    severities = {m.severity for r in results for m in r.errors + r.warnings}
    assert severities == {"error", "warning", "info"}
    paper = {"20", "21"}  # answers of the paper-profile session
    statement = {"40", "41", "42", "43"}  # answers of the statement process
    judge = {"30", "31", "32", "33"}  # answers of the judge
    assert any(r.export for r in results) and any(r.export_chunks for r in results)
    assert any(r.reference for r in results)
    # each chunked pass is followed at once by its chunks, in order
    for i, m in enumerate(msgs):
        if isinstance(m, P.CheckResponse) and m.export_chunks:
            chunks = msgs[i + 1:i + 1 + m.export_chunks]
            assert all(isinstance(c, P.ExportChunk) and c.id == m.id and c.nonce == m.nonce
                       and c.index == k for k, c in enumerate(chunks))
    for r in results:  # the invariants docs/protocol.md states
        assert (r.verdict == "pass") == (not r.reasons)
        if r.id:
            assert r.nonce is not None
            role: P.Role = ("statement" if r.id in statement else
                            "replay" if r.id in judge else "check")
            assert P.pass_problem(r, r.nonce, ["propext", "Classical.choice", "Quot.sound"],
                                  "paper" if r.id in paper else "strict",
                                  export_requested=role == "check" and r.id not in paper,
                                  role=role) is None, r.id
        if "sorry" in r.reasons:
            assert "sorryAx" in r.axioms
        if r.forbidden:
            assert "forbidden" in r.reasons


def test_extractor_golden_roundtrips_and_covers_every_message() -> None:
    requests = [P.extract_request_decoder.decode(line)
                for line in _lines(GOLDEN / "extractor_in.jsonl")]
    assert any(r.premises for r in requests) and any(not r.premises for r in requests)
    msgs = _roundtrip(GOLDEN / "extractor_out.jsonl", P.extractor_output_decoder)
    kinds = {type(m) for m in msgs}
    assert kinds == {P.ExtractCommand, P.ExtractDecl, P.ExtractDone, P.ExtractFailed}
    # Every module of a request is closed by exactly one done or error line.
    closed = [m.module for m in msgs if isinstance(m, P.ExtractDone | P.ExtractFailed)
              and m.module]
    assert sorted(closed) == sorted(r.module for r in requests)
    assert any(isinstance(m, P.ExtractDone) and m.errors for m in msgs)
    for done in (m for m in msgs if isinstance(m, P.ExtractDone)):  # counts match the lines
        mine = [m for m in msgs if getattr(m, "module", None) == done.module]
        assert done.commands == sum(isinstance(m, P.ExtractCommand) for m in mine)
        assert done.decls == sum(isinstance(m, P.ExtractDecl) for m in mine)
        assert isinstance(mine[-1], P.ExtractDone)  # decl lines, cmd lines, then done


def test_extractor_golden_is_derived_from_its_sources() -> None:
    """The committed golden output is exactly what the derivation script computes from the
    real source texts (so no offset was typed by hand)."""
    proc = subprocess.run([sys.executable, str(GOLDEN / "make_extractor_golden.py")],
                          capture_output=True, text=True, check=True, timeout=60)
    assert proc.stdout.splitlines() == _lines(GOLDEN / "extractor_out.jsonl")


def test_extractor_golden_offsets_point_into_the_real_sources() -> None:
    requests = {r.module: r for r in (P.extract_request_decoder.decode(line)
                                      for line in _lines(GOLDEN / "extractor_in.jsonl"))}
    pinned = GOLDEN_SOURCES / "Mathlib" / "Algebra" / "Group" / "Semiconj" / "Defs.lean"
    assert pinned.read_bytes().startswith(b"/-\nCopyright (c) 2019 Yury Kudryashov.")
    checked = 0
    for line in _lines(GOLDEN / "extractor_out.jsonl"):
        msg = P.extractor_output_decoder.decode(line)
        if isinstance(msg, P.ExtractCommand):
            data = (REPO / requests[msg.module].path).read_bytes()
            assert 0 <= msg.start_byte < msg.end_byte <= len(data)
            text = data[msg.start_byte:msg.end_byte]
            assert text == text.strip() and not data[msg.start_byte - 1:msg.start_byte].strip()
            if msg.val_start_byte is not None:
                assert msg.start_byte < msg.val_start_byte < msg.end_byte
                assert data[msg.val_start_byte:].startswith((b":=", b"|", b"where"))
            if msg.decl_id is not None:
                assert msg.decl_id.encode() in text
            checked += 1
        elif isinstance(msg, P.ExtractDecl):
            lines = (REPO / requests[msg.module].path).read_text(encoding="utf-8").splitlines()
            assert msg.sel_line == msg.sel_end_line
            sel = lines[msg.sel_line - 1][msg.sel_column:msg.sel_end_column]
            # A theorem's selection is its name; a to_additive copy's is the attribute token.
            assert sel in (msg.name.rsplit(".", 1)[-1], "to_additive"), (msg.name, sel)
            assert (msg.line, msg.column) <= (msg.sel_line, msg.sel_column)
            assert (msg.end_line, msg.end_column) >= (msg.sel_end_line, msg.sel_end_column)
            checked += 1
    assert checked > 50


def _smoke_runner() -> Any:
    spec = importlib.util.spec_from_file_location("lean_smoke", REPO / "scripts" / "lean_smoke.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REQUIRED_SMOKE = {
    "true_proof", "sorry", "admit", "new_axiom", "native_decide", "changed_statement",
    "local_instance", "local_notation", "set_option", "timeout", "parse_error", "apply_exploit",
    "error_left", "eval", "run_cmd", "extra_theorem", "implemented_by", "unsafe", "legit_decide",
    "term_mode", "classical_choice", "of_reduce_bool", "macro",
}


def test_smoke_file_is_well_formed_and_covers_the_checklist() -> None:
    cases = _smoke_runner().load_smoke(SMOKE)
    ids = {c["id"] for c in cases}
    assert len(cases) >= 20
    assert ids >= REQUIRED_SMOKE, f"missing smoke cases: {REQUIRED_SMOKE - ids}"
    for case in cases:
        if "replay" in case:  # protocol 3 replay lines: no proof text; see test_lean_smoke.py
            for reason in case["expect"].get("reasons_include", []):
                assert reason in P.REASONS, f"{case['id']}: unknown reason {reason}"
            continue
        req = case["request"]
        # The request part is a valid CheckRequest (what the pool will send).
        msgspec.convert({"id": case["id"], "nonce": "0" * 32, **req}, P.CheckRequest)
        assert req["statement"].rstrip().endswith((":=", ":= by")), case["id"]
        exp = case["expect"]
        for reason in exp.get("reasons_include", []):
            # A pool line may expect a reason the verifier gives (an `error` status).
            known = P.REASONS if exp.get("status", "fail") != "error" else {**P.REASONS,
                                                                          **DRIVER_REASONS}
            assert reason in known, f"{case['id']}: unknown reason {reason}"
    by_id = {c["id"]: c for c in cases}
    assert by_id["timeout"]["expect"] == {"status": "timeout"}
    assert by_id["true_proof"]["expect"]["verdict"] == "pass"
    fails = [c for c in cases if c["expect"].get("verdict") == "fail"]
    assert len(fails) >= 15


@pytest.mark.parametrize("bad, field", [
    ('{"id": "a", "request": {"statement": "s :=", "proof": "p"}}', "expect"),
    ('{"id": "a", "request": {"statement": "s :="}, "expect": {"verdict": "pass"}}',
     "request.proof"),
    ('{"id": "a", "request": {"statement": "s :=", "proof": "p"}, "expect": {"oops": 1}}',
     "expect.oops"),
])
def test_smoke_loader_rejects_malformed_lines(tmp_path: Path, bad: str, field: str) -> None:
    runner = _smoke_runner()
    path = tmp_path / "s.jsonl"
    path.write_text(bad + "\n")
    with pytest.raises(runner.SmokeFileError, match=rf"s\.jsonl:1: .*{field}"):
        runner.load_smoke(path)


def test_duplicate_keys_are_refused() -> None:
    line = b'{"op":"result","id":"1","nonce":"n","verdict":"fail","verdict":"pass"}'
    assert P.checker_output_decoder.decode(line).verdict == "pass"  # msgspec: last one wins
    with pytest.raises(msgspec.DecodeError, match="duplicate key 'verdict'"):
        P.decode_checker_line(line)
    nested = (b'{"op":"result","id":"1","nonce":"n","verdict":"pass","axioms":[],'
              b'"warnings":[{"severity":"info","line":1,"line":2,"column":0,"text":"x"}]}')
    with pytest.raises(msgspec.DecodeError, match="duplicate key 'line'"):
        P.decode_checker_line(nested)
    # a second export key is caught although the export value is set aside for the scan
    export = b'{"names":[],"levels":[],"exprs":[["str","' + b"x" * 100 + b'"]],"consts":[]}'
    twice = (b'{"op":"result","id":"1","nonce":"n","verdict":"pass","export":' + export
             + b',"export":' + export + b'}')
    with pytest.raises(msgspec.DecodeError, match="duplicate key 'export'"):
        P.decode_checker_line(twice)
    once = b'{"op":"result","id":"1","nonce":"n","verdict":"pass","export":' + export + b'}'
    decoded = P.decode_checker_line(once)
    assert isinstance(decoded, P.CheckResponse) and bytes(decoded.export) == export  # type: ignore[arg-type]
    # a line that cannot read as a pass is not scanned: whatever key it repeats, it is no pass
    fail = b'{"op":"result","id":"1","nonce":"n","verdict":"pass","verdict":"fail"}'
    assert P.decode_checker_line(fail).verdict == "fail"  # type: ignore[union-attr]


def test_pass_consistency_rules() -> None:
    allowed = ["propext", "Classical.choice", "Quot.sound"]
    good = P.CheckResponse(id="1", nonce="n", verdict="pass", axioms=["propext"],
                           statement_match=True)
    assert P.pass_problem(good, "n", allowed) is None
    bad = {
        "nonce": msgspec.structs.replace(good, nonce="m"),
        "minimal": P.CheckResponse(id="1", nonce="n", verdict="pass"),
        "reasons": msgspec.structs.replace(good, reasons=["elab_error"]),
        "forbidden": msgspec.structs.replace(good, forbidden=["sorry"]),
        "sorry": msgspec.structs.replace(good, axioms=["propext", "sorryAx"]),
        "axiom": msgspec.structs.replace(good, axioms=["Lean.ofReduceBool"]),
        "errors": msgspec.structs.replace(good, errors=[
            P.LeanMessage(severity="error", line=1, column=0, text="x")]),
    }
    for name, resp in bad.items():
        assert P.pass_problem(resp, "n", allowed) is not None, name
    assert P.pass_problem(bad["sorry"], "n", [*allowed, "sorryAx"]) is not None
    # paper profile: the verdict must follow from the messages
    warn = P.LeanMessage(severity="warning", line=1, column=0, text="declaration uses 'sorry'")
    assert P.pass_problem(P.CheckResponse(id="1", nonce="n", verdict="pass"), "n", allowed,
                          "paper") is None
    assert P.pass_problem(P.CheckResponse(id="1", nonce="n", verdict="pass", warnings=[warn]),
                          "n", allowed, "paper") is not None
    assert P.pass_problem(P.CheckResponse(id="1", nonce="n", verdict="fail", reasons=["sorry"]),
                          "n", allowed, "paper") is not None  # nothing in the messages says so
    # protocol 4: exports on exactly the strict passes of a check worker that asked for them
    export = msgspec.Raw(b'{"names":[],"levels":[],"exprs":[],"consts":[]}')
    with_export = msgspec.structs.replace(good, export=export)
    chunked = msgspec.structs.replace(good, export_chunks=2)
    assert P.pass_problem(with_export, "n", allowed, export_requested=True) is None
    assert P.pass_problem(chunked, "n", allowed, export_requested=True) is None
    assert "without export" in str(P.pass_problem(good, "n", allowed, export_requested=True))
    assert P.pass_problem(good, "n", allowed) is None  # not requested: none needed
    for resp in (with_export, chunked):
        assert P.pass_problem(resp, "n", allowed) is not None  # not requested (fresh worker)
        assert P.pass_problem(resp, "n", allowed, "paper", export_requested=True) is not None
        assert P.pass_problem(resp, "n", allowed, role="replay") is not None
    both = msgspec.structs.replace(with_export, export_chunks=2)
    assert P.pass_problem(both, "n", allowed, export_requested=True) is not None
    one = msgspec.structs.replace(good, export_chunks=1)
    assert P.pass_problem(one, "n", allowed, export_requested=True) is not None
    text = msgspec.structs.replace(good, export=msgspec.Raw(b'"an export"'))
    assert "not a JSON object" in str(P.pass_problem(text, "n", allowed, export_requested=True))
    fail = P.CheckResponse(id="1", nonce="n", verdict="fail", reasons=["elab_error"],
                           export=export)
    assert "fail" in str(P.pass_problem(fail, "n", allowed, export_requested=True))
    # references: only on a statement process's pass, which must carry one
    ref = msgspec.Raw(b'{"names":[],"levels":[],"exprs":[],"name":0,"lps":[],"type":0,'
                      b'"kind":"thm"}')
    ref_pass = P.CheckResponse(id="1", nonce="n", verdict="pass", reference=ref)
    assert P.pass_problem(ref_pass, "n", allowed, role="statement") is None
    assert P.pass_problem(P.CheckResponse(id="1", nonce="n", verdict="pass"), "n", allowed,
                          role="statement") is not None
    assert P.pass_problem(msgspec.structs.replace(good, reference=ref), "n", allowed) is not None
    assert P.pass_problem(msgspec.structs.replace(ref_pass, export=export), "n", allowed,
                          role="statement") is not None
    assert P.pass_problem(msgspec.structs.replace(ref_pass, reference=msgspec.Raw(b"1")), "n",
                          allowed, role="statement") is not None
    info = P.LeanMessage(severity="info", line=1, column=0, text="attempt failed: 3")
    assert P.pass_problem(P.CheckResponse(id="1", nonce="n", verdict="pass", warnings=[info]),
                          "n", allowed, "paper") is None  # info messages do not count


def test_every_reason_the_verifier_gives_is_listed() -> None:
    """`error` results the verifier makes itself carry reasons from DRIVER_REASONS only."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "stp" / "verify"
    given = {m for f in root.glob("*.py")
             for m in re.findall(r'reasons=\["([a-z_]+)"\]', f.read_text())}
    known = set(DRIVER_REASONS) | set(P.REASONS)
    assert given and given <= known, given - known
    assert not set(DRIVER_REASONS) & set(P.REASONS)
