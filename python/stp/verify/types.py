"""What callers hand the verifier and what they get back (the verification API's vocabulary)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Literal, Protocol

import msgspec

from stp.lean.protocol import LeanMessage

# pass/fail/error come from the checker; timeout/memory/crash are decided by the pool.
Status = Literal["pass", "fail", "error", "timeout", "memory", "crash"]
INFRASTRUCTURE_FAILURES: frozenset[str] = frozenset({"error", "timeout", "memory", "crash"})
# Reasons the verifier itself gives an `error` result, beyond the checker's own
# (`stp.lean.protocol.REASONS`, whose `bad_request` it also uses for an item it cannot send): a
# checker that broke the protocol, a pass the re-check or the cross-check did not confirm.
DRIVER_REASONS: dict[str, str] = {
    "protocol_error": "the checker's answers broke the protocol twice (forged or inconsistent "
                      "pass, wrong nonce, duplicate keys, oversized line)",
    "recheck_disagreement": "a pass the confirmation (judge, statement reference or fresh "
                            "process) could not confirm: error, timeout, memory or crash",
    "export_too_large": "a pass whose EXPORT exceeds verifier.max_export_mb (never re-checked "
                        "some cheaper way instead)",
    "crosscheck_disagreement": "a pass the lean-interact cross-check did not confirm",
}


def length_prefixed(*fields: str | bytes) -> bytes:
    """An unambiguous encoding of a tuple of fields: each is preceded by its byte length, so no
    field content (NUL bytes included) can shift where the next field starts."""
    out = bytearray()
    for f in fields:
        data = f.encode("utf-8") if isinstance(f, str) else f
        out += len(data).to_bytes(8, "big")
        out += data
    return bytes(out)


class VerifyItem(msgspec.Struct, frozen=True, kw_only=True):
    """One proof to check. An empty header means the configured default header.

    `header_trusted = False` for headers that come with the proof (a `.lean` file, a JSONL
    record): the checker then allows only imports, `open`, `namespace`/`section`/`end`,
    `universe`, `variable` and safe options in it. The configured default header and benchmark
    headers are trusted."""

    statement: str
    proof: str
    header: str = ""
    header_trusted: bool = True
    name: str | None = None
    premises: bool = False

    def key(self, context: str = "") -> str:
        """Content hash used for deduplication and the persistent cache. `context` is the
        checker/policy fingerprint (stp.verify.service.checker_fingerprint): a verdict is only
        ever reused under the policy, toolchain and checker build that produced it."""
        h = hashlib.blake2b(digest_size=16)
        for f in (self.header, str(self.header_trusted), self.statement, self.proof,
                  str(self.premises), context):  # = length_prefixed(...), without the copy
            data = f.encode("utf-8")
            h.update(len(data).to_bytes(8, "big"))
            h.update(data)
        return h.hexdigest()


def encoding_problem(item: VerifyItem) -> str | None:
    """Why an item cannot be sent as UTF-8 JSON (a lone surrogate, ...), or None."""
    for name in ("header", "statement", "proof", "name"):
        value = getattr(item, name)
        if value is None or value.isascii():  # ASCII always encodes (the common, fast case)
            continue
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as err:
            return f"{name} is not valid Unicode text ({err.reason} at offset {err.start})"
    return None


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
    # Set on a pass the lean-interact cross-check confirmed (cache hits without it are redone).
    cross_checked: bool = False
    # Pool-side diagnostics for timeout/memory/crash (exit code, stderr tail, ...).
    detail: str = ""
    # A `fail` claimed by a check worker that is still running: cached in memory only until
    # that worker retires without having been caught lying (Sink.on_settle), never persisted
    # on its own (a compromised worker could otherwise plant false negatives across runs).
    provisional: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "pass"


class BatchVerifier(Protocol):
    """What evaluation and the sample→verify runner need of a verifier: verdicts of a batch in
    input order (`stp.verify.Verifier` is one; tests pass small stand-ins)."""

    def verify_all(self, items: Iterable[VerifyItem]) -> list[VerifyResult]: ...
