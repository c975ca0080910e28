import Lean

/-!
# The wire protocol (version 4)

The JSON-lines wire protocol (docs/protocol.md; mirrored in
python/stp/lean/protocol.py). Field names are snake_case. Optional fields are omitted when
absent, empty lists and zero `ms` are omitted (the Python structs use `omit_defaults`), so a
line we write re-encodes unchanged.

Protocol 4: three roles (`check`, `statement`, `replay` = the judge), `imports` in the config,
`reference` requests (statement role) and `replay` requests that carry a REFERENCE and an
EXPORT (never text); an EXPORT over `exportChunkBytes` travels in `export_chunk` lines.
-/

open Lean

namespace STP

def protocolVersion : Nat := 4
def checkerVersion : String := "stp-check 0.4.0"

/-- Protocol 4: a strict pass whose compact EXPORT text is longer than this (bytes) carries
`export_chunks: N` instead of `export` and is followed by N `export_chunk` lines, each with a
piece of at most this many bytes (cut at a character boundary). Mirrored in Python as
`EXPORT_CHUNK_BYTES`. Exports are never omitted. -/
def exportChunkBytes : Nat := 4 * 1024 * 1024

/-! ### Closed sets of the wire

Each set is an inductive with ONE table `X.wire : X → String` (one line per constructor) that
gives its wire string; every other direction is derived from that table: `ToJson` writes
`X.wire`, and the input sets (`Mode`, `Profile`, `Role`) are read back by searching `X.all` for
the string (`parseWire`). `python/tests/test_lean_python_drift.py` reads these tables with a
regular expression and compares them with `python/stp/lean/protocol.py` (`Verdict`, `Severity`,
`Mode`, `Profile`, `Role`, `REASONS`), so keep each table in exactly this shape: one
`  | .ctor => "wire"` line per constructor, and `X.all` listing every constructor.

The instances are written by hand from the table rather than derived: the derive handler of the
era encodes a constructor without fields as the string of its own name (REPL `REPL/JSON.lean`
@v4.9.0-rc1 derives `ToJson` on `inductive Severity | trace | info | warning | error` and its
tests expect `"severity": "warning"`), which would force snake_case constructor names and a
constructor named by the keyword `sorry`, and would put the wire strings in constructor names
instead of one table Python can read. -/

/-- A request's outcome. `pass`: judged and accepted; `fail`: judged and rejected (`reasons`
say why); `error`: could not be judged. -/
inductive Verdict where
  | pass
  | fail
  | error
  deriving BEq, Inhabited, Repr

def Verdict.wire : Verdict → String
  | .pass => "pass"
  | .fail => "fail"
  | .error => "error"

/-- The severity of a message (Lean's `information` is `info` on the wire). -/
inductive Severity where
  | error
  | warning
  | info
  deriving BEq, Inhabited, Repr

def Severity.wire : Severity → String
  | .error => "error"
  | .warning => "warning"
  | .info => "info"

/-- Why a request did not pass (several may apply). Python's `REASONS` documents each one. -/
inductive Reason where
  | forbidden
  | parseError
  | elabError
  | usesSorry
  | badAxiom
  | replayFailed
  | missingTheorem
  | statementMismatch
  | statementError
  | extraDeclaration
  | headerError
  | badRequest
  | unknownOp
  | internalError
  | failedWarning
  | exportFailed
  | forbiddenDeclaration
  deriving BEq, Inhabited, Repr

def Reason.wire : Reason → String
  | .forbidden => "forbidden"
  | .parseError => "parse_error"
  | .elabError => "elab_error"
  | .usesSorry => "sorry"
  | .badAxiom => "bad_axiom"
  | .replayFailed => "replay_failed"
  | .missingTheorem => "missing_theorem"
  | .statementMismatch => "statement_mismatch"
  | .statementError => "statement_error"
  | .extraDeclaration => "extra_declaration"
  | .headerError => "header_error"
  | .badRequest => "bad_request"
  | .unknownOp => "unknown_op"
  | .internalError => "internal_error"
  | .failedWarning => "failed_warning"
  | .exportFailed => "export_failed"
  | .forbiddenDeclaration => "forbidden_declaration"

/-- Config field `mode`: `strict` = the checked text is exactly one declaration command;
`lenient` = declaration commands only. -/
inductive Mode where
  | strict
  | lenient
  deriving BEq, Inhabited, Repr

def Mode.wire : Mode → String
  | .strict => "strict"
  | .lenient => "lenient"

def Mode.all : List Mode := [.strict, .lenient]

/-- Config field `profile`: `strict` = every check of ours; `paper` = the original STP rule
(Lean's messages only), for numbers comparable with the paper's. -/
inductive Profile where
  | strict
  | paper
  deriving BEq, Inhabited, Repr

def Profile.wire : Profile → String
  | .strict => "strict"
  | .paper => "paper"

def Profile.all : List Profile := [.strict, .paper]

/-- Which requests a process answers (protocol 4). `check` and `statement` elaborate model
text (their answers are claims); `replay` is the judge and never parses or elaborates text. -/
inductive Role where
  | check
  | statement
  | replay
  deriving BEq, Inhabited, Repr

def Role.wire : Role → String
  | .check => "check"
  | .statement => "statement"
  | .replay => "replay"

def Role.all : List Role := [.check, .statement, .replay]

/-- The op a role answers: `check`, `reference`, `replay`. -/
def Role.op : Role → String
  | .check => "check"
  | .statement => "reference"
  | .replay => "replay"

instance : ToJson Verdict := ⟨fun v => Json.str v.wire⟩
instance : ToJson Severity := ⟨fun s => Json.str s.wire⟩
instance : ToJson Reason := ⟨fun r => Json.str r.wire⟩
instance : ToJson Mode := ⟨fun m => Json.str m.wire⟩
instance : ToJson Profile := ⟨fun p => Json.str p.wire⟩
instance : ToJson Role := ⟨fun r => Json.str r.wire⟩

/-- The member of a closed set whose wire string is `s` (the reverse of its `wire` table), or an
error naming the field and the accepted strings. -/
def parseWire {α : Type} (field : String) (all : List α) (wire : α → String) (s : String) :
    Except String α :=
  match all.find? (fun x => wire x == s) with
  | some x => pure x
  | none =>
    let accepted := String.intercalate ", " (all.map fun x => "\"" ++ wire x ++ "\"")
    throw s!"field '{field}' must be one of {accepted}, got \"{s}\""

/-- `FromJson` of a closed input set: a JSON string from its table. -/
def fromJsonWire {α : Type} (what : String) (all : List α) (wire : α → String) (j : Json) :
    Except String α :=
  match j with
  | Json.str s => parseWire what all wire s
  | _ => throw s!"field '{what}' must be a string"

instance : FromJson Mode := ⟨fromJsonWire "mode" Mode.all Mode.wire⟩
instance : FromJson Profile := ⟨fromJsonWire "profile" Profile.all Profile.wire⟩
instance : FromJson Role := ⟨fromJsonWire "role" Role.all Role.wire⟩

/-- A Lean message, positioned relative to the text we elaborated. -/
structure Msg where
  severity : Severity
  line : Nat
  column : Nat
  text : String
  endLine? : Option Nat := none
  endColumn? : Option Nat := none

/-- Named `json`, not `toJson`: inside a `def Msg.toJson` a bare `toJson` would resolve to the
function being defined (the declaration's namespace is open in its body). -/
def Msg.json (m : Msg) : Json :=
  Json.mkObj <|
    [("severity", toJson m.severity), ("line", Lean.toJson m.line),
     ("column", Lean.toJson m.column),
     ("text", Json.str m.text)]
    ++ (match m.endLine? with | some l => [("end_line", Lean.toJson l)] | none => [])
    ++ (match m.endColumn? with | some c => [("end_column", Lean.toJson c)] | none => [])

/-- A message of ours (not Lean's), e.g. for a bad request, at line 0. -/
def Msg.plain (text : String) : Msg := { severity := .error, line := 0, column := 0, text }

def fieldList (key : String) (xs : List Json) : List (String × Json) :=
  if xs.isEmpty then [] else [(key, Json.arr xs.toArray)]

def strList (key : String) (xs : List String) : List (String × Json) :=
  fieldList key (xs.map Json.str)

def natField (key : String) (n : Nat) : List (String × Json) :=
  if n == 0 then [] else [(key, toJson n)]

/-- Write one protocol line to the current stdout (the extractor, which elaborates only
Mathlib). The checker uses `emitTo` with the stream it captured at start-up instead. -/
def emit (j : Json) : IO Unit := do
  let out ← IO.getStdout
  out.putStr (j.compress ++ "\n")
  out.flush

/-- Write one protocol line to `out`: the checker's real stdout, captured once before any user
text was elaborated, so proof code that calls `IO.setStdout` cannot reach the channel. -/
def emitTo (out : IO.FS.Stream) (j : Json) : IO Unit := do
  out.putStr (j.compress ++ "\n")
  out.flush

/-! ### Reading request fields (unknown fields are ignored) -/

def getStr? (j : Json) (k : String) : Except String (Option String) :=
  match j.getObjVal? k with
  | .error _ => pure none
  | .ok Json.null => pure none
  | .ok (Json.str s) => pure (some s)
  | .ok _ => throw s!"field '{k}' must be a string"

def getStr (j : Json) (k : String) : Except String String := do
  match ← getStr? j k with
  | some s => pure s
  | none => throw s!"missing field '{k}'"

def getNat? (j : Json) (k : String) : Except String (Option Nat) :=
  match j.getObjVal? k with
  | .error _ => pure none
  | .ok Json.null => pure none
  | .ok v => match (fromJson? v : Except String Nat) with
    | .ok n => pure (some n)
    | .error _ => throw s!"field '{k}' must be a non-negative integer"

def getBool? (j : Json) (k : String) : Except String (Option Bool) :=
  match j.getObjVal? k with
  | .error _ => pure none
  | .ok Json.null => pure none
  | .ok (Json.bool b) => pure (some b)
  | .ok _ => throw s!"field '{k}' must be a boolean"

def getStrArray? (j : Json) (k : String) : Except String (Option (Array String)) :=
  match j.getObjVal? k with
  | .error _ => pure none
  | .ok Json.null => pure none
  | .ok v => match (fromJson? v : Except String (Array String)) with
    | .ok xs => pure (some xs)
    | .error _ => throw s!"field '{k}' must be a list of strings"

/-! ### Checker messages -/

/-- Session settings. Every field is required; the checker holds no defaults of its own (Python
sends the values of its configuration). -/
structure CheckerConfig where
  role : Role
  /-- Wire field `export` (a Lean keyword, hence the name). Role "check": every strict `pass`
  carries its EXPORT (inline, or in chunks above `exportChunkBytes`). -/
  wantExport : Bool
  /-- Elaborated by roles `check` and `statement`; sent as "" to the judge, which ignores it. -/
  header : String
  /-- Module names the judge imports (`importModules`; no header command is elaborated there).
  `[]` for the roles that elaborate `header`. -/
  imports : List String
  /-- false: the header goes through the allow-list gate before it is elaborated. -/
  headerTrusted : Bool
  maxHeartbeats : Nat
  mode : Mode
  profile : Profile
  allowedAxioms : Array String

def need {α : Type} (k : String) : Option α → Except String α
  | some v => pure v
  | none => throw s!"missing field '{k}'"

/-- A required string field that names a member of a closed set (`parseWire`). -/
def getWire {α : Type} (j : Json) (k : String) (all : List α) (wire : α → String) :
    Except String α := do
  parseWire k all wire (← getStr j k)

def CheckerConfig.parse (j : Json) : Except String CheckerConfig := do
  let p ← need "protocol" (← getNat? j "protocol")
  if p != protocolVersion then
    throw s!"protocol {p} requested, this checker speaks {protocolVersion}"
  let header ← getStr j "header"
  let imports ← need "imports" (← getStrArray? j "imports")
  let headerTrusted ← need "header_trusted" (← getBool? j "header_trusted")
  let maxHeartbeats ← need "max_heartbeats" (← getNat? j "max_heartbeats")
  let mode ← getWire j "mode" Mode.all Mode.wire
  let profile ← getWire j "profile" Profile.all Profile.wire
  let allowedAxioms ← need "allowed_axioms" (← getStrArray? j "allowed_axioms")
  let role ← getWire j "role" Role.all Role.wire
  let wantExport ← need "export" (← getBool? j "export")
  return { role, wantExport, header, imports := imports.toList, headerTrusted, maxHeartbeats,
           mode, profile, allowedAxioms }

structure CheckRequest where
  id : String
  /-- Echoed in the answer; Python draws 128 random bits per request and rejects any answer
  whose nonce differs. -/
  nonce : String
  statement : String
  proof : String
  name? : Option String := none
  premises : Bool := false
  maxHeartbeats? : Option Nat := none

def CheckRequest.parse (j : Json) : Except String CheckRequest := do
  let id ← getStr j "id"
  let nonce ← getStr j "nonce"
  let statement ← getStr j "statement"
  let proof ← getStr j "proof"
  let name? ← getStr? j "name"
  let premises := (← getBool? j "premises").getD false
  let maxHeartbeats? ← getNat? j "max_heartbeats"
  return { id, nonce, statement, proof, name?, premises, maxHeartbeats? }

/-- Protocol 4, role "statement": the REFERENCE of one statement (gated, then
`statement ++ " sorry"` elaborated from the header state). -/
structure ReferenceRequest where
  id : String
  nonce : String
  statement : String
  maxHeartbeats? : Option Nat := none

def ReferenceRequest.parse (j : Json) : Except String ReferenceRequest := do
  let id ← getStr j "id"
  let nonce ← getStr j "nonce"
  let statement ← getStr j "statement"
  let maxHeartbeats? ← getNat? j "max_heartbeats"
  return { id, nonce, statement, maxHeartbeats? }

/-- An object-valued field, as received. -/
def getObj (j : Json) (k : String) : Except String Json :=
  match j.getObjVal? k with
  | .ok (Json.obj kvs) => pure (Json.obj kvs)
  | .ok _ => throw s!"field '{k}' must be an object"
  | .error _ => throw s!"missing field '{k}'"

/-- Protocol 4, role "replay" (the judge): re-add the constants of `export` (EXPORT) through the
kernel on the imported environment and compare the target with `reference` (REFERENCE). There
is no statement and no proof text in this request, ever. -/
structure ReplayRequest where
  id : String
  nonce : String
  /-- The REFERENCE object as received; `STP.Export.decodeReference` reads it. -/
  referenceData : Json
  /-- The EXPORT object as received (wire field `export`; `export` is a Lean keyword);
  `STP.Export.decode` reads it. -/
  exportData : Json
  maxHeartbeats? : Option Nat := none

def ReplayRequest.parse (j : Json) : Except String ReplayRequest := do
  let id ← getStr j "id"
  let nonce ← getStr j "nonce"
  let referenceData ← getObj j "reference"
  let exportData ← getObj j "export"
  let maxHeartbeats? ← getNat? j "max_heartbeats"
  return { id, nonce, referenceData, exportData, maxHeartbeats? }

def readyJson (ok : Bool) (leanVersion : String) (headerMs : Nat) (errors : List Msg) : Json :=
  Json.mkObj <|
    [("op", Json.str "ready"), ("protocol", toJson protocolVersion), ("ok", Json.bool ok),
     ("lean_version", Json.str leanVersion), ("checker_version", Json.str checkerVersion),
     ("header_ms", toJson headerMs)]
    ++ fieldList "header_errors" (errors.map Msg.json)

structure CheckResponse where
  id : String
  /-- The request's nonce; `none` only when the request line could not be read. -/
  nonce? : Option String
  verdict : Verdict
  reasons : List Reason := []
  errors : List Msg := []
  warnings : List Msg := []
  axioms : List String := []
  statementMatch? : Option Bool := none
  forbidden : List String := []
  premises? : Option (List String) := none
  /-- Role "check" with `export: true`, strict `pass` only: the EXPORT object (wire field
  `export`). `CheckMain` sends it inline or, above `exportChunkBytes`, as `export_chunks` +
  chunk lines. -/
  exportJson? : Option Json := none
  /-- Set by `CheckMain` instead of `exportJson?` when the export travels in chunk lines. -/
  exportChunks : Nat := 0
  /-- Role "statement", `pass` only: the REFERENCE object. -/
  referenceJson? : Option Json := none
  ms : Nat := 0

def CheckResponse.json (r : CheckResponse) : Json :=
  Json.mkObj <|
    [("op", Json.str "result"), ("id", Json.str r.id)]
    ++ (match r.nonce? with | some n => [("nonce", Json.str n)] | none => [])
    ++ [("verdict", toJson r.verdict)]
    ++ fieldList "reasons" (r.reasons.map toJson)
    ++ fieldList "errors" (r.errors.map Msg.json)
    ++ fieldList "warnings" (r.warnings.map Msg.json)
    ++ strList "axioms" r.axioms
    ++ (match r.statementMatch? with | some b => [("statement_match", Json.bool b)] | none => [])
    ++ strList "forbidden" r.forbidden
    ++ (match r.premises? with
        | some ps => [("premises", Json.arr (ps.map Json.str).toArray)]
        | none => [])
    ++ (match r.exportJson? with | some e => [("export", e)] | none => [])
    ++ natField "export_chunks" r.exportChunks
    ++ (match r.referenceJson? with | some e => [("reference", e)] | none => [])
    ++ natField "ms" r.ms

/-- The pieces of `text`, each at most `limit` bytes (`limit ≥ 4`), cut only at UTF-8 character
boundaries (never before a continuation byte `10xxxxxx`), in order; their concatenation is
`text`. One pass over the bytes. -/
def chunkText (text : String) (limit : Nat) : Array String := Id.run do
  let bytes := text.toUTF8
  let n := bytes.size
  let limit := max limit 4
  let mut out : Array String := #[]
  let mut start := 0
  while start < n do
    let mut stop := min n (start + limit)
    while stop < n && stop > start + 1 && (bytes.get! stop &&& 0xC0) == 0x80 do
      stop := stop - 1
    out := out.push (String.extract text ⟨start⟩ ⟨stop⟩)
    start := stop
  return out

/-- One `export_chunk` line (protocol 4). -/
def exportChunkJson (id nonce : String) (index : Nat) (data : String) : Json :=
  Json.mkObj [("op", Json.str "export_chunk"), ("id", Json.str id), ("nonce", Json.str nonce),
              ("index", toJson index), ("data", Json.str data)]

/-- An `error` verdict that names the problem (malformed line, header error, exception). -/
def errorResponse (id : String) (nonce? : Option String) (reason : Reason)
    (detail : Option String := none) : CheckResponse :=
  { id, nonce?, verdict := .error, reasons := [reason],
    errors := match detail with | some d => [Msg.plain d] | none => [] }

/-! ### Extractor messages -/

structure ExtractRequest where
  module : String
  path : String
  premises : Bool := false

def ExtractRequest.parse (j : Json) : Except String ExtractRequest := do
  match ← getStr? j "op" with
  | some "module" => pure ()
  | some op => throw s!"unknown op \"{op}\" (expected \"module\")"
  | none => throw "missing field 'op'"
  let module ← getStr j "module"
  let path ← getStr j "path"
  let premises := (← getBool? j "premises").getD false
  return { module, path, premises }

def extractErrorJson (module message : String) : Json :=
  Json.mkObj [("t", Json.str "error"), ("module", Json.str module), ("message", Json.str message)]

end STP
