"""Which checker judged: the identity every report and evaluation log names.

A pass rate means something only with the checker that produced it. `describe_checker` gives the
checker's identity for a config — the program (the built `stp_check`, or the argv of
`lean.checker_command` when a command replaces it), a digest of its files, the Lean toolchain and
Mathlib revision of the workspace, the checking policy (profile, mode, heartbeat limit, wall
clock) and the sandbox — and `identity_lines` renders it for the first lines of a report, saying
plainly when the judge is not the real `stp_check` (the tests' stand-in, a user's wrapper), so a
34 % pass@1 from a stand-in is never read as a Lean result.

Runs record it as `checker.json` next to what the checker judged (a self-play run directory, an
evaluation log) when they start; reports read that record.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from stp import storage

if TYPE_CHECKING:
    from stp.config import STPConfig

RECORD = "checker.json"
REAL_CHECKER = "stp_check"


class CheckerIdentity(msgspec.Struct, kw_only=True):
    # "stp_check" (the built checker) or the argv of lean.checker_command.
    program: str
    real: bool
    # blake2b-128 of the checker binary (or of every file the command names); "absent" if none.
    digest: str
    toolchain: str
    mathlib: str
    profile: str
    mode: str
    max_heartbeats: int
    timeout_s: float
    sandbox: str


def _digest(paths: list[Path]) -> str:
    h = hashlib.blake2b(digest_size=16)
    found = False
    for path in paths:
        if path.is_file():
            found = True
            h.update(str(path).encode() + b"\0")
            with path.open("rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
    return h.hexdigest() if found else "absent"


def _mathlib_revision(root: Path) -> str:
    try:
        manifest = json.loads((root / "lake-manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "unknown (no lake-manifest.json)"
    for package in manifest.get("packages", []):
        if isinstance(package, dict) and package.get("name") == "mathlib":
            return str(package.get("rev", "unknown"))
    return "unknown (no mathlib package)"


def describe_checker(cfg: STPConfig) -> CheckerIdentity:
    """The identity of the checker `cfg` runs (nothing is started)."""
    from stp.lean import toolchain
    from stp.lean.config import session_heartbeats

    lean = cfg.lean
    root = toolchain.project_dir(lean)
    try:
        version = (root / "lean-toolchain").read_text(encoding="utf-8").strip()
    except OSError:
        version = "unknown (no lean-toolchain)"
    if lean.checker_command:
        program = "lean.checker_command " + json.dumps(list(lean.checker_command))
        digest = _digest([Path(a) for a in lean.checker_command if Path(a).is_absolute()])
        real = False
    else:
        program = REAL_CHECKER
        digest = _digest([toolchain.checker_exe(lean)])
        real = True
    return CheckerIdentity(program=program, real=real, digest=digest, toolchain=version,
                           mathlib=_mathlib_revision(root), profile=lean.profile,
                           mode=lean.mode, max_heartbeats=session_heartbeats(lean),
                           timeout_s=cfg.verifier.timeout_s, sandbox=sandbox_state(cfg))


def identity_lines(identities: dict[str, CheckerIdentity], what: str = "results") -> list[str]:
    """Markdown lines for the top of a report: a warning first when any judge is not the real
    `stp_check`, then one line per role (e.g. "self-play", "eval strict")."""
    lines: list[str] = []
    stand_ins = sorted({i.program for i in identities.values() if not i.real})
    if stand_ins:
        lines += [f"**Not judged by `{REAL_CHECKER}`:** these {what} come from "
                  f"{', '.join(f'`{p}`' for p in stand_ins)}, not from Lean's checker; they say "
                  "nothing about Lean proofs.", ""]
    for role, i in identities.items():
        heartbeats = "none" if i.max_heartbeats == 0 else str(i.max_heartbeats)
        lines.append(f"- Checker ({role}): `{i.program}`, digest `{i.digest}`, toolchain "
                     f"`{i.toolchain}`, Mathlib `{i.mathlib}`, profile `{i.profile}` (mode "
                     f"`{i.mode}`, heartbeats {heartbeats}, {i.timeout_s:g} s), sandbox "
                     f"{i.sandbox}")
    return [*lines, ""] if identities else lines


def write_record(directory: str, identities: dict[str, CheckerIdentity]) -> None:
    storage.write_text(storage.join(directory, RECORD), json.dumps(
        {role: msgspec.to_builtins(i) for role, i in identities.items()}, indent=2) + "\n")


def read_record(directory: str) -> dict[str, CheckerIdentity]:
    path = storage.join(directory, RECORD)
    if not storage.exists(path):
        return {}
    raw: dict[str, Any] = json.loads(storage.read_text(path))
    return {role: msgspec.convert(value, CheckerIdentity) for role, value in raw.items()}


def sandbox_state(cfg: STPConfig) -> str:
    """How the checker processes are isolated: `stp.verify.sandbox.describe_sandbox`'s line
    (never raises; "sandbox: NONE …" when the user said `verifier.sandbox = "none"`)."""
    from stp.verify.sandbox import describe_sandbox

    return describe_sandbox(cfg)
