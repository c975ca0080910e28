import Lean
import STP.Compat
import STP.Gate
import STP.Protocol

/-!
# Elaborating text (roles `check` and `statement`; never the judge)

The header once, then any snippet on top of the saved header state. `Lean.Environment` and
`Command.State` are persistent values, so every snippet starts from the very same header state
and nothing one snippet adds can be seen by the next. The environment right after the imports
is kept too (`SessionHeader.importEnv`): what the header's own commands added is what a
statement process puts into a REFERENCE for the judge, which imports modules only.
-/

open Lean Elab

namespace STP

def Msg.ofMessage (m : Message) : IO Msg := do
  let text := Compat.trimText (← m.data.toString)
  let severity := match m.severity with
    | MessageSeverity.information => Severity.info
    | MessageSeverity.warning => Severity.warning
    | MessageSeverity.error => Severity.error
  return { severity, line := m.pos.line, column := m.pos.column, text,
           endLine? := m.endPos.map (·.line), endColumn? := m.endPos.map (·.column) }

def isErrorMsg (m : Message) : Bool :=
  match m.severity with
  | MessageSeverity.error => true
  | _ => false

/-- The end-of-input command holds no token; its kind ends in `eoi`. -/
def isEndOfInput (cmd : Syntax) : Bool :=
  cmd.getKind.toString.endsWith "eoi"

/-- Every iteration consumes at least one byte, so `fuel` = input size + 1 always suffices. -/
def parseLoop (ictx : Parser.InputContext) (st : Command.State) :
    Nat → Parser.ModuleParserState → MessageLog → Array Syntax → Array Syntax × MessageLog
  | 0, _, msgs, acc => (acc, msgs)
  | fuel + 1, ps, msgs, acc =>
    let (cmd, ps', msgs') := Compat.parseCommand ictx st ps msgs
    if Parser.isTerminalCommand cmd then
      if isEndOfInput cmd then (acc, msgs') else (acc.push cmd, msgs')
    else if Compat.byteIdx ps'.pos == Compat.byteIdx ps.pos then (acc.push cmd, msgs')
    else parseLoop ictx st fuel ps' msgs' (acc.push cmd)

/-- Parse `text` into top-level commands from `st`'s scope without elaborating anything. The
end-of-input marker is dropped; a terminal `#exit` is kept (the syntax gate rejects it). -/
def parseSnippet (st : Command.State) (text : String) (fileName : String) :
    Array Syntax × List Message :=
  let ictx := Parser.mkInputContext text fileName
  let (cmds, msgs) :=
    parseLoop ictx st (text.utf8ByteSize + 1) { : Parser.ModuleParserState } {} #[]
  (cmds, msgs.toList)

/-- The elaborated header: imports loaded, header commands (`open`, `set_option`, ...) run. -/
structure SessionHeader where
  state : Command.State
  /-- The environment after the header, to tell which constants a snippet added. -/
  env : Environment
  /-- The environment after the imports only (before the header's commands): what the judge
  has; the constants `env` has beyond it are the header's own (`def`s of ProofNet headers). -/
  importEnv : Environment
  errors : List Msg
  ms : Nat

/-- Load the process search path (from `LEAN_PATH`, set by `lake env`) and allow Mathlib's
initializers to run; both are required before importing Mathlib in a compiled program. -/
unsafe def initProcess : IO Unit := do
  Lean.initSearchPath (← Lean.findSysroot)
  Lean.enableInitializersExecution

/-- Elaborate `text` (no header of its own) from `st`, with the standard streams isolated
(`Compat.isolated`): whatever the text prints or does to stdout/stderr/stdin stays private.
Positions in the result are relative to `text`. The returned messages are exactly the ones this
text produced (`st.messages` is cleared first). -/
def runText (st : Command.State) (text : String) (fileName : String) :
    IO Frontend.State := do
  let ictx := Parser.mkInputContext text fileName
  Compat.isolated <|
    Lean.Elab.IO.processCommands ictx { : Parser.ModuleParserState } { st with messages := {} }

/-- Options after the header: the session's base options (heartbeat limit from the config) plus
only the safe-listed options the header set. Whatever else a header set (`debug.skipKernelTC`,
`maxHeartbeats 0`, `pp.*`, ...) is gone. -/
def resetOptions (st : Command.State) (maxHeartbeats : Nat) : Command.State :=
  { st with
    messages := {},
    scopes := st.scopes.map fun sc =>
      { sc with opts := Compat.keepOptions sc.opts (Compat.baseOptions maxHeartbeats)
                          keptHeaderOptions } }

/-- Elaborate an untrusted header's commands one at a time, each one gated before it runs.
The next command is cut out of `rest` (its text up to where the parser stopped), parsed again
on its own from the current state, gated (`headerCommandProblemIn`: the command allow-list plus
the syntax allow-list walk over `def` bodies and `variable` binders), and only then elaborated:
the syntax that was gated is exactly the syntax that is elaborated, even when an earlier
`open`/`namespace` changed which notations are active. Message positions are relative to the
command's own text. -/
partial def elabGatedCommands (st : Command.State) (rest : String) (msgs : Array Msg) :
    IO (Command.State × Array Msg) := do
  let (cmd, ps, parseLog) :=
    Compat.parseCommand (Parser.mkInputContext rest "<header>") st {} {}
  if isEndOfInput cmd then return (st, msgs)
  let parseErrs ← (parseLog.toList.filter isErrorMsg).mapM Msg.ofMessage
  if !parseErrs.isEmpty then return (st, msgs ++ parseErrs.toArray)
  let stop := Compat.byteIdx ps.pos
  if stop == 0 then return (st, msgs.push (Msg.plain "untrusted header: parser made no progress"))
  let cmdText := String.extract rest (0 : String.Pos) ps.pos
  let (cmds, reparseLog) := parseSnippet st cmdText "<header>"
  let reparseErrs ← (reparseLog.filter isErrorMsg).mapM Msg.ofMessage
  if !reparseErrs.isEmpty then return (st, msgs ++ reparseErrs.toArray)
  match cmds.toList with
  | [one] =>
    if let some problem := headerCommandProblemIn st.env one then
      return (st, msgs.push (Msg.plain problem))
    let s ← runText st cmdText "<header>"
    let errs ← (s.commandState.messages.toList.filter isErrorMsg).mapM Msg.ofMessage
    if !errs.isEmpty then return (s.commandState, msgs ++ errs.toArray)
    elabGatedCommands s.commandState (String.extract rest ps.pos rest.endPos) msgs
  | _ =>
    return (st, msgs.push (Msg.plain ("untrusted header: cannot cut one command out of `" ++
      Compat.trimText cmdText ++ "`")))

/-- A trusted header's commands, as written (isolated streams). -/
def elabTrustedCommands (ictx : Parser.InputContext) (ps : Parser.ModuleParserState)
    (st : Command.State) : IO (Command.State × Array Msg) := do
  let s ← Compat.isolated <| Lean.Elab.IO.processCommands ictx ps st
  let errs ← (s.commandState.messages.toList.filter isErrorMsg).mapM Msg.ofMessage
  return (s.commandState, errs.toArray)

/-- Elaborate `header` (imports first, then its commands) once. A trusted header's commands run
as written; an untrusted header's commands go through `elabGatedCommands` (allow-list and gate).
Either way, afterwards every option is reset except the safe list and the heartbeat limit is the
session's (a header `set_option maxHeartbeats 0` or `debug.skipKernelTC true` does not survive).
Everything runs with isolated standard streams. -/
def loadHeader (header : String) (maxHeartbeats : Nat) (trusted : Bool) : IO SessionHeader := do
  let t0 ← IO.monoMsNow
  let opts := Compat.baseOptions maxHeartbeats
  let ictx := Parser.mkInputContext header "<header>"
  let (hdr, ps, msgs) ← Parser.parseHeader ictx
  let (env, msgs) ← Compat.isolated <| Compat.processHeader hdr opts msgs ictx
  let importErrs ← (msgs.toList.filter isErrorMsg).mapM Msg.ofMessage
  let st0 := Command.mkState env {} opts
  let (st, cmdErrs) ←
    if !importErrs.isEmpty then
      pure (st0, #[])
    else if trusted then
      elabTrustedCommands ictx ps st0
    else
      elabGatedCommands st0 (String.extract header ps.pos header.endPos) #[]
  let st := resetOptions st maxHeartbeats
  return { state := st, env := st.env, importEnv := env,
           errors := importErrs ++ cmdErrs.toList, ms := (← IO.monoMsNow) - t0 }

/-- The header state with a different heartbeat limit and info trees on or off. -/
def SessionHeader.stateWith (h : SessionHeader) (maxHeartbeats : Nat) (infoTrees : Bool) :
    Command.State :=
  let st := h.state
  { st with
    messages := {},
    -- Drop the header's own info trees: premise positions are relative to the snippet.
    infoState := { st.infoState with enabled := infoTrees, trees := {} },
    scopes := st.scopes.map fun sc =>
      { sc with opts := Compat.setNatOption sc.opts `maxHeartbeats maxHeartbeats } }

/-- Constants that `env` has and `base` has not (the current module's part of the map). -/
def newConstants (base env : Environment) : List (Name × ConstantInfo) :=
  env.constants.map₂.toList.filter fun (n, _) => !base.contains n

/-- The constants `root` depends on that `env` has and `base` has not, `root` included: a walk
through types and values, and for inductive families through every member, constructor and
recursor rule (so a replay of an inductive finds all the constants the kernel needs). This is
what the kernel replay re-adds: a constant the target does not reach cannot make it valid, and
a reachable one left out would make the replay fail (unknown constant), never pass. Compiler
auxiliaries of a `def` (`_cstage*`) are not reachable and are not replayed. -/
def newDependencies (base env : Environment) (root : Name) : List (Name × ConstantInfo) :=
  Id.run do
    let mut visited : NameSet := {}
    let mut stack : Array Name := #[root]
    let mut out : Array (Name × ConstantInfo) := #[]
    while stack.size > 0 do
      let c := stack[stack.size - 1]!
      stack := stack.pop
      if visited.contains c || base.contains c then
        continue
      visited := visited.insert c
      let some ci := env.find? c | continue
      out := out.push (c, ci)
      stack := stack ++ ci.type.getUsedConstants
      match ci with
      | ConstantInfo.defnInfo v => stack := stack ++ v.value.getUsedConstants
      | ConstantInfo.thmInfo v => stack := stack ++ v.value.getUsedConstants
      | ConstantInfo.opaqueInfo v => stack := stack ++ v.value.getUsedConstants
      | ConstantInfo.inductInfo v => stack := stack ++ v.all.toArray ++ v.ctors.toArray
      | ConstantInfo.ctorInfo v => stack := stack.push v.induct
      | ConstantInfo.recInfo v =>
        stack := stack ++ v.all.toArray
        for r in v.rules do
          stack := stack ++ r.rhs.getUsedConstants
      | _ => pure ()
    return out.toList

def isTheoremInfo : ConstantInfo → Bool
  | ConstantInfo.thmInfo _ => true
  | _ => false

/-- Constants named by original (user-written) syntax in the info trees, in first-appearance
order, whose identifier starts at or after byte `fromByte`; `keep` filters them. This is what
"the constants the proof text refers to" means for both programs. -/
def referencedConstants (trees : PersistentArray InfoTree) (fromByte toByte : Nat)
    (keep : Name → Bool) : Array Name :=
  let step (acc : NameSet × Array Name) (info : Info) : NameSet × Array Name :=
    match info with
    | Info.ofTermInfo ti =>
      -- `isBinder` marks the name a declaration introduces (its declId), not a use.
      if ti.isBinder then acc else
      match ti.expr with
      | Expr.const n _ =>
        match ti.stx.getHeadInfo, ti.stx.getPos? with
        | SourceInfo.original .., some p =>
          let b := Compat.byteIdx p
          if fromByte ≤ b && b < toByte && keep n && !acc.1.contains n then
            (acc.1.insert n, acc.2.push n)
          else acc
        | _, _ => acc
      | _ => acc
    | _ => acc
  let init : NameSet × Array Name := ({}, #[])
  (trees.foldl (init := init) fun acc t => t.foldInfo (init := acc) fun _ i a => step a i).2

end STP
