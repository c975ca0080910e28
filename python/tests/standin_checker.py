"""Stand-in for the Lean checker in tests: speaks the exact protocol, verdicts follow test rules.

Usage: python standin_checker.py '<spec json>'   (build the argv with tests/standin.py)

Spec (every key optional):
  rules:   list of {pattern, field?, action, ms?, premises?, errors?, times?, reasons?, role?,
           replay?}
           the first rule whose regex `pattern` matches `field` ("proof" default, "statement",
           "name", "text" = statement + proof) decides; `times: n` applies the rule only to the
           first n requests with that text across all processes (needs state_dir; such rules
           are skipped by the judge); `role: "check"|"replay"|"statement"` limits a rule to one
           role (rules without one apply to check processes and the judge, never to statement
           processes).
  default: action when no rule matches — REQUIRED: the stand-in never passes by default, so a
           bare invocation (or a spec that forgot it) cannot pass anything; tests/standin.py's
           `standin_command` fills in "pass" explicitly for tests that want it. `"judge"`: a
           rule set decides (below)
  judge:   with `default: "judge"`, the name of a module beside this file whose
           `standin_verdict(statement, proof) -> (action, rule spec)` judges every request no
           rule matched, in both roles (e.g. learning_task: a synthetic logic judged exactly)
  actions: pass | fail | error | hang | crash | leak | garbage | wrong_id | out_of_order | slow
           | burn | probe and the adversarial ones below.
           `slow` waits `ms` then passes (or gives `then`); `leak` allocates ~`mb_per_s` MiB/s
           (up to `leak_cap_mb`, then hangs) until killed; `crash` exits mid-request;
           `out_of_order` holds this answer and sends it after the next one; `burn` spends
           `cpu_ms` of CPU then gives `then` (default pass); `probe` tries to escape (write
           `probe_write`, connect to `probe_connect` [host, port], read env `probe_env`) and
           answers fail with one error whose text is the JSON of what it could do.
           `payload` is what proof code that took over the checker would try against other
           processes (see `payload`): fork a child that reads this process's memory through
           /proc/<ppid>/mem, read its own parent's memory, run a program, read `payload_victim`'s memory ({pid, address,
           secret}: another worker's) via /proc/<pid>/mem, process_vm_readv and ptrace,
           signal it, list /proc, open each of `payload_write` for writing; answers fail with
           the JSON of the outcomes ("ok" or the exception's name).
  adversarial actions (what a checker whose process ran exploit code could print):
           forge_pass   {"op":"result","id":..,"nonce":..,"verdict":"pass"} and nothing else
           dup_verdict  a consistent pass line that names "verdict" twice (fail, then pass)
           wrong_nonce  a consistent pass with another nonce; no_nonce: without one
           sorry_pass   a pass whose axioms include sorryAx; mismatch_pass: statement_match false
           huge         a fail whose message is `mb` MiB long (one line)
           hijack       answers a consistent pass; from then on every answer of this process is
                        a consistent forged pass with the right nonce (a rewritten stdout)
  roles (protocol 4): `check` answers `check` requests; `statement` (single-use) answers
           `reference` requests and exits on EOF; `replay` (the judge) answers `replay` requests
           only. A request of another role's op gets error/bad_request.
  statement role: the REFERENCE of a statement is `{"names": [[], <target name>], "levels": [],
           "exprs": [["str", statement]], "name": 1, "lps": [], "type": 0, "kind": "thm"|"def"}`
           (the stand-in's "type" is the statement text). Rules with `role: "statement"` (field
           "statement") decide: pass (the reference), fail (reason `statement_error`), error,
           crash, hang, slow, burn, and the adversarial statement actions below; without a
           matching rule the answer is `statement_default` (default "pass", not `default`).
  judge (role replay): decodes the REFERENCE and the EXPORT (bounds- and tag-checked, every
           index pointing at an earlier entry, like the real decoder), finds the reference's
           target among the exported constants (`missing_theorem`), requires its type to equal the
           reference's type (`statement_mismatch`), takes its value `["str", proof]` and judges
           (statement from the reference, that proof) with the rules as the judge sees them: a
           rule's `replay` key if given, else its action when it is pass/fail/error/hang/crash/
           slow/burn/leak, else `fail` (a forged answer is a false proof the kernel rejects).
           Its fails carry reason `replay_failed`. It never reads any other text.
  rule sets for learning tests (e.g. an arithmetic rule set): a list of
           {pattern, field: "proof"|"statement"|"text", action: "pass"|"fail"} entries without
           `role` is judged the same way by check workers and by the judge (which recovers the
           statement from the REFERENCE and the proof from the EXPORT), with `default: "fail"`;
           statement processes answer `pass` for every statement unless a `role: "statement"`
           rule says otherwise. Nothing else is needed for a pass to go through the whole pool.
  exports: a check process started with `export: true` attaches to each strict pass it prints
           an EXPORT of the theorem (type `["str", statement]`, value `["str", proof]`, and the
           request's informational `name` as an opaque `_stp_standin.request_name`, so that rules
           on field "name" judge the replay too; see `encode_export`). An EXPORT whose JSON text
           is longer than `export_chunk_bytes` (spec; default EXPORT_CHUNK_BYTES) travels in
           `export_chunks` ExportChunk lines, as the real checker sends it; `pad_export_kb` (per
           rule or global) pads the export with a string constant to make it that large.
  adversarial check actions beyond those above: see ADVERSARIAL_CHECK (each one is a way a
           compromised check process can answer; tests/test_verify_adversarial.py runs them all).
  adversarial statement actions: see ADVERSARIAL_STATEMENT.
  check_sleep_ms / replay_sleep_ms / reference_sleep_ms: wall time (sleep, no CPU) every check /
           judgement / reference takes: the SIMULATED workers of benchmarks/verify_defences.py
           (many workers on few cores; start_delay_ms models the header import the same way)
  check_cpu_ms: CPU every check spends before answering (like Lean elaborating a proof)
  replay_cpu_ms: CPU every judgement spends before answering (the kernel re-check of the export)
  reference_cpu_ms: CPU every reference spends (a statement elaborated with `sorry`)
  start_cpu_ms: CPU spent before Ready (like Lean importing the header)
  premises: list returned for requests that ask for premises (per rule or global)
  log:     file getting one JSON line per event: {"ev": "start"|"check"|"reference"|"replay",
           "pid", "id", "cpu", ...} (a judge's "replay" event lists the request's `fields`)
           (`cpu`: the process's CPU seconds so far, start and check CPU spending included)
  state_dir: directory for `times` counters
  header_error: regex; a header matching it gets Ready(ok=false) and every check "error"
  start_delay_ms: sleep before Ready (header import); start_crash: regex on the header → exit 3
           (only for processes of role `start_crash_role` when that is given)
  checker_version / lean_version / protocol: what Ready reports
  untrusted_header_forbidden: regex; an untrusted header (`header_trusted: false`) with a line
           matching it gets Ready(ok=false) naming the command, as the real checker's allow-list
           does for commands outside it (the real list lives in lean/STP/Gate.lean).
Never used by product code: it only exists so the pool can be tested without Lean.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import time
from pathlib import Path

# Import this checkout's `stp` (also when started inside a sandbox with a cleared environment).
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgspec

from stp.lean.protocol import (
    EXPORT_CHUNK_BYTES,
    PROTOCOL_VERSION,
    CheckerConfig,
    CheckRequest,
    CheckResponse,
    ExportChunk,
    LeanMessage,
    Ready,
    ReferenceRequest,
    ReplayRequest,
    Verdict,
    checker_input_decoder,
    encoder,
)

# What the judge does with a rule's action; anything else is judged `fail`.
REPLAY_ACTIONS = {"pass", "fail", "error", "hang", "crash", "slow", "burn", "leak"}
# Every answer a compromised CHECK process can give besides the honest ones (action -> what it
# prints); tests/test_verify_adversarial.py keeps one case per entry.
ADVERSARIAL_CHECK = {
    "forge_pass": "a bare pass line: no axioms, no statement_match, no export",
    "dup_verdict": "a pass line naming `verdict` twice (fail, then pass)",
    "wrong_nonce": "a consistent pass with another nonce",
    "no_nonce": "a consistent pass without a nonce",
    "sorry_pass": "a pass whose axioms include sorryAx",
    "bad_axiom_pass": "a pass depending on Lean.ofReduceBool",
    "mismatch_pass": "a pass with statement_match false",
    "hijack": "a consistent pass, and from then on every answer is a consistent forged pass",
    "forge_consistent": "a consistent pass with an honest-looking export of the false proof",
    "no_export": "a consistent pass without an export",
    "export_not_object": "a pass whose export is a JSON string",
    "export_garbage": "a pass whose export is an object with malformed tables",
    "export_other_theorem": "a pass whose export proves another (true) statement (`as`)",
    "export_and_chunks": "a pass with both export and export_chunks",
    "chunks_short": "export_chunks: 3 followed by only 2 chunks, then the next answer",
    "chunks_wrong_nonce": "export chunks carrying another nonce",
    "chunks_wrong_index": "export chunks out of order",
    "chunks_one": "export_chunks: 1",
    "stray_chunk": "a lone export_chunk line instead of a result",
    "reference_on_check": "a check pass carrying a `reference` field",
    "other_id": "a consistent pass for another request's id",
    "previous_nonce": "a consistent pass echoing the previous request's nonce",
    "late": "answers this request after the next one (out of order)",
    "double": "answers the same pass twice",
}
# Every answer a compromised STATEMENT process can give besides the honest ones.
ADVERSARIAL_STATEMENT = {
    "misstate": "a consistent reference of another statement (`as`)",
    "ref_missing": "a pass without a reference",
    "ref_not_object": "a pass whose reference is a JSON string",
    "ref_wrong_nonce": "a reference with another nonce",
    "ref_other_id": "a reference for another request's id",
    "ref_double": "the same reference twice",
    "ref_with_export": "a reference pass that also carries an export",
    "ref_forge_fail": "a consistent `fail` (statement_error) for a good statement",
    "ref_then_exit_1": "consistent references, then exit code 1",
}


class Rule:
    def __init__(self, spec: dict) -> None:
        self.regex = re.compile(spec.get("pattern", ""), re.S)
        self.field = spec.get("field", "proof")
        self.action = spec["action"]
        self.spec = spec

    def applies_to(self, role: str) -> bool:
        if role == "statement":  # statement processes only follow rules meant for them
            return self.spec.get("role") == "statement"
        return self.spec.get("role", role) == role and not (
            role == "replay" and "times" in self.spec)

    def matches(self, req: CheckRequest) -> bool:
        if self.field == "statement":
            text = req.statement
        elif self.field == "name":
            text = req.name or ""
        elif self.field == "text":
            text = req.statement + req.proof
        else:
            text = req.proof
        return self.regex.search(text) is not None


class StandIn:
    def __init__(self, spec: dict) -> None:
        self.spec = spec
        self.rules = [Rule(r) for r in spec.get("rules", [])]
        self.default = spec["default"]
        self.judge = load_judge(spec) if self.default == "judge" else None
        self.log_path = spec.get("log")
        self.state_dir = spec.get("state_dir")
        self.out = sys.stdout.buffer
        self.held: bytes | None = None
        self.header_ok = True
        self.hog: list[bytearray] = []
        self.hijacked = False
        self.allowed_axioms = ["propext"]
        self.role = "check"
        self.export = False
        self.profile = "strict"
        self.previous: CheckRequest | None = None
        self.exit_code = 0

    def log(self, **event: object) -> None:
        if not self.log_path:
            return
        line = (json.dumps({"pid": os.getpid(), "cpu": time.process_time(), **event})
                + "\n").encode()
        fd = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)  # O_APPEND: one write per line is atomic enough for tests
        finally:
            os.close(fd)

    def send(self, msg: msgspec.Struct) -> None:
        data = encoder.encode(msg) + b"\n"
        if self.held is not None:  # an out-of-order answer goes after this one
            data, self.held = data + self.held, None
        self.out.write(data)
        self.out.flush()

    def start(self, line: bytes) -> None:
        cfg = checker_input_decoder.decode(line)
        if not isinstance(cfg, CheckerConfig):
            raise SystemExit("first line must be a config")
        # As stp_check (`need "protocol"`): the version must be on the wire, and be ours.
        if json.loads(line).get("protocol") != PROTOCOL_VERSION:
            raise SystemExit(f"config line without protocol {PROTOCOL_VERSION}: the checker "
                             "refuses it")
        burn(self.spec.get("start_cpu_ms", 0))
        self.role, self.export, self.profile = cfg.role, cfg.export, cfg.profile
        if cfg.role == "replay" and (cfg.header or cfg.export):
            raise SystemExit("stand-in: the judge is sent no header text and no export flag")
        if cfg.role != "replay" and cfg.imports:
            raise SystemExit("stand-in: `imports` is for the judge only")
        self.log(ev="start", header=cfg.header, imports=cfg.imports, trusted=cfg.header_trusted,
                 role=cfg.role, export=cfg.export)
        if cfg.role == "replay":  # the judge knows its imports only: match header rules on them
            cfg = msgspec.structs.replace(cfg, header="".join(f"import {m}\n"
                                                              for m in cfg.imports))
        crash = self.spec.get("start_crash")
        if crash and re.search(crash, cfg.header) and self.spec.get("start_crash_role",
                                                                     cfg.role) == cfg.role:
            sys.stderr.write("stand-in: refusing this header\n")
            sys.stderr.flush()
            os._exit(3)
        time.sleep(self.spec.get("start_delay_ms", 0) / 1000)
        self.allowed_axioms = list(cfg.allowed_axioms)
        bad = self.spec.get("header_error")
        self.header_ok = not (bad and re.search(bad, cfg.header))
        errors = [] if self.header_ok else [LeanMessage(severity="error", line=1, column=0,
                                                        text="unknown package")]
        forbidden = self.spec.get("untrusted_header_forbidden")
        if self.header_ok and forbidden and not cfg.header_trusted:
            gated = header_gate(cfg.header, forbidden)
            if gated is not None:
                self.header_ok = False
                errors = [LeanMessage(severity="error", line=gated[0], column=0,
                                      text=f"header command not allowed: {gated[1]}")]
        self.send(Ready(protocol=self.spec.get("protocol", PROTOCOL_VERSION), ok=self.header_ok,
                        lean_version=self.spec.get("lean_version", "4.9.0-rc1-standin"),
                        checker_version=self.spec.get("checker_version", "standin-1"),
                        header_ms=self.spec.get("start_delay_ms", 0), header_errors=errors))

    def pick(self, req: CheckRequest) -> tuple[str, dict]:
        for rule in self.rules:
            if rule.applies_to(self.role) and rule.matches(req) and self.take(rule, req):
                if self.role == "replay":
                    action = rule.spec.get("replay", rule.action)
                    return (action if action in REPLAY_ACTIONS else "fail"), rule.spec
                return rule.action, rule.spec
        if self.role == "statement":
            return self.spec.get("statement_default", "pass"), {}
        action, spec = (self.default, {}) if self.judge is None else self.judge(
            req.statement, req.proof)
        if self.role == "replay":
            return (action if action in REPLAY_ACTIONS else "fail"), spec
        return action, spec

    def take(self, rule: Rule, req: CheckRequest) -> bool:
        times = rule.spec.get("times")
        if times is None:
            return True
        if not self.state_dir:
            raise SystemExit("stand-in: a rule with `times` needs `state_dir`")
        key = json.dumps([rule.spec.get("pattern", ""), req.statement, req.proof])
        digest = hashlib.sha1(key.encode("utf-8", "surrogatepass")).hexdigest()
        path = os.path.join(self.state_dir, digest)
        with open(path, "a") as fh:  # count by appending one byte per use
            fh.write("x")
        return os.path.getsize(path) <= times

    def check(self, line: bytes) -> None:
        try:
            req = checker_input_decoder.decode(line)
        except msgspec.DecodeError as err:
            self.send(CheckResponse(id="", verdict="error", reasons=["bad_request"],
                                    errors=[LeanMessage(severity="error", line=0, column=0,
                                                        text=str(err))]))
            return
        if isinstance(req, ReplayRequest):
            if self.role != "replay":
                self.send(self.bad_request(req.id, req.nonce, "replay request to a "
                                           f"{self.role} process"))
                return
            self.replay(req, sorted(json.loads(line)))
            return
        if isinstance(req, ReferenceRequest):
            if self.role != "statement":
                self.send(self.bad_request(req.id, req.nonce, "reference request to a "
                                           f"{self.role} process"))
                return
            self.reference(req)
            return
        if not isinstance(req, CheckRequest):
            self.send(CheckResponse(id="", verdict="error", reasons=["unknown_op"]))
            return
        if self.role != "check":
            self.send(self.bad_request(req.id, req.nonce, f"check request to a {self.role} "
                                       "process"))
            return
        if self.header_ok:
            burn(self.spec.get("check_cpu_ms", 0))
            nap(self.spec.get("check_sleep_ms", 0))
        self.log(ev="check", id=req.id, proof=req.proof, statement=req.statement)
        if not self.header_ok:
            self.send(CheckResponse(id=req.id, nonce=req.nonce, verdict="error",
                                    reasons=["header_error"]))
            return
        if self.hijacked:
            self.send_pass(self.consistent_pass(req))
            self.previous = req
            return
        action, spec = self.pick(req)
        self.act(req, action, spec)
        self.previous = req

    def bad_request(self, ident: str, nonce: str, text: str) -> CheckResponse:
        return CheckResponse(id=ident, nonce=nonce, verdict="error", reasons=["bad_request"],
                             errors=[LeanMessage(severity="error", line=0, column=0, text=text)])

    # -- statement role -------------------------------------------------------------------------

    def reference(self, req: ReferenceRequest) -> None:
        """Answer a statement's REFERENCE (the stand-in's type is the statement text)."""
        burn(self.spec.get("reference_cpu_ms", 0))
        nap(self.spec.get("reference_sleep_ms", 0))
        self.log(ev="reference", id=req.id, statement=req.statement)
        if not self.header_ok:
            self.send(CheckResponse(id=req.id, nonce=req.nonce, verdict="error",
                                    reasons=["header_error"]))
            return
        view = CheckRequest(id=req.id, nonce=req.nonce, statement=req.statement, proof="")
        action, spec = self.pick(view)
        if action in ("slow", "burn"):
            if action == "slow":
                time.sleep(spec.get("ms", 100) / 1000)
            else:
                burn(spec.get("cpu_ms", 500))
            action = spec.get("then", "pass")
        ident, nonce = req.id, req.nonce
        ref = encode_reference(req.statement)
        if action == "pass":
            self.send(CheckResponse(id=ident, nonce=nonce, verdict="pass", reference=raw(ref)))
        elif action == "fail":
            self.send(CheckResponse(id=ident, nonce=nonce, verdict="fail",
                                    reasons=spec.get("reasons", ["statement_error"]),
                                    errors=[LeanMessage(severity="error", line=1, column=0,
                                                        text="stand-in: statement error")]))
        elif action == "error":
            self.send(CheckResponse(id=ident, nonce=nonce, verdict="error",
                                    reasons=["internal_error"]))
        elif action == "hang":
            while True:
                time.sleep(3600)
        elif action == "crash":
            os._exit(spec.get("code", 1))
        elif action == "misstate":
            other = encode_reference(spec.get("as", "theorem t : True :="))
            other["names"][1] = list(target_name(req.statement))  # same target name
            self.send(CheckResponse(id=ident, nonce=nonce, verdict="pass", reference=raw(other)))
        elif action == "ref_missing":
            self.raw(f'{{"op":"result","id":{json.dumps(ident)},"nonce":{json.dumps(nonce)},'
                     '"verdict":"pass"}')
        elif action == "ref_not_object":
            self.send(CheckResponse(id=ident, nonce=nonce, verdict="pass",
                                    reference=raw(req.statement)))
        elif action == "ref_wrong_nonce":
            self.send(CheckResponse(id=ident, nonce="0" * 32, verdict="pass", reference=raw(ref)))
        elif action == "ref_other_id":
            self.send(CheckResponse(id=ident + "x", nonce=nonce, verdict="pass",
                                    reference=raw(ref)))
        elif action == "ref_double":
            for _ in range(2):
                self.send(CheckResponse(id=ident, nonce=nonce, verdict="pass",
                                        reference=raw(ref)))
        elif action == "ref_with_export":
            self.send(CheckResponse(id=ident, nonce=nonce, verdict="pass", reference=raw(ref),
                                    export=raw(encode_export(req.statement, " trivial"))))
        elif action == "ref_forge_fail":
            self.send(CheckResponse(id=ident, nonce=nonce, verdict="fail",
                                    reasons=["statement_error"]))
        elif action == "ref_then_exit_1":
            self.send(CheckResponse(id=ident, nonce=nonce, verdict="pass", reference=raw(ref)))
            self.exit_code = 1
        else:
            raise SystemExit(f"stand-in: unknown statement action {action!r}")

    # -- judge ----------------------------------------------------------------------------------

    def replay(self, req: ReplayRequest, fields: list[str]) -> None:
        """Judge a pass from REFERENCE + EXPORT alone, as the real judge does (no text)."""
        if self.header_ok:
            burn(self.spec.get("replay_cpu_ms", 0))
            nap(self.spec.get("replay_sleep_ms", 0))
        self.log(ev="replay", id=req.id, fields=fields)
        if not self.header_ok:
            self.send(CheckResponse(id=req.id, nonce=req.nonce, verdict="error",
                                    reasons=["header_error"]))
            return

        def fail(reason: str, text: str, match: bool | None = None) -> None:
            self.send(CheckResponse(id=req.id, nonce=req.nonce, verdict="fail", reasons=[reason],
                                    errors=[LeanMessage(severity="error", line=0, column=0,
                                                        text=text)],
                                    statement_match=match, ms=1))

        try:
            target, ref_type, kind = decode_reference(json.loads(bytes(req.reference)))
            consts, exprs = decode_export(json.loads(bytes(req.export)))
        except (ExportError, ValueError) as err:
            fail("replay_failed", f"decode: {err}")
            return
        if target not in consts:
            fail("missing_theorem", f"the export has no constant {'.'.join(map(str, target))}")
            return
        const_kind, type_ix, value_ix = consts[target]
        if kind == "thm" and const_kind != "thm":
            fail("missing_theorem", "the target is not a theorem")
            return
        if exprs[type_ix] != ref_type:
            fail("statement_mismatch", "the exported type differs from the reference", False)
            return
        value = exprs[value_ix]
        if value[0] != "str" or ref_type[0] != "str":
            fail("replay_failed", "the stand-in can only replay a proof encoded as a string")
            return
        named = consts.get(NAME_CONSTANT)
        name = exprs[named[2]][1] if named and exprs[named[2]][0] == "str" else None
        decoded = CheckRequest(id=req.id, nonce=req.nonce, statement=ref_type[1],
                               proof=value[1], name=name)
        action, spec = self.pick(decoded)
        if action == "fail":  # what a kernel rejection of the replayed declarations says
            spec = {**spec, "reasons": ["replay_failed"],
                    "errors": [{"severity": "error", "line": 0, "column": 0,
                                "text": "(kernel) the stand-in's replay rejects this proof"}]}
        self.act(decoded, action, spec)

    # -- check role -----------------------------------------------------------------------------

    def act(self, req: CheckRequest, action: str, spec: dict) -> None:
        if action == "slow":
            time.sleep(spec.get("ms", 100) / 1000)
            action = spec.get("then", "pass")
        if action == "burn":
            burn(spec.get("cpu_ms", 500))
            action = spec.get("then", "pass")
        if self.role == "check" and self.adversarial(req, action, spec):
            return
        if action == "hang":
            while True:
                time.sleep(3600)
        if action == "crash":
            sys.stderr.write(f"stand-in: crashing on request {req.id}\n")
            sys.stderr.flush()
            os._exit(spec.get("code", 1))
        if action == "leak":
            self.leak(spec)
        if action == "garbage":
            self.out.write(b"this is not json {\n")
            self.out.flush()
            return
        if action == "wrong_id":
            self.send(CheckResponse(id=req.id + "-wrong", nonce=req.nonce, verdict="pass"))
            return
        if action == "out_of_order":
            self.held = self.pass_lines(self.consistent_pass(req, spec=spec))
            return
        if action == "pass" and self.role == "check":
            self.send_pass(self.consistent_pass(req, spec=spec,
                                                premises=self.premises_for(req, spec)))
            return
        self.send(self.verdict(req, action, spec))

    def premises_for(self, req: CheckRequest, spec: dict) -> list[str] | None:
        premises = spec.get("premises", self.spec.get("premises", []))
        return list(premises) if req.premises else None

    def consistent_pass(self, req: CheckRequest, spec: dict | None = None,
                        **fields: object) -> CheckResponse:
        """A pass that satisfies every consistency rule (what an honest checker sends); a check
        process asked for exports attaches the EXPORT of the request's theorem (chunked by
        `send_pass` when it is large)."""
        values: dict = {"nonce": req.nonce,
                        "axioms": sorted(set(self.allowed_axioms) & {"propext"}),
                        "statement_match": True, "ms": 1}
        if self.role == "check" and self.export and self.profile == "strict":
            pad = (spec or {}).get("pad_export_kb", self.spec.get("pad_export_kb", 0))
            values["export"] = raw(encode_export(req.statement, req.proof, req.name, pad))
        values.update(fields)
        ident = values.pop("id", req.id)
        return CheckResponse(id=ident, verdict="pass", **values)

    def pass_lines(self, resp: CheckResponse) -> bytes:
        """The lines of an answer: one, or the result plus its export chunks when the EXPORT
        text is longer than `export_chunk_bytes`."""
        limit = self.spec.get("export_chunk_bytes", EXPORT_CHUNK_BYTES)
        if isinstance(resp.export, msgspec.Raw) and len(resp.export) > limit:
            text = bytes(resp.export).decode()
            pieces = [text[i:i + limit] for i in range(0, len(text), limit)]
            head = msgspec.structs.replace(resp, export=msgspec.UNSET, export_chunks=len(pieces))
            lines = [encoder.encode(head)] + [
                encoder.encode(ExportChunk(id=resp.id, nonce=resp.nonce or "", index=i, data=p))
                for i, p in enumerate(pieces)]
            return b"".join(line + b"\n" for line in lines)
        return encoder.encode(resp) + b"\n"

    def send_pass(self, resp: CheckResponse) -> None:
        data = self.pass_lines(resp)
        if self.held is not None:
            data, self.held = data + self.held, None
        self.out.write(data)
        self.out.flush()

    def raw(self, obj_text: str) -> None:
        self.out.write(obj_text.encode() + b"\n")
        self.out.flush()

    def chunks(self, req: CheckRequest, count: int, pieces: list[tuple[int, str]],
               nonce: str | None = None) -> None:
        """A pass announcing `count` chunks followed by `pieces` ((index, data) pairs)."""
        head = self.consistent_pass(req, export=msgspec.UNSET, export_chunks=count)
        lines = [encoder.encode(head)] + [
            encoder.encode(ExportChunk(id=req.id, nonce=nonce or req.nonce, index=i, data=d))
            for i, d in pieces]
        self.out.write(b"".join(line + b"\n" for line in lines))
        self.out.flush()

    def adversarial(self, req: CheckRequest, action: str, spec: dict) -> bool:
        ident, nonce = json.dumps(req.id), json.dumps(req.nonce)
        text = json.dumps(encode_export(req.statement, req.proof, req.name))
        half = len(text) // 2
        if action == "forge_pass":
            self.raw(f'{{"op":"result","id":{ident},"nonce":{nonce},"verdict":"pass"}}')
        elif action == "dup_verdict":
            self.raw(f'{{"op":"result","id":{ident},"nonce":{nonce},"verdict":"fail",'
                     f'"verdict":"pass","axioms":["propext"],"statement_match":true}}')
        elif action == "wrong_nonce":
            self.send_pass(self.consistent_pass(req, nonce="0" * 32))
        elif action == "no_nonce":
            self.send_pass(self.consistent_pass(req, nonce=None))
        elif action == "sorry_pass":
            self.send_pass(self.consistent_pass(req, axioms=["propext", "sorryAx"]))
        elif action == "bad_axiom_pass":
            self.send_pass(self.consistent_pass(req, axioms=["Lean.ofReduceBool", "propext"]))
        elif action == "mismatch_pass":
            self.send_pass(self.consistent_pass(req, statement_match=False))
        elif action == "huge":
            big = "x" * (int(spec.get("mb", 20)) * 1024 * 1024)
            self.send(CheckResponse(id=req.id, nonce=req.nonce, verdict="fail",
                                    reasons=["elab_error"],
                                    errors=[LeanMessage(severity="error", line=1, column=0,
                                                        text=big)]))
        elif action == "hijack":
            self.hijacked = True
            self.send_pass(self.consistent_pass(req))
        elif action == "forge_consistent":
            self.send_pass(self.consistent_pass(req))
        elif action == "no_export":
            self.send_pass(self.consistent_pass(req, export=msgspec.UNSET))
        elif action == "export_not_object":
            self.send_pass(self.consistent_pass(req, export=raw("an export")))
        elif action == "export_garbage":
            self.send_pass(self.consistent_pass(req, export=raw(
                {"names": [[]], "levels": [], "exprs": [["ap", 0, 0]], "consts": []})))
        elif action == "export_other_theorem":
            other = spec.get("as", "theorem t : True :=")
            forged = encode_export(other, " trivial", req.name)
            forged["names"][1] = list(target_name(req.statement))  # under the target's name
            self.send_pass(self.consistent_pass(req, export=raw(forged)))
        elif action == "export_and_chunks":
            self.send_pass(self.consistent_pass(req, export_chunks=2))
        elif action == "chunks_short":
            self.chunks(req, 3, [(0, text[:half]), (1, text[half:])])
        elif action == "chunks_wrong_nonce":
            self.chunks(req, 2, [(0, text[:half]), (1, text[half:])], nonce="0" * 32)
        elif action == "chunks_wrong_index":
            self.chunks(req, 2, [(1, text[half:]), (0, text[:half])])
        elif action == "chunks_one":
            self.chunks(req, 1, [(0, text)])
        elif action == "stray_chunk":
            self.send(ExportChunk(id=req.id, nonce=req.nonce, index=0, data=text))
        elif action == "reference_on_check":
            self.send_pass(self.consistent_pass(
                req, reference=raw(encode_reference(req.statement))))
        elif action == "other_id":
            other_id = self.previous.id if self.previous is not None else req.id + "0"
            self.send_pass(self.consistent_pass(req, id=other_id))
        elif action == "previous_nonce":
            other_nonce = self.previous.nonce if self.previous is not None else "1" * 32
            self.send_pass(self.consistent_pass(req, nonce=other_nonce))
        elif action == "late":
            self.held = self.pass_lines(self.consistent_pass(req))
        elif action == "double":
            self.send_pass(self.consistent_pass(req))
            self.send_pass(self.consistent_pass(req))
        elif action == "payload":
            self.send(CheckResponse(id=req.id, nonce=req.nonce, verdict="fail",
                                    reasons=["elab_error"],
                                    errors=[LeanMessage(severity="error", line=1, column=0,
                                                        text=json.dumps(payload(self.spec)))]))
        elif action == "probe":
            self.send(CheckResponse(id=req.id, nonce=req.nonce, verdict="fail",
                                    reasons=["elab_error"],
                                    errors=[LeanMessage(severity="error", line=1, column=0,
                                                        text=json.dumps(self.probe()))]))
        else:
            return False
        return True

    def probe(self) -> dict[str, object]:
        """What code running inside this checker can do to its surroundings."""
        found: dict[str, object] = {}
        target = self.spec.get("probe_write")
        if target:
            try:
                with open(target, "w") as fh:
                    fh.write("escaped")
                found["write"] = "ok"
            except OSError as err:
                found["write"] = type(err).__name__
        where = self.spec.get("probe_connect")
        if where:
            try:
                with socket.create_connection((where[0], int(where[1])), timeout=2):
                    found["connect"] = "ok"
            except OSError as err:
                found["connect"] = type(err).__name__
        name = self.spec.get("probe_env")
        if name:
            found["env"] = os.environ.get(name, "absent")
        return found

    def verdict(self, req: CheckRequest, action: str, spec: dict) -> CheckResponse:
        if action == "pass":
            return self.consistent_pass(req, spec=spec, premises=self.premises_for(req, spec))
        if action in ("fail", "error"):
            errors = [msgspec.convert(e, LeanMessage) for e in spec.get(
                "errors", [{"severity": "error", "line": 1, "column": 0,
                            "text": "stand-in rejects this proof"}])]
            verdict: Verdict = "fail" if action == "fail" else "error"
            return CheckResponse(id=req.id, nonce=req.nonce, verdict=verdict,
                                 reasons=spec.get("reasons", ["elab_error"]), errors=errors, ms=1)
        raise SystemExit(f"stand-in: unknown action {action!r}")

    def leak(self, spec: dict) -> None:
        per_step = max(1, spec.get("mb_per_s", 400) // 20)
        cap = spec.get("leak_cap_mb", 1500)
        while len(self.hog) * per_step < cap:
            chunk = bytearray(per_step * 1024 * 1024)
            chunk[::4096] = b"x" * len(chunk[::4096])  # touch every page so it is resident
            self.hog.append(chunk)
            time.sleep(0.05)
        while True:
            time.sleep(3600)

    def serve(self) -> None:
        stdin = sys.stdin.buffer
        first = stdin.readline()
        if not first:
            return
        self.start(first)
        for line in stdin:
            if line.strip():
                self.check(line)  # a check or a replay request
        if self.held is not None:
            self.out.write(self.held)
            self.out.flush()
        if self.exit_code:
            self.out.flush()
            os._exit(self.exit_code)


SECRET = b"standin-nonce-" + os.urandom(8).hex().encode()


def _attempt(fn) -> str:
    try:
        result = fn()
    except Exception as err:  # the outcome is the report
        return type(err).__name__
    return "ok" if result is None or result is True else str(result)


def _read_mem(pid: int, address: int, size: int) -> bytes:
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as fh:
        fh.seek(address)
        return fh.read(size)


def _read_mapped(pid: int) -> bytes:
    """16 bytes of the first readable mapping of process `pid`, through /proc/<pid>/mem."""
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            span, perms = line.split()[:2]
            if perms.startswith("r"):
                return _read_mem(pid, int(span.split("-")[0], 16), 16)
    raise OSError("no readable mapping")


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _check(result: int) -> None:
    import ctypes

    if result == -1:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _vm_readv(pid: int, address: int, size: int) -> bytes:
    import ctypes

    class IOVec(ctypes.Structure):
        _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]

    buf = ctypes.create_string_buffer(size)
    local, remote = IOVec(ctypes.addressof(buf), size), IOVec(address, size)
    libc = _libc()
    libc.process_vm_readv.restype = ctypes.c_ssize_t
    _check(libc.process_vm_readv(pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0))
    return buf.raw


def _ptrace_seize(pid: int) -> None:
    import ctypes

    libc = _libc()
    libc.ptrace.restype = ctypes.c_long
    _check(libc.ptrace(0x4206, pid, None, None))  # PTRACE_SEIZE: attach without stopping it


def _fork_and_read_parent() -> str:
    """A child reads the parent's secret through /proc/<ppid>/mem (issue #20, item 4)."""
    address = id(SECRET) + sys.getsizeof(b"") - 1  # CPython: the bytes' data after the header
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        try:
            got = _read_mem(os.getppid(), address, len(SECRET))
            os.write(write_end, b"ok" if got == SECRET else b"mismatch")
        except Exception as err:
            os.write(write_end, type(err).__name__.encode())
        os._exit(0)
    os.close(write_end)
    answer = os.read(read_end, 100).decode()
    os.close(read_end)
    os.waitpid(pid, 0)
    return answer


def _fork() -> None:
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def payload(spec: dict) -> dict[str, object]:
    """What proof code that took over a checker tries against other processes."""
    import subprocess

    found: dict[str, object] = {
        "fork": _attempt(_fork),
        "child_reads_parent": _attempt(_fork_and_read_parent),
        "run_program": _attempt(lambda: subprocess.run(["/bin/true"], check=True) and None),
        "parent_mem": _attempt(lambda: _read_mapped(os.getppid()) and None),
        "proc": sorted(int(p) for p in os.listdir("/proc") if p.isdigit())[:5],
        "pid": os.getpid(),
    }
    victim = spec.get("payload_victim")
    if victim:
        pid, address = int(victim["pid"]), int(victim["address"])
        secret = bytes.fromhex(victim["secret"])

        def same(data: bytes) -> str:
            return "ok" if data == secret else "mismatch"

        found["victim_mem"] = _attempt(lambda: same(_read_mem(pid, address, len(secret))))
        found["victim_vm_readv"] = _attempt(lambda: same(_vm_readv(pid, address, len(secret))))
        found["victim_ptrace"] = _attempt(lambda: _ptrace_seize(pid))
        found["victim_signal"] = _attempt(lambda: os.kill(pid, 0))
    for path in spec.get("payload_write", []):
        def opened(path: str = path) -> None:
            os.close(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600))

        found[f"write:{path}"] = _attempt(opened)
    return found


def header_gate(header: str, forbidden: str) -> tuple[int, str] | None:
    """(line, command) of the first header line matching `forbidden`, or None."""
    for n, line in enumerate(header.splitlines(), start=1):
        text = line.strip()
        if text and re.search(forbidden, text):
            return n, text.split()[0]
    return None


class ExportError(ValueError):
    """A malformed EXPORT (the real decoder's failures become reason `replay_failed`)."""


BINDER_INFOS = {"d", "i", "s", "c"}
REFUSED_CONSTANTS = {("Lean", "reduceBool"), ("Lean", "reduceNat"), ("Lean", "ofReduceBool"),
                     ("Lean", "ofReduceNat")}


def target_name(statement: str) -> tuple[str | int, ...]:
    """The name the statement declares (`theorem Foo.bar ...` -> ("Foo", "bar"))."""
    m = re.match(r"\s*(?:theorem|lemma|def|abbrev)\s+([^\s:(\[{]+)", statement)
    return tuple((m.group(1) if m else "_").split("."))


# The constant under which the stand-in's export carries the request's informational `name`, so
# that rules on field "name" judge a replay as they judged the check (a real export has no such
# thing: the stand-in's "proof term" is the proof text).
NAME_CONSTANT = ("_stp_standin", "request_name")


def raw(value: object) -> msgspec.Raw:
    """A JSON value as the raw field the protocol structs carry."""
    return msgspec.Raw(json.dumps(value, ensure_ascii=False).encode())


def encode_export(statement: str, proof: str, name: str | None = None,
                  pad_kb: float = 0) -> dict:
    """A structurally valid EXPORT of one theorem whose type and value are string literals
    holding the statement and the proof text (what the stand-in needs to judge it again); a
    universe-polymorphic `Sort`, an application and a binder are included so that every table
    is exercised. Indices point at earlier entries, as the real encoder's do. `pad_kb` adds an
    opaque string constant of that size (a large proof term, for chunking)."""
    target = list(target_name(statement))
    names = [[], target, ["u"], ["Nat", "add"], ["x"], list(NAME_CONSTANT), list(PAD_CONSTANT)]
    levels = [["z"], ["p", 2], ["s", 1], ["max", 0, 2], ["imax", 1, 2]]
    exprs = [["str", statement], ["str", proof], ["so", 3], ["c", 3, []], ["nat", "0"],
             ["ap", 3, 4], ["lam", 4, "d", 2, 5], ["pi", 0, "i", 2, 2]]
    consts = [{"kind": "thm", "name": 1, "lps": [2], "type": 0, "value": 1}]
    if name is not None:
        exprs.append(["str", name])
        consts.append({"kind": "opaque", "name": 5, "lps": [], "type": 7,
                       "value": len(exprs) - 1})
    if pad_kb:
        exprs.append(["str", "p" * int(pad_kb * 1024)])
        consts.append({"kind": "opaque", "name": 6, "lps": [], "type": 7,
                       "value": len(exprs) - 1})
    return {"names": names, "levels": levels, "exprs": exprs, "consts": consts}


PAD_CONSTANT = ("_stp_standin", "pad")


def encode_reference(statement: str) -> dict:
    """The stand-in's REFERENCE of a statement: its target name, and the statement text as its
    "type" (what the judge compares with the exported theorem's type)."""
    kind = "def" if re.match(r"\s*(def|abbrev)\b", statement) else "thm"
    return {"names": [[], list(target_name(statement))], "levels": [],
            "exprs": [["str", statement]], "name": 1, "lps": [], "type": 0, "kind": kind}


def decode_reference(ref: object) -> tuple[tuple, list, str]:
    """(target name, type expr, kind) of a REFERENCE, checked like the real decoder."""
    keys = {"names", "levels", "exprs", "name", "lps", "type", "kind"}
    if not isinstance(ref, dict) or set(ref) != keys:
        raise ExportError(f"REFERENCE must be an object with {sorted(keys)}")
    probe = decode_export({"names": ref["names"], "levels": ref["levels"],
                           "exprs": ref["exprs"], "consts": []})
    exprs = probe[1]
    names = ref["names"]
    target = tuple(names[_index(ref["name"], len(names), "name")])
    if ref["kind"] not in ("thm", "def"):
        raise ExportError(f"bad reference kind {ref['kind']!r}")
    return target, exprs[_index(ref["type"], len(exprs), "expr")], ref["kind"]


def _index(value: object, below: int, what: str) -> int:
    if type(value) is not int or not 0 <= value < below:
        raise ExportError(f"{what} index {value!r} out of range (< {below})")
    return value


def decode_export(export: object) -> tuple[dict[tuple, tuple[str, int, int]], list[list]]:
    """Check an EXPORT the way the real decoder does (one forward pass, every index pointing at
    an earlier entry, every tag known); returns {name: (kind, type, value)} and the exprs."""
    if not isinstance(export, dict) or set(export) != {"names", "levels", "exprs", "consts"}:
        raise ExportError("EXPORT must be an object with names, levels, exprs, consts")
    tables = [export[k] for k in ("names", "levels", "exprs", "consts")]
    if not all(isinstance(t, list) for t in tables):
        raise ExportError("every EXPORT table must be a list")
    names: list[tuple] = []
    for comps in export["names"]:
        if not isinstance(comps, list) or not all(
                isinstance(c, str) or (type(c) is int and c >= 0) for c in comps):
            raise ExportError(f"bad name {comps!r}")
        names.append(tuple(comps))
    arity = {"z": (), "s": ("l",), "max": ("l", "l"), "imax": ("l", "l"), "p": ("n",)}
    for i, lvl in enumerate(export["levels"]):
        if not isinstance(lvl, list) or not lvl or lvl[0] not in arity \
                or len(lvl) != 1 + len(arity[lvl[0]]):
            raise ExportError(f"bad level {lvl!r}")
        for kind, arg in zip(arity[lvl[0]], lvl[1:], strict=True):
            _index(arg, i if kind == "l" else len(names), "level" if kind == "l" else "name")
    nl = len(export["levels"])
    exprs: list[list] = export["exprs"]
    for i, e in enumerate(exprs):
        if not isinstance(e, list) or not e or not isinstance(e[0], str):
            raise ExportError(f"bad expr {e!r}")
        tag, args = e[0], e[1:]
        shape = {"bv": 1, "so": 1, "c": 2, "ap": 2, "lam": 4, "pi": 4, "let": 5, "nat": 1,
                 "str": 1, "prj": 3}
        if tag not in shape or len(args) != shape[tag]:
            raise ExportError(f"bad expr {e!r}")
        if tag == "bv" and not (type(args[0]) is int and args[0] >= 0):
            raise ExportError(f"bad bound variable {e!r}")
        elif tag == "so":
            _index(args[0], nl, "level")
        elif tag == "c":
            _index(args[0], len(names), "name")
            if names[args[0]] in REFUSED_CONSTANTS:
                raise ExportError(f"uses the refused constant {'.'.join(names[args[0]])}")
            if not isinstance(args[1], list):
                raise ExportError(f"bad levels in {e!r}")
            for lv in args[1]:
                _index(lv, nl, "level")
        elif tag == "ap":
            _index(args[0], i, "expr")
            _index(args[1], i, "expr")
        elif tag in ("lam", "pi"):
            _index(args[0], len(names), "name")
            if args[1] not in BINDER_INFOS:
                raise ExportError(f"bad binder info in {e!r}")
            _index(args[2], i, "expr")
            _index(args[3], i, "expr")
        elif tag == "let":
            _index(args[0], len(names), "name")
            for a in args[1:4]:
                _index(a, i, "expr")
            if not isinstance(args[4], bool):
                raise ExportError(f"bad nonDep in {e!r}")
        elif tag in ("nat", "str") and not (isinstance(args[0], str) and (
                tag == "str" or re.fullmatch("[0-9]+", args[0]))):
            raise ExportError(f"bad literal {e!r}")
        elif tag == "prj":
            _index(args[0], len(names), "name")
            if not (type(args[1]) is int and args[1] >= 0):
                raise ExportError(f"bad projection index {e!r}")
            _index(args[2], i, "expr")
    consts: dict[tuple, tuple[str, int, int]] = {}
    for c in export["consts"]:
        if not isinstance(c, dict) or c.get("kind") not in ("thm", "def", "opaque"):
            raise ExportError(f"bad constant {c!r}")
        keys = {"kind", "name", "lps", "type", "value"} | ({"hints"} if c["kind"] == "def"
                                                             else set())
        if set(c) != keys:
            raise ExportError(f"constant fields {sorted(c)} should be {sorted(keys)}")
        name = names[_index(c["name"], len(names), "name")]
        if not isinstance(c["lps"], list):
            raise ExportError(f"bad lps in {c!r}")
        for n in c["lps"]:
            _index(n, len(names), "name")
        if c["kind"] == "def" and not (c["hints"] in ("opaque", "abbrev")
                                       or (type(c["hints"]) is int and c["hints"] >= 0)):
            raise ExportError(f"bad hints in {c!r}")
        if name in consts:
            raise ExportError(f"duplicate constant {'.'.join(map(str, name))}")
        consts[name] = (c["kind"], _index(c["type"], len(exprs), "expr"),
                        _index(c["value"], len(exprs), "expr"))
    return consts, exprs


def nap(ms: float) -> None:
    """Take `ms` of wall time without using CPU (a simulated worker)."""
    if ms > 0:
        time.sleep(ms / 1000)


def burn(cpu_ms: float) -> None:
    """Spend `cpu_ms` of CPU time (not wall time) in a busy loop."""
    if cpu_ms <= 0:
        return
    end = time.process_time() + cpu_ms / 1000
    x = 0
    while time.process_time() < end:
        for _ in range(2000):
            x += 1


def load_judge(spec: dict):  # -> Callable[[str, str], tuple[str, dict]]
    """`standin_verdict` of the module named by spec["judge"] (a file beside this one)."""
    import importlib

    name = spec.get("judge")
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise SystemExit(f"stand-in: default 'judge' needs a module name in 'judge', got {name!r}")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    return importlib.import_module(name).standin_verdict


def parse_spec(argv: list[str]) -> dict:
    """The spec of argv[1]; exits 2 with one line unless it is a JSON object with a `default`
    action (a test fixture that answered pass when started bare would be a pass-everything
    checker one config line away)."""
    try:
        spec = json.loads(argv[1]) if len(argv) > 1 else None
    except json.JSONDecodeError as err:
        sys.exit(f"standin_checker: the spec is not JSON: {err}")
    if not isinstance(spec, dict) or "default" not in spec:
        sys.exit('standin_checker: a test fixture; it needs a spec with an explicit "default" '
                 "action (build the argv with tests/standin.py's standin_command)")
    return spec


if __name__ == "__main__":
    StandIn(parse_spec(sys.argv)).serve()
