#!/usr/bin/env python
"""Run lean/test/check_smoke.jsonl against the real checker and report every mismatch.

    python scripts/lean_smoke.py                         # real checker (needs `lake build`)
    python scripts/lean_smoke.py --only id1,id2          # a subset
    python scripts/lean_smoke.py --checker-command "python python/tests/standin_checker.py '{}'"

Each smoke line is {"id", "header"?, "config"?, "group"?, "request", "expect"} (docs/lean.md
describes the format). Lines are grouped by (header, config, group) and each group goes through
`stp.verify` — the same pool that self-play uses — so `expect.status = "timeout"` is judged by the
pool's wall-clock limit exactly as in production. Lines that share a `group` run on ONE checker
process, in file order (one worker, never recycled): the persistence pairs use it to show that an
exploit cannot change the verdict of the next request on the same worker. Exit status: 0 all
match, 1 some mismatch (or a line this build cannot run), 2 Lean or the built checker missing
(or a malformed smoke file).
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SMOKE = REPO / "lean" / "test" / "check_smoke.jsonl"
if str(REPO / "python") not in sys.path:
    sys.path.insert(0, str(REPO / "python"))

from stp.cli import UsageError, add_config_arguments, config_from_args, run_main  # noqa: E402

TOP_KEYS = {"id", "header", "config", "group", "request", "expect"}
REQUEST_KEYS = {"statement", "proof", "name", "premises"}
CONFIG_KEYS = {"max_heartbeats", "timeout_s", "mode", "profile", "header_trusted"}
MODES = {"strict", "lenient"}
PROFILES = {"strict", "paper"}
EXPECT_KEYS = {"verdict", "status", "reasons_include", "forbidden_include", "axioms_include",
               "premises_include", "statement_match"}
VERDICTS = {"pass", "fail", "error"}
STATUSES = {"pass", "fail", "error", "timeout", "memory", "crash"}


class SmokeFileError(UsageError):
    """The smoke file itself is malformed (file, line and field named)."""


def load_smoke(path: Path) -> list[dict[str, Any]]:
    """Parse and validate the smoke file; raise SmokeFileError naming file:line and field."""
    cases: list[dict[str, Any]] = []
    seen: set[str] = set()
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            case = json.loads(raw)
        except json.JSONDecodeError as err:
            raise SmokeFileError(f"{where}: invalid JSON: {err}") from None
        if not isinstance(case, dict):
            raise SmokeFileError(f"{where}: a line must be a JSON object")
        _check_keys(where, "", case, TOP_KEYS, required={"id", "request", "expect"})
        if not isinstance(case["id"], str) or not case["id"]:
            raise SmokeFileError(f"{where}: field 'id' must be a non-empty string")
        if case["id"] in seen:
            raise SmokeFileError(f"{where}: duplicate id {case['id']!r}")
        seen.add(case["id"])
        if "header" in case and not isinstance(case["header"], str):
            raise SmokeFileError(f"{where}: field 'header' must be a string")
        req = case["request"]
        _check_keys(where, "request.", req, REQUEST_KEYS, required={"statement", "proof"})
        for key in ("statement", "proof"):
            if not isinstance(req[key], str):
                raise SmokeFileError(f"{where}: field 'request.{key}' must be a string")
        if "group" in case and (not isinstance(case["group"], str) or not case["group"]):
            raise SmokeFileError(f"{where}: field 'group' must be a non-empty string")
        cfg = case.get("config", {})
        _check_keys(where, "config.", cfg, CONFIG_KEYS, required=set())
        _check_config(where, cfg)
        exp = case["expect"]
        _check_keys(where, "expect.", exp, EXPECT_KEYS, required=set())
        if "verdict" not in exp and "status" not in exp:
            raise SmokeFileError(f"{where}: 'expect' needs 'verdict' or 'status'")
        if "verdict" in exp and exp["verdict"] not in VERDICTS:
            raise SmokeFileError(f"{where}: field 'expect.verdict' must be one of {sorted(VERDICTS)}")
        if "status" in exp and exp["status"] not in STATUSES:
            raise SmokeFileError(f"{where}: field 'expect.status' must be one of {sorted(STATUSES)}")
        for key in ("reasons_include", "forbidden_include", "axioms_include", "premises_include"):
            value = exp.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise SmokeFileError(f"{where}: field 'expect.{key}' must be a list of strings")
        cases.append(case)
    if not cases:
        raise SmokeFileError(f"{path}: no smoke cases")
    return cases


def _check_config(where: str, cfg: dict[str, Any]) -> None:
    """Types and closed sets of the per-line checker settings."""
    hb = cfg.get("max_heartbeats", 0)
    if not isinstance(hb, int) or isinstance(hb, bool) or hb < 0:
        raise SmokeFileError(f"{where}: field 'config.max_heartbeats' must be an integer >= 0")
    timeout = cfg.get("timeout_s", 1.0)
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
        raise SmokeFileError(f"{where}: field 'config.timeout_s' must be a number > 0")
    for key, allowed in (("mode", MODES), ("profile", PROFILES)):
        if key in cfg and cfg[key] not in allowed:
            raise SmokeFileError(f"{where}: field 'config.{key}' must be one of {sorted(allowed)}")
    if "header_trusted" in cfg and not isinstance(cfg["header_trusted"], bool):
        raise SmokeFileError(f"{where}: field 'config.header_trusted' must be a boolean")


def _check_keys(where: str, prefix: str, obj: Any, allowed: set[str], required: set[str]) -> None:
    if not isinstance(obj, dict):
        raise SmokeFileError(f"{where}: field '{prefix.rstrip('.')}' must be an object")
    for key in obj:
        if key not in allowed:
            raise SmokeFileError(f"{where}: unknown field '{prefix}{key}'")
    for key in required:
        if key not in obj:
            raise SmokeFileError(f"{where}: missing field '{prefix}{key}'")


def expected_status(case: dict[str, Any]) -> str:
    exp = case["expect"]
    return exp.get("status", exp.get("verdict"))


def mismatches(case: dict[str, Any], result: Any, only_verdicts: bool = False) -> list[str]:
    """What differs between the expectation and a VerifyResult (empty list = match)."""
    exp = case["expect"]
    out: list[str] = []
    want = expected_status(case)
    if result.status != want:
        out.append(f"status {result.status!r}, expected {want!r}")
    for reason in exp.get("reasons_include", []):
        if reason not in result.reasons:
            out.append(f"reason {reason!r} missing (got {result.reasons})")
    if only_verdicts:
        return out
    for key, got in (("forbidden_include", result.forbidden), ("axioms_include", result.axioms),
                     ("premises_include", result.premises or [])):
        for item in exp.get(key, []):
            if item not in got:
                out.append(f"{key.split('_')[0]} {item!r} missing (got {got})")
    if "statement_match" in exp and result.statement_match != exp["statement_match"]:
        out.append(f"statement_match {result.statement_match}, expected {exp['statement_match']}")
    return out


GroupKey = tuple[str, str, str]


def group_cases(cases: Iterable[dict[str, Any]]) -> dict[GroupKey, list[dict[str, Any]]]:
    """Cases keyed by (header, config, group), in file order of first appearance; within a
    group, in file order (the order a pinned group is sent to its one worker)."""
    groups: dict[GroupKey, list[dict[str, Any]]] = {}
    for case in cases:
        key = (case.get("header", ""), json.dumps(case.get("config", {}), sort_keys=True),
               case.get("group", ""))
        groups.setdefault(key, []).append(case)
    return groups


def unsupported_reason(case: dict[str, Any]) -> str | None:
    """Why this build's Python side cannot run `case` as written (None = it can): a per-line
    setting needs `lean.profile` (checker profile) or a `header_trusted` field on VerifyItem,
    both added with checker protocol 2."""
    from stp.lean.config import LeanConfig
    from stp.verify import VerifyItem

    cfg = case.get("config", {})
    if "profile" in cfg and "profile" not in LeanConfig.__struct_fields__:
        return "this build's configuration has no lean.profile"
    if "header_trusted" in cfg and "header_trusted" not in VerifyItem.__struct_fields__:
        return "this build's VerifyItem has no header_trusted field"
    return None


def group_overrides(cfg_over: dict[str, Any], group: str) -> list[str]:
    """`--set` overrides for one group's per-line settings (timeout excluded)."""
    out: list[str] = []
    if "max_heartbeats" in cfg_over:
        out.append(f"lean.max_heartbeats={int(cfg_over['max_heartbeats'])}")
    if "mode" in cfg_over:
        out.append(f'lean.mode="{cfg_over["mode"]}"')
    if "profile" in cfg_over:
        out.append(f'lean.profile="{cfg_over["profile"]}"')
    if group:  # one worker, never recycled: every request of the group meets the same process
        out += ["verifier.workers=1", "verifier.recycle_after=0"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", type=Path, default=DEFAULT_SMOKE, help="smoke file (JSONL)")
    parser.add_argument("--only", default="", help="comma-separated ids to run")
    parser.add_argument("--checker-command", default=None,
                        help="run this command instead of the built checker (e.g. the stand-in)")
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="wall-clock limit per check unless a line's config sets timeout_s")
    parser.add_argument("--timeout-cap", type=float, default=None,
                        help="never wait longer than this per check (self-tests)")
    parser.add_argument("--only-verdicts", action="store_true",
                        help="compare status and reasons only (for stand-in self-tests)")
    add_config_arguments(parser)
    args = parser.parse_args(argv)

    cases = load_smoke(args.smoke)
    if args.only:
        wanted = set(args.only.split(","))
        cases = [c for c in cases if c["id"] in wanted]
        if not cases:
            raise UsageError(f"--only {args.only}: no such ids in {args.smoke}")
    base = config_from_args(args)
    if args.checker_command:
        base.lean.checker_command = shlex.split(args.checker_command)
    from stp.lean.toolchain import checker_command

    checker_command(base.lean)  # UsageError (exit 2) when lake or the checker is missing

    from stp.config import STPConfig, load_config
    from stp.verify import VerifyItem, make_verifier

    failures = 0
    for (header, cfg_json, group_name), group in group_cases(cases).items():
        cfg_over = json.loads(cfg_json)
        problem = unsupported_reason(group[0])
        if problem is not None:
            for case in group:
                print(f"FAIL {case['id']}: cannot run: {problem}")
            failures += len(group)
            continue
        timeout = float(cfg_over.get("timeout_s", args.timeout))
        if args.timeout_cap is not None:
            timeout = min(timeout, args.timeout_cap)
        overrides = [
            *args.overrides,
            'verifier.cache_dir="off"',
            f"verifier.timeout_s={timeout}",
            "verifier.crash_retries=0",
            *group_overrides(cfg_over, group_name),
        ]
        run_cfg: STPConfig = load_config(args.config, overrides)
        run_cfg.lean.checker_command = base.lean.checker_command
        extra: dict[str, Any] = {}
        if "header_trusted" in cfg_over:
            extra["header_trusted"] = bool(cfg_over["header_trusted"])
        items = [VerifyItem(statement=c["request"]["statement"], proof=c["request"]["proof"],
                            header=header, name=c["id"],
                            premises=bool(c["request"].get("premises", False)), **extra)
                 for c in group]
        with make_verifier(run_cfg) as verifier:
            results = verifier.verify_all(items)
        for case, result in zip(group, results, strict=True):
            problems = mismatches(case, result, only_verdicts=args.only_verdicts)
            mark = "ok  " if not problems else "FAIL"
            print(f"{mark} {case['id']}: {result.status} {result.reasons}")
            for problem in problems:
                print(f"       {problem}")
                if result.errors:
                    print(f"       first error: {result.errors[0].text[:200]!r}")
            failures += bool(problems)
    total = len(cases)
    print(f"{total - failures}/{total} smoke cases match")
    return 1 if failures else 0


if __name__ == "__main__":
    run_main(main)
