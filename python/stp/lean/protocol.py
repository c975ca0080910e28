"""The JSON-lines wire protocol of our Lean programs, mirrored as msgspec structs.

Both programs read one compact JSON object per line on stdin and write one per line on stdout,
flushing after each. `docs/protocol.md` is the human description; the golden files under
`lean/test/` are decoded and re-encoded with these structs by the tests, so the two cannot drift.

Field names are snake_case on both sides. Optional fields are omitted when absent. Positions are
Lean's: `line` is 1-based, `column` is 0-based and counts Unicode code points; byte offsets
(`*_byte`) are UTF-8 offsets into the text the program was given.

Checker session (protocol version 3):
    -> CheckerConfig            (first line: role, export, header, trust, limits, mode, profile,
                                 axioms)
    <- Ready                    (header elaborated once; errors reported here)
    -> CheckRequest ...         (role "check": any number)
    -> ReplayRequest ...        (role "replay": any number; statement + EXPORT, never proof text)
    <- CheckResponse ...        (exactly one per request line, same `id`, in request order)
A line that is not valid JSON, lacks a field or names an unknown op gets a CheckResponse with
verdict "error" (id echoed when it could be read, else "") and the process keeps serving.

Stdout of a checker is untrusted (proof text is adversarial and may have run code inside it):
every response echoes the request's random `nonce`, and Python accepts a `pass` only when it is
consistent (`pass_problem`); JSON objects with duplicate keys are rejected (`decode_checker_line`).

Protocol 3 adds the kernel-replay re-check: a check worker started with `export: true` attaches
to every strict `pass` an EXPORT (the declarations the proof added, as a table of names, levels,
expressions and constants; docs/protocol.md) or `export_omitted: "too_large"`; a separate
replay worker (`role: "replay"`) that never sees proof text re-adds those declarations through
the kernel on its pristine header environment and answers like a check. Python keeps EXPORT
opaque (a JSON object it forwards).

Extractor session: ExtractRequest lines in, for each module a stream of ExtractCommand and
ExtractDecl lines, closed by exactly one ExtractDone (or ExtractFailed) line for that module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

import msgspec

PROTOCOL_VERSION = 3

# The largest EXPORT a check worker attaches to a pass (mirrors `exportMaxBytes` in
# lean/STP/Protocol.lean); above it the pass carries `export_omitted: "too_large"` instead and
# Python re-checks that item with a fresh worker.
EXPORT_MAX_BYTES = 8 * 1024 * 1024

# Wire-level size cap on one checker output line (the default of verifier.max_response_mb).
DEFAULT_MAX_RESPONSE_MB = 16

Verdict = Literal["pass", "fail", "error"]
Severity = Literal["error", "warning", "info"]
Mode = Literal["strict", "lenient"]
# "strict": our checker's full judgement; "paper": what the original STP counted (no error, no
# `sorry`, no warning containing "declaration uses 'sorry'" or "failed"), for comparable numbers.
Profile = Literal["strict", "paper"]
# "check": elaborates proofs (answers `check`); "replay": re-adds exported declarations through
# the kernel (answers `replay`), never elaborating proof text.
Role = Literal["check", "replay"]

# Machine-readable reasons a CheckResponse may carry (several can apply at once).
REASONS: dict[str, str] = {
    "forbidden": "the proof contains a forbidden command, keyword or identifier (see `forbidden`)",
    "parse_error": "the statement + proof text does not parse",
    "elab_error": "Lean reported an error while elaborating the proof",
    "sorry": "the theorem depends on sorryAx (sorry, admit, or an error-recovery sorry)",
    "bad_axiom": "the theorem depends on an axiom outside the allowed set (see `axioms`)",
    "replay_failed": "re-adding the passing declaration and what it depends on through the kernel "
                     "(on the header environment) failed or changed it",
    "missing_theorem": "elaboration did not add the stated theorem to the environment",
    "statement_mismatch": "the elaborated type differs from the statement elaborated on its own",
    "statement_error": "the statement itself does not elaborate (with `sorry` as its proof)",
    "extra_declaration": "the proof adds declarations beyond the theorem (strict mode)",
    "header_error": "the session header failed to elaborate; nothing can be checked",
    "bad_request": "the request line is not valid JSON or lacks a required field",
    "unknown_op": "the request names an op this checker does not know",
    "internal_error": "an exception inside the checker; the message is in `errors`",
    "failed_warning": "(paper profile) a warning whose text contains `failed`, as the original "
                      "STP verifier rejected",
    "export_failed": "the passing declarations could not be exported for the replay re-check "
                     "(an fvar/mvar/level mvar in a term, or a kind other than a safe "
                     "theorem/definition/opaque)",
}


class LeanMessage(msgspec.Struct, omit_defaults=True, forbid_unknown_fields=True):
    """A Lean message, positioned relative to the text the program elaborated."""

    severity: Severity
    line: int
    column: int
    text: str
    end_line: int | None = None
    end_column: int | None = None


# ---------------------------------------------------------------------------------------------
# Checker
# ---------------------------------------------------------------------------------------------


class CheckerConfig(msgspec.Struct, tag_field="op", tag="config", omit_defaults=False,
                    forbid_unknown_fields=True, kw_only=True):
    """First line of a checker session. The header is imports followed by any commands
    (`open`, `set_option`, `namespace`, ...) that every checked statement runs under.

    Every policy field is required: the Lean side holds no defaults of its own, Python sends the
    configuration's values (each defined once, in stp.lean.config). `header_trusted = false`
    makes the checker apply its header allow-list (import/open/universe/namespace/section/end/
    variable and a few safe set_options) before elaborating the header.

    `role` "check" answers CheckRequests; "replay" answers ReplayRequests only (the header is
    elaborated the same way). `export` (role "check"): attach an EXPORT, or `export_omitted`, to
    every strict pass; role "replay" ignores it (Python sends false).

    Every field goes on the wire (`omit_defaults=False`): the checker requires `protocol`, which
    a default-omitting encoder would leave out exactly when it has its default value."""

    protocol: int = PROTOCOL_VERSION
    role: Role
    export: bool
    header: str
    header_trusted: bool
    max_heartbeats: int
    mode: Mode
    profile: Profile
    allowed_axioms: list[str]


class Ready(msgspec.Struct, tag_field="op", tag="ready", omit_defaults=True,
            forbid_unknown_fields=True, kw_only=True):
    """Answer to CheckerConfig. `ok` is false when the header had errors: every later check is
    then answered with verdict "error" and reason "header_error"."""

    protocol: int
    ok: bool
    lean_version: str
    checker_version: str
    header_ms: int
    header_errors: list[LeanMessage] = msgspec.field(default_factory=list)


class CheckRequest(msgspec.Struct, tag_field="op", tag="check", omit_defaults=True,
                   forbid_unknown_fields=True, kw_only=True):
    """Check `statement + proof` (concatenated verbatim, nothing inserted) against the header.

    `statement` ends in `:=` or `:= by`; the reference type is obtained by elaborating
    `statement + " sorry"` on its own. `name` is informational; the theorem checked is the one
    the statement declares."""

    id: str
    # 128 random bits (hex) drawn by Python per request; the response must echo it.
    nonce: str
    statement: str
    proof: str
    name: str | None = None
    # Report the Mathlib constants the proof text refers to (the self-play lemma pairing).
    premises: bool = False
    # Per-request override of the session's heartbeat limit (never above the session's).
    max_heartbeats: int | None = None


class ReplayRequest(msgspec.Struct, tag_field="op", tag="replay", omit_defaults=True,
                    forbid_unknown_fields=True, kw_only=True):
    """Re-check a pass by kernel replay (role "replay"): re-add the constants of `export` on the
    header environment and compare the target with `statement`'s own reference type.

    There is no proof text in this request, by design: the replay worker never elaborates
    anything a proof wrote, so no exploit in the text can reach its state. `export` is the EXPORT
    object of the check worker's pass, forwarded unchanged (Python does not interpret it)."""

    id: str
    nonce: str
    statement: str
    export: dict[str, Any]
    max_heartbeats: int | None = None


class CheckResponse(msgspec.Struct, tag_field="op", tag="result", omit_defaults=True,
                    forbid_unknown_fields=True, kw_only=True):
    """Lean's verdict on one request.

    pass  = no error message, no forbidden construct, the theorem exists with exactly the
            reference type and level parameters, and its axioms are within `allowed_axioms`.
    fail  = judged and rejected; `reasons` says why.
    error = could not be judged (bad request, header error, internal exception)."""

    id: str
    verdict: Verdict
    # The request's nonce; absent only on `bad_request` answers to unreadable lines.
    nonce: str | None = None
    reasons: list[str] = msgspec.field(default_factory=list)
    errors: list[LeanMessage] = msgspec.field(default_factory=list)
    warnings: list[LeanMessage] = msgspec.field(default_factory=list)
    # Axioms the theorem depends on (sorryAx included when present), sorted.
    axioms: list[str] = msgspec.field(default_factory=list)
    # None when the comparison could not be made (statement error, missing theorem, ...).
    statement_match: bool | None = None
    # Forbidden keywords/identifiers found by the syntax gate (elaboration is then skipped).
    forbidden: list[str] = msgspec.field(default_factory=list)
    # Present only when requested and the proof elaborated.
    premises: list[str] | None = None
    ms: int = 0
    # Role "check" with `export: true`, strict pass only: the EXPORT of the declarations the
    # proof added (target included), or why it was left out ("too_large": over
    # EXPORT_MAX_BYTES). Exactly one of the two on such a pass; never on anything else.
    export: dict[str, Any] | None = None
    export_omitted: str | None = None


CheckerInput = CheckerConfig | CheckRequest | ReplayRequest
CheckerOutput = Ready | CheckResponse


# ---------------------------------------------------------------------------------------------
# Extractor
# ---------------------------------------------------------------------------------------------


class ExtractRequest(msgspec.Struct, tag_field="op", tag="module", omit_defaults=True,
                     forbid_unknown_fields=True, kw_only=True):
    """Re-elaborate one module's source file and describe its commands and theorems."""

    module: str
    # Path of the module's .lean file (Python resolves it inside the Mathlib package).
    path: str
    # Also report, per theorem, the constants its proof text refers to.
    premises: bool = False


class ExtractCommand(msgspec.Struct, tag_field="t", tag="cmd", omit_defaults=True,
                     forbid_unknown_fields=True, kw_only=True):
    """One top-level command of the file, in source order.

    `kind` is the syntax node kind (e.g. `Lean.Parser.Command.declaration`,
    `Lean.Parser.Command.open`, `Lean.Parser.Command.variable`, `Lean.Parser.Command.namespace`).
    For a declaration, `decl_kind` is the kind of its second child (`Lean.Parser.Command.theorem`,
    `lemma`, `Lean.Parser.Command.definition`, ...), `decl_id` the identifier as written, and
    `val_start_byte` where its `:=`/`|`/`where` body starts (None when the shape is unknown)."""

    module: str
    kind: str
    start_byte: int
    end_byte: int
    decl_kind: str | None = None
    decl_id: str | None = None
    val_start_byte: int | None = None


class ExtractDecl(msgspec.Struct, tag_field="t", tag="decl", omit_defaults=True,
                  forbid_unknown_fields=True, kw_only=True):
    """A theorem the module added to the environment, with its declaration ranges.

    `range` covers the whole declaration including doc comment and attributes; `selection` is
    the name identifier. Generated theorems (`to_additive`, `alias`) point at their source."""

    module: str
    name: str
    line: int
    column: int
    end_line: int
    end_column: int
    sel_line: int
    sel_column: int
    sel_end_line: int
    sel_end_column: int
    premises: list[str] | None = None


class ExtractDone(msgspec.Struct, tag_field="t", tag="done", omit_defaults=True,
                  forbid_unknown_fields=True, kw_only=True):
    """Closes one module. `errors` are Lean errors met while re-elaborating the file."""

    module: str
    commands: int
    decls: int
    ms: int
    errors: list[LeanMessage] = msgspec.field(default_factory=list)


class ExtractFailed(msgspec.Struct, tag_field="t", tag="error", omit_defaults=True,
                   forbid_unknown_fields=True, kw_only=True):
    """The module could not be processed at all (missing file, header failure, bad request).

    A protocol message (wire tag "error"), not a Python exception: the driver stores it as the
    module's last line and the module counts as failed."""

    module: str
    message: str


ExtractorOutput = ExtractCommand | ExtractDecl | ExtractDone | ExtractFailed

# Shared encoder/decoders: the hot path of the verification pool uses these directly.
encoder = msgspec.json.Encoder()
checker_output_decoder = msgspec.json.Decoder(CheckerOutput)
checker_input_decoder = msgspec.json.Decoder(CheckerInput)
extractor_output_decoder = msgspec.json.Decoder(ExtractorOutput)
extract_request_decoder = msgspec.json.Decoder(ExtractRequest)


def encode_line(message: msgspec.Struct) -> bytes:
    """One protocol line: compact JSON plus newline."""
    return encoder.encode(message) + b"\n"


class DuplicateKeyError(ValueError):
    """A JSON object names the same key twice (parsers disagree on which one wins)."""


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(f"duplicate key {key!r}")
        out[key] = value
    return out


def duplicate_key(line: bytes | bytearray) -> str | None:
    """The first duplicated key of any object in `line`, or None.

    msgspec (like most JSON parsers) silently keeps the last of two equal keys, so a checker line
    `{"verdict":"fail",...,"verdict":"pass"}` would decode as a pass with fail's reasons. The scan
    uses the standard library parser with a pair hook (about as fast as a second decode); a line
    that is not JSON at all is left to the msgspec decoder to report."""
    try:
        json.loads(line, object_pairs_hook=_reject_duplicates)
    except DuplicateKeyError as err:
        return str(err)
    except ValueError:
        return None
    return None


def decode_checker_line(line: bytes | bytearray) -> CheckerOutput:
    """Decode one checker output line, refusing duplicate keys (msgspec.DecodeError otherwise)."""
    msg = checker_output_decoder.decode(line)
    dup = duplicate_key(line)
    if dup is not None:
        raise msgspec.DecodeError(f"{dup} in one object")
    return msg


# Warning texts that made the original STP verifier reject a proof (docs/reference.md §5.3).
PAPER_BAD_WARNINGS = ("declaration uses 'sorry'", "failed")


def paper_verdict(resp: CheckResponse) -> bool:
    """The original STP rule, re-derived from the messages: no error, no sorry warning, no warning
    containing `failed`. Only severity-`warning` messages count (the `warnings` field also
    carries `info` messages, which the original rule did not look at)."""
    if resp.errors:
        return False
    return not any(bad in m.text for m in resp.warnings if m.severity == "warning"
                   for bad in PAPER_BAD_WARNINGS)


def pass_problem(resp: CheckResponse, nonce: str, allowed_axioms: Iterable[str],
                 profile: Profile = "strict", export_requested: bool = False) -> str | None:
    """Why a response cannot be accepted as it stands, or None when it is consistent.

    Checked for every response: the nonce. Checked for a `pass` (strict profile): no reasons, no
    error messages, nothing forbidden, `statement_match` true, every axiom allowed (never
    `sorryAx`). Paper profile: the verdict must equal the paper rule re-derived from the
    messages, and a pass carries no reasons. The same rule holds for check and replay answers.

    Exports (protocol 3): `export_requested` is true for answers of a check worker started with
    `export: true`. Then a strict pass must carry exactly one of `export` / `export_omitted`;
    no other answer (fail, error, paper profile, replay worker, a worker not asked) may carry
    either. Any problem is a protocol error of the worker."""
    if resp.nonce != nonce:
        return f"nonce {resp.nonce!r} does not match the request's"
    has_export = resp.export is not None
    omitted = resp.export_omitted is not None
    if has_export or omitted:
        if not export_requested or profile != "strict" or resp.verdict != "pass":
            field = "export" if has_export else "export_omitted"
            return f"{field} on a {profile} {resp.verdict} that may not carry one"
        if has_export and omitted:
            return "pass with both export and export_omitted"
    elif export_requested and profile == "strict" and resp.verdict == "pass":
        return "pass without export or export_omitted (export was requested)"
    if profile == "paper":
        if resp.verdict in ("pass", "fail") and (resp.verdict == "pass") != paper_verdict(resp):
            return f"paper verdict {resp.verdict!r} disagrees with its messages"
        if resp.verdict == "pass" and resp.reasons:
            return f"pass with reasons {resp.reasons}"
        return None
    if resp.verdict != "pass":
        return None
    if resp.reasons:
        return f"pass with reasons {resp.reasons}"
    if resp.errors:
        return f"pass with {len(resp.errors)} error message(s)"
    if resp.forbidden:
        return f"pass with forbidden constructs {resp.forbidden}"
    if resp.statement_match is not True:
        return f"pass with statement_match={resp.statement_match}"
    allowed = set(allowed_axioms)
    bad = sorted(a for a in resp.axioms if a not in allowed or a == "sorryAx")
    if bad:
        return f"pass depending on axioms {bad}"
    return None
