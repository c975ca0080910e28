import Lean
import STP.Compat
import STP.Export
import STP.Gate
import STP.Protocol
import STP.Session

/-!
# The check and statement roles (they elaborate model text; their answers are claims)

Role `check`, profile `strict`: proof gate on the checked text (statement + proof) → reference
of the statement (statement gate, then `statement ++ " sorry"` elaborated) → elaboration of the
candidate (info trees kept) → constant gate on what it resolved and added → the declared
constant matches the reference → no added `def`/`opaque` (`extra_declaration`) → axioms → the
EXPORT of a pass (or, without `export`, an in-process kernel replay). Profile `paper`: the
original STP rule, computed from Lean's messages only.

Role `statement` (protocol 4): answers `reference` requests with the REFERENCE of a statement
(the same table encoding as an EXPORT), computed exactly as the check role computes its
reference.

Soundness design and its limits: docs/lean.md. Everything is computed from the saved header
state; nothing a request adds survives it. The syntax and constant gates are
`STP.statementGateProblems`, `STP.proofGateProblems` and `STP.constantGateProblems`
(`Gate.lean`).
-/

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
  /-- The constants the header's commands added (not its imports) that the statement depends
  on, e.g. ProofNet's `def is_topology …`: the judge imports modules only, so the REFERENCE
  carries them (docs/lean.md, header constants in the REFERENCE). -/
  headerConsts : List (Name × ConstantInfo) := []

/-- Why a statement cannot be used: a gate refused it (verdict `fail`, `forbidden`), it does
not parse (`parse_error` in role `statement`, `statement_error` in a check), or it does not
elaborate to exactly one theorem/definition with a closed, sorry-free type
(`statement_error`). -/
inductive RefProblem where
  | forbidden (found : List String)
  | parse (errs : List Msg)
  | invalid (errs : List Msg)

structure CheckerSession where
  config : CheckerConfig
  header : SessionHeader
  /-- Most recent first, keyed by statement AND heartbeat limit (a `statement_error` caused by
  the limit must not answer a request with a larger one); a short list is enough because
  requests for one statement arrive together. -/
  refs : IO.Ref (Array ((String × Nat) × Except RefProblem RefStatement))

def refCacheSize : Nat := 32

/-- `theorem`/`def` of a constant, `none` for every other kind. -/
def constKind? : ConstantInfo → Option Bool
  | ConstantInfo.thmInfo _ => some false
  | ConstantInfo.defnInfo _ => some true
  | _ => none

/-- `theorem`/`lemma`/`def`/`abbrev` command? (the kinds of the v4.9 parser and Mathlib's
`lemma`; `none` for every other command). -/
def declCommandKind? (cmd : Syntax) : Option String :=
  if cmd.getKind == `Lean.Parser.Command.declaration then
    let k := (cmd.getArg 1).getKind
    if k == `Lean.Parser.Command.theorem then some "theorem"
    else if k == `Lean.Parser.Command.definition then some "def"
    else if k == `Lean.Parser.Command.abbrev then some "abbrev"
    else none
  else if cmd.getKind == `lemma || cmd.getKind == `Mathlib.Tactic.lemma then some "lemma"
  else none

/-- The command allow-list of checked text. Strict: exactly one declaration command (the one the
statement begins). Lenient: only declaration commands. -/
def commandShapeOk (strict : Bool) (cmds : Array Syntax) : Bool :=
  let kinds := cmds.toList.map declCommandKind?
  if strict then kinds.length == 1 && kinds.all (·.isSome)
  else !kinds.isEmpty && kinds.all (·.isSome)

/-- Every info tree of an elaboration, as the constant gate takes them. -/
def infoTreesOf (s : Frontend.State) : Array InfoTree :=
  s.commandState.infoState.trees.toArray

/-- The reference text is `statement ++ " sorry"`. It goes through the STATEMENT gate (term
syntax only; the appended `sorry` allowed), must be exactly one declaration command, is
elaborated from the header state (info trees on, for the constant gate), and must add exactly
one non-internal theorem or definition whose type uses no `sorryAx` (the encoder refuses free
variables and metavariables). -/
def elabReference (c : CheckerSession) (statement : String) (maxHeartbeats : Nat) :
    IO (Except RefProblem RefStatement) := do
  let text := statement ++ " sorry"
  let (cmds, parseMsgs) := parseSnippet c.header.state text "<statement>"
  let found ← statementGateProblems c.header.env cmds
  if !found.isEmpty then return .error (.forbidden found)
  let parseErrs ← (parseMsgs.filter isErrorMsg).mapM Msg.ofMessage
  if !parseErrs.isEmpty then return .error (.parse parseErrs)
  if !commandShapeOk true cmds then
    return .error (.invalid [Msg.plain "the statement is not exactly one theorem/lemma/def/abbrev"])
  let s ← runText (c.header.stateWith maxHeartbeats true) text "<statement>"
  let added := newConstants c.header.env s.commandState.env
  let constFound ← constantGateProblems c.header.env s.commandState.env (infoTreesOf s)
    (added.map (·.1))
  if !constFound.isEmpty then return .error (.forbidden constFound)
  let errs ← (s.commandState.messages.toList.filter isErrorMsg).mapM Msg.ofMessage
  if !errs.isEmpty then return .error (.invalid errs)
  let decls := added.filter fun (n, ci) => (constKind? ci).isSome && !n.isInternal
  match decls with
  | [(n, ci)] =>
    if ci.type.getUsedConstants.contains ``sorryAx then
      return .error (.invalid [Msg.plain "the statement's type uses sorry"])
    let headerConsts := (newDependencies c.header.importEnv s.commandState.env n).filter
      fun (m, _) => m != n && c.header.env.contains m
    return .ok { name := n, isDef := (constKind? ci).getD false, type := ci.type,
                 levelParams := ci.levelParams, headerConsts }
  | _ => return .error (.invalid
      [Msg.plain "the statement does not declare exactly one theorem or definition"])

def referenceOf (c : CheckerSession) (statement : String) (maxHeartbeats : Nat) :
    IO (Except RefProblem RefStatement) := do
  let key := (statement, maxHeartbeats)
  match (← c.refs.get).find? (·.1 == key) with
  | some (_, r) => return r
  | none =>
    let r ← elabReference c statement maxHeartbeats
    c.refs.modify fun a => (#[(key, r)] ++ a).extract 0 refCacheSize
    return r

/-! ### Pieces of the check -/

def effectiveHeartbeats (session : Nat) (request : Option Nat) : Nat :=
  match request with
  | none => session
  | some 0 => session
  | some n => if session == 0 then n else min n session

def sortStrings (xs : Array String) : List String :=
  (xs.qsort fun a b => a < b).toList

/-- Same kind (theorem/definition), same type (`Expr` `==`: alpha-equivalence), same universe
parameters, and a definition must be safe (not `unsafe`/`partial`). -/
def matchesRef (ref : RefStatement) (ci : ConstantInfo) : Bool :=
  let safe := match ci with
    | ConstantInfo.defnInfo v => v.safety == DefinitionSafety.safe
    | _ => true
  constKind? ci == some ref.isDef && ci.type == ref.type &&
    ci.levelParams == ref.levelParams && safe

def hasText (haystack needle : String) : Bool :=
  (haystack.splitOn needle).length > 1

/-- The original STP rule (its `verifier.py`: `complete` = no error, no `sorry`, no warning
containing `declaration uses 'sorry'` or `failed`), as reason codes Python can re-derive from
the messages alone: `elab_error` (any error), `sorry` (a warning with the sorry text),
`failed_warning` (a warning containing `failed`). Only severity `warning` counts, as there. -/
def paperReasons (errors warnings : List Msg) : List Reason :=
  let warns := warnings.filter (·.severity == .warning)
  (if errors.isEmpty then [] else [Reason.elabError]) ++
  (if warns.any (hasText ·.text "declaration uses 'sorry'") then [Reason.usesSorry] else []) ++
  (if warns.any (hasText ·.text "failed") then [Reason.failedWarning] else [])

/-- Strict mode (protocol 4, `extra_declaration`): the `def`/`opaque` constants the candidate added besides
the target of a `def` statement and the target's matchers (`Export.isMatcherOf`): `where` and
`let rec` helpers, `def`s of any kind. Internal names the target does not depend on
(`_cstage*`, `_unsafe_rec`: the compiler's, never exported) are not counted; an internal
`def` the target depends on is. -/
def extraDeclarations (ref : RefStatement) (added : List (Name × ConstantInfo))
    (deps : List (Name × ConstantInfo)) : List Name :=
  added.filterMap fun (n, ci) =>
    let defLike := match ci with
      | ConstantInfo.defnInfo _ => true
      | ConstantInfo.opaqueInfo _ => true
      | _ => false
    let allowed := (n == ref.name && ref.isDef) || Export.isMatcherOf ref.name n ||
      (n.isInternal && !deps.any (·.1 == n))
    if defLike && !allowed then some n else none

/-- In-process kernel replay of a passing candidate that is not exported: every constant it
added that the target depends on (`deps` = `newDependencies`) is re-added on top of the header
environment through the kernel (`Compat.replay`), then the target is looked up in the replayed
environment and compared with the reference again. `none` = confirmed. -/
def replayProblem (c : CheckerSession) (ref : RefStatement) (deps : List (Name × ConstantInfo)) :
    IO (Option String) := do
  try
    let replayed ← Compat.replay c.header.env deps
    match replayed.find? ref.name with
    | some ci => return if matchesRef ref ci then none else some "replayed constant differs"
    | none => return some "the target constant is missing after the replay"
  catch e =>
    return some (toString e)

/-! ### The check -/

def checkPaper (c : CheckerSession) (req : CheckRequest) (hb : Nat) : IO CheckResponse := do
  let text := req.statement ++ req.proof
  let s ← runText (c.header.stateWith hb false) text "<proof>"
  let msgs := s.commandState.messages.toList
  let errors ← (msgs.filter isErrorMsg).mapM Msg.ofMessage
  let warnings ← (msgs.filter (!isErrorMsg ·)).mapM Msg.ofMessage
  let reasons := paperReasons errors warnings
  let verdict := if reasons.isEmpty then Verdict.pass else Verdict.fail
  return { id := req.id, nonce? := some req.nonce, verdict, reasons, errors, warnings }

def checkStrict (c : CheckerSession) (req : CheckRequest) (hb : Nat) : IO CheckResponse := do
  let nonce? := some req.nonce
  let fail (reasons : List Reason) : CheckResponse :=
    { id := req.id, nonce?, verdict := .fail, reasons }
  let text := req.statement ++ req.proof
  -- 1. Proof gate on the checked text (statement included), before any elaboration.
  let (cmds, parseMsgs) := parseSnippet c.header.state text "<proof>"
  let forbidden ← proofGateProblems c.header.env cmds
  if !forbidden.isEmpty then
    return { fail [.forbidden] with forbidden := forbidden }
  let parseErrs ← (parseMsgs.filter isErrorMsg).mapM Msg.ofMessage
  if !parseErrs.isEmpty then
    return { fail [.parseError] with errors := parseErrs }
  if !commandShapeOk (c.config.mode == .strict) cmds then
    return fail [.extraDeclaration]
  -- 2. Reference of the statement on its own (statement gate inside, cached).
  let refE ← referenceOf c req.statement hb
  match refE with
  | .error (.forbidden found) => return { fail [.forbidden] with forbidden := found }
  | .error (.parse errs) => return { fail [.statementError] with errors := errs }
  | .error (.invalid errs) => return { fail [.statementError] with errors := errs }
  | .ok _ => pure ()
  let .ok ref := refE | return fail [.statementError]
  -- 3. Elaborate the candidate from the header state (streams isolated, info trees kept).
  let s ← runText (c.header.stateWith hb true) text "<proof>"
  let env := s.commandState.env
  let added := newConstants c.header.env env
  -- 4. Constant gate: what the elaboration resolved and what it added.
  let constFound ← constantGateProblems c.header.env env (infoTreesOf s) (added.map (·.1))
  if !constFound.isEmpty then
    return { fail [.forbidden] with forbidden := constFound }
  let msgs := s.commandState.messages.toList
  let errors ← (msgs.filter isErrorMsg).mapM Msg.ofMessage
  let warnings ← (msgs.filter (!isErrorMsg ·)).mapM Msg.ofMessage
  let mut reasons : Array Reason := #[]
  if !errors.isEmpty then reasons := reasons.push .elabError
  -- 5. The declared constant is new and has exactly the reference kind, type and universes.
  let found := if c.header.env.contains ref.name then none else env.find? ref.name
  let (statementMatch?, axioms) := match found with
    | some ci =>
      if (constKind? ci).isSome then
        -- 6. Axioms of the type and value, transitively.
        (some (matchesRef ref ci), sortStrings ((Compat.collectAxioms env ref.name).map toString))
      else (none, [])
    | none => (none, [])
  match statementMatch? with
  | none => reasons := reasons.push .missingTheorem
  | some false => reasons := reasons.push .statementMismatch
  | some true => pure ()
  if axioms.contains "sorryAx" then reasons := reasons.push .usesSorry
  if axioms.any (fun a => a != "sorryAx" && !c.config.allowedAxioms.contains a) then
    reasons := reasons.push .badAxiom
  let deps := newDependencies c.header.env env ref.name
  -- 7. Strict mode: no user definitions (kernel-bug mitigation, docs/lean.md).
  let extra := if c.config.mode == .strict then extraDeclarations ref added deps else []
  if !extra.isEmpty then reasons := reasons.push .extraDeclaration
  -- 8. Only for what would otherwise pass: the EXPORT (always complete: chunked by `CheckMain`
  -- when large, never omitted), or without `export` the kernel replay in this process.
  let mut replayErrors : List Msg :=
    if extra.isEmpty then [] else [Msg.plain s!"added definitions: {extra}"]
  let mut exportJson? : Option Json := none
  if reasons.isEmpty then
    if c.config.wantExport then
      match Export.encode deps with
      | .ok j => exportJson? := some j
      | .error e =>
        reasons := reasons.push .exportFailed
        replayErrors := [Msg.plain s!"export: {e}"]
    else
      let problem ← replayProblem c ref deps
      if let some detail := problem then
        reasons := reasons.push .replayFailed
        replayErrors := [Msg.plain s!"kernel replay: {detail}"]
  -- 9. Premises: imported constants named in the proof text.
  let premises? :=
    if req.premises && errors.isEmpty then
      let base := c.header.env
      some ((referencedConstants s.commandState.infoState.trees req.statement.utf8ByteSize
        text.utf8ByteSize fun n => n != ref.name && (base.getModuleIdxFor? n).isSome).toList.map
        toString)
    else none
  let verdict := if reasons.isEmpty then Verdict.pass else Verdict.fail
  return { id := req.id, nonce?, verdict, reasons := reasons.toList,
           errors := errors ++ replayErrors, warnings, axioms, statementMatch?, premises?,
           exportJson? }

def checkRequest (c : CheckerSession) (req : CheckRequest) : IO CheckResponse := do
  let t0 ← IO.monoMsNow
  let hb := effectiveHeartbeats c.config.maxHeartbeats req.maxHeartbeats?
  let r ← if !c.header.errors.isEmpty then
      pure (errorResponse req.id (some req.nonce) .headerError)
    else if c.config.profile == .paper then checkPaper c req hb
    else checkStrict c req hb
  return { r with ms := (← IO.monoMsNow) - t0 + 1 }

/-! ### Statement role (protocol 4): the REFERENCE of a statement -/

def referenceAnswer (c : CheckerSession) (req : ReferenceRequest) (hb : Nat) :
    IO CheckResponse := do
  let nonce? := some req.nonce
  let fail (reasons : List Reason) : CheckResponse :=
    { id := req.id, nonce?, verdict := .fail, reasons }
  match ← referenceOf c req.statement hb with
  | .error (.forbidden found) => return { fail [.forbidden] with forbidden := found }
  | .error (.parse errs) => return { fail [.parseError] with errors := errs }
  | .error (.invalid errs) => return { fail [.statementError] with errors := errs }
  | .ok ref =>
    match Export.encodeReference ref.name ref.levelParams ref.type ref.isDef ref.headerConsts with
    | .ok j => return { id := req.id, nonce?, verdict := .pass, referenceJson? := some j }
    | .error e => return { fail [.statementError] with errors := [Msg.plain s!"reference: {e}"] }

def referenceRequest (c : CheckerSession) (req : ReferenceRequest) : IO CheckResponse := do
  let t0 ← IO.monoMsNow
  let hb := effectiveHeartbeats c.config.maxHeartbeats req.maxHeartbeats?
  let r ← if !c.header.errors.isEmpty then
      pure (errorResponse req.id (some req.nonce) .headerError)
    else referenceAnswer c req hb
  return { r with ms := (← IO.monoMsNow) - t0 + 1 }

end STP
