"""Stand-in for the Lean checker in tests: speaks the exact protocol, verdicts follow test rules.

Usage: python standin_checker.py '<spec json>'   (build the argv with tests/standin.py)

Spec (every key optional):
  rules:   list of {pattern, field?, action, ms?, premises?, errors?, times?, reasons?}
           the first rule whose regex `pattern` matches `field` ("proof" default, "statement",
           "name", "text" = statement + proof) decides; `times: n` applies the rule only to the
           first n requests with that text across all processes (needs state_dir).
  default: action when no rule matches ("pass")
  actions: pass | fail | error | hang | crash | leak | garbage | wrong_id | out_of_order | slow
           | burn | probe and the adversarial ones below.
           `slow` waits `ms` then passes (or gives `then`); `leak` allocates ~`mb_per_s` MiB/s
           (up to `leak_cap_mb`, then hangs) until killed; `crash` exits mid-request;
           `out_of_order` holds this answer and sends it after the next one; `burn` spends
           `cpu_ms` of CPU then gives `then` (default pass); `probe` tries to escape (write
           `probe_write`, connect to `probe_connect` [host, port], read env `probe_env`) and
           answers fail with one error whose text is the JSON of what it could do.
  adversarial actions (what a checker whose process ran exploit code could print):
           forge_pass   {"op":"result","id":..,"nonce":..,"verdict":"pass"} and nothing else
           dup_verdict  a consistent pass line that names "verdict" twice (fail, then pass)
           wrong_nonce  a consistent pass with another nonce; no_nonce: without one
           sorry_pass   a pass whose axioms include sorryAx; mismatch_pass: statement_match false
           huge         a fail whose message is `mb` MiB long (one line)
           hijack       answers a consistent pass; from then on every answer of this process is
                        a consistent forged pass with the right nonce (a rewritten stdout)
  check_cpu_ms: CPU every check spends before answering (like Lean elaborating a proof)
  start_cpu_ms: CPU spent before Ready (like Lean importing the header)
  premises: list returned for requests that ask for premises (per rule or global)
  log:     file getting one JSON line per event: {"ev": "start"|"check", "pid", "id", "cpu", ...}
           (`cpu`: the process's CPU seconds so far, start and check CPU spending included)
  state_dir: directory for `times` counters
  header_error: regex; a header matching it gets Ready(ok=false) and every check "error"
  start_delay_ms: sleep before Ready (header import); start_crash: regex on the header → exit 3
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
    PROTOCOL_VERSION,
    CheckerConfig,
    CheckRequest,
    CheckResponse,
    LeanMessage,
    Ready,
    Verdict,
    checker_input_decoder,
    encoder,
)


class Rule:
    def __init__(self, spec: dict) -> None:
        self.regex = re.compile(spec.get("pattern", ""), re.S)
        self.field = spec.get("field", "proof")
        self.action = spec["action"]
        self.spec = spec

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
        self.default = spec.get("default", "pass")
        self.log_path = spec.get("log")
        self.state_dir = spec.get("state_dir")
        self.out = sys.stdout.buffer
        self.held: bytes | None = None
        self.header_ok = True
        self.hog: list[bytearray] = []
        self.hijacked = False
        self.allowed_axioms = ["propext"]

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
        burn(self.spec.get("start_cpu_ms", 0))
        self.log(ev="start", header=cfg.header, trusted=cfg.header_trusted)
        if self.spec.get("start_crash") and re.search(self.spec["start_crash"], cfg.header):
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
            if rule.matches(req) and self.take(rule, req):
                return rule.action, rule.spec
        return self.default, {}

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
        if not isinstance(req, CheckRequest):
            self.send(CheckResponse(id="", verdict="error", reasons=["unknown_op"]))
            return
        if self.header_ok:
            burn(self.spec.get("check_cpu_ms", 0))
        self.log(ev="check", id=req.id, proof=req.proof, statement=req.statement)
        if not self.header_ok:
            self.send(CheckResponse(id=req.id, nonce=req.nonce, verdict="error",
                                    reasons=["header_error"]))
            return
        if self.hijacked:
            self.send(self.consistent_pass(req))
            return
        action, spec = self.pick(req)
        if action == "slow":
            time.sleep(spec.get("ms", 100) / 1000)
            action = spec.get("then", "pass")
        if action == "burn":
            burn(spec.get("cpu_ms", 500))
            action = spec.get("then", "pass")
        if self.adversarial(req, action, spec):
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
            self.held = encoder.encode(self.consistent_pass(req)) + b"\n"
            return
        self.send(self.verdict(req, action, spec))

    def consistent_pass(self, req: CheckRequest, **fields: object) -> CheckResponse:
        """A pass that satisfies every consistency rule (what an honest checker sends)."""
        values: dict = {"nonce": req.nonce,
                        "axioms": sorted(set(self.allowed_axioms) & {"propext"}),
                        "statement_match": True, "ms": 1, **fields}
        return CheckResponse(id=req.id, verdict="pass", **values)

    def raw(self, obj_text: str) -> None:
        self.out.write(obj_text.encode() + b"\n")
        self.out.flush()

    def adversarial(self, req: CheckRequest, action: str, spec: dict) -> bool:
        ident, nonce = json.dumps(req.id), json.dumps(req.nonce)
        if action == "forge_pass":
            self.raw(f'{{"op":"result","id":{ident},"nonce":{nonce},"verdict":"pass"}}')
        elif action == "dup_verdict":
            self.raw(f'{{"op":"result","id":{ident},"nonce":{nonce},"verdict":"fail",'
                     f'"verdict":"pass","axioms":["propext"],"statement_match":true}}')
        elif action == "wrong_nonce":
            self.send(self.consistent_pass(req, nonce="0" * 32))
        elif action == "no_nonce":
            self.send(self.consistent_pass(req, nonce=None))
        elif action == "sorry_pass":
            self.send(self.consistent_pass(req, axioms=["propext", "sorryAx"]))
        elif action == "mismatch_pass":
            self.send(self.consistent_pass(req, statement_match=False))
        elif action == "huge":
            text = "x" * (int(spec.get("mb", 20)) * 1024 * 1024)
            self.send(CheckResponse(id=req.id, nonce=req.nonce, verdict="fail",
                                    reasons=["elab_error"],
                                    errors=[LeanMessage(severity="error", line=1, column=0,
                                                        text=text)]))
        elif action == "hijack":
            self.hijacked = True
            self.send(self.consistent_pass(req))
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
            premises = spec.get("premises", self.spec.get("premises", []))
            return self.consistent_pass(req, premises=list(premises) if req.premises else None)
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
                self.check(line)
        if self.held is not None:
            self.out.write(self.held)
            self.out.flush()


def header_gate(header: str, forbidden: str) -> tuple[int, str] | None:
    """(line, command) of the first header line matching `forbidden`, or None."""
    for n, line in enumerate(header.splitlines(), start=1):
        text = line.strip()
        if text and re.search(forbidden, text):
            return n, text.split()[0]
    return None


def burn(cpu_ms: float) -> None:
    """Spend `cpu_ms` of CPU time (not wall time) in a busy loop."""
    if cpu_ms <= 0:
        return
    end = time.process_time() + cpu_ms / 1000
    x = 0
    while time.process_time() < end:
        for _ in range(2000):
            x += 1


if __name__ == "__main__":
    StandIn(json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}).serve()
