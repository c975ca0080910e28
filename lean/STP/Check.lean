/-
One check: syntax gate → reference statement → elaboration → statement match → axioms.
Soundness design and its limits: docs/lean.md. Everything is computed from the saved header
state; nothing a request adds survives it.
-/
import Lean
import STP.Compat
import STP.Protocol
import STP.Session

open Lean Elab

namespace STP

/-! ### Syntax gate (runs before any elaboration: elaboration itself can run user code) -/

/-- Keywords/atoms a proof may not contain: side effects, trust shortcuts, environment and
notation changes, limit lifting, proof-search tactics (the `apply?` exploit), extra scopes. -/
def forbiddenAtoms : List String := [
  "sorry", "admit", "native_decide", "set_option", "run_cmd", "run_tac", "run_elab",
  "run_meta", "by_elab", "elab", "elab_rules", "macro", "macro_rules", "syntax", "notation",
  "notation3", "infix", "infixl", "infixr", "prefix", "postfix", "declare_syntax_cat",
  "binder_predicate", "initialize", "builtin_initialize", "axiom", "opaque", "unsafe",
  "partial", "implemented_by", "extern", "@[", "attribute", "instance", "local", "scoped",
  "private", "export", "import", "namespace", "section", "mutual", "deriving",
  "apply?", "exact?", "rw?", "hint", "library_search", "rw_search", "polyrith"]

/-- Identifier components that never belong in a proof (trust-the-compiler axioms and their
helpers, `sorryAx`, metaprogramming namespaces reachable after `open Lean`). -/
def forbiddenIdentParts : List String := [
  "sorryAx", "ofReduceBool", "ofReduceNat", "reduceBool", "reduceNat", "trustCompiler",
  "implemented_by", "extern", "Elab", "Meta", "Compiler", "unsafeCast", "unsafeIO",
  "unsafeEIO", "unsafeBaseIO", "ptrAddrUnsafe"]

/-- Identifier roots that never belong in a proof. -/
def forbiddenIdentRoots : List String := ["Lean", "IO", "EIO", "BaseIO", "System"]

structure Tokens where
  atoms : Array String := #[]
  idents : Array Name := #[]
  deriving Inhabited

partial def collectTokens (stx : Syntax) (t : Tokens) : Tokens :=
  match stx with
  | Syntax.node _ _ args => args.foldl (fun t a => collectTokens a t) t
  | Syntax.atom _ v => { t with atoms := t.atoms.push v }
  | Syntax.ident _ _ n _ => { t with idents := t.idents.push n }
  | _ => t

/-- `#eval`, `#exit`, `#print`, ... (but not the array literal `#[`). -/
def isHashCommand (atom : String) : Bool :=
  atom.startsWith "#" && (atom.toList.getD 1 ' ').isAlpha

def forbiddenIn (cmds : Array Syntax) : List String := Id.run do
  let t := cmds.foldl (fun t c => collectTokens c t) ({} : Tokens)
  let mut found : Array String := #[]
  for a in t.atoms do
    let a := Compat.trimText a
    if (forbiddenAtoms.contains a || isHashCommand a) && !found.contains a then
      found := found.push a
  for n in t.idents do
    let parts := n.toString.splitOn "."
    let bad := parts.any (forbiddenIdentParts.contains ·) ||
      (parts.head?.map (forbiddenIdentRoots.contains ·)).getD false
    if bad && !found.contains n.toString then
      found := found.push n.toString
  return found.toList

/-- `theorem`/`lemma` (and, in lenient mode, `def`/`abbrev`) command? -/
def declKindOf (cmd : Syntax) : Option String :=
  if cmd.getKind == `Lean.Parser.Command.declaration then
    let k := (cmd.getArg 1).getKind
    if k == `Lean.Parser.Command.theorem then some "theorem"
    else if k == `Lean.Parser.Command.definition then some "def"
    else if k == `Lean.Parser.Command.abbrev then some "abbrev"
    else none
  else if cmd.getKind == `lemma || cmd.getKind == `Mathlib.Tactic.lemma then some "lemma"
  else none

def shapeOk (strict : Bool) (cmds : Array Syntax) : Bool :=
  let kinds := cmds.toList.map declKindOf
  let isThm (k : Option String) := k == some "theorem" || k == some "lemma"
  if strict then kinds.length == 1 && kinds.all isThm
  else kinds.any isThm && kinds.all (·.isSome)

/-! ### Reference statement (cached: many proofs are checked per statement) -/

structure RefStatement where
  name : Name
  type : Expr
  levelParams : List Name

structure CheckerSession where
  config : CheckerConfig
  header : SessionHeader
  /-- Most recent statements first; a short list is enough because requests for one
  statement arrive together. -/
  refs : IO.Ref (Array (String × Except (List Msg) RefStatement))

def refCacheSize : Nat := 32

def elabReference (c : CheckerSession) (statement : String) (maxHeartbeats : Nat) :
    IO (Except (List Msg) RefStatement) := do
  let s ← runText (c.header.stateWith maxHeartbeats false) (statement ++ " sorry") "<statement>"
  let msgs := s.commandState.messages.toList
  let errs ← (msgs.filter isErrorMsg).mapM Msg.ofMessage
  if !errs.isEmpty then return .error errs
  let thms := (newConstants c.header.env s.commandState.env).filter fun (n, ci) =>
    isTheoremInfo ci && !n.isInternal
  match thms with
  | [(n, ci)] => return .ok { name := n, type := ci.type, levelParams := ci.levelParams }
  | _ => return .error [Msg.plain "the statement does not declare exactly one theorem"]

def referenceOf (c : CheckerSession) (statement : String) (maxHeartbeats : Nat) :
    IO (Except (List Msg) RefStatement) := do
  match (← c.refs.get).find? (·.1 == statement) with
  | some (_, r) => return r
  | none =>
    let r ← elabReference c statement maxHeartbeats
    c.refs.modify fun a => (#[(statement, r)] ++ a).extract 0 refCacheSize
    return r

/-! ### The check -/

def effectiveHeartbeats (session : Nat) (request : Option Nat) : Nat :=
  match request with
  | none => session
  | some 0 => session
  | some n => if session == 0 then n else min n session

def sortStrings (xs : Array String) : List String :=
  (xs.qsort fun a b => a < b).toList

def checkRequest (c : CheckerSession) (req : CheckRequest) : IO CheckResponse := do
  let t0 ← IO.monoMsNow
  let finish (r : CheckResponse) : IO CheckResponse := do
    return { r with ms := (← IO.monoMsNow) - t0 + 1 }
  if !c.header.errors.isEmpty then
    return ← finish (errorResponse req.id "header_error")
  let text := req.statement ++ req.proof
  -- 1. Syntax gate.
  let (cmds, parseMsgs) := parseSnippet c.header.state text "<proof>"
  let forbidden := forbiddenIn cmds
  if !forbidden.isEmpty then
    return ← finish { id := req.id, verdict := "fail", reasons := ["forbidden"], forbidden }
  let parseErrs ← (parseMsgs.filter isErrorMsg).mapM Msg.ofMessage
  if !parseErrs.isEmpty then
    return ← finish { id := req.id, verdict := "fail", reasons := ["parse_error"],
                      errors := parseErrs }
  if !shapeOk c.config.strict cmds then
    return ← finish { id := req.id, verdict := "fail", reasons := ["extra_declaration"] }
  let hb := effectiveHeartbeats c.config.maxHeartbeats req.maxHeartbeats?
  -- 2. Reference type of the statement on its own.
  let refE ← referenceOf c req.statement hb
  if let .error errs := refE then
    return ← finish { id := req.id, verdict := "fail", reasons := ["statement_error"],
                      errors := errs }
  let .ok ref := refE | return ← finish (errorResponse req.id "internal_error")
  -- 3. Elaborate the candidate from the header state.
  let s ← runText (c.header.stateWith hb req.premises) text "<proof>"
  let msgs := s.commandState.messages.toList
  let errors ← (msgs.filter isErrorMsg).mapM Msg.ofMessage
  let warnings ← (msgs.filter (!isErrorMsg ·)).mapM Msg.ofMessage
  let env := s.commandState.env
  let mut reasons : Array String := #[]
  if !errors.isEmpty then reasons := reasons.push "elab_error"
  -- 4. The declared theorem exists, is new, and has exactly the reference type.
  let found := if c.header.env.contains ref.name then none else env.find? ref.name
  let (statementMatch?, axioms) ← match found with
    | some ci@(ConstantInfo.thmInfo _) =>
      let matched := ci.type == ref.type && ci.levelParams == ref.levelParams
      -- 5. Axioms.
      pure (some matched, sortStrings ((Compat.collectAxioms env ref.name).map toString))
    | _ => pure (none, [])
  match statementMatch? with
  | none => reasons := reasons.push "missing_theorem"
  | some false => reasons := reasons.push "statement_mismatch"
  | some true => pure ()
  if axioms.contains "sorryAx" then reasons := reasons.push "sorry"
  if axioms.any (fun a => a != "sorryAx" && !c.config.allowedAxioms.contains a) then
    reasons := reasons.push "bad_axiom"
  -- 6. Premises: imported constants named in the proof text.
  let premises? :=
    if req.premises && errors.isEmpty then
      let base := c.header.env
      some ((referencedConstants s.commandState.infoState.trees req.statement.utf8ByteSize
        text.utf8ByteSize fun n => n != ref.name && (base.getModuleIdxFor? n).isSome).toList.map
        toString)
    else none
  let verdict := if reasons.isEmpty then "pass" else "fail"
  finish { id := req.id, verdict, reasons := reasons.toList, errors, warnings, axioms,
           statementMatch?, premises? }

end STP
