import Lean
import STP.Compat
import STP.Export
import STP.Protocol

/-!
# The judge (role `replay`): kernel replay of an EXPORT against a REFERENCE, no text ever

The judge never parses or elaborates any text: not the header (it only `importModules` the
module names of the config's `imports`), not a statement, not a proof. This module imports
neither the syntax gate nor the elaboration helpers (`Session.lean`), so nothing here can reach
the parser or the elaborator. A request carries two JSON objects made by processes that ran
model text (a statement process's REFERENCE, a check process's EXPORT); both are claims, and
the judge only ever hands decoded constants to the kernel.

Steps of a `replay` request (docs/protocol.md, judge; docs/lean.md):
a. decode REFERENCE and EXPORT (bounds-checked, quasi-linear numerals) and refuse
   `Lean.reduceBool`/`reduceNat`/`ofReduceBool`/`ofReduceNat` anywhere, loose bound variables,
   duplicates and names the imported environment has (`replay_failed`); the REFERENCE may carry
   the constants the statement's header defined (`consts`, e.g. ProofNet's `def is_topology`),
   which the EXPORT may not repeat;
b. cheap, before any kernel work: the target (the REFERENCE's name) is exported, with the
   REFERENCE's kind (`missing_theorem`);
c. no exported `def`/`opaque` but the target of a `def` REFERENCE and the target's matchers
   (`forbidden_declaration`; `Export.forbiddenDeclaration`);
d. kernel replay (`Compat.replay`) of the header's constants and the EXPORT on the pristine
   imported environment (`replay_failed`);
e. the replayed target's type (mdata stripped) and universe parameters equal the REFERENCE's
   (`statement_mismatch`);
f. axioms of the replayed target (`sorry`, `bad_axiom`).
-/

open Lean

namespace STP

/-- The judge's state: the imported environment, the same immutable value for every request. -/
structure JudgeSession where
  config : CheckerConfig
  env : Environment
  errors : List Msg
  ms : Nat

/-- A module name as Python sends it (`"Mathlib"`, `"Mathlib.Tactic"`): dot-separated
components, each an ASCII letter or `_` followed by letters, digits, `_`, `'`, `!`, `?` (the
grammar of Python's `stp.verify.imports`). Anything else is refused (the judge does not
guess). -/
def parseModuleName (s : String) : Except String Name := do
  let comps := s.splitOn "."
  let rest (ch : Char) : Bool :=
    ch.isAlphanum || ch == '_' || ch == '\'' || ch == '!' || ch == '?'
  let ok (c : String) : Bool :=
    match c.toList with
    | first :: more => (first.isAlpha || first == '_') && more.all rest
    | [] => false
  if s.isEmpty || !comps.all ok then
    throw s!"imports: \"{s}\" is not a module name"
  return comps.foldl (fun n c => Name.mkStr n c) Name.anonymous

/-- Import the config's modules (no header command, no text). A bad name or a failed import is
a header error: `ready` says `ok: false` and every request is answered `header_error`. -/
def loadJudge (cfg : CheckerConfig) : IO JudgeSession := do
  let t0 ← IO.monoMsNow
  let fail (msg : String) : IO JudgeSession := do
    return { config := cfg, env := (← mkEmptyEnvironment), errors := [Msg.plain msg],
             ms := (← IO.monoMsNow) - t0 }
  match cfg.imports.mapM parseModuleName with
  | .error e => fail e
  | .ok modules =>
    try
      let env ← Compat.importModules modules
      return { config := cfg, env, errors := [], ms := (← IO.monoMsNow) - t0 }
    catch e =>
      fail s!"imports: {e}"

/-- `e` without `mdata` nodes (`Expr` `==` does not ignore them). `Expr.replace` caches on
pointers, so a DAG-shaped type is walked once per shared node. -/
partial def stripMData (e : Expr) : Expr :=
  e.replace fun x => match x with
    | .mdata _ inner => some (stripMData inner)
    | _ => none

/-- The kind the REFERENCE asks for: a theorem, or a safe definition for a `def` reference. -/
def kindMatches (ref : Export.Reference) (ci : ConstantInfo) : Bool :=
  match ci with
  | ConstantInfo.thmInfo _ => !ref.isDef
  | ConstantInfo.defnInfo v => ref.isDef && v.safety == DefinitionSafety.safe
  | _ => false

def sortedStrings (xs : Array String) : List String :=
  (xs.qsort fun a b => a < b).toList

/-- Re-add `consts` on top of `env` through the kernel; a rejection is the kernel's message. -/
def replayOn (env : Environment) (consts : List (Name × ConstantInfo)) :
    IO (Except String Environment) := do
  try
    return .ok (← Compat.replay env consts)
  catch e =>
    return .error (toString e)

/-- Steps a–f (module doc). Pure decoding and checks, then the kernel, then comparisons. -/
def judge (j : JudgeSession) (req : ReplayRequest) : IO CheckResponse := do
  let nonce? := some req.nonce
  let fail (reasons : List Reason) : CheckResponse :=
    { id := req.id, nonce?, verdict := .fail, reasons }
  -- a. Decode both objects and refuse what must not reach the kernel.
  let refE := Export.decodeReferenceChecked j.env req.referenceData
  if let .error e := refE then
    return { fail [.replayFailed] with errors := [Msg.plain s!"reference: {e}"] }
  let .ok ref := refE | return fail [.replayFailed]
  let decoded := Export.decodeChecked j.env req.exportData
  if let .error e := decoded then
    return { fail [.replayFailed] with errors := [Msg.plain s!"export: {e}"] }
  let .ok consts := decoded | return fail [.replayFailed]
  -- The header's constants come with the REFERENCE only; the EXPORT may not redefine them.
  if let some (n, _) := (consts.find? fun (m, _) => ref.consts.any (·.1 == m)) then
    let why := s!"export: {n}: a constant of the statement's header"
    return { fail [.replayFailed] with errors := [Msg.plain why] }
  -- b. Cheap: the target is exported, with the reference's kind.
  match consts.find? (·.1 == ref.name) with
  | some (_, ci) => if !kindMatches ref ci then return fail [.missingTheorem]
  | none => return fail [.missingTheorem]
  -- c. No user definitions reach the kernel.
  if let some bad := Export.forbiddenDeclaration ref.name ref.isDef consts then
    let why := s!"export: {bad} is a definition or opaque constant that is not the target's own"
    return { fail [.forbiddenDeclaration] with errors := [Msg.plain why] }
  -- d. The kernel, from the pristine imported environment: the header's constants (from the
  -- REFERENCE) and the EXPORT (`Environment.replay` adds each constant after its dependencies).
  let replayed ← replayOn j.env (ref.consts ++ consts)
  if let .error e := replayed then
    return { fail [.replayFailed] with errors := [Msg.plain s!"kernel replay: {e}"] }
  let .ok env := replayed | return fail [.replayFailed]
  -- e. The replayed target against the reference.
  let some ci := env.find? ref.name | return fail [.missingTheorem]
  if !kindMatches ref ci then return fail [.missingTheorem]
  if stripMData ci.type != stripMData ref.type || ci.levelParams != ref.levelParams then
    return { fail [.statementMismatch] with statementMatch? := some false }
  -- f. Axioms of the replayed target, transitively.
  let axioms := sortedStrings ((Compat.collectAxioms env ref.name).map toString)
  let mut reasons : Array Reason := #[]
  if axioms.contains "sorryAx" then reasons := reasons.push .usesSorry
  if axioms.any (fun a => a != "sorryAx" && !j.config.allowedAxioms.contains a) then
    reasons := reasons.push .badAxiom
  let verdict := if reasons.isEmpty then Verdict.pass else Verdict.fail
  return { id := req.id, nonce?, verdict, reasons := reasons.toList, axioms,
           statementMatch? := some true }

/-- One `replay` request: `header_error` when the imports failed, else `judge`. The request's
`max_heartbeats` is accepted and not used: at v4.9 `Environment.replay` takes no heartbeat
limit, so the judge is bounded by Python's wall-clock timeout. -/
def replayRequest (j : JudgeSession) (req : ReplayRequest) : IO CheckResponse := do
  let t0 ← IO.monoMsNow
  let r ← if !j.errors.isEmpty then
      pure (errorResponse req.id (some req.nonce) .headerError)
    else judge j req
  return { r with ms := (← IO.monoMsNow) - t0 + 1 }

end STP
