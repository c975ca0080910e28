"""The JSON-lines wire protocol of our Lean programs, mirrored as msgspec structs.

Both programs read one compact JSON object per line on stdin and write one per line on stdout,
flushing after each. `docs/protocol.md` is the human description; the golden files under
`lean/test/` are decoded and re-encoded with these structs by the tests, so the two cannot drift.

Field names are snake_case on both sides. Optional fields are omitted when absent. Positions are
Lean's: `line` is 1-based, `column` is 0-based and counts Unicode code points; byte offsets
(`*_byte`) are UTF-8 offsets into the text the program was given.

Checker session (protocol version 4):
    -> CheckerConfig            (first line: role, export, header, imports, trust, limits, mode,
                                 profile, axioms)
    <- Ready                    (header elaborated once, or for role "replay" only imported)
    -> CheckRequest ...         (role "check": any number)
    -> ReferenceRequest ...     (role "statement": one batch, then stdin is closed)
    -> ReplayRequest ...        (role "replay", the judge: REFERENCE + EXPORT, never any text)
    <- CheckResponse ...        (exactly one per request line, same `id`, in request order; a
                                 pass whose EXPORT is chunked is followed at once by its
                                 `export_chunks` ExportChunk lines)
A line that is not valid JSON, lacks a field or names an unknown op gets a CheckResponse with
verdict "error" (id echoed when it could be read, else "") and the process keeps serving.

Stdout of a checker is untrusted (proof text is adversarial and may have run code inside it):
every response echoes the request's random `nonce`, and Python accepts a `pass` only when it is
consistent (`pass_problem`); JSON objects with duplicate keys are rejected (`decode_checker_line`).

Protocol 4 (issue #20): every process that elaborates model-written text (role "check": proofs;
role "statement": conjectured statements) is assumed compromised and its answers are claims. A
check worker started with `export: true` attaches to every strict `pass` an EXPORT (the
declarations the proof added; docs/protocol.md), inline or in chunks, never omitted. Single-use
statement processes answer REFERENCE objects (the statement's elaborated type). The judge (role
"replay") never parses or elaborates any text: it imports only the modules Python names in
`imports`, re-adds the EXPORT through the kernel and compares the target with the REFERENCE.
Python keeps EXPORT and REFERENCE opaque: they are `msgspec.Raw` slices of the answer line,
forwarded byte for byte to the judge without being parsed in Python.

Extractor session: ExtractRequest lines in, for each module a stream of ExtractCommand and
ExtractDecl lines, closed by exactly one ExtractDone (or ExtractFailed) line for that module.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, Literal

import msgspec
from msgspec import UNSET, Raw, UnsetType

PROTOCOL_VERSION = 4

# An EXPORT whose JSON text is longer than this travels in `export_chunks` ExportChunk lines of
# at most this many bytes of EXPORT text each (mirrors `exportChunkBytes` in
# lean/STP/Protocol.lean). Exports are never omitted (protocol 3's `export_omitted` is gone).
EXPORT_CHUNK_BYTES = 4 * 1024 * 1024

# Wire-level size cap on one checker output line (the default of verifier.max_response_mb).
DEFAULT_MAX_RESPONSE_MB = 16

Verdict = Literal["pass", "fail", "error"]
Severity = Literal["error", "warning", "info"]
Mode = Literal["strict", "lenient"]
# "strict": our checker's full judgement; "paper": what the original STP counted (no error, no
# `sorry`, no warning containing "declaration uses 'sorry'" or "failed"), for comparable numbers.
Profile = Literal["strict", "paper"]
# "check": elaborates header + proofs (answers `check`); "statement": single-use, elaborates
# header + the statements of one batch (answers `reference`); "replay": the judge, imports the
# modules of `imports` only and re-adds exported declarations through the kernel (answers
# `replay`), never parsing or elaborating any text.
Role = Literal["check", "statement", "replay"]

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
    "forbidden_declaration": "(judge) the export carries a def/opaque that is not an auxiliary "
                             "declaration the elaborator makes for the target",
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

    `role` "check" answers CheckRequests; "statement" answers ReferenceRequests (one batch, then
    EOF; the header is elaborated as for "check"); "replay" (the judge) answers ReplayRequests
    only, imports exactly the modules of `imports` and elaborates nothing (`header` is sent as
    ""). `imports` is `[]` for the other roles, which elaborate `header`. `export` (role "check"):
    attach an EXPORT to every strict pass; the other roles ignore it (Python sends false).

    Every field goes on the wire (`omit_defaults=False`): the checker requires `protocol`, which
    a default-omitting encoder would leave out exactly when it has its default value."""

    protocol: int = PROTOCOL_VERSION
    role: Role
    export: bool
    header: str
    imports: list[str]
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


class ReferenceRequest(msgspec.Struct, tag_field="op", tag="reference", omit_defaults=True,
                       forbid_unknown_fields=True, kw_only=True):
    """Elaborate `statement + " sorry"` (after the statement gate: term syntax only) from the
    header state and answer its REFERENCE (role "statement")."""

    id: str
    nonce: str
    statement: str
    max_heartbeats: int | None = None


class ReplayRequest(msgspec.Struct, tag_field="op", tag="replay", omit_defaults=True,
                    forbid_unknown_fields=True, kw_only=True):
    """The judge's request (role "replay"): re-add the constants of `export` through the kernel
    on the imported environment and compare the target with `reference`.

    There is no text in this request, by design (no statement, no proof): the judge never parses
    or elaborates anything a model wrote. `reference` comes from a statement process, `export`
    from the check worker's pass; both are forwarded byte for byte (`Raw`)."""

    id: str
    nonce: str
    reference: Raw
    export: Raw
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
    # proof added (target included), inline, or the number N >= 2 of ExportChunk lines that
    # follow this line at once and carry its text. Exactly one of the two on such a pass; never
    # on anything else. Kept as raw JSON: Python forwards it to the judge unparsed.
    export: Raw | UnsetType = UNSET
    export_chunks: int | None = None
    # Role "statement", pass only: the REFERENCE of the statement (raw JSON, forwarded).
    reference: Raw | UnsetType = UNSET


class ExportChunk(msgspec.Struct, tag_field="op", tag="export_chunk", omit_defaults=True,
                  forbid_unknown_fields=True, kw_only=True):
    """One piece of a chunked EXPORT: the `export_chunks` lines follow their result line
    immediately, `index` 0..N-1 in order, same id and nonce; the `data` strings concatenated are
    the EXPORT JSON text."""

    id: str
    nonce: str
    index: int
    data: str


CheckerInput = CheckerConfig | CheckRequest | ReferenceRequest | ReplayRequest
CheckerOutput = Ready | CheckResponse | ExportChunk


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
    """Decode one checker output line, refusing duplicate keys in any line that decodes as a
    `pass` (msgspec.DecodeError otherwise).

    Only a pass is scanned: a duplicate key can only matter where it could make a line read as
    something it is not, and every line that does not read as a pass is already treated as what
    a forger could print anyway (a fail is provisional, an error is retried); the scan costs
    about one more JSON parse, so it is spent where it decides something. The raw EXPORT /
    REFERENCE values are forwarded to the judge unparsed and only the judge reads them, so the
    scan skips them: each is replaced by `0` before it (found by its exact bytes; JSON escapes
    every `"` inside a string, so an object's text can only occur as a value). A second `export`
    key is still caught: the placeholder keeps its key."""
    msg = checker_output_decoder.decode(line)
    if not isinstance(msg, CheckResponse) or msg.verdict != "pass":
        return msg
    scanned: bytes | bytearray = line
    for raw in (msg.export, msg.reference):
        if isinstance(raw, Raw) and len(raw) > 64:
            text = bytes(raw)
            at = scanned.find(text)
            if at >= 0:
                scanned = scanned[:at] + b"0" + scanned[at + len(text):]
    try:
        json.loads(scanned, object_pairs_hook=_reject_duplicates)
    except DuplicateKeyError as err:
        raise msgspec.DecodeError(f"{err} in one object") from None
    except ValueError:
        # msgspec read the line; with its raw values set aside it must still be JSON
        raise msgspec.DecodeError("line unreadable once its raw values are set aside") from None
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


def is_json_object(raw: Raw | UnsetType) -> bool:
    """A raw value that is a JSON object (starts with `{`; the judge parses the rest)."""
    return isinstance(raw, Raw) and bytes(memoryview(raw)[:1]) == b"{"


def pass_problem(resp: CheckResponse, nonce: str, allowed_axioms: Iterable[str],
                 profile: Profile = "strict", export_requested: bool = False,
                 role: Role = "check") -> str | None:
    """Why a response cannot be accepted as it stands, or None when it is consistent.

    Checked for every response: the nonce. Checked for a `pass` (strict profile): no reasons, no
    error messages, nothing forbidden, `statement_match` true, every axiom allowed (never
    `sorryAx`). Paper profile: the verdict must equal the paper rule re-derived from the
    messages, and a pass carries no reasons. The same rule holds for check and judge answers.

    Exports (protocol 4): `export_requested` is true for answers of a check worker started with
    `export: true`. Then a strict pass must carry exactly one of `export` (a JSON object) /
    `export_chunks` (N >= 2; the client has joined the chunks into `export` before the pool sees
    the answer); no other answer (fail, error, paper profile, judge, statement process, a worker
    not asked) may carry either. References (role "statement"): a pass must carry `reference` (a
    JSON object) and nothing a proof check reports; no other answer may carry one. Any problem
    is a protocol error of the worker: a pass without its export is NEVER re-checked some cheaper
    way instead."""
    if resp.nonce != nonce:
        return f"nonce {resp.nonce!r} does not match the request's"
    has_export = resp.export is not UNSET
    chunked = resp.export_chunks is not None
    has_reference = resp.reference is not UNSET
    if has_reference and (role != "statement" or resp.verdict != "pass"):
        return f"reference on a {role} {resp.verdict} that may not carry one"
    if has_export or chunked:
        if (not export_requested or role != "check" or profile != "strict"
                or resp.verdict != "pass"):
            field = "export" if has_export else "export_chunks"
            return f"{field} on a {profile} {role} {resp.verdict} that may not carry one"
        if has_export and chunked:
            return "pass with both export and export_chunks"
        if has_export and not is_json_object(resp.export):
            return "export that is not a JSON object"
        if chunked and (resp.export_chunks or 0) < 2:
            return f"export_chunks={resp.export_chunks} (must be >= 2)"
    elif (export_requested and role == "check" and profile == "strict"
          and resp.verdict == "pass"):
        return "pass without export (export was requested)"
    if role == "statement":
        if resp.verdict != "pass":
            return None
        if not is_json_object(resp.reference):
            return "statement pass without a reference object"
        if resp.reasons or resp.errors or resp.forbidden:
            return "statement pass with reasons, errors or forbidden constructs"
        return None
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
    allowed = allowed_axioms if isinstance(allowed_axioms, (set, frozenset)) else set(
        allowed_axioms)
    for a in resp.axioms:
        if a not in allowed or a == "sorryAx":
            bad = sorted(a for a in resp.axioms if a not in allowed or a == "sorryAx")
            return f"pass depending on axioms {bad}"
    return None
