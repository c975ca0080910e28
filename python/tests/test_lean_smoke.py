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
from standin import standin_command

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
    for case in cases:
        exp = case["expect"]
        status = exp.get("status", exp.get("verdict"))
        rule: dict[str, Any] = {"pattern": f"^{re.escape(case['id'])}$", "field": "name"}
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
    """Ids this build's Python side can run. Lines that set `profile` or `header_trusted` need
    the protocol-2 fields (`lean.profile`, `VerifyItem.header_trusted`); until those exist the
    runner reports such lines as FAIL ("cannot run"), so the stand-in self-test leaves them out
    and says which."""
    runnable = [c["id"] for c in cases if runner.unsupported_reason(c) is None]
    left_out = [c for c in cases if c["id"] not in runnable]
    assert all({"profile", "header_trusted"} & set(c.get("config", {})) for c in left_out)
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
    others = [c["id"] for c in cases if "group" not in c and not c.get("header")
              and not c.get("config")][:4]
    proc = _run(["--checker-command", shlex.join(standin_command(spec)), "--only-verdicts",
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


@pytest.mark.lean
def test_smoke_file_against_real_checker() -> None:
    if shutil.which("lake") is None and not Path("~/.elan/bin/lake").expanduser().exists():
        pytest.skip("Lean (lake) is not installed; the smoke run needs the built checker")
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, cwd=REPO,
                          timeout=3600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
