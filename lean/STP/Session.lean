/-
Elaborating text from Lean: the header once, then any snippet on top of the saved header state.
`Lean.Environment` and `Command.State` are persistent values, so every snippet starts from the
very same header state and nothing one snippet adds can be seen by the next.
-/
import Lean
import STP.Compat
import STP.Protocol

open Lean Elab

namespace STP

def Msg.ofMessage (m : Message) : IO Msg := do
  let text := Compat.trimText (← m.data.toString)
  let severity := match m.severity with
    | MessageSeverity.information => "info"
    | MessageSeverity.warning => "warning"
    | MessageSeverity.error => "error"
  return { severity, line := m.pos.line, column := m.pos.column, text,
           endLine? := m.endPos.map (·.line), endColumn? := m.endPos.map (·.column) }

def isErrorMsg (m : Message) : Bool :=
  match m.severity with
  | MessageSeverity.error => true
  | _ => false

/-- The elaborated header: imports loaded, header commands (`open`, `set_option`, ...) run. -/
structure SessionHeader where
  state : Command.State
  /-- The environment after the header, to tell which constants a snippet added. -/
  env : Environment
  errors : List Msg
  ms : Nat

/-- Load the process search path (from `LEAN_PATH`, set by `lake env`) and allow Mathlib's
initializers to run; both are required before importing Mathlib in a compiled program. -/
unsafe def initProcess : IO Unit := do
  Lean.initSearchPath (← Lean.findSysroot)
  Lean.enableInitializersExecution

/-- Elaborate `header` (imports first, then any commands) once. The heartbeat limit is put
into the root scope after the header ran, so a header `set_option maxHeartbeats` cannot lift it. -/
def loadHeader (header : String) (maxHeartbeats : Nat) : IO SessionHeader := do
  let t0 ← IO.monoMsNow
  let opts := Compat.baseOptions maxHeartbeats
  let ictx := Parser.mkInputContext header "<header>"
  let (hdr, ps, msgs) ← Parser.parseHeader ictx
  let (env, msgs) ← Compat.processHeader hdr opts msgs ictx
  let st0 := Command.mkState env {} opts
  let s ← Lean.Elab.IO.processCommands ictx ps st0
  let all := msgs.toList ++ s.commandState.messages.toList
  let errors ← (all.filter isErrorMsg).mapM Msg.ofMessage
  let st := s.commandState
  let st := { st with
    messages := {},
    scopes := st.scopes.map fun sc =>
      { sc with opts := Compat.setNatOption sc.opts `maxHeartbeats maxHeartbeats } }
  return { state := st, env := st.env, errors, ms := (← IO.monoMsNow) - t0 }

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

/-- Elaborate `text` (no header of its own) from `st`. Positions in the result are relative to
`text`. The returned messages are exactly the ones this text produced (`st.messages` is empty). -/
def runText (st : Command.State) (text : String) (fileName : String) :
    IO Frontend.State := do
  let ictx := Parser.mkInputContext text fileName
  Lean.Elab.IO.processCommands ictx { : Parser.ModuleParserState } { st with messages := {} }

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

/-- Constants that `env` has and `base` has not (the current module's part of the map). -/
def newConstants (base env : Environment) : List (Name × ConstantInfo) :=
  env.constants.map₂.toList.filter fun (n, _) => !base.contains n

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
