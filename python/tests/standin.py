"""Helpers for tests of every area: the argv of the stand-in checker and its log.

    from standin import standin_command
    cfg = with_checker(cfg, standin_command({"rules": [{"pattern": "sorry", "action": "fail"}]}))
    verifier = make_verifier(cfg)

See standin_checker.py for the rule language. Tests only: product code never starts it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stp.config import STPConfig

STANDIN = Path(__file__).resolve().with_name("standin_checker.py")


def standin_command(rules: dict[str, Any] | None = None) -> list[str]:
    """argv that starts the stand-in checker with `rules` (the spec dict of standin_checker.py).
    The stand-in itself refuses a spec without a `default` action; tests that leave it out get
    `"pass"` here, explicitly. The argv ends with the directories the stand-in reads (this
    interpreter's installation and virtual environment, this checkout's python/): the sandbox
    binds every absolute path a checker command names, so the stand-in runs sandboxed under the
    default `verifier.sandbox = "auto"` like the real checker (it ignores these arguments)."""
    return [sys.executable, str(STANDIN), json.dumps({"default": "pass", **(rules or {})}),
            *read_dirs()]


def read_dirs() -> list[str]:
    """Directories a Python checker started with this interpreter reads."""
    return sorted({sys.prefix, sys.base_prefix, str(STANDIN.parents[1])})


def with_checker(cfg: STPConfig, command: list[str]) -> STPConfig:
    """`cfg` with `lean.checker_command` set to `command` (the config seam for the stand-in).

    A stand-in that writes to the host (its `log` or `state_dir`: how tests observe it) cannot
    run in the sandbox, where nothing of the host is writable; for it the sandbox is turned off
    explicitly (`verifier.sandbox = "none"`, what a user would have to say). Every other
    stand-in runs sandboxed, as the real checker does."""
    cfg.lean.checker_command = list(command)
    if writes_to_host(command):
        cfg.verifier.sandbox = "none"
    return cfg


def writes_to_host(command: list[str]) -> bool:
    """Whether a stand-in argv's spec makes it write files outside the sandbox."""
    if len(command) < 3 or not command[2].startswith("{"):  # not a stand-in (or a copy of it)
        return False
    spec = json.loads(command[2])
    return bool(spec.get("log") or spec.get("state_dir"))


UNSANDBOXED = "verifier.sandbox='none'"  # `--set` value for a command line whose stand-in logs


def checker_override(command: list[str]) -> str:
    """The `--set` override that points a command-line entry point at `command`."""
    return "lean.checker_command=" + json.dumps(command)


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Events the stand-in wrote to its `log` file (one dict per start/check)."""
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def count_checks(path: str | Path) -> int:
    return sum(1 for e in read_log(path) if e["ev"] == "check")

