"""What callers hand the verifier and what they get back (the verification API's vocabulary)."""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

from stp.lean.protocol import LeanMessage

# pass/fail/error come from the checker; timeout/memory/crash are decided by the pool.
Status = Literal["pass", "fail", "error", "timeout", "memory", "crash"]
INFRASTRUCTURE_FAILURES: frozenset[str] = frozenset({"error", "timeout", "memory", "crash"})


class VerifyItem(msgspec.Struct, frozen=True, kw_only=True):
    """One proof to check. An empty header means the configured default header."""

    statement: str
    proof: str
    header: str = ""
    name: str | None = None
    premises: bool = False

    def key(self, checker_version: str = "", lean_version: str = "") -> str:
        """Content hash used for deduplication and the persistent cache."""
        h = hashlib.blake2b(digest_size=16)
        for part in (self.header, self.statement, self.proof, str(self.premises),
                     checker_version, lean_version):
            h.update(part.encode("utf-8"))
            h.update(b"\x00")
        return h.hexdigest()


class VerifyResult(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The outcome of one item. `passed` is the only field a reward may be computed from."""

    status: Status
    reasons: list[str] = msgspec.field(default_factory=list)
    errors: list[LeanMessage] = msgspec.field(default_factory=list)
    warnings: list[LeanMessage] = msgspec.field(default_factory=list)
    axioms: list[str] = msgspec.field(default_factory=list)
    forbidden: list[str] = msgspec.field(default_factory=list)
    statement_match: bool | None = None
    premises: list[str] | None = None
    # Time Lean spent on this check alone (header import excluded), in seconds.
    seconds: float = 0.0
    # Set when the result came from the persistent cache rather than a fresh check.
    cached: bool = False
    # Pool-side diagnostics for timeout/memory/crash (exit code, stderr tail, ...).
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.status == "pass"
