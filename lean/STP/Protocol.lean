/-
The JSON-lines wire protocol (docs/protocol.md; mirrored in python/stp/lean/protocol.py).
Field names are snake_case. Optional fields are omitted when absent, empty lists and zero `ms`
are omitted (the Python structs use `omit_defaults`), so a line we write re-encodes unchanged.
-/
import Lean

open Lean

namespace STP

def protocolVersion : Nat := 1
def checkerVersion : String := "stp-check 0.1.0"

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

def emit (j : Json) : IO Unit := do
  let out ← IO.getStdout
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

structure CheckerConfig where
  header : String
  maxHeartbeats : Nat := 400000
  strict : Bool := true
  allowedAxioms : Array String := #["propext", "Classical.choice", "Quot.sound"]

def CheckerConfig.parse (j : Json) : Except String CheckerConfig := do
  match ← getNat? j "protocol" with
  | some p =>
    if p != protocolVersion then
      throw s!"protocol {p} requested, this checker speaks {protocolVersion}"
  | none => pure ()
  let header ← getStr j "header"
  let maxHeartbeats := (← getNat? j "max_heartbeats").getD 400000
  let strict ← match ← getStr? j "mode" with
    | none => pure true
    | some "strict" => pure true
    | some "lenient" => pure false
    | some m => throw s!"field 'mode' must be \"strict\" or \"lenient\", got \"{m}\""
  let allowedAxioms := (← getStrArray? j "allowed_axioms").getD
    #["propext", "Classical.choice", "Quot.sound"]
  return { header, maxHeartbeats, strict, allowedAxioms }

structure CheckRequest where
  id : String
  statement : String
  proof : String
  name? : Option String := none
  premises : Bool := false
  maxHeartbeats? : Option Nat := none

def CheckRequest.parse (j : Json) : Except String CheckRequest := do
  let id ← getStr j "id"
  let statement ← getStr j "statement"
  let proof ← getStr j "proof"
  let name? ← getStr? j "name"
  let premises := (← getBool? j "premises").getD false
  let maxHeartbeats? ← getNat? j "max_heartbeats"
  return { id, statement, proof, name?, premises, maxHeartbeats? }

def readyJson (ok : Bool) (leanVersion : String) (headerMs : Nat) (errors : List Msg) : Json :=
  Json.mkObj <|
    [("op", Json.str "ready"), ("protocol", toJson protocolVersion), ("ok", Json.bool ok),
     ("lean_version", Json.str leanVersion), ("checker_version", Json.str checkerVersion),
     ("header_ms", toJson headerMs)]
    ++ fieldList "header_errors" (errors.map Msg.json)

structure CheckResponse where
  id : String
  verdict : String
  reasons : List String := []
  errors : List Msg := []
  warnings : List Msg := []
  axioms : List String := []
  statementMatch? : Option Bool := none
  forbidden : List String := []
  premises? : Option (List String) := none
  ms : Nat := 0

def CheckResponse.json (r : CheckResponse) : Json :=
  Json.mkObj <|
    [("op", Json.str "result"), ("id", Json.str r.id), ("verdict", Json.str r.verdict)]
    ++ strList "reasons" r.reasons
    ++ fieldList "errors" (r.errors.map Msg.json)
    ++ fieldList "warnings" (r.warnings.map Msg.json)
    ++ strList "axioms" r.axioms
    ++ (match r.statementMatch? with | some b => [("statement_match", Json.bool b)] | none => [])
    ++ strList "forbidden" r.forbidden
    ++ (match r.premises? with
        | some ps => [("premises", Json.arr (ps.map Json.str).toArray)]
        | none => [])
    ++ natField "ms" r.ms

/-- An `error` verdict that names the problem (malformed line, header error, exception). -/
def errorResponse (id : String) (reason : String) (detail : Option String := none) :
    CheckResponse :=
  { id, verdict := "error", reasons := [reason],
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
