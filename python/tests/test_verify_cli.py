"""`python -m stp.verify`: exit codes, table and JSON output, input errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from standin import UNSANDBOXED, checker_override, standin_command

from stp.config import load_config
from stp.errors import UsageError
from stp.verify.cli import main

LEAN = """\
import Mathlib
open Nat

theorem good : 1 + 1 = 2 := by
  norm_num

theorem bad (n : ℕ) : n + 0 = n := by
  simp
  bad_tactic
"""
# the stand-in reports the error on line 3 of `statement + proof` (the `bad_tactic` line)
RULES = {"rules": [{"pattern": "bad_tactic", "action": "fail", "errors": [
    {"severity": "error", "line": 3, "column": 2, "text": "unknown tactic"}]}]}


STANDIN = ["--set", checker_override(standin_command(RULES))]


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_lean_file_reports_failure_at_the_file_line(tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "demo.lean", LEAN)
    assert main([str(path), "--json", "--jobs", "1", *STANDIN]) == 1
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["name"], r["status"]) for r in records] == [("good", "pass"), ("bad", "fail")]
    assert records[1]["source"] == f"{path}:7"
    error = records[1]["errors"][0]
    assert (error["line"], error["column"]) == (9, 2)
    assert LEAN.split("\n")[8][2:].startswith("bad_tactic")


def test_all_passing_jsonl_exits_zero_with_a_table(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "proofs.jsonl", "\n".join(json.dumps(r) for r in [
        {"name": "p1", "statement": "theorem p1 : True :=", "proof": " trivial"},
        {"statement": "theorem p2 : True :=", "proof": " by trivial", "extra": 1},
    ]) + "\n")
    assert main([str(path), "--timeout", "5", "--memory", "500", *STANDIN]) == 0
    out = capsys.readouterr().out
    assert "p1" in out and "proofs.jsonl:2" in out and "2 pass" in out


def test_header_flag_applies_to_records_without_one(tmp_path: Path) -> None:
    log = tmp_path / "log"
    path = write(tmp_path, "p.jsonl",
                 '{"statement": "theorem a : True :=", "proof": " trivial"}\n'
                 '{"statement": "theorem b : True :=", "proof": " trivial", "header": "import B"}\n')
    assert main([str(path), "--header", "import Custom\\nopen Nat", "--json",
                 "--set", checker_override(standin_command({"log": str(log)})),
                 "--set", UNSANDBOXED]) == 0
    starts = [json.loads(x) for x in log.read_text().splitlines() if json.loads(x)["ev"] == "start"]
    # the judge is sent no header text (only its imports)
    headers = {e["header"] for e in starts if e["role"] != "replay"}
    assert {tuple(e["imports"]) for e in starts if e["role"] == "replay"} >= {("Custom",), ("B",)}
    # plus the trusted default header of the start-up probe (never a header from a file)
    assert headers == {"import Custom\nopen Nat", "import B", load_config(None).lean.default_header}


@pytest.mark.parametrize(("content", "message"), [
    ('{"statement": "s :=", "proof": 3}\n', r"bad.jsonl:1: field `proof`: Expected `str`"),
    ('{"statement": "s :=", "proof": "p"}\n{"proof": "p"}\n', r"bad.jsonl:2: field `statement`"),
    ('{"statement": "s :=", "proof": "p"}\n\n{oops\n', r"bad.jsonl:3: not valid JSON"),
])
def test_malformed_jsonl_names_file_line_and_field(tmp_path: Path,
                                                   content: str, message: str) -> None:
    path = write(tmp_path, "bad.jsonl", content)
    with pytest.raises(UsageError, match=message):
        main([str(path), *STANDIN])


def test_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no such file"):
        main([str(tmp_path / "missing.lean"), *STANDIN])
    with pytest.raises(UsageError, match=r"expected a \.lean or \.jsonl file"):
        main([str(write(tmp_path, "x.txt", "hi")), *STANDIN])
    with pytest.raises(UsageError, match="no theorem"):
        main([str(write(tmp_path, "empty.lean", "import Mathlib\n")), *STANDIN])


def test_checker_that_cannot_start_is_an_environment_error(tmp_path: Path) -> None:
    path = write(tmp_path, "demo.lean", LEAN)
    with pytest.raises(UsageError, match="checker could not start"):
        main([str(path), "--set", "verifier.start_timeout_s=5",
              "--set", checker_override(standin_command({"start_crash": "."}))])


def _run_cli(args: list[str], env_extra: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.update(env_extra)
    env["PATH"] = os.path.dirname(sys.executable)  # no `lake` on PATH
    env["HOME"] = str(cwd)  # no ~/.elan either
    return subprocess.run([sys.executable, "-m", "stp.verify", *args], capture_output=True,
                          text=True, env=env, cwd=cwd, timeout=120)


def test_exit_codes_through_the_real_entry_point(tmp_path: Path) -> None:
    path = write(tmp_path, "demo.lean", LEAN)
    good = write(tmp_path, "good.jsonl",
                 '{"statement": "theorem a : True :=", "proof": " trivial"}\n')
    # no Lean installed: one line saying what to install and where, exit 2. Run from another
    # directory, the Lean project is still the checkout stp is installed from.
    proc = _run_cli([str(path)], {}, tmp_path)
    assert proc.returncode == 2
    checkout = Path(__file__).resolve().parents[2]
    assert proc.stderr.strip().splitlines() == [
        f"error: Lean not found: install elan (scripts/setup.sh) and run `lake build` in "
        f"{checkout} (the Lean project, from the checkout stp is installed from)"]
    assert _run_cli([str(good), *STANDIN], {}, tmp_path).returncode == 0
    proc = _run_cli([str(path), "--json", *STANDIN], {}, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert [json.loads(x)["status"] for x in proc.stdout.splitlines()] == ["pass", "fail"]


def test_a_checker_that_cannot_start_is_one_line(tmp_path: Path) -> None:
    """Exit 2 and exactly one `error:` line on stderr (besides the explicit no-sandbox notice),
    not a warning per start attempt before it (issue #24 item 8)."""
    path = tmp_path / "one.jsonl"
    path.write_text('{"statement": "theorem a : True :=", "proof": " trivial"}\n')
    proc = _run_cli([str(path), "--set", 'lean.checker_command=["/bin/false"]',
                     "--set", UNSANDBOXED], {}, tmp_path)
    assert proc.returncode == 2, proc.stderr
    lines = [x for x in proc.stderr.splitlines() if "sandbox: NONE" not in x]
    assert lines == ["error: checker could not start: checker exited (code 1)"], proc.stderr
