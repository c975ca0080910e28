/-
One check. Profile `strict`: syntax gate (proof text and statement) → reference statement →
elaboration → the declared constant matches the reference → axioms → kernel replay of passes.
Profile `paper`: the original STP rule, computed from Lean's messages only. Soundness design and
its limits: docs/lean.md. Everything is computed from the saved header state; nothing a request
adds survives it.
-/
import Lean
import STP.Compat
import STP.Export
import STP.Gate
import STP.Protocol
import STP.Session

open Lean Elab

namespace STP

/-! ### Reference statement (cached: many proofs are checked per statement) -/

/-- What the statement declares: a theorem, or (ProofNet's
`def exercise_… : G × H ≃* H × G :=`) a definition whose type is the claim and whose value is
the witness. -/
structure RefStatement where
  name : Name
  isDef : Bool
  type : Expr
  levelParams : List Name

/-- Why a statement cannot be used: the gate refused it (verdict `fail`, `forbidden`) or it does
not elaborate to exactly one theorem/definition (`statement_error`). -/
inductive RefProblem where
  | forbidden (found : List String)
  | invalid (errs : List Msg)

structure CheckerSession where
  config : CheckerConfig
  header : SessionHeader
  /-- Most recent statements first; a short list is enough because requests for one
  statement arrive together. -/
  refs : IO.Ref (Array (String × Except RefProblem RefStatement))

def refCacheSize : Nat := 32

/-- `theorem`/`def` of a constant, `none` for every other kind. -/
def constKind? : ConstantInfo → Option Bool
  | ConstantInfo.thmInfo _ => some false
  | ConstantInfo.defnInfo _ => some true
  | _ => none

/-- The reference text is `statement ++ " sorry"`. It is gated on its own (the statement is
model output in self-play, and its last token could merge with the proof's first one in the
candidate text, so the candidate's gate does not cover it), with only the appended `sorry`
allowed; it must be exactly one declaration command. -/
def elabReference (c : CheckerSession) (statement : String) (maxHeartbeats : Nat) :
    IO (Except RefProblem RefStatement) := do
  let text := statement ++ " sorry"
  let (cmds, parseMsgs) := parseSnippet c.header.state text "<statement>"
  let found := forbiddenIn cmds ["sorry"]
  if !found.isEmpty then return .error (.forbidden found)
  let parseErrs ← (parseMsgs.filter isErrorMsg).mapM Msg.ofMessage
  if !parseErrs.isEmpty then return .error (.invalid parseErrs)
  if !shapeOk true cmds then
    return .error (.invalid [Msg.plain "the statement is not exactly one theorem/lemma/def/abbrev"])
  let s ← runText (c.header.stateWith maxHeartbeats false) text "<statement>"
  let errs ← (s.commandState.messages.toList.filter isErrorMsg).mapM Msg.ofMessage
  if !errs.isEmpty then return .error (.invalid errs)
  let decls := (newConstants c.header.env s.commandState.env).filter fun (n, ci) =>
    (constKind? ci).isSome && !n.isInternal
  match decls with
  | [(n, ci)] =>
    return .ok { name := n, isDef := (constKind? ci).getD false, type := ci.type,
                 levelParams := ci.levelParams }
  | _ => return .error (.invalid
      [Msg.plain "the statement does not declare exactly one theorem or definition"])

def referenceOf (c : CheckerSession) (statement : String) (maxHeartbeats : Nat) :
    IO (Except RefProblem RefStatement) := do
  match (← c.refs.get).find? (·.1 == statement) with
  | some (_, r) => return r
  | none =>
    let r ← elabReference c statement maxHeartbeats
    c.refs.modify fun a => (#[(statement, r)] ++ a).extract 0 refCacheSize
    return r

/-! ### Pieces of the check -/

def effectiveHeartbeats (session : Nat) (request : Option Nat) : Nat :=
  match request with
  | none => session
  | some 0 => session
  | some n => if session == 0 then n else min n session

def sortStrings (xs : Array String) : List String :=
  (xs.qsort fun a b => a < b).toList

/-- Same kind (theorem/definition), same type (`Expr` `==`: alpha-equivalence) after `norm` on
both sides, same universe parameters, and a definition must be safe (not `unsafe`/`partial`). -/
def matchesRefWith (norm : Expr → Expr) (ref : RefStatement) (ci : ConstantInfo) : Bool :=
  let safe := match ci with
    | ConstantInfo.defnInfo v => v.safety == DefinitionSafety.safe
    | _ => true
  constKind? ci == some ref.isDef && norm ci.type == norm ref.type &&
    ci.levelParams == ref.levelParams && safe

def matchesRef (ref : RefStatement) (ci : ConstantInfo) : Bool :=
  matchesRefWith id ref ci

/-- `e` without `mdata` nodes (an export drops them; `Expr` `==` does not ignore them).
`Expr.replace` caches on pointers, so a DAG-shaped type is walked once per shared node. -/
partial def stripMData (e : Expr) : Expr :=
  e.replace fun x => match x with
    | .mdata _ inner => some (stripMData inner)
    | _ => none

def hasText (haystack needle : String) : Bool :=
  (haystack.splitOn needle).length > 1

/-- The original STP rule (its `verifier.py`: `complete` = no error, no `sorry`, no warning
containing `declaration uses 'sorry'` or `failed`), as reason codes Python can re-derive from
the messages alone: `elab_error` (any error), `sorry` (a warning with the sorry text),
`failed_warning` (a warning containing `failed`). Only severity `warning` counts, as there. -/
def paperReasons (errors warnings : List Msg) : List String :=
  let warns := warnings.filter (·.severity == "warning")
  (if errors.isEmpty then [] else ["elab_error"]) ++
  (if warns.any (hasText ·.text "declaration uses 'sorry'") then ["sorry"] else []) ++
  (if warns.any (hasText ·.text "failed") then ["failed_warning"] else [])

/-- Kernel replay of a passing candidate: every constant it added that the target depends on
(`deps` = `newDependencies`) is re-added on top of the header environment through the kernel
(`Compat.replay`), then the target is looked up in the
replayed environment and compared with the reference again. Catches declarations that entered
the environment without the kernel (`addDeclWithoutChecking`, `debug.skipKernelTC`, environment
edits by a metaprogram). `none` = confirmed; `some detail` = `replay_failed`. -/
def replayProblem (c : CheckerSession) (ref : RefStatement) (deps : List (Name × ConstantInfo)) :
    IO (Option String) := do
  try
    let replayed ← Compat.replay c.header.env deps
    match replayed.find? ref.name with
    | some ci => return if matchesRef ref ci then none else some "replayed constant differs"
    | none => return some "the target constant is missing after the replay"
  catch e =>
    return some (toString e)

/-- The export of a strict pass (protocol 3, `export: true`): `(exportJson?, exportOmitted?)`,
or `.error` when a constant cannot be exported (the verdict becomes `fail`/`export_failed`). -/
def exportFields (deps : List (Name × ConstantInfo)) :
    Except String (Option Json × Option String) :=
  match Export.encodeCapped deps with
  | .ok (some j) => .ok (some j, none)
  | .ok none => .ok (none, some "too_large")
  | .error e => .error e

/-! ### The check -/

def checkPaper (c : CheckerSession) (req : CheckRequest) (hb : Nat) : IO CheckResponse := do
  let text := req.statement ++ req.proof
  let s ← runText (c.header.stateWith hb false) text "<proof>"
  let msgs := s.commandState.messages.toList
  let errors ← (msgs.filter isErrorMsg).mapM Msg.ofMessage
  let warnings ← (msgs.filter (!isErrorMsg ·)).mapM Msg.ofMessage
  let reasons := paperReasons errors warnings
  let verdict := if reasons.isEmpty then "pass" else "fail"
  return { id := req.id, nonce? := some req.nonce, verdict, reasons, errors, warnings }

def checkStrict (c : CheckerSession) (req : CheckRequest) (hb : Nat) : IO CheckResponse := do
  let nonce? := some req.nonce
  let fail (reasons : List String) : CheckResponse :=
    { id := req.id, nonce?, verdict := "fail", reasons }
  let text := req.statement ++ req.proof
  -- 1. Syntax gate on the checked text (statement included).
  let (cmds, parseMsgs) := parseSnippet c.header.state text "<proof>"
  let forbidden := forbiddenIn cmds
  if !forbidden.isEmpty then
    return { fail ["forbidden"] with forbidden := forbidden }
  let parseErrs ← (parseMsgs.filter isErrorMsg).mapM Msg.ofMessage
  if !parseErrs.isEmpty then
    return { fail ["parse_error"] with errors := parseErrs }
  if !shapeOk c.config.strict cmds then
    return fail ["extra_declaration"]
  -- 2. Reference type of the statement on its own (gated on its own too).
  let refE ← referenceOf c req.statement hb
  match refE with
  | .error (.forbidden found) => return { fail ["forbidden"] with forbidden := found }
  | .error (.invalid errs) => return { fail ["statement_error"] with errors := errs }
  | .ok _ => pure ()
  let .ok ref := refE | return fail ["statement_error"]
  -- 3. Elaborate the candidate from the header state (streams isolated).
  let s ← runText (c.header.stateWith hb req.premises) text "<proof>"
  let msgs := s.commandState.messages.toList
  let errors ← (msgs.filter isErrorMsg).mapM Msg.ofMessage
  let warnings ← (msgs.filter (!isErrorMsg ·)).mapM Msg.ofMessage
  let env := s.commandState.env
  let mut reasons : Array String := #[]
  if !errors.isEmpty then reasons := reasons.push "elab_error"
  -- 4. The declared constant is new and has exactly the reference kind, type and universes.
  let found := if c.header.env.contains ref.name then none else env.find? ref.name
  let (statementMatch?, axioms) := match found with
    | some ci =>
      if (constKind? ci).isSome then
        -- 5. Axioms of the type and value, transitively.
        (some (matchesRef ref ci), sortStrings ((Compat.collectAxioms env ref.name).map toString))
      else (none, [])
    | none => (none, [])
  match statementMatch? with
  | none => reasons := reasons.push "missing_theorem"
  | some false => reasons := reasons.push "statement_mismatch"
  | some true => pure ()
  if axioms.contains "sorryAx" then reasons := reasons.push "sorry"
  if axioms.any (fun a => a != "sorryAx" && !c.config.allowedAxioms.contains a) then
    reasons := reasons.push "bad_axiom"
  -- 6. Only for what would otherwise pass: (protocol 3) the export, and the kernel replay in
  -- this process unless an export goes out. An exported pass is re-added through the kernel by
  -- a replay worker the proof never ran in, which is strictly stronger; replaying it here too
  -- would only spend the same kernel time twice per pass. Without an export (not requested,
  -- or omitted as too large: Python then re-checks in a fresh process) it is replayed here.
  let mut replayErrors : List Msg := []
  let mut exportJson? : Option Json := none
  let mut exportOmitted? : Option String := none
  if reasons.isEmpty then
    let deps := newDependencies c.header.env env ref.name
    let mut replayHere := true
    if c.config.wantExport then
      match exportFields deps with
      | .ok (j?, omitted?) =>
        exportJson? := j?
        exportOmitted? := omitted?
        replayHere := j?.isNone
      | .error e =>
        reasons := reasons.push "export_failed"
        replayErrors := [Msg.plain s!"export: {e}"]
        replayHere := false
    if replayHere then
      let problem ← replayProblem c ref deps
      if let some detail := problem then
        reasons := reasons.push "replay_failed"
        replayErrors := [Msg.plain s!"kernel replay: {detail}"]
        exportOmitted? := none  -- a failing answer carries neither export field
  -- 7. Premises: imported constants named in the proof text.
  let premises? :=
    if req.premises && errors.isEmpty then
      let base := c.header.env
      some ((referencedConstants s.commandState.infoState.trees req.statement.utf8ByteSize
        text.utf8ByteSize fun n => n != ref.name && (base.getModuleIdxFor? n).isSome).toList.map
        toString)
    else none
  let verdict := if reasons.isEmpty then "pass" else "fail"
  return { id := req.id, nonce?, verdict, reasons := reasons.toList,
           errors := errors ++ replayErrors, warnings, axioms, statementMatch?, premises?,
           exportJson?, exportOmitted? }

def checkRequest (c : CheckerSession) (req : CheckRequest) : IO CheckResponse := do
  let t0 ← IO.monoMsNow
  let hb := effectiveHeartbeats c.config.maxHeartbeats req.maxHeartbeats?
  let r ← if !c.header.errors.isEmpty then
      pure (errorResponse req.id (some req.nonce) "header_error")
    else if c.config.paper then checkPaper c req hb
    else checkStrict c req hb
  return { r with ms := (← IO.monoMsNow) - t0 + 1 }

/-! ### Replay role (protocol 3): kernel replay of an EXPORT, no proof text -/

/-- Re-add `consts` on top of the header environment through the kernel. The header
environment is an immutable value: every request starts from the very same one. -/
def replayEnv (c : CheckerSession) (consts : List (Name × ConstantInfo)) :
    IO (Except String Environment) := do
  try
    return .ok (← Compat.replay c.header.env consts)
  catch e =>
    return .error (toString e)

/-- Steps 1-5 of a replay request (docs/protocol.md): reference from the statement (gated,
elaborated from the header state, cached), decode and refuse, kernel replay, target match with
`mdata` stripped on both sides, axioms. Only the header and `statement + " sorry"` are ever
elaborated here. -/
def replayStrict (c : CheckerSession) (req : ReplayRequest) (hb : Nat) : IO CheckResponse := do
  let nonce? := some req.nonce
  let fail (reasons : List String) : CheckResponse :=
    { id := req.id, nonce?, verdict := "fail", reasons }
  -- 1. The reference, exactly as a check computes it.
  let refE ← referenceOf c req.statement hb
  match refE with
  | .error (.forbidden found) => return { fail ["forbidden"] with forbidden := found }
  | .error (.invalid errs) => return { fail ["statement_error"] with errors := errs }
  | .ok _ => pure ()
  let .ok ref := refE | return fail ["statement_error"]
  -- 2. Decode (bounds-checked, never panics) and refuse what must not reach the kernel.
  let decoded := Export.decodeChecked c.header.env req.exportData
  if let .error e := decoded then
    return { fail ["replay_failed"] with errors := [Msg.plain s!"export: {e}"] }
  let .ok consts := decoded | return fail ["replay_failed"]
  -- 3. The kernel, from the immutable header environment.
  let replayed ← replayEnv c consts
  if let .error e := replayed then
    return { fail ["replay_failed"] with errors := [Msg.plain s!"kernel replay: {e}"] }
  let .ok env := replayed | return fail ["replay_failed"]
  -- 4. The target is one of the exported constants and matches the reference.
  if !consts.any (·.1 == ref.name) then return fail ["missing_theorem"]
  let some ci := env.find? ref.name | return fail ["missing_theorem"]
  if (constKind? ci).isNone then return fail ["missing_theorem"]
  if !matchesRefWith stripMData ref ci then
    return { fail ["statement_mismatch"] with statementMatch? := some false }
  -- 5. Axioms of the replayed target, transitively.
  let axioms := sortStrings ((Compat.collectAxioms env ref.name).map toString)
  let mut reasons : Array String := #[]
  if axioms.contains "sorryAx" then reasons := reasons.push "sorry"
  if axioms.any (fun a => a != "sorryAx" && !c.config.allowedAxioms.contains a) then
    reasons := reasons.push "bad_axiom"
  let verdict := if reasons.isEmpty then "pass" else "fail"
  return { id := req.id, nonce?, verdict, reasons := reasons.toList, axioms,
           statementMatch? := some true }

def replayRequest (c : CheckerSession) (req : ReplayRequest) : IO CheckResponse := do
  let t0 ← IO.monoMsNow
  let hb := effectiveHeartbeats c.config.maxHeartbeats req.maxHeartbeats?
  let r ← if !c.header.errors.isEmpty then
      pure (errorResponse req.id (some req.nonce) "header_error")
    else replayStrict c req hb
  return { r with ms := (← IO.monoMsNow) - t0 + 1 }

end STP
