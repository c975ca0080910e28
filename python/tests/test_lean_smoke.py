"""The smoke runner (scripts/lean_smoke.py): against the real checker (`lean` marker) and, as a
self-test of the runner itself, against the stand-in checker told to answer as expected."""

from __future__ import annotations

import importlib.util
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from standin import UNSANDBOXED, standin_command

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "lean_smoke.py"
SMOKE = REPO / "lean" / "test" / "check_smoke.jsonl"


def _load_runner() -> Any:
    spec = importlib.util.spec_from_file_location("lean_smoke", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _standin_spec(cases: list[dict[str, Any]], flip: str | None = None) -> dict[str, Any]:
    """Stand-in rules that give every smoke case its expected status and reasons."""
    rules = []
    texts = [c["request"]["statement"] + c["request"]["proof"] for c in cases if "request" in c]
    assert len(texts) == len(set(texts)), "pool lines must differ in statement + proof"
    for case in cases:
        if "request" not in case:
            continue  # replay lines never reach the pool
        exp = case["expect"]
        status = exp.get("status", exp.get("verdict"))
        # Keyed on statement + proof (unique per pool line), not on the name: a replay worker
        # (protocol 3, `verifier.recheck = "replay"`) judges a pass without the item's name.
        req = case["request"]
        rule: dict[str, Any] = {"pattern": f"^{re.escape(req['statement'] + req['proof'])}$",
                                "field": "text"}
        if case["id"] == flip:
            status = "pass" if status != "pass" else "fail"
        if status == "timeout":
            rule["action"] = "hang"
        elif status == "pass":
            rule["action"] = "pass"
        else:
            rule["action"] = status
            rule["reasons"] = exp.get("reasons_include", []) or ["elab_error"]
        rules.append(rule)
    return {"rules": rules, "header_error": "Does\\.Not\\.Exist", "default": "error"}


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    # Generous: every group starts fresh stand-in processes, and CI machines can be very busy.
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True,
                          cwd=REPO, timeout=600)


def _runnable_ids(runner: Any, cases: list[dict[str, Any]]) -> list[str]:
    """Pool lines this build's Python side can run. Lines that set `profile`, `header_trusted`
    or `recheck` need those configuration fields (`lean.profile`, `VerifyItem.header_trusted`,
    `verifier.recheck`); until they exist the runner reports such lines as FAIL ("cannot run"),
    so the stand-in self-test leaves them out and says which. Replay lines speak protocol 3 to
    the checker directly (the stand-in has no replay role): `test_replay_lines_*` covers them."""
    pool = [c for c in cases if "request" in c]
    runnable = [c["id"] for c in pool if runner.unsupported_reason(c) is None]
    left_out = [c for c in pool if c["id"] not in runnable]
    assert all({"profile", "header_trusted", "recheck"} & set(c.get("config", {}))
               for c in left_out)
    return runnable


def test_runner_reports_match_and_mismatch_against_standin() -> None:
    runner = _load_runner()
    cases = runner.load_smoke(SMOKE)
    ids = _runnable_ids(runner, cases)
    for flip, code in ((None, 0), ("true_proof", 1)):
        cmd = shlex.join(standin_command(_standin_spec(cases, flip)))
        proc = _run(["--checker-command", cmd, "--only-verdicts", "--timeout-cap", "1.5",
                     "--set", "verifier.workers=2", "--only", ",".join(ids)])
        assert proc.returncode == code, proc.stdout + proc.stderr
        if flip is None:
            assert f"{len(ids)}/{len(ids)} smoke cases match" in proc.stdout
        else:
            assert "FAIL true_proof" in proc.stdout
            assert f"{len(ids) - 1}/{len(ids)} smoke cases match" in proc.stdout


def test_a_group_runs_on_one_worker_in_file_order(tmp_path: Path) -> None:
    """The persistence pair must meet the same checker process, exploit first: the runner pins
    a `group` to one worker even when the configuration asks for several."""
    runner = _load_runner()
    cases = runner.load_smoke(SMOKE)
    pair = [c for c in cases if c.get("group") == "persist_strict"]
    assert [c["id"] for c in pair] == ["persist_strict_exploit", "persist_strict_false"]
    log = tmp_path / "standin.log"
    spec = _standin_spec(cases) | {"log": str(log)}
    # Enough unrelated cases in the same run that an unpinned pool would spread the work.
    others = [c["id"] for c in cases if "request" in c and "group" not in c
              and not c.get("header") and not c.get("config")][:4]
    proc = _run(["--checker-command", shlex.join(standin_command(spec)), "--only-verdicts",
                 "--set", UNSANDBOXED,  # the stand-in writes its log to the host
                 "--set", "verifier.workers=3", "--set", "verifier.pipeline_depth=1",
                 "--only", ",".join(others + [c["id"] for c in pair])])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    events = [json.loads(line) for line in log.read_text().splitlines()]
    checks = [e for e in events if e["ev"] == "check"
              and any(e["statement"] == c["request"]["statement"] for c in pair)]
    assert [e["statement"] for e in checks] == [c["request"]["statement"] for c in pair]
    assert len({e["pid"] for e in checks}) == 1
    pinned_pid = checks[0]["pid"]
    starts = [e for e in events if e["ev"] == "start" and e["pid"] == pinned_pid]
    assert len(starts) == 1  # a worker of its own, started once (never recycled in between)


def test_group_overrides_pin_one_worker_and_map_settings() -> None:
    runner = _load_runner()
    assert runner.group_overrides({}, "") == []
    got = runner.group_overrides({"max_heartbeats": 0, "mode": "lenient", "profile": "paper"},
                                 "persist")
    assert got == ['lean.max_heartbeats=0', 'lean.mode="lenient"', 'lean.profile="paper"',
                   "verifier.workers=1", "verifier.recycle_after=0"]


def test_runner_rejects_bad_per_line_settings(tmp_path: Path) -> None:
    req = {"statement": "theorem x : True :=", "proof": " trivial"}
    for extra, field in (({"config": {"profile": "loose"}}, "'config.profile' must be one of"),
                         ({"config": {"header_trusted": "yes"}},
                          "'config.header_trusted' must be a boolean"),
                         ({"group": ""}, "'group' must be a non-empty string")):
        bad = tmp_path / "smoke.jsonl"
        bad.write_text(json.dumps({"id": "x", "request": req, "expect": {"verdict": "pass"},
                                   **extra}) + "\n")
        proc = _run(["--smoke", str(bad), "--checker-command", "true"])
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"{bad}:1" in proc.stderr and field in proc.stderr


def test_runner_names_file_line_and_field_of_a_bad_smoke_file(tmp_path: Path) -> None:
    bad = tmp_path / "smoke.jsonl"
    line = {"id": "x", "request": {"statement": "theorem x : True :=", "proof": " trivial"},
            "expect": {"verdict": "maybe"}}
    bad.write_text(json.dumps(line) + "\n")
    proc = _run(["--smoke", str(bad), "--checker-command", "true"])
    assert proc.returncode == 2
    assert f"{bad}:1" in proc.stderr and "expect.verdict" in proc.stderr


# --- Replay lines (protocol 3) --------------------------------------------------------------

# The export of `theorem t (a b : ℕ) : a + b = b + a := Nat.add_comm a b`, as the encoder writes
# it (tables in first-use order; every index refers to an earlier entry).
SAMPLE_EXPORT: dict[str, Any] = {
    "names": [["t"], ["a"], ["Nat"], ["Eq"], ["HAdd", "hAdd"], ["instHAdd"], ["instAddNat"],
              ["Nat", "add_comm"], ["b"]],
    "levels": [["z"], ["s", 0]],
    "exprs": [["c", 2, []], ["c", 3, [1]], ["ap", 1, 0], ["c", 4, [0, 0, 0]], ["ap", 3, 0],
              ["ap", 4, 0], ["ap", 5, 0], ["c", 5, [0]], ["c", 6, []], ["ap", 7, 0],
              ["ap", 9, 8], ["ap", 6, 10], ["bv", 1], ["bv", 0], ["ap", 11, 12], ["ap", 14, 13],
              ["ap", 2, 15], ["ap", 11, 13], ["ap", 17, 12], ["ap", 16, 18],
              ["pi", 8, "d", 0, 19], ["pi", 1, "d", 0, 20], ["c", 7, []], ["ap", 22, 12],
              ["ap", 23, 13], ["lam", 8, "d", 0, 24], ["lam", 1, "d", 0, 25]],
    "consts": [{"kind": "thm", "name": 0, "lps": [], "type": 21, "value": 26}],
}
DONOR_EXPORT: dict[str, Any] = {
    "names": [["u"], ["x"], ["Nat"], ["Nat", "mul_comm"]],
    "levels": [["z"]],
    "exprs": [["c", 2, []], ["so", 0], ["c", 3, []], ["ap", 2, 0], ["lam", 1, "i", 0, 3]],
    "consts": [{"kind": "def", "name": 0, "lps": [], "type": 1, "value": 4, "hints": 2}],
}


def _tree(export: dict[str, Any], i: int) -> Any:
    """Expression `i` of an export with every index resolved (names as dotted strings), checking
    that each reference points to an EARLIER entry, as the Lean decoder requires."""
    node = export["exprs"][i]
    refs = {"so": (1,), "ap": (1, 2), "lam": (3, 4), "pi": (3, 4), "let": (2, 3, 4), "prj": (3,)}
    names = {"c": (1,), "lam": (1,), "pi": (1,), "let": (1,), "prj": (1,)}
    out: list[Any] = [node[0]]
    for k, arg in enumerate(node[1:], start=1):
        if k in refs.get(node[0], ()) and node[0] != "so":
            assert arg < i, f"forward reference in exprs[{i}]"
            out.append(_tree(export, arg))
        elif k in names.get(node[0], ()):
            out.append(".".join(map(str, export["names"][arg])))
        elif node[0] == "so" or (node[0] == "c" and k == 2):
            out.append(json.dumps(arg))  # level indices: compared as written
        else:
            out.append(arg)
    return out


def test_mutations_change_the_export_as_documented() -> None:
    runner = _load_runner()
    target = ["t"]
    assert set(runner.MUTATIONS) == {"swap_value", "rename", "reduce_bool", "forward_index",
                                     "out_of_range", "unknown_tag", "axiom", "duplicate",
                                     "empty_consts", "sorry_value"}

    def mutated(op: str, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = runner.mutate_export(SAMPLE_EXPORT, target, {"op": op, **extra},
                                                   DONOR_EXPORT, ["u"])
        assert out != SAMPLE_EXPORT
        return out

    before = json.dumps(SAMPLE_EXPORT)
    value = SAMPLE_EXPORT["consts"][0]["value"]
    e = mutated("forward_index")
    v = e["consts"][0]["value"]
    assert any(ref > v for ref in e["exprs"][v][1:])  # the value node points forward
    e = mutated("out_of_range")
    assert e["consts"][0]["value"] >= len(e["exprs"])
    e = mutated("unknown_tag")
    assert e["exprs"][e["consts"][0]["value"]][0] not in runner._EXPR_REFS
    e = mutated("rename")
    assert e["names"][e["consts"][0]["name"]] == ["smoke_renamed"]
    e = mutated("rename", to=["Nat", "add_comm"])
    assert e["names"][e["consts"][0]["name"]] == ["Nat", "add_comm"]
    e = mutated("duplicate")
    assert e["consts"][0] == e["consts"][1] and len(e["consts"]) == 2
    assert mutated("empty_consts")["consts"] == []
    e = mutated("axiom")
    assert [c["kind"] for c in e["consts"]] == ["thm", "axiom"]
    e = mutated("reduce_bool")
    extra = e["consts"][1]
    assert _tree(e, extra["value"])[1] == ["c", "Lean.reduceBool", "[]"]
    e = mutated("sorry_value")
    assert _tree(e, e["consts"][0]["value"])[1][1][1] == "sorryAx"
    assert _tree(e, e["consts"][0]["value"])[1][2] == _tree(SAMPLE_EXPORT, 21)  # its type
    e = mutated("swap_value")
    # Our target now has the donor's value, resolved to the very same tree; the donor's own
    # target is not added, and every original entry is unchanged.
    assert _tree(e, e["consts"][0]["value"]) == _tree(DONOR_EXPORT, 4) != _tree(e, value)
    assert [e["names"][c["name"]] for c in e["consts"]] == [["t"]]
    assert e["exprs"][:len(SAMPLE_EXPORT["exprs"])] == SAMPLE_EXPORT["exprs"]
    for i in range(len(e["exprs"])):
        _tree(e, i)  # no forward reference anywhere after the merge
    assert json.dumps(SAMPLE_EXPORT) == before  # the input is never modified


def test_replay_lines_in_the_smoke_file_are_well_formed() -> None:
    runner = _load_runner()
    cases = runner.load_smoke(SMOKE)
    replay = [c for c in cases if "replay" in c]
    ops = {c["replay"]["mutate"]["op"] for c in replay if "mutate" in c["replay"]}
    assert ops == set(runner.MUTATIONS)  # every mutation has a case
    legit = [c for c in replay if "mutate" not in c["replay"]
             and c["expect"].get("verdict") == "pass"]
    assert len(legit) >= 3
    for c in replay:
        if "mutate" in c["replay"] and c["replay"]["mutate"]["op"] != "sorry_value":
            assert c["expect"]["verdict"] == "fail"
            assert set(c["expect"]["reasons_include"]) & {
                "replay_failed", "missing_theorem", "statement_mismatch"}
    for c in replay:
        stmt = c["replay"]["export"].get("statement", c["replay"]["statement"])
        assert runner.declared_name(stmt)


def test_runner_rejects_bad_replay_lines(tmp_path: Path) -> None:
    ok = {"statement": "theorem x : True :=", "export": {"from_proof": " trivial"}}
    bad_lines: list[tuple[dict[str, Any], str]] = [
        ({"replay": ok, "request": {"statement": "theorem x : True :=", "proof": " trivial"}},
         "exactly one of 'request' and 'replay'"),
        ({"replay": {"statement": "theorem x : True :="}}, "missing field 'replay.export'"),
        ({"replay": {**ok, "mutate": {"op": "explode"}}}, "'replay.mutate.op' must be one of"),
        ({"replay": {"statement": "theorem x : True :=", "export": {"names": []},
                     "mutate": {"op": "rename"}}}, "needs 'replay.export.from_proof'"),
        ({"replay": {**ok, "mutate": {"op": "swap_value"}}}, "swap_value needs"),
        ({"replay": ok, "config": {"recheck": "sometimes"}}, "'config.recheck' must be one of"),
        ({"replay": ok, "group": "g"}, "cannot have a 'group'"),
    ]
    for extra, message in bad_lines:
        bad = tmp_path / "smoke.jsonl"
        bad.write_text(json.dumps({"id": "x", "expect": {"verdict": "pass"}, **extra}) + "\n")
        proc = _run(["--smoke", str(bad), "--checker-command", "true"])
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"{bad}:1" in proc.stderr and message in proc.stderr, proc.stderr


# A fake protocol-4 checker for the runner's own wire lines: role "check" passes everything with
# SAMPLE_EXPORT; role "statement" answers a reference holding the statement; role "replay" (the
# judge) passes exactly an export equal to SAMPLE_EXPORT with that reference. It logs what it was
# sent. (The stand-in of python/tests speaks the pool's protocol, not these hand-made exports.)
FAKE_CHECKER = """
import json, sys
log, export = open(sys.argv[1], "a"), json.loads(sys.argv[2])
cfg = json.loads(sys.stdin.readline())
log.write(json.dumps(cfg) + "\\n"); log.flush()
print(json.dumps({"op": "ready", "protocol": 4, "ok": True, "lean_version": "fake",
                  "checker_version": "fake", "header_ms": 1}), flush=True)
ops = {"check": "check", "statement": "reference", "replay": "replay"}
for line in sys.stdin:
    req = json.loads(line)
    log.write(json.dumps(req) + "\\n"); log.flush()
    out = {"op": "result", "id": req["id"], "nonce": req["nonce"], "verdict": "pass",
           "axioms": [], "statement_match": True}
    if req["op"] != ops[cfg["role"]]:
        out = {"op": "result", "id": req["id"], "nonce": req["nonce"], "verdict": "error",
               "reasons": ["bad_request"]}
    elif req["op"] == "check":
        out["export"] = export
    elif req["op"] == "reference":
        out = {"op": "result", "id": req["id"], "nonce": req["nonce"], "verdict": "pass",
               "reference": {"statement": req["statement"]}}
    elif req["export"] != export or "statement" not in req["reference"]:
        out = {"op": "result", "id": req["id"], "nonce": req["nonce"], "verdict": "fail",
               "reasons": ["replay_failed"]}
    print(json.dumps(out), flush=True)
"""


def test_replay_lines_drive_check_and_replay_workers(tmp_path: Path) -> None:
    fake = tmp_path / "fake_checker.py"
    fake.write_text(FAKE_CHECKER)
    log = tmp_path / "fake.log"
    stmt = "theorem t (a b : ℕ) : a + b = b + a :="
    lines = [
        {"id": "legit", "replay": {"statement": stmt, "export": {"from_proof": " rfl"}},
         "expect": {"verdict": "pass", "statement_match": True}},
        {"id": "dup", "replay": {"statement": stmt, "export": {"from_proof": " rfl"},
                                 "mutate": {"op": "duplicate"}},
         "expect": {"verdict": "fail", "reasons_include": ["replay_failed"]}},
        {"id": "literal", "replay": {"statement": stmt, "export": SAMPLE_EXPORT},
         "expect": {"verdict": "pass"}},
        {"id": "wrong", "replay": {"statement": stmt, "export": SAMPLE_EXPORT},
         "expect": {"verdict": "fail"}},
    ]
    smoke = tmp_path / "smoke.jsonl"
    smoke.write_text("".join(json.dumps(x) + "\n" for x in lines))
    cmd = shlex.join([sys.executable, str(fake), str(log), json.dumps(SAMPLE_EXPORT)])
    proc = _run(["--smoke", str(smoke), "--checker-command", cmd, "--timeout-cap", "20",
                 "--set", UNSANDBOXED])  # the fake checker logs to the host
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "3/4 smoke cases match" in proc.stdout, proc.stdout
    assert "FAIL wrong: pass" in proc.stdout
    sent = [json.loads(x) for x in log.read_text().splitlines()]
    configs = [m for m in sent if m["op"] == "config"]
    assert sorted((c["role"], c["export"], c["protocol"]) for c in configs)[:2] == [
        ("check", True, 4), ("replay", False, 4)]
    assert {c["role"] for c in configs} == {"check", "statement", "replay"}
    assert all(c["header"] == "" and c["imports"] for c in configs if c["role"] == "replay")
    assert all("statement" not in m and "proof" not in m for m in sent if m["op"] == "replay")
    replays = [m for m in sent if m["op"] == "replay"]
    assert [r["id"] for r in replays] == ["legit", "dup", "literal", "wrong"]
    assert all(r["reference"]["statement"] == stmt and "proof" not in r for r in replays)
    assert replays[0]["export"] == SAMPLE_EXPORT
    assert len(replays[1]["export"]["consts"]) == 2  # the mutation was applied
    checks = [m for m in sent if m["op"] == "check"]
    assert len(checks) == 2 and all(c["proof"] == " rfl" for c in checks)
    assert len({m["nonce"] for m in checks + replays}) == len(checks + replays)


@pytest.mark.lean
def test_smoke_file_against_real_checker() -> None:
    if shutil.which("lake") is None and not Path("~/.elan/bin/lake").expanduser().exists():
        pytest.skip("Lean (lake) is not installed; the smoke run needs the built checker")
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=REPO,
                          timeout=3600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
