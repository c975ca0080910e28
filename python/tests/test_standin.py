"""The stand-in checker speaks exactly the checker protocol (decoded with the msgspec structs)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import msgspec
from standin import read_log, standin_command

from stp.lean.protocol import (
    PROTOCOL_VERSION,
    CheckerConfig,
    CheckRequest,
    CheckResponse,
    Ready,
    checker_output_decoder,
    encode_line,
)


def config(header: str) -> CheckerConfig:
    return CheckerConfig(role="check", export=False, header=header, imports=[], header_trusted=True,
                         max_heartbeats=400_000,
                         mode="strict", profile="strict", allowed_axioms=["propext"])


def test_standin_session_follows_the_protocol(tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    spec = {"log": str(log), "default": "fail", "checker_version": "v-test",
            "rules": [{"pattern": "simp", "action": "pass", "premises": ["Nat.add_comm"]},
                      {"pattern": "Nat", "field": "statement", "action": "error"}]}
    lines = [
        encode_line(config("import Mathlib\n")),
        encode_line(CheckRequest(id="a", nonce="na", statement="theorem x : True :=", proof=" by simp",
                                 premises=True)),
        b"{not json\n",
        encode_line(CheckRequest(id="b", nonce="nb", statement="theorem y : True :=", proof=" by simp")),
        encode_line(CheckRequest(id="c", nonce="nc", statement="theorem z : True :=", proof=" trivial")),
        encode_line(CheckRequest(id="d", nonce="nd", statement="theorem w : Nat :=", proof=" 0")),
    ]
    proc = subprocess.run(standin_command(spec), input=b"".join(lines), capture_output=True,
                          timeout=30, check=True)
    out = [checker_output_decoder.decode(line) for line in proc.stdout.splitlines()]
    ready = out[0]
    assert isinstance(ready, Ready)
    assert ready.protocol == PROTOCOL_VERSION and ready.ok and ready.checker_version == "v-test"
    responses = out[1:]
    assert all(isinstance(r, CheckResponse) for r in responses)
    assert [(r.id, r.verdict) for r in responses] == [
        ("a", "pass"), ("", "error"), ("b", "pass"), ("c", "fail"), ("d", "error")]
    assert responses[0].premises == ["Nat.add_comm"]
    assert responses[2].premises is None  # not requested
    assert responses[1].reasons == ["bad_request"]
    assert [r.nonce for r in responses] == ["na", None, "nb", "nc", "nd"]
    events = read_log(log)
    assert [e["ev"] for e in events] == ["start", "check", "check", "check", "check"]
    assert events[0]["header"] == "import Mathlib\n"


def test_standin_header_error_and_out_of_order(tmp_path: Path) -> None:
    spec = {"header_error": "Broken"}
    lines = [encode_line(config("import Broken")),
             encode_line(CheckRequest(id="1", nonce="n1", statement="theorem x : True :=", proof=" trivial"))]
    proc = subprocess.run(standin_command(spec), input=b"".join(lines), capture_output=True,
                          timeout=30, check=True)
    ready, resp = (checker_output_decoder.decode(x) for x in proc.stdout.splitlines())
    assert isinstance(ready, Ready) and not ready.ok and ready.header_errors
    assert isinstance(resp, CheckResponse) and resp.reasons == ["header_error"]

    spec = {"rules": [{"pattern": "first", "action": "out_of_order"}]}
    lines = [encode_line(config("")),
             encode_line(CheckRequest(id="1", nonce="n1", statement="s :=", proof=" first")),
             encode_line(CheckRequest(id="2", nonce="n2", statement="s :=", proof=" second"))]
    proc = subprocess.run(standin_command(spec), input=b"".join(lines), capture_output=True,
                          timeout=30, check=True)
    ids = [checker_output_decoder.decode(x).id for x in proc.stdout.splitlines()[1:]]
    assert ids == ["2", "1"]


def test_standin_statement_process_and_judge(tmp_path: Path) -> None:
    """A check process asked for exports attaches one to its passes (in chunks when large); a
    statement process answers references and exits at EOF; the judge decodes REFERENCE and
    EXPORT (refusing malformed ones), re-judges the decoded proof and refuses other requests."""
    import json

    from stp.lean.protocol import ExportChunk, ReferenceRequest, ReplayRequest

    spec = {"rules": [{"pattern": "bad", "action": "forge_consistent"},
                      {"pattern": "big", "action": "pass", "pad_export_kb": 8}],
            "export_chunk_bytes": 3000}
    statement = "theorem x : True :="
    check_cfg = msgspec.structs.replace(config(""), export=True)
    lines = [encode_line(check_cfg),
             encode_line(CheckRequest(id="a", nonce="na", statement=statement, proof=" trivial")),
             encode_line(CheckRequest(id="b", nonce="nb", statement=statement, proof=" bad")),
             encode_line(CheckRequest(id="c", nonce="nc", statement=statement, proof=" big"))]
    proc = subprocess.run(standin_command(spec), input=b"".join(lines), capture_output=True,
                          timeout=30, check=True)
    out = [checker_output_decoder.decode(x) for x in proc.stdout.splitlines()[1:]]
    passes = [p for p in out if isinstance(p, CheckResponse)]
    assert [p.verdict for p in passes] == ["pass"] * 3
    exports = [bytes(p.export) for p in passes[:2] if isinstance(p.export, msgspec.Raw)]
    assert len(exports) == 2 and passes[2].export_chunks and passes[2].export_chunks >= 3
    chunks = [c for c in out if isinstance(c, ExportChunk)]
    assert [c.index for c in chunks] == list(range(passes[2].export_chunks))
    assert json.loads("".join(c.data for c in chunks))["consts"]

    st_cfg = msgspec.structs.replace(config(""), role="statement")
    lines = [encode_line(st_cfg),
             encode_line(ReferenceRequest(id="r", nonce="nr", statement=statement)),
             encode_line(CheckRequest(id="c", nonce="nc", statement=statement, proof=" x"))]
    proc = subprocess.run(standin_command(spec), input=b"".join(lines), capture_output=True,
                          timeout=30, check=True)
    ref_out = [checker_output_decoder.decode(x) for x in proc.stdout.splitlines()[1:]]
    assert isinstance(ref_out[0], CheckResponse) and ref_out[0].verdict == "pass"
    assert isinstance(ref_out[0].reference, msgspec.Raw)
    assert isinstance(ref_out[1], CheckResponse) and ref_out[1].reasons == ["bad_request"]
    reference = bytes(ref_out[0].reference)

    ok = json.loads(exports[0])
    broken = {**ok, "exprs": [["ap", 0, 0]]}
    other = {**ok, "exprs": [["str", "theorem x : False :="], *ok["exprs"][1:]]}
    judge_cfg = msgspec.structs.replace(config(""), role="replay", imports=["Mathlib"])
    raw = msgspec.Raw
    lines = [encode_line(judge_cfg)] + [
        encode_line(ReplayRequest(id=str(i), nonce=f"n{i}", reference=raw(reference),
                                  export=raw(json.dumps(e).encode())))
        for i, e in enumerate([ok, json.loads(exports[1]), broken, other])]
    lines.append(encode_line(CheckRequest(id="c", nonce="nc", statement=statement,
                                          proof=" trivial")))
    proc = subprocess.run(standin_command(spec), input=b"".join(lines), capture_output=True,
                          timeout=30, check=True)
    judged = [checker_output_decoder.decode(x) for x in proc.stdout.splitlines()[1:]]
    assert [(r.verdict, r.reasons) for r in judged if isinstance(r, CheckResponse)] == [
        ("pass", []), ("fail", ["replay_failed"]), ("fail", ["replay_failed"]),
        ("fail", ["statement_mismatch"]), ("error", ["bad_request"])]
    assert all(isinstance(r, CheckResponse) and r.export is msgspec.UNSET for r in judged)


def test_standin_never_passes_by_default() -> None:
    """Started bare, or with a spec that names no `default` action, the stand-in answers
    nothing: it exits with one line instead of being a pass-everything checker."""
    import json
    import sys

    from standin import STANDIN

    session = encode_line(config("")) + encode_line(CheckRequest(
        id="1", nonce="n" * 32, statement="theorem t : 1 = 2 :=", proof=" by simp"))
    for argv in ([], ["{}"], [json.dumps({"rules": []})], ["not json"]):
        proc = subprocess.run([sys.executable, str(STANDIN), *argv], input=session,
                              capture_output=True, timeout=60)
        assert proc.returncode != 0 and proc.stdout == b"", (argv, proc.stdout)
        assert len(proc.stderr.decode().strip().splitlines()) == 1, proc.stderr
        assert b"default" in proc.stderr or b"JSON" in proc.stderr
    # The test helper asks for "pass" explicitly.
    assert json.loads(standin_command()[2])["default"] == "pass"
