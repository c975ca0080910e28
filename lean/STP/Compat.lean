import Lean
import Lean.Replay

/-!
# Version-specific names

Every Lean name whose spelling or signature differs between the pinned toolchain
(`v4.9.0-rc1`) and modern Lean (`v4.32.0`) is used here and only here. Porting the programs to
a new toolchain means editing this file (docs/lean.md lists what changes); the other modules use
only names that are stable across both pins. Sources of every name: lean/API_SOURCES.md.
-/

open Lean Elab

namespace STP.Compat

/-- `Options` is `def Options := KVMap` up to v4.27 (a structure from v4.28 on: use
`opts.setNat`/`opts.setBool` there). -/
def setNatOption (opts : Options) (key : Name) (value : Nat) : Options :=
  KVMap.setNat opts key value

def setBoolOption (opts : Options) (key : Name) (value : Bool) : Options :=
  KVMap.setBool opts key value

/-- Options every elaboration of ours runs under. v4.9 elaborates synchronously; from ~v4.19
on, set `Elab.async false` here so theorems are kernel-checked before we inspect `env`. -/
def baseOptions (maxHeartbeats : Nat) : Options :=
  setNatOption {} `maxHeartbeats maxHeartbeats

/-- `base` plus the entries of `opts` under `keys` (and nothing else `opts` holds): what survives
of a header's options. `KVMap.find`/`KVMap.insert` on `Options := KVMap` up to v4.27; from
v4.28 `Options` is a structure (use its own `find`/`insert` there). -/
def keepOptions (opts base : Options) (keys : List Name) : Options :=
  keys.foldl (init := base) fun acc k =>
    match KVMap.find opts k with
    | some v => KVMap.insert acc k v
    | none => acc

/-- Run `x` with its own standard streams: stdin empty, stdout and stderr into a private buffer
that nobody reads. What `x` does to the streams (`IO.println`, `IO.setStdout`, reading stdin)
therefore never reaches the protocol channel, and the previous streams are put back even when
`x` throws. Written with `IO.setStdin/setStdout/setStderr` (the primitives
`IO.FS.withIsolatedStreams` is built from) because that function's signature changed between
versions (result `String × Except IO.Error α` in older cores, `String × α` with
`isolateStderr` in newer). -/
def isolated {α : Type} (x : IO α) : IO α := do
  let bIn ← IO.mkRef ({ : IO.FS.Stream.Buffer })
  let bOut ← IO.mkRef ({ : IO.FS.Stream.Buffer })
  let oldIn ← IO.setStdin (IO.FS.Stream.ofBuffer bIn)
  let oldOut ← IO.setStdout (IO.FS.Stream.ofBuffer bOut)
  let oldErr ← IO.setStderr (IO.FS.Stream.ofBuffer bOut)
  try
    x
  finally
    discard <| IO.setStdin oldIn
    discard <| IO.setStdout oldOut
    discard <| IO.setStderr oldErr

/-- Re-add `consts` on top of `base` through the kernel with full checking
(`Lean.Environment.replay`, module `Lean.Replay`: what lean4checker and SafeVerify do at v4.9).
Throws (`IO.userError`) when the kernel rejects a constant or a constructor/recursor differs from
the one the kernel derives. Skips `unsafe` and `partial` constants (the strict gate forbids both).
v4.9 takes a `Lean.HashMap` and an `Environment`; from ~v4.12 a `Std.HashMap`, and later a
`Kernel.Environment` (see docs/lean.md). -/
def replay (base : Environment) (consts : List (Name × ConstantInfo)) : IO Environment := do
  let mut m : Lean.HashMap Name ConstantInfo := {}
  for (n, ci) in consts do
    m := m.insert n ci
  base.replay m

/-- A hash map (the export encoder's memo tables). `Lean.HashMap` at v4.9 (module
`Lean.Data.HashMap`: `mkHashMap`, `find?`, `insert`); deprecated for `Std.HashMap` (`get?`,
`insert`) from ~v4.12 and removed later: change these four definitions there. -/
abbrev HMap (α β : Type) [BEq α] [Hashable α] : Type := Lean.HashMap α β

def hmEmpty {α β : Type} [BEq α] [Hashable α] : HMap α β := Lean.mkHashMap

def hmFind? {α β : Type} [BEq α] [Hashable α] (m : HMap α β) (k : α) : Option β :=
  Lean.HashMap.find? m k

def hmInsert {α β : Type} [BEq α] [Hashable α] (m : HMap α β) (k : α) (v : β) :
    HMap α β :=
  Lean.HashMap.insert m k v

/-- Syntax kinds a tactic configuration value may be built from (`(config := v)`): literals and
structure instances of literals. Kind names of the v4.9 parser (`Lean/Parser/Term.lean`:
`structInst`, `structInstField`, `structInstLVal`, `optEllipsis`, `dotIdent`; literal kinds
`num`/`str`/`scientific`/`char`; `null` for `many`/`optional`/`sepBy` groups). A kind renamed in
a later version only makes a legitimate configuration be rejected, never the reverse. -/
def plainConfigKinds : List Name :=
  [`null, `num, `str, `scientific, `char, `Lean.Parser.Term.structInst,
   `Lean.Parser.Term.optEllipsis, `Lean.Parser.Term.dotIdent]

/-- `x := v` inside a structure instance: children `[structInstLVal, ":=", v]` at v4.9. -/
def structInstFieldKind : Name := `Lean.Parser.Term.structInstField
def structInstLValKind : Name := `Lean.Parser.Term.structInstLVal

/-- `String.trim` (deprecated for `trimAscii` in v4.27). -/
def trimText (s : String) : String := s.trim

/-- Parse one command exactly as `Lean.Elab.Frontend.processCommand` does at v4.9: the parser
sees the environment, options, namespace and `open`s of the current scope. -/
def parseCommand (ictx : Parser.InputContext) (st : Command.State)
    (ps : Parser.ModuleParserState) (msgs : MessageLog) :
    Syntax × Parser.ModuleParserState × MessageLog :=
  let scope := st.scopes.head!
  Parser.parseCommand ictx
    { env := st.env, options := scope.opts, currNamespace := scope.currNamespace,
      openDecls := scope.openDecls } ps msgs

/-- `processHeader` at v4.9: `(header : Syntax) (opts) (messages) (inputCtx) (trustLevel := 0)
(leakEnv := false)`. At v4.32 the header is `TSyntax` and it takes `(mainModule := …)`; the
positional call is the same. -/
def processHeader (header : Syntax) (opts : Options) (msgs : MessageLog)
    (ictx : Parser.InputContext) : IO (Environment × MessageLog) :=
  Lean.Elab.processHeader header opts msgs ictx

/-- The axioms `root` depends on: a depth-first walk over the constants its type and value use
(the same traversal as `Lean.Elab.Command.CollectAxioms.collect` at v4.9, written out because
that function moved to `Lean.collectAxioms` in v4.11). Works on every version we know. -/
def collectAxioms (env : Environment) (root : Name) : Array Name := Id.run do
  let mut visited : NameSet := {}
  let mut stack : Array Name := #[root]
  let mut axioms : Array Name := #[]
  while stack.size > 0 do
    let c := stack[stack.size - 1]!
    stack := stack.pop
    if visited.contains c then
      continue
    visited := visited.insert c
    match env.find? c with
    | some (ConstantInfo.axiomInfo _) => axioms := axioms.push c
    | some (ConstantInfo.defnInfo v) =>
      stack := stack ++ v.type.getUsedConstants ++ v.value.getUsedConstants
    | some (ConstantInfo.thmInfo v) =>
      stack := stack ++ v.type.getUsedConstants ++ v.value.getUsedConstants
    | some (ConstantInfo.opaqueInfo v) =>
      stack := stack ++ v.type.getUsedConstants ++ v.value.getUsedConstants
    | some (ConstantInfo.quotInfo _) => pure ()
    | some (ConstantInfo.ctorInfo v) => stack := stack ++ v.type.getUsedConstants
    | some (ConstantInfo.recInfo v) => stack := stack ++ v.type.getUsedConstants
    | some (ConstantInfo.inductInfo v) =>
      stack := stack ++ v.type.getUsedConstants ++ v.ctors.toArray
    | none => pure ()
  return axioms

/-- Declaration ranges of `n` (`range` = whole declaration incl. doc comment and attributes,
`selectionRange` = the name). Run in `CoreM` as Batteries' linter does; at v4.32 the ranges of
imported declarations live at the `.server` olean level, which a non-`module` file loads. -/
def declarationRanges? (env : Environment) (n : Name) : IO (Option DeclarationRanges) := do
  let ctx : Core.Context := { fileName := "", fileMap := default }
  let (r, _) ← Core.CoreM.toIO (findDeclarationRanges? n) ctx { env := env }
  return r

/-- The environment of `modules` (plus `Init`, which every non-`prelude` Lean file imports:
`Lean.Elab.headerToImports`), with no header command elaborated: what the judge replays on.
`Lean.importModules (imports : Array Import) (opts : Options) (trustLevel : UInt32 := 0)
(leakEnv := false) : IO Environment` at v4.9.0-rc1 (the REPL @v4.9.0-rc1 calls
`importModules imports {} 0`); later versions add optional arguments after `trustLevel`, so the
positional call stays valid. Throws when a module's `.olean` is missing. -/
def importModules (modules : List Name) : IO Environment := do
  let names : Array Name := #[`Init] ++ (modules.filter (· != `Init)).toArray
  let imports : Array Lean.Import := names.map fun m => ({ module := m } : Lean.Import)
  Lean.importModules imports {} 0

/-- Byte offset of a `String.Pos` (`String.Pos.Raw` from v4.32; both have `byteIdx`). -/
def byteIdx (p : String.Pos) : Nat := p.byteIdx

end STP.Compat

/-! ### Gate (issue #20, helper L2): macro expansion and compiler attributes -/

namespace STP.Compat

/-- Run the macro `m` on `stx` outside any elaborator, with the methods `Lean.Elab.liftMacroM`
gives a macro at v4.9 (`Lean/Elab/Util.lean`: nested `expandMacro?` through
`expandMacroImpl? env`, `hasDecl` from `env`, name resolution from the root namespace with no
`open`s, since the gate runs before the text's own scope exists). `MacroM` is
`ReaderT Macro.Context (EStateM Macro.Exception Macro.State)` in every version read; the
`Macro.Context` fields `currRecDepth`/`maxRecDepth` keep their defaults. -/
def runMacro (env : Environment) (m : Macro) (stx : Syntax) : Except Macro.Exception Syntax :=
  let methods := Macro.mkMethods {
    expandMacro? := fun s => do
      match (← Lean.Elab.expandMacroImpl? env s) with
      | some (_, .ok s') => return some s'
      | some (_, .error e) => throw e
      | none => return none
    hasDecl := fun n => return env.contains n
    getCurrNamespace := return Name.anonymous
    resolveNamespace := fun n => return ResolveName.resolveNamespace env Name.anonymous [] n
    resolveGlobalName := fun n => return ResolveName.resolveGlobalName env Name.anonymous [] n
  }
  let ctx : Macro.Context :=
    { methods, ref := stx, currMacroScope := 1, mainModule := env.mainModule }
  match m stx ctx { macroScope := 2 } with
  | EStateM.Result.ok s _ => .ok s
  | EStateM.Result.error e _ => .error e

/-- `.c` in a structure instance: children `[".", ident]` (`Lean/Parser/Term.lean`,
`dotIdent := leading_parser "." >> checkNoWsBefore >> rawIdent`). -/
def dotIdentKind : Name := `Lean.Parser.Term.dotIdent

/-- The field list of a structure instance, a node of its own in versions that wrap it
(`structInstFields`); absent at v4.9, where the fields sit in a `null` node. -/
def structInstFieldsKind : Name := `Lean.Parser.Term.structInstFields

/-- `@[extern]` (`Lean/Compiler/ExternAttr.lean`: `def isExtern (env : Environment) (fn : Name)
: Bool := getExternAttrData? env fn |>.isSome`). -/
def isExternConst (env : Environment) (n : Name) : Bool := Lean.isExtern env n

/-- `@[implemented_by]` (`Lean/Compiler/ImplementedByAttr.lean`:
`def getImplementedBy? (env : Environment) (declName : Name) : Option Name :=
implementedByAttr.getParam? env declName`). -/
def isImplementedBy (env : Environment) (n : Name) : Bool :=
  (Lean.Compiler.getImplementedBy? env n).isSome

end STP.Compat
