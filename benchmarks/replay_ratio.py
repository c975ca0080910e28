"""Measure r = replay cost / check cost on a real checker (the parameter verify_defences.py models).

    python benchmarks/replay_ratio.py PROOFS.jsonl [--config CFG.toml] [--set KEY=VALUE ...]
                                                   [--limit N]

PROOFS.jsonl: one {"statement", "proof", "header"?} object per line (a header given there is sent
untrusted, as the verifier does; else `lean.default_header`, trusted). For each distinct header
the script starts the configured checker (`lean.checker_command`, else the built `stp_check`)
three times (protocol 4): a check worker with `export: true`, a statement process (role
`statement`, all distinct statements of that header in one batch) and the judge (role `replay`,
the header's imports only). Every proof is checked; every pass is judged against its statement's
REFERENCE. The figures come from the responses' `ms` fields (time inside the checker, one request
at a time, no pipelining), so they measure elaboration vs kernel replay, not the pipes. The CPU
model, core count and load average are printed with them.

It prints the mean and median check time over all proofs and over passes, the mean replay time,
and two ratios: r(passes) = replay ms / check ms of the same proofs, and r(model) = mean replay ms
/ mean check ms over all proofs, the r of the throughput model 1 / (1 + p·r) (CPU per item =
mean check + p x mean replay). Replays that do not pass are listed: on an honest corpus each one
is a disagreement to investigate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import statistics
import sys
from pathlib import Path
from typing import Any, Literal

import msgspec

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from stp.config import load_config  # noqa: E402
from stp.lean import toolchain  # noqa: E402
from stp.lean.client import CheckerProcess  # noqa: E402
from stp.lean.config import session_header, session_heartbeats  # noqa: E402
from stp.lean.protocol import (  # noqa: E402
    CheckerConfig,
    CheckRequest,
    CheckResponse,
    ReferenceRequest,
    ReplayRequest,
    Role,
)
from stp.metrics import describe_machine  # noqa: E402
from stp.verify.imports import header_imports  # noqa: E402


class _Answers:
    """CheckerListener that hands each response to the request waiting for it."""

    def __init__(self) -> None:
        self.waiting: asyncio.Future[CheckResponse] | None = None

    def on_responses(self, responses: list[CheckResponse]) -> None:
        for resp in responses:
            if self.waiting is not None and not self.waiting.done():
                self.waiting.set_result(resp)

    def on_protocol_error(self, detail: str, kind: Literal["crash", "protocol"] = "crash") -> None:
        self._fail(f"protocol error ({kind}): {detail}")

    def on_exit(self, detail: str) -> None:
        self._fail(detail)

    def _fail(self, detail: str) -> None:
        if self.waiting is not None and not self.waiting.done():
            self.waiting.set_exception(RuntimeError(detail))

    async def ask(self, proc: CheckerProcess,
                  request: CheckRequest | ReferenceRequest | ReplayRequest,
                  timeout: float) -> CheckResponse:
        self.waiting = asyncio.get_running_loop().create_future()
        proc.send([request])
        return await asyncio.wait_for(self.waiting, timeout)


async def measure(records: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    cfg = load_config(args.config, args.set)
    argv, cwd = toolchain.checker_command(cfg.lean)
    lean = cfg.lean
    default = session_header(lean)
    by_header: dict[tuple[str, bool], list[dict[str, Any]]] = {}
    for rec in records:
        key = (rec["header"], False) if rec.get("header") else (default, True)
        by_header.setdefault(key, []).append(rec)
    checks: list[int] = []
    pass_checks: list[int] = []
    replays: list[int] = []
    reference_ms: list[int] = []
    unjudged = 0
    disagreements: list[str] = []
    timeout = cfg.verifier.timeout_s
    for (header, trusted), recs in by_header.items():
        procs: dict[Role, tuple[CheckerProcess, _Answers]] = {}
        for role in ("check", "statement", "replay"):
            answers = _Answers()
            proc = CheckerProcess(argv, answers, cwd=cwd,
                                  max_line_bytes=cfg.verifier.max_response_mb * 1024 * 1024,
                                  max_export_bytes=cfg.verifier.max_export_mb * 1024 * 1024)
            judge = role == "replay"
            ready = await proc.start(CheckerConfig(
                role=role, export=role == "check", header="" if judge else header,
                imports=header_imports(header) if judge else [], header_trusted=trusted,
                max_heartbeats=session_heartbeats(lean), mode=lean.mode, profile="strict",
                allowed_axioms=list(lean.allowed_axioms)), cfg.verifier.start_timeout_s)
            if not ready.ok:
                raise SystemExit(f"header failed: {ready.header_errors[:1]}")
            procs[role] = (proc, answers)
        try:
            # one statement process for the header: every distinct statement, then EOF
            references: dict[str, Any] = {}
            proc, answers = procs["statement"]
            for n, statement in enumerate(dict.fromkeys(r["statement"] for r in recs)):
                ref = await answers.ask(proc, ReferenceRequest(
                    id=str(n), nonce=secrets.token_hex(16), statement=statement), timeout)
                reference_ms.append(ref.ms)
                if ref.verdict == "pass":
                    references[statement] = ref.reference
            proc.close_stdin()
            for n, rec in enumerate(recs):
                proof = rec["proof"]
                if proof and not proof[0].isspace():
                    proof = "\n" + proof
                proc, answers = procs["check"]
                resp = await answers.ask(proc, CheckRequest(
                    id=str(n), nonce=secrets.token_hex(16), statement=rec["statement"],
                    proof=proof), timeout)
                checks.append(resp.ms)
                if resp.verdict != "pass":
                    continue
                reference = references.get(rec["statement"])
                if not isinstance(resp.export, msgspec.Raw) or reference is None:
                    unjudged += 1
                    continue
                pass_checks.append(resp.ms)
                proc, answers = procs["replay"]
                again = await answers.ask(proc, ReplayRequest(
                    id=str(n), nonce=secrets.token_hex(16), reference=reference,
                    export=resp.export), timeout)
                replays.append(again.ms)
                if again.verdict != "pass":
                    disagreements.append(f"{rec['statement'][:60]!r}: {again.reasons} "
                                         f"{[m.text[:120] for m in again.errors]}")
        finally:
            for proc, _ in procs.values():
                proc.kill()
    return {"checks": checks, "pass_checks": pass_checks, "replays": replays,
            "references": reference_ms, "unjudged": unjudged, "disagreements": disagreements}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("proofs", type=Path)
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    parser.add_argument("--limit", type=int, default=0, help="first N proofs only (0 = all)")
    args = parser.parse_args()
    records = [json.loads(line) for line in args.proofs.read_text().splitlines() if line.strip()]
    if args.limit:
        records = records[:args.limit]
    print(f"machine: {describe_machine()}", flush=True)
    m = asyncio.run(measure(records, args))
    checks, pass_checks, replays = m["checks"], m["pass_checks"], m["replays"]
    print(f"{len(checks)} proofs checked, {len(pass_checks) + m['unjudged']} passed, "
          f"{len(replays)} judged, {m['unjudged']} passes not judged (no export or no "
          f"reference: each one is a protocol problem to investigate)")
    if m["references"]:
        print(f"reference ms (statement process): mean {statistics.mean(m['references']):.1f}, "
              f"{len(m['references'])} statements")
    if checks:
        print(f"check ms, all proofs: mean {statistics.mean(checks):.1f}, "
              f"median {statistics.median(checks):.1f}")
    if replays:
        print(f"check ms, replayed passes: mean {statistics.mean(pass_checks):.1f}, "
              f"median {statistics.median(pass_checks):.1f}")
        print(f"replay ms: mean {statistics.mean(replays):.1f}, "
              f"median {statistics.median(replays):.1f}")
        r_pass = sum(replays) / max(1, sum(pass_checks))
        r_model = statistics.mean(replays) / max(1e-9, statistics.mean(checks))
        print(f"r(passes) = {r_pass:.3f}   r(model) = {r_model:.3f}")
    for line in m["disagreements"]:
        print(f"replay did not pass: {line}")


if __name__ == "__main__":
    main()
