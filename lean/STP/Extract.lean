import Lean
import STP.Compat
import STP.Protocol
import STP.Session

/-!
# The extractor

Re-elaborate one module's source and report raw facts (command kinds and byte ranges, theorem
constants with their declaration ranges). Python slices the source, rebuilds the scope and
assembles records (stp.extract), so this file stays small.
-/

open Lean Elab

namespace STP

/-- `theorem`/`def`/`abbrev` (inside `declaration`) and Mathlib's `lemma` share the layout
`[keyword, declId, declSig, declVal]`; other declarations do not, so we do not guess for them. -/
def hasStdLayout (k : Name) : Bool :=
  k == `Lean.Parser.Command.theorem || k == `Lean.Parser.Command.definition ||
  k == `Lean.Parser.Command.abbrev || k == `lemma || k == `Mathlib.Tactic.lemma

def commandJson (module : String) (cmd : Syntax) : Option Json := do
  let start ← cmd.getPos?
  let stop ← cmd.getTailPos?
  let kind := cmd.getKind
  -- `declaration` nests the keyword node at child 1; `lemma` is itself [modifiers, group].
  let (declKind?, inner?) :=
    if kind == `Lean.Parser.Command.declaration then
      (some (cmd.getArg 1).getKind, some (cmd.getArg 1))
    else if kind == `lemma || kind == `Mathlib.Tactic.lemma then (none, some (cmd.getArg 1))
    else (none, none)
  let layoutKind := if declKind?.isSome then declKind?.getD .anonymous else kind
  let (declId?, valStart?) := match inner? with
    | some inner =>
      if hasStdLayout layoutKind then
        let ident := (inner.getArg 1).getArg 0
        let declId? := if ident.isIdent then some ident.getId.toString else none
        (declId?, (inner.getArg 3).getPos?.map Compat.byteIdx)
      else (none, none)
    | none => (none, none)
  return Json.mkObj <|
    [("t", Json.str "cmd"), ("module", Json.str module), ("kind", Json.str kind.toString),
     ("start_byte", toJson (Compat.byteIdx start)), ("end_byte", toJson (Compat.byteIdx stop))]
    ++ (match declKind? with | some k => [("decl_kind", Json.str k.toString)] | none => [])
    ++ (match declId? with | some d => [("decl_id", Json.str d)] | none => [])
    ++ (match valStart? with | some v => [("val_start_byte", toJson v)] | none => [])

structure DeclOut where
  name : Name
  ranges : DeclarationRanges

def declJson (module : String) (d : DeclOut) (premises? : Option (Array Name)) : Json :=
  let r := d.ranges.range
  let s := d.ranges.selectionRange
  Json.mkObj <|
    [("t", Json.str "decl"), ("module", Json.str module), ("name", Json.str d.name.toString),
     ("line", toJson r.pos.line), ("column", toJson r.pos.column),
     ("end_line", toJson r.endPos.line), ("end_column", toJson r.endPos.column),
     ("sel_line", toJson s.pos.line), ("sel_column", toJson s.pos.column),
     ("sel_end_line", toJson s.endPos.line), ("sel_end_column", toJson s.endPos.column)]
    ++ (match premises? with
        | some ps => [("premises", Json.arr (ps.map fun n => Json.str n.toString))]
        | none => [])

def readSource (path : String) : IO (Except String String) := do
  try
    return .ok (← IO.FS.readFile path)
  catch e =>
    return .error (toString e)

/-- Process one module; writes its lines and returns normally even when Lean reported errors
(they go into `done`). Throws only for failures that make the module unusable. -/
def extractModule (req : ExtractRequest) : IO Unit := do
  let t0 ← IO.monoMsNow
  let inputE ← readSource req.path
  if let .error e := inputE then
    emit (extractErrorJson req.module s!"cannot read {req.path}: {e}")
    return
  let .ok input := inputE | return
  let opts := Compat.baseOptions 0
  let ictx := Parser.mkInputContext input req.path
  let (hdr, ps, msgs) ← Parser.parseHeader ictx
  let (env, msgs) ← Compat.processHeader hdr opts msgs ictx
  let headerErrs := msgs.toList.filter isErrorMsg
  if !headerErrs.isEmpty then
    let texts ← headerErrs.mapM fun m => m.data.toString
    let joined := String.intercalate "; " texts
    emit (extractErrorJson req.module s!"imports failed: {joined}")
    return
  let env := env.setMainModule req.module.toName
  let st := Command.mkState env {} opts
  let st := { st with infoState := { st.infoState with enabled := req.premises } }
  let s ← Lean.Elab.IO.processCommands ictx ps st
  let finalEnv := s.commandState.env
  let cmds := s.commands.filter (!isEndOfInput ·)
  -- Theorem constants this module added, with their source ranges.
  let mut found : Array DeclOut := #[]
  for (n, ci) in newConstants env finalEnv do
    if isTheoremInfo ci && !n.isInternal then
      match ← Compat.declarationRanges? finalEnv n with
      | some ranges => found := found.push { name := n, ranges }
      | none => pure ()
  -- Source order (line, column, name); sorted through plain keys.
  let mut keys : Array (Nat × Nat × String × Nat) := #[]
  for i in [0:found.size] do
    if let some d := found[i]? then
      keys := keys.push (d.ranges.range.pos.line, d.ranges.range.pos.column, d.name.toString, i)
  keys := keys.qsort fun (l1, c1, n1, _) (l2, c2, n2, _) =>
    l1 < l2 || (l1 == l2 && (c1 < c2 || (c1 == c2 && n1 < n2)))
  let decls := keys.filterMap fun (_, _, _, i) => found[i]?
  let trees := s.commandState.infoState.trees
  for d in decls do
    let premises? := if req.premises then
        let fm := ictx.fileMap
        let lo := Compat.byteIdx (fm.ofPosition d.ranges.range.pos)
        let hi := Compat.byteIdx (fm.ofPosition d.ranges.range.endPos)
        some (referencedConstants trees lo hi fun c => c != d.name)
      else none
    emit (declJson req.module d premises?)
  let mut nCmds := 0
  for c in cmds do
    if let some j := commandJson req.module c then
      emit j
      nCmds := nCmds + 1
  let errors ← (s.commandState.messages.toList.filter isErrorMsg).mapM Msg.ofMessage
  emit <| Json.mkObj <|
    [("t", Json.str "done"), ("module", Json.str req.module), ("commands", toJson nCmds),
     ("decls", toJson decls.size), ("ms", toJson ((← IO.monoMsNow) - t0 + 1))]
    ++ fieldList "errors" (errors.map Msg.json)

end STP
