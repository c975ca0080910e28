#!/usr/bin/env python
"""Run lean/test/check_smoke.jsonl against the real checker and report every mismatch.

    python scripts/lean_smoke.py                         # real checker (needs `lake build`)
    python scripts/lean_smoke.py --only id1,id2          # a subset
    python scripts/lean_smoke.py --checker-command "python python/tests/standin_checker.py '{\"default\":\"pass\"}'"

Each smoke line is {"id", "header"?, "config"?, "group"?, "request", "expect"} (docs/lean.md
describes the format). Lines are grouped by (header, config, group) and each group goes through
`stp.verify` — the same pool that self-play uses, with its re-check of passes
(`verifier.recheck`, a line may set `config.recheck`) — so `expect.status = "timeout"` is judged
by the pool's wall-clock limit exactly as in production. Lines that share a `group` run on ONE
checker process, in file order (one worker, never recycled): the persistence pairs use it to show
that an exploit cannot change the verdict of the next request on the same worker.

Replay lines {"id", "header"?, "config"?, "replay": {"statement", "export", "mutate"?}, "expect"}
bypass the pool: the runner writes protocol-4 lines itself to the judge (role "replay", sent
only the header's imports), with the statement's REFERENCE from a single-use statement process
(role "statement"), so that hand-made and mutated EXPORTs (which the pool never sends) reach the
judge. `export` is an
EXPORT object, or {"from_proof": proof, "statement"?: s}: a role-"check" worker with `export: true`
checks `s` (default: the replay statement) + proof, and its pass's export is used, after
`mutate` (MUTATIONS below) when given. Protocol 4 (when `stp.lean.protocol` speaks it): the
replay statement goes to a role-"statement" worker, whose REFERENCE (or, when the statement is
refused, whose answer) is used, and the judge gets REFERENCE + EXPORT and the header's imports.

Exit status: 0 all match, 1 some mismatch (or a line this build cannot run), 2 Lean or the built
checker missing (or a malformed smoke file).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import itertools
import json
import queue
import secrets
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import msgspec

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SMOKE = REPO / "lean" / "test" / "check_smoke.jsonl"
if str(REPO / "python") not in sys.path:
    sys.path.insert(0, str(REPO / "python"))

from stp.cli import UsageError, add_config_arguments, config_from_args, run_main  # noqa: E402
from stp.lean.protocol import (  # noqa: E402
    CheckerConfig,
    CheckRequest,
    ReferenceRequest,
    ReplayRequest,
    Role,
    encode_line,
)

TOP_KEYS = {"id", "header", "config", "group", "request", "replay", "expect"}
REQUEST_KEYS = {"statement", "proof", "name", "premises"}
REPLAY_KEYS = {"statement", "export", "mutate"}
FROM_PROOF_KEYS = {"from_proof", "statement"}
MUTATE_KEYS = {"op", "statement", "proof", "to"}
CONFIG_KEYS = {"max_heartbeats", "timeout_s", "mode", "profile", "header_trusted", "recheck"}
MODES = {"strict", "lenient"}
PROFILES = {"strict", "paper"}
RECHECKS = {"replay", "fresh", "off"}  # `verifier.recheck` (protocol 3)
# What each mutation does to the EXPORT of a real pass (all but `sorry_value` must make the
# replay worker refuse it; see `mutate_export`).
MUTATIONS = {
    "swap_value": "the target's value := the value of another passing proof of another statement "
                  "(donor: mutate.statement + mutate.proof)",
    "rename": "the target's name := mutate.to (name components; default [\"smoke_renamed\"])",
    "reduce_bool": "add a definition whose value uses Lean.reduceBool",
    "forward_index": "the target's value := a new node that refers to a LATER node",
    "out_of_range": "the target's value := an expression index past the end of the table",
    "unknown_tag": "the target's value := a node with an unknown tag",
    "axiom": "add a constant of kind \"axiom\" (the target's type)",
    "duplicate": "the target constant twice",
    "empty_consts": "no constants at all",
    "sorry_value": "the target's value := sorryAx.{0} <type> false (kernel-valid, axiom walk: sorry)",
}
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
        _check_keys(where, "", case, TOP_KEYS, required={"id", "expect"})
        if ("request" in case) == ("replay" in case):
            raise SmokeFileError(f"{where}: a line needs exactly one of 'request' and 'replay'")
        if not isinstance(case["id"], str) or not case["id"]:
            raise SmokeFileError(f"{where}: field 'id' must be a non-empty string")
        if case["id"] in seen:
            raise SmokeFileError(f"{where}: duplicate id {case['id']!r}")
        seen.add(case["id"])
        if "header" in case and not isinstance(case["header"], str):
            raise SmokeFileError(f"{where}: field 'header' must be a string")
        if "request" in case:
            req = case["request"]
            _check_keys(where, "request.", req, REQUEST_KEYS, required={"statement", "proof"})
            for key in ("statement", "proof"):
                if not isinstance(req[key], str):
                    raise SmokeFileError(f"{where}: field 'request.{key}' must be a string")
        else:
            _check_replay(where, case["replay"])
            if "group" in case:
                raise SmokeFileError(f"{where}: a replay line cannot have a 'group'")
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


def _check_replay(where: str, rep: Any) -> None:
    """Shape of a replay line's `replay` object (the EXPORT itself is the checker's to judge)."""
    _check_keys(where, "replay.", rep, REPLAY_KEYS, required={"statement", "export"})
    if not isinstance(rep["statement"], str):
        raise SmokeFileError(f"{where}: field 'replay.statement' must be a string")
    exp = rep["export"]
    if not isinstance(exp, dict):
        raise SmokeFileError(f"{where}: field 'replay.export' must be an object")
    if "from_proof" in exp:
        _check_keys(where, "replay.export.", exp, FROM_PROOF_KEYS, required={"from_proof"})
        for key in exp:
            if not isinstance(exp[key], str):
                raise SmokeFileError(f"{where}: field 'replay.export.{key}' must be a string")
    if "mutate" in rep:
        mut = rep["mutate"]
        _check_keys(where, "replay.mutate.", mut, MUTATE_KEYS, required={"op"})
        if "from_proof" not in exp:
            raise SmokeFileError(f"{where}: 'replay.mutate' needs 'replay.export.from_proof'")
        if mut["op"] not in MUTATIONS:
            raise SmokeFileError(
                f"{where}: field 'replay.mutate.op' must be one of {sorted(MUTATIONS)}")
        if mut["op"] == "swap_value" and not {"statement", "proof"} <= set(mut):
            raise SmokeFileError(f"{where}: mutation swap_value needs 'statement' and 'proof'")
        to = mut.get("to", ["smoke_renamed"])
        if not isinstance(to, list) or not to or not all(isinstance(c, str) for c in to):
            raise SmokeFileError(f"{where}: field 'replay.mutate.to' must be a list of strings")


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
    if "recheck" in cfg and cfg["recheck"] not in RECHECKS:
        raise SmokeFileError(f"{where}: field 'config.recheck' must be one of {sorted(RECHECKS)}")


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
    from stp.verify.config import VerifierConfig

    cfg = case.get("config", {})
    if "profile" in cfg and "profile" not in LeanConfig.__struct_fields__:
        return "this build's configuration has no lean.profile"
    if "header_trusted" in cfg and "header_trusted" not in VerifyItem.__struct_fields__:
        return "this build's VerifyItem has no header_trusted field"
    if "recheck" in cfg and "recheck" not in VerifierConfig.__struct_fields__:
        return "this build's configuration has no verifier.recheck (protocol 3)"
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
    if "recheck" in cfg_over:
        out.append(f'verifier.recheck="{cfg_over["recheck"]}"')
    if group:  # one worker, never recycled: every request of the group meets the same process
        out += ["verifier.workers=1", "verifier.recycle_after=0"]
    return out


class SmokeRunError(Exception):
    """A replay line could not be run as written (its source proof did not pass, a worker died
    or timed out): reported as that line's FAIL, never a crash of the run."""


# --- EXPORT mutations (replay lines) -----------------------------------------------------------

# Index positions per expression tag: (name positions, level positions, expression positions).
_EXPR_REFS: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]] = {
    "bv": ((), (), ()), "so": ((), (1,), ()), "c": ((1,), (), ()), "ap": ((), (), (1, 2)),
    "lam": ((1,), (), (3, 4)), "pi": ((1,), (), (3, 4)), "let": ((1,), (), (2, 3, 4)),
    "nat": ((), (), ()), "str": ((), (), ()), "prj": ((1,), (), (3,)),
}


def declared_name(statement: str) -> list[str]:
    """Name components of the constant a smoke statement declares (`theorem a.b …` → [a, b])."""
    for keyword, name in itertools.pairwise(statement.split()):
        if keyword in ("theorem", "lemma", "def", "abbrev"):
            return name.split(".")
    raise SmokeRunError(f"cannot find the declared name in {statement!r}")


def _const_named(export: dict[str, Any], name: list[str]) -> dict[str, Any]:
    for const in export["consts"]:
        if export["names"][const["name"]] == name:
            return const
    raise SmokeRunError(f"the export has no constant {'.'.join(name)}")


def shift_export(export: dict[str, Any], names: int, levels: int,
                 exprs: int) -> dict[str, Any]:
    """`export` with every index moved up by the given table sizes: its entries can then be
    appended after another export's tables (the donor of `swap_value`)."""
    out = copy.deepcopy(export)
    for node in out["levels"]:
        if node[0] in ("s", "max", "imax"):
            node[1:] = [i + levels for i in node[1:]]
        elif node[0] == "p":
            node[1] += names
    for node in out["exprs"]:
        name_pos, level_pos, expr_pos = _EXPR_REFS[node[0]]
        for i in name_pos:
            node[i] += names
        for i in level_pos:
            node[i] += levels
        for i in expr_pos:
            node[i] += exprs
        if node[0] == "c":
            node[2] = [i + levels for i in node[2]]
    for const in out["consts"]:
        const["name"] += names
        const["lps"] = [i + names for i in const["lps"]]
        const["type"] += exprs
        const["value"] += exprs
    return out


def mutate_export(export: dict[str, Any], target: list[str], mutate: dict[str, Any],
                  donor: dict[str, Any] | None = None,
                  donor_target: list[str] | None = None) -> dict[str, Any]:
    """A copy of `export` changed as `mutate["op"]` says (MUTATIONS); `donor` is the export of
    another passing proof (op `swap_value`), whose target is named `donor_target`."""
    e = copy.deepcopy(export)
    names, levels, exprs, consts = e["names"], e["levels"], e["exprs"], e["consts"]
    t = _const_named(e, target)

    def name(comps: list[str]) -> int:
        names.append(comps)
        return len(names) - 1

    def node(n: list[Any]) -> int:
        exprs.append(n)
        return len(exprs) - 1

    op = mutate["op"]
    if op == "rename":
        t["name"] = name(list(mutate.get("to", ["smoke_renamed"])))
    elif op == "reduce_bool":
        value = node(["ap", node(["c", name(["Lean", "reduceBool"]), []]),
                      node(["c", name(["Bool", "true"]), []])])
        consts.append({"kind": "def", "name": name(["smoke_reduce_bool"]), "lps": [],
                       "type": node(["c", name(["Bool"]), []]), "value": value, "hints": 1})
    elif op == "forward_index":
        first = len(exprs)
        exprs.append(["ap", first + 1, first + 1])  # refers to the entry after it
        exprs.append(["bv", 0])
        t["value"] = first
    elif op == "out_of_range":
        t["value"] = len(exprs) + 100
    elif op == "unknown_tag":
        t["value"] = node(["zz", 0])
    elif op == "axiom":
        consts.append({"kind": "axiom", "name": name(["smoke_cheat_axiom"]), "lps": [],
                       "type": t["type"], "value": t["type"]})
    elif op == "duplicate":
        consts.append(copy.deepcopy(t))
    elif op == "empty_consts":
        consts.clear()
    elif op == "sorry_value":
        levels.append(["z"])
        sorry = node(["c", name(["sorryAx"]), [len(levels) - 1]])
        t["value"] = node(["ap", node(["ap", sorry, t["type"]]),
                           node(["c", name(["Bool", "false"]), []])])
    elif op == "swap_value":
        if donor is None or donor_target is None:
            raise SmokeRunError("swap_value needs a donor export")
        d = shift_export(donor, len(names), len(levels), len(exprs))
        names += d["names"]
        levels += d["levels"]
        exprs += d["exprs"]
        d_target = _const_named({"names": names, "consts": d["consts"]}, donor_target)
        t["value"] = d_target["value"]
        consts += [c for c in d["consts"] if c is not d_target]
    else:
        raise SmokeRunError(f"unknown mutation {op!r}")
    return e


# --- Raw protocol-4 workers (replay lines bypass the pool) -------------------------------------

class RawChecker:
    """One `stp_check` process driven with raw JSON lines (a smoke runner, not product code)."""

    def __init__(self, argv: list[str], cwd: str | None, env: dict[str, str] | None,
                 config: CheckerConfig, timeout: float) -> None:
        self.timeout = timeout
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                     encoding="utf-8")
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        ready = self.ask(config, timeout=max(timeout, 600.0))
        if ready.get("op") != "ready" or not ready.get("ok"):
            self.close()
            raise SmokeRunError(f"the {config.role} worker is not ready: {json.dumps(ready)}")

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def ask(self, message: CheckerConfig | CheckRequest | ReferenceRequest | ReplayRequest,
            timeout: float | None = None) -> dict[str, Any]:
        """Send one protocol line (encoded as the pool encodes it) and read the raw answer (a
        chunked EXPORT is joined into `export`)."""
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(encode_line(message).decode("utf-8"))
            self.proc.stdin.flush()
        except OSError as err:
            self.proc.kill()
            raise SmokeRunError(f"no answer from the checker ({type(err).__name__})") from None
        answer = self._next(timeout)
        chunks = answer.pop("export_chunks", None)
        if isinstance(chunks, int):
            pieces = [self._next(timeout) for _ in range(chunks)]
            if [p.get("index") for p in pieces] != list(range(chunks)):
                raise SmokeRunError("export chunks out of sequence")
            answer["export"] = json.loads("".join(str(p.get("data", "")) for p in pieces))
        return answer

    def _next(self, timeout: float | None) -> dict[str, Any]:
        try:
            line = self.lines.get(timeout=timeout or self.timeout)
        except queue.Empty as err:
            self.proc.kill()  # a late answer must never be read as the next request's
            raise SmokeRunError(f"no answer from the checker ({type(err).__name__})") from None
        if line is None:
            raise SmokeRunError(f"the checker exited (status {self.proc.wait()})")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise SmokeRunError(f"not a JSON object: {line[:200]!r}")
        if isinstance(answer.get("export_chunks"), int):
            answer["export"] = self._read_chunks(answer, timeout)
        return answer

    def _read_chunks(self, answer: dict[str, Any], timeout: float | None) -> Any:
        """Protocol 4: the `export_chunks` lines that follow a result line, joined and parsed."""
        pieces: list[str] = []
        for index in range(answer["export_chunks"]):
            try:
                line = self.lines.get(timeout=timeout or self.timeout)
            except queue.Empty:
                self.proc.kill()
                raise SmokeRunError("an export chunk did not arrive") from None
            if line is None:
                raise SmokeRunError(f"the checker exited (status {self.proc.wait()})")
            chunk = json.loads(line)
            if (chunk.get("op") != "export_chunk" or chunk.get("index") != index
                    or chunk.get("id") != answer.get("id")
                    or chunk.get("nonce") != answer.get("nonce")):
                raise SmokeRunError(f"bad export chunk {index}: {line[:200]!r}")
            pieces.append(chunk["data"])
        return json.loads("".join(pieces))

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):  # the process may already be gone
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def worker_config(cfg: Any, header: str, trusted: bool, role: Role) -> CheckerConfig:
    """The config line of a raw worker, from the run's configuration (export on for checks; the
    judge gets no header text, only the imports Python reads from it)."""
    from stp.lean.config import session_header, session_heartbeats
    from stp.verify.imports import HeaderImportsError, header_imports

    text = header or session_header(cfg.lean)
    judge = role == "replay"
    try:
        imports = header_imports(text) if judge else []
    except HeaderImportsError as err:  # this line cannot be judged as written
        raise SmokeRunError(f"the header's imports cannot be read: {err}") from None
    return CheckerConfig(role=role, export=role == "check", header="" if judge else text,
                         imports=imports, header_trusted=trusted,
                         max_heartbeats=session_heartbeats(cfg.lean), mode=cfg.lean.mode,
                         profile=cfg.lean.profile, allowed_axioms=list(cfg.lean.allowed_axioms))


class ReplayRunner:
    """Raw workers of the replay lines, one per (role, header, settings), closed at the end."""

    def __init__(self, args: argparse.Namespace, checker_cmd: list[str]) -> None:
        self.args = args
        self.checker_cmd = checker_cmd
        self.workers: dict[tuple[str, str, str], RawChecker] = {}

    def worker(self, case: dict[str, Any], role: Any) -> RawChecker:
        from stp.config import load_config
        from stp.lean.toolchain import checker_command
        from stp.verify.sandbox import wrap

        cfg_over = case.get("config", {})
        key = (role, case.get("header", ""), json.dumps(cfg_over, sort_keys=True))
        if role == "statement" and key in self.workers:  # single use, as in the pool
            self.workers.pop(key).close()
        if key in self.workers and self.workers[key].proc.poll() is not None:
            del self.workers[key]  # died or was killed after a timeout: start a new one
        if key not in self.workers:
            cfg = load_config(self.args.config, [*self.args.overrides,
                                                 *group_overrides(cfg_over, "")])
            cfg.lean.checker_command = self.checker_cmd
            # The same sandbox and digest check as the pool's workers (stp.verify.sandbox).
            argv, cwd, env = wrap(cfg, *checker_command(cfg.lean))
            conf = worker_config(cfg, case.get("header", ""),
                                 bool(cfg_over.get("header_trusted", True)), role)
            self.workers[key] = RawChecker(argv, cwd, env, conf, self.timeout(case))
        return self.workers[key]

    def timeout(self, case: dict[str, Any]) -> float:
        t = float(case.get("config", {}).get("timeout_s", self.args.timeout))
        return t if self.args.timeout_cap is None else min(t, self.args.timeout_cap)

    def export_of(self, case: dict[str, Any], statement: str, proof: str) -> dict[str, Any]:
        """The export of a passing check of statement + proof (role "check", export on)."""
        resp = self.worker(case, "check").ask(CheckRequest(
            id=case["id"], nonce=secrets.token_hex(16), statement=statement, proof=proof))
        if resp.get("verdict") != "pass" or not isinstance(resp.get("export"), dict):
            raise SmokeRunError(f"the source proof did not pass with an export: "
                                f"{json.dumps(resp)[:300]}")
        return resp["export"]

    def run(self, case: dict[str, Any]) -> dict[str, Any]:
        """The replay worker's answer for one replay line."""
        rep = case["replay"]
        export = rep["export"]
        if "from_proof" in export:
            source = export.get("statement", rep["statement"])
            export = self.export_of(case, source, export["from_proof"])
            if "mutate" in rep:
                mut = rep["mutate"]
                donor = None
                if mut["op"] == "swap_value":
                    donor = self.export_of(case, mut["statement"], mut["proof"])
                export = mutate_export(export, declared_name(source), mut, donor,
                                       declared_name(mut.get("statement", source)))
        statements = self.worker(case, "statement")
        ref = statements.ask(ReferenceRequest(id=case["id"], nonce=secrets.token_hex(16),
                                              statement=rep["statement"]),
                             timeout=self.timeout(case))
        statements.close()
        if ref.get("verdict") != "pass" or not isinstance(ref.get("reference"), dict):
            return ref  # the statement's own verdict (forbidden, statement_error, ...)
        return self.worker(case, "replay").ask(ReplayRequest(
            id=case["id"], nonce=secrets.token_hex(16),
            reference=msgspec.Raw(json.dumps(ref["reference"]).encode()),
            export=msgspec.Raw(json.dumps(export).encode())), timeout=self.timeout(case))

    def close(self) -> None:
        for w in self.workers.values():
            w.close()


def as_result(resp: dict[str, Any]) -> Any:
    """A replay answer in the shape `mismatches` reads (a VerifyResult's fields)."""
    errors = [SimpleNamespace(text=str(m.get("text", ""))) for m in resp.get("errors", [])]
    return SimpleNamespace(status=resp.get("verdict"), reasons=resp.get("reasons", []),
                           forbidden=resp.get("forbidden", []), axioms=resp.get("axioms", []),
                           premises=None, statement_match=resp.get("statement_match"),
                           errors=errors)


def report(case: dict[str, Any], result: Any, only_verdicts: bool) -> bool:
    """Print one line's outcome; True when it matches."""
    problems = mismatches(case, result, only_verdicts=only_verdicts)
    print(f"{'ok  ' if not problems else 'FAIL'} {case['id']}: {result.status} {result.reasons}")
    for problem in problems:
        print(f"       {problem}")
        if result.errors:
            print(f"       first error: {result.errors[0].text[:200]!r}")
    return not problems


def run_replay_lines(cases: list[dict[str, Any]], args: argparse.Namespace,
                     checker_cmd: list[str]) -> int:
    """Run the replay lines; returns the number of mismatches."""
    failures = 0
    runner = ReplayRunner(args, checker_cmd)
    try:
        for case in cases:
            try:
                resp = runner.run(case)
            except SmokeRunError as err:
                print(f"FAIL {case['id']}: cannot run: {err}")
                failures += 1
                continue
            failures += not report(case, as_result(resp), args.only_verdicts)
    finally:
        runner.close()
    return failures


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
    replay_cases = [c for c in cases if "replay" in c]
    pool_cases = [c for c in cases if "request" in c]
    for (header, cfg_json, group_name), group in group_cases(pool_cases).items():
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
            failures += not report(case, result, args.only_verdicts)
    if replay_cases:
        failures += run_replay_lines(replay_cases, args, list(base.lean.checker_command))
    total = len(cases)
    print(f"{total - failures}/{total} smoke cases match")
    return 1 if failures else 0


if __name__ == "__main__":
    run_main(main)
