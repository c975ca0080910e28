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
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


def test_runner_reports_match_and_mismatch_against_standin() -> None:
    cases = _load_runner().load_smoke(SMOKE)
    for flip, code in ((None, 0), ("true_proof", 1)):
        cmd = shlex.join(standin_command(_standin_spec(cases, flip)))
        proc = _run(["--checker-command", cmd, "--only-verdicts", "--timeout-cap", "1.5",
                     "--set", "verifier.workers=2"])
        assert proc.returncode == code, proc.stdout + proc.stderr
        if flip is None:
            assert f"{len(cases)}/{len(cases)} smoke cases match" in proc.stdout
        else:
            assert "FAIL true_proof" in proc.stdout
            assert f"{len(cases) - 1}/{len(cases)} smoke cases match" in proc.stdout


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
