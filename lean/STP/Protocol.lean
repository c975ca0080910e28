/-
The JSON-lines wire protocol (docs/protocol.md; mirrored in python/stp/lean/protocol.py).
Field names are snake_case. Optional fields are omitted when absent, empty lists and zero `ms`
are omitted (the Python structs use `omit_defaults`), so a line we write re-encodes unchanged.
-/
import Lean

open Lean

namespace STP

def protocolVersion : Nat := 3
def checkerVersion : String := "stp-check 0.3.0"

/-- A `pass` whose encoded export would be larger than this (bytes of the compact JSON) carries
`export_omitted: "too_large"` instead (protocol 3; mirrored in Python as `EXPORT_MAX_BYTES`). -/
def exportMaxBytes : Nat := 8 * 1024 * 1024

/-- A Lean message, positioned relative to the text we elaborated. -/
structure Msg where
  severity : String
  line : Nat
  column : Nat
  text : String
  endLine? : Option Nat := none
  endColumn? : Option Nat := none

/-- Named `json`, not `toJson`: inside a `def Msg.toJson` a bare `toJson` would resolve to the
function being defined (the declaration's namespace is open in its body). -/
def Msg.json (m : Msg) : Json :=
  Json.mkObj <|
    [("severity", Json.str m.severity), ("line", Lean.toJson m.line),
     ("column", Lean.toJson m.column),
     ("text", Json.str m.text)]
    ++ (match m.endLine? with | some l => [("end_line", Lean.toJson l)] | none => [])
    ++ (match m.endColumn? with | some c => [("end_column", Lean.toJson c)] | none => [])

/-- A message of ours (not Lean's), e.g. for a bad request, at line 0. -/
def Msg.plain (text : String) : Msg := { severity := "error", line := 0, column := 0, text }

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
  /-- Protocol 3: role "check" (elaborates proofs) or "replay" (kernel replay of exports; never
  sees proof text). -/
  replayRole : Bool
  /-- Wire field `export` (a Lean keyword, hence the name). Role "check": every strict `pass`
  carries its EXPORT (or `export_omitted`). -/
  wantExport : Bool
  header : String
  /-- false: the header goes through the allow-list gate before it is elaborated. -/
  headerTrusted : Bool
  maxHeartbeats : Nat
  /-- mode "strict" (one declaration command) or "lenient" (declaration commands only). -/
  strict : Bool
  /-- profile "paper": the original STP rule (messages only); "strict": every check. -/
  paper : Bool
  allowedAxioms : Array String

def need {α : Type} (k : String) : Option α → Except String α
  | some v => pure v
  | none => throw s!"missing field '{k}'"

def CheckerConfig.parse (j : Json) : Except String CheckerConfig := do
  let p ← need "protocol" (← getNat? j "protocol")
  if p != protocolVersion then
    throw s!"protocol {p} requested, this checker speaks {protocolVersion}"
  let header ← getStr j "header"
  let headerTrusted ← need "header_trusted" (← getBool? j "header_trusted")
  let maxHeartbeats ← need "max_heartbeats" (← getNat? j "max_heartbeats")
  let strict ← match ← getStr j "mode" with
    | "strict" => pure true
    | "lenient" => pure false
    | m => throw s!"field 'mode' must be \"strict\" or \"lenient\", got \"{m}\""
  let paper ← match ← getStr j "profile" with
    | "strict" => pure false
    | "paper" => pure true
    | m => throw s!"field 'profile' must be \"strict\" or \"paper\", got \"{m}\""
  let allowedAxioms ← need "allowed_axioms" (← getStrArray? j "allowed_axioms")
  let replayRole ← match ← getStr j "role" with
    | "check" => pure false
    | "replay" => pure true
    | r => throw s!"field 'role' must be \"check\" or \"replay\", got \"{r}\""
  let wantExport ← need "export" (← getBool? j "export")
  return { replayRole, wantExport, header, headerTrusted, maxHeartbeats, strict, paper,
           allowedAxioms }

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

/-- Protocol 3, role "replay": re-add the constants of `export` (EXPORT, docs/protocol.md)
through the kernel on top of the header and compare the target with the reference elaborated
from `statement`. There is no proof text in this request, ever. -/
structure ReplayRequest where
  id : String
  nonce : String
  statement : String
  /-- The EXPORT object as received (wire field `export`; `export` is a Lean keyword);
  `STP.Export.decode` reads it. -/
  exportData : Json
  maxHeartbeats? : Option Nat := none

def ReplayRequest.parse (j : Json) : Except String ReplayRequest := do
  let id ← getStr j "id"
  let nonce ← getStr j "nonce"
  let statement ← getStr j "statement"
  let exportData ← match j.getObjVal? "export" with
    | .ok (Json.obj kvs) => pure (Json.obj kvs)
    | .ok _ => throw "field 'export' must be an object"
    | .error _ => throw "missing field 'export'"
  let maxHeartbeats? ← getNat? j "max_heartbeats"
  return { id, nonce, statement, exportData, maxHeartbeats? }

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
  verdict : String
  reasons : List String := []
  errors : List Msg := []
  warnings : List Msg := []
  axioms : List String := []
  statementMatch? : Option Bool := none
  forbidden : List String := []
  premises? : Option (List String) := none
  /-- Protocol 3, role "check" with `export: true`, strict `pass` only: the EXPORT object
  (wire field `export`). -/
  exportJson? : Option Json := none
  /-- Instead of `exportJson?` when the encoded export is over `exportMaxBytes`: "too_large". -/
  exportOmitted? : Option String := none
  ms : Nat := 0

def CheckResponse.json (r : CheckResponse) : Json :=
  Json.mkObj <|
    [("op", Json.str "result"), ("id", Json.str r.id)]
    ++ (match r.nonce? with | some n => [("nonce", Json.str n)] | none => [])
    ++ [("verdict", Json.str r.verdict)]
    ++ strList "reasons" r.reasons
    ++ fieldList "errors" (r.errors.map Msg.json)
    ++ fieldList "warnings" (r.warnings.map Msg.json)
    ++ strList "axioms" r.axioms
    ++ (match r.statementMatch? with | some b => [("statement_match", Json.bool b)] | none => [])
    ++ strList "forbidden" r.forbidden
    ++ (match r.premises? with
        | some ps => [("premises", Json.arr (ps.map Json.str).toArray)]
        | none => [])
    ++ (match r.exportJson? with | some e => [("export", e)] | none => [])
    ++ (match r.exportOmitted? with | some o => [("export_omitted", Json.str o)] | none => [])
    ++ natField "ms" r.ms

/-- An `error` verdict that names the problem (malformed line, header error, exception). -/
def errorResponse (id : String) (nonce? : Option String) (reason : String)
    (detail : Option String := none) : CheckResponse :=
  { id, nonce?, verdict := "error", reasons := [reason],
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
