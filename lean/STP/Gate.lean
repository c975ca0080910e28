import Lean
import STP.Compat
import STP.GateAllowList

/-!
The gates: what may appear in text we elaborate for somebody else. Proof text, conjectured
statements and untrusted headers are all adversarial (docs/lean.md, threat model), and
elaboration runs code (tactics are programs; some syntax evaluates user terms with `evalExpr`).

Three layers, all allow-lists except the first:
* `forbiddenIn`: the deny list of atoms/identifiers of protocol 3, kept as a first, cheap layer
  (it names what it finds the way the smoke cases and users know it);
* `statementGateProblems` / `proofGateProblems`: every syntax node of the text, after **macro
  expansion** with the environment's macro table, must be a reviewed kind
  (`STP.GateAllowList`), a structural node of a reviewed kind's grammar (no elaborator and no
  macro of its own), or a macro whose every expansion passes; statements admit term syntax only;
  tactic configurations must be plain literals;
* `constantGateProblems` (after elaboration): no resolved constant (theorems aside) from the
  effect and metaprogramming namespaces, no `unsafe`/`partial` constant, none whose type
  mentions an effect type, no opaque `extern`/`implemented_by` constant.
The untrusted-header gate (`headerCommandProblem`) is unchanged: a command allow-list plus the
deny list. Design, what each layer admits and the corpus figure: docs/lean.md, "Syntax gate".
-/

open Lean

namespace STP

/-! ### Deny lists (first layer; the header gate) -/

/-- Keywords/atoms a proof or statement may not contain: side effects, trust shortcuts,
environment and notation changes, limit lifting, proof-search tactics (the `apply?` exploit),
extra scopes, and syntax that evaluates user terms while elaborating. -/
def forbiddenAtoms : List String := [
  "sorry", "admit", "native_decide", "set_option", "run_cmd", "run_tac", "run_elab",
  "run_meta", "by_elab", "elab", "elab_rules", "macro", "macro_rules", "syntax", "notation",
  "notation3", "infix", "infixl", "infixr", "prefix", "postfix", "declare_syntax_cat",
  "binder_predicate", "initialize", "builtin_initialize", "axiom", "opaque", "unsafe",
  "partial", "implemented_by", "extern", "@[", "attribute", "instance", "local", "scoped",
  "private", "export", "import", "namespace", "section", "mutual", "deriving",
  "apply?", "exact?", "exact?%", "rw?", "hint", "library_search", "rw_search", "observe",
  "observe?", "polyrith",
  -- evaluate a user term or sleep while elaborating
  "eval%", "slim_check", "sleep", "dbg_trace", "dbgTrace", "dbgSleep"]

/-- Identifier components that never belong in a proof: trust-the-compiler axioms and helpers,
`sorryAx`, metaprogramming and effect namespaces, debugging primitives with side effects. Every
component of every identifier is checked (after dropping `_root_`), in every position: terms,
binders, `open`/`export` targets, quoted names. -/
def forbiddenIdentParts : List String := [
  "sorryAx", "ofReduceBool", "ofReduceNat", "reduceBool", "reduceNat", "trustCompiler",
  "implemented_by", "extern", "Elab", "Meta", "Compiler", "unsafeCast", "unsafeIO",
  "unsafeEIO", "unsafeBaseIO", "ptrAddrUnsafe", "Lean", "IO", "EIO", "BaseIO", "System",
  "Runtime", "dbgTrace", "dbgTraceIfShared", "dbgTraceVal", "dbgSleep", "dbgStackTrace",
  "addDecl", "addDeclWithoutChecking", "evalExpr", "evalConst"]

/-- Atoms of the header commands an untrusted header may use (exempt from `forbiddenAtoms`):
`open scoped …` is in most ProofNet headers, `noncomputable section` in some. -/
def headerKeywords : List String := ["set_option", "namespace", "section", "scoped"]

/-- Options an untrusted header may set, and (all but `maxHeartbeats`, which always comes from
the session config) the only options that survive the header. -/
def headerSafeOptions : List Name :=
  [`maxHeartbeats, `autoImplicit, `relaxedAutoImplicit, `checkBinderAnnotations,
   `linter.unusedVariables, `linter.deprecated]

def keptHeaderOptions : List Name := headerSafeOptions.filter (· != `maxHeartbeats)

/-- Command kinds an untrusted header may contain after its imports (besides plain
`def`/`abbrev`, see `headerCommandProblem`). -/
def headerCommandKinds : List Name :=
  ["open", "universe", "namespace", "section", "noncomputableSection", "end", "variable",
   "set_option"].map (Name.mkStr `Lean.Parser.Command)

/-! ### Walking the syntax -/

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

/-- The string components of a name, in order (`num` components printed). -/
def nameParts : Name → List String
  | .anonymous => []
  | .str p s => nameParts p ++ [s]
  | .num p k => nameParts p ++ [toString k]

/-- Components that decide what an identifier refers to: `_root_` only says "resolve from the
root", so it is dropped; `_root_.IO.getStdout` is checked as `IO.getStdout`. -/
def canonicalParts (n : Name) : List String :=
  (nameParts n).filter (· != "_root_")

def badIdent (n : Name) : Bool :=
  (canonicalParts n).any (forbiddenIdentParts.contains ·)

/-- A quoted name literal (`` `IO.getStdout ``, ``` ``IO.getStdout ```) is an atom; its
name is checked like an identifier. -/
def badQuotedName (atom : String) : Bool :=
  atom.startsWith "`" && badIdent (atom.dropWhile (· == '`')).toName

/-- `#eval`, `#exit`, `#print`, ... (but not the array literal `#[`). -/
def isHashCommand (atom : String) : Bool :=
  atom.startsWith "#" && (atom.toList.getD 1 ' ').isAlpha

/-- A configuration key: `config` in `(config := v)` and Aesop's `(simp_config := v)`. -/
def isConfigKey (stx : Syntax) : Bool :=
  match stx with
  | Syntax.atom _ v => (Compat.trimText v).endsWith "config"
  | Syntax.ident _ _ n _ => ((nameParts n).getLast?.getD "").endsWith "config"
  | _ => false

def isAtom (stx : Syntax) (v : String) : Bool :=
  match stx with
  | Syntax.atom _ w => Compat.trimText w == v
  | _ => false

/-- The left side of `x := v` in a structure instance: a single field name. -/
def isPlainFieldName (lval : Syntax) : Bool :=
  match lval with
  | Syntax.node _ k args =>
    k == Compat.structInstLValKind && (args.getD 0 Syntax.missing).isIdent &&
      (args.toList.drop 1).all (·.getNumArgs == 0)
  | _ => false

/-- `{}` read as the empty-collection notation (the other reading of a `choice` node whose
structure-instance reading is `{ }`): a node made of the two atoms `{` and `}` only. -/
def isEmptyBraces (stx : Syntax) : Bool :=
  match stx with
  | Syntax.node _ _ args =>
    args.size == 2 && isAtom (args.getD 0 Syntax.missing) "{" &&
      isAtom (args.getD 1 Syntax.missing) "}"
  | _ => false

/-- A configuration value that elaborating cannot turn into running code: literals, `true`,
`false`, `.ctor` (a `dotIdent`: `transparency := .reducible`), `{}`, and structure instances
whose fields are such values. A `choice` node (`{}` parses both as a structure instance and as
the empty-collection notation) is plain when every reading is. Anything else (a function, a `do`
block, a name of a definition, `{ c with … }`, a field abbreviation) is compiled and run by
`evalExpr` when the tactic reads its configuration. -/
partial def isPlainLiteral (stx : Syntax) : Bool :=
  match stx with
  | Syntax.atom _ _ => true
  | Syntax.ident _ _ n _ =>
    -- A configuration a macro writes carries macro scopes on its identifiers (hygiene).
    n.eraseMacroScopes == `true || n.eraseMacroScopes == `false
  | Syntax.node _ k args =>
    if k == Compat.structInstFieldKind then
      args.size == 3 && isPlainFieldName (args.getD 0 Syntax.missing) &&
        isPlainLiteral (args.getD 2 Syntax.missing)
    else if k == Compat.dotIdentKind then
      -- `.` followed by one identifier: a constructor of the expected (configuration) type.
      args.size == 2 && (args.getD 1 Syntax.missing).isIdent
    else if k == choiceKind then
      args.all isPlainLiteral
    else if isEmptyBraces stx then true
    else
      (Compat.plainConfigKinds.contains k || k == Compat.structInstFieldsKind) &&
        args.all isPlainLiteral
  | Syntax.missing => false

/-- Configuration clauses (`… config := v …`) whose value is not a plain literal, anywhere in
`stx` (tactics, nested tactic blocks, terms). -/
partial def badConfigs (stx : Syntax) (acc : Array String) : Array String :=
  match stx with
  | Syntax.node _ _ args => Id.run do
    let mut acc := acc
    for i in [0:args.size] do
      let key := args.getD i Syntax.missing
      if isConfigKey key && isAtom (args.getD (i + 1) Syntax.missing) ":=" &&
          !isPlainLiteral (args.getD (i + 2) Syntax.missing) then
        let label := match key with
          | Syntax.atom _ v => Compat.trimText v
          | Syntax.ident _ _ n _ => n.toString
          | _ => "config"
        if !acc.contains label then acc := acc.push label
      acc := badConfigs key acc
    return acc
  | _ => acc

/-- Everything the gate finds in `cmds`: forbidden atoms as written, identifiers as written
(full names, `_root_` included), `#commands`, and configuration keys with non-literal values.
`allowedAtoms` lifts atoms from the deny list (the reference statement's own `sorry`, the
keywords of header commands). -/
def forbiddenIn (cmds : Array Syntax) (allowedAtoms : List String := []) : List String := Id.run do
  let t := cmds.foldl (fun t c => collectTokens c t) ({} : Tokens)
  let mut found : Array String := #[]
  for a in t.atoms do
    let a := Compat.trimText a
    let bad := (forbiddenAtoms.contains a && !allowedAtoms.contains a) || isHashCommand a ||
      badQuotedName a
    if bad && !found.contains a then
      found := found.push a
  for n in t.idents do
    if badIdent n && !found.contains n.toString then
      found := found.push n.toString
  for c in cmds do
    found := badConfigs c found
  return found.toList

/-! ### Declarations -/

/-- `theorem`/`lemma`/`def`/`abbrev` command? (`none` for every other command.) -/
def declKindOf (cmd : Syntax) : Option String :=
  if cmd.getKind == `Lean.Parser.Command.declaration then
    let k := (cmd.getArg 1).getKind
    if k == `Lean.Parser.Command.theorem then some "theorem"
    else if k == `Lean.Parser.Command.definition then some "def"
    else if k == `Lean.Parser.Command.abbrev then some "abbrev"
    else none
  else if cmd.getKind == `lemma || cmd.getKind == `Mathlib.Tactic.lemma then some "lemma"
  else none

/-- The command allow-list of checked text. Strict: exactly one declaration command, the one
the statement begins (a `def`/`abbrev` statement's candidate is that `def`). Lenient: only
declaration commands. `open … in`, `example`, `instance`, `#…` and every other command fail. -/
def shapeOk (strict : Bool) (cmds : Array Syntax) : Bool :=
  let kinds := cmds.toList.map declKindOf
  if strict then kinds.length == 1 && kinds.all (·.isSome)
  else !kinds.isEmpty && kinds.all (·.isSome)

/-! ### Untrusted headers -/

def firstAtom (stx : Syntax) : String :=
  ((collectTokens stx {}).atoms.toList.head?.map Compat.trimText).getD stx.getKind.toString

/-- The option a `set_option` command names (its first identifier). -/
def setOptionName? (cmd : Syntax) : Option Name :=
  (collectTokens cmd {}).idents.toList.head?

/-- Why an untrusted header command is refused (`none` = allowed): its kind must be on the
allow-list (or a plain `def`/`abbrev`: ProofNet and PutnamBench headers define helpers such as
`def is_topology …` and `abbrev I : Set ℝ := Icc 0 1`), a `set_option` must name a safe option,
and the command must pass the same atom/identifier/configuration gate as proofs (a `variable`
binder or a `def` body is a term; attributes, `instance`, `unsafe`, `partial` stay refused). -/
def headerCommandProblem (cmd : Syntax) : Option String :=
  let isSetOption := cmd.getKind == Name.mkStr `Lean.Parser.Command "set_option"
  let unsafeOption := if isSetOption then
      (setOptionName? cmd).filter (!headerSafeOptions.contains ·) else none
  let isPlainDef := declKindOf cmd == some "def" || declKindOf cmd == some "abbrev"
  if !headerCommandKinds.contains cmd.getKind && !isPlainDef then
    some ("untrusted header: command `" ++ firstAtom cmd ++ "` (" ++ toString cmd.getKind ++
      ") is not allowed; allowed after the imports: open, universe, namespace, section, " ++
      "noncomputable section, end, variable, set_option, def, abbrev")
  else if let some o := unsafeOption then
    some ("untrusted header: `set_option " ++ toString o ++ "` is not allowed; safe options: " ++
      toString (headerSafeOptions.map toString))
  else
    match forbiddenIn #[cmd] headerKeywords with
    | [] => none
    | found => some ("untrusted header: forbidden " ++ toString found ++ " in `" ++
        firstAtom cmd ++ "`")

/-! ### Allow-list walk (statements and proofs) -/

/-- Does `kind` have an elaborator of its own (term, tactic/conv, or command)? Tactic and conv
kinds share `tacticElabAttribute`. A kind with neither an elaborator nor a macro is structural:
it means something only inside the grammar of the node that contains it. -/
def hasElaborator (env : Environment) (kind : SyntaxNodeKind) : Bool :=
  !(Elab.Term.termElabAttribute.getEntries env kind).isEmpty ||
  !(Elab.Tactic.tacticElabAttribute.getEntries env kind).isEmpty ||
  !(Elab.Command.commandElabAttribute.getEntries env kind).isEmpty

def isTacticKind (env : Environment) (kind : SyntaxNodeKind) : Bool :=
  !(Elab.Tactic.tacticElabAttribute.getEntries env kind).isEmpty ||
  GateAllowList.tacticBlockKinds.contains kind

/-- Every expansion of `stx` by the macros registered for its kind: the results of the macros
that expand it, in table order, and whether one of them failed with an error (not
`unsupportedSyntax`). All of them, not only the first: the tactic framework tries the macros of
a tactic kind one after the other until one elaborates (`expandEval`), so any of them may run. -/
def macroExpansions (env : Environment) (stx : Syntax) : Array Syntax × Bool := Id.run do
  let mut out : Array Syntax := #[]
  let mut failed := false
  for e in Elab.macroAttribute.getEntries env stx.getKind do
    match Compat.runMacro env e.value stx with
    | .ok stx' => out := out.push stx'
    | .error Macro.Exception.unsupportedSyntax => pure ()
    | .error _ => failed := true
  return (out, failed)

/-- Limits of one walk: syntax nodes visited (expansions included) and nested expansions. A
text over either is refused (it would be refused by the elaborator's own limits too). -/
def walkFuel : Nat := 2000000
def maxExpansionDepth : Nat := 64

structure WalkState where
  found : Array String := #[]
  fuel : Nat := walkFuel

def WalkState.add (s : WalkState) (what : String) : WalkState :=
  if s.found.contains what then s else { s with found := s.found.push what }

/-- Configuration clauses `… config := v …` directly among `args` whose value is not a plain
literal (`isPlainLiteral`), as the key's text. -/
def configProblemsAt (args : Array Syntax) (s : WalkState) : WalkState := Id.run do
  let mut s := s
  for i in [0:args.size] do
    let key := args.getD i Syntax.missing
    if isConfigKey key && isAtom (args.getD (i + 1) Syntax.missing) ":=" &&
        !isPlainLiteral (args.getD (i + 2) Syntax.missing) then
      let label := match key with
        | Syntax.atom _ v => Compat.trimText v
        | Syntax.ident _ _ n _ => n.toString
        | _ => "config"
      s := s.add label
  return s

/-- Reviewed kinds with a restriction on their arguments.
* Aesop's clauses can name a tactic or a declaration that Aesop evaluates
  (`(add safe tactic t)`), so `aesop` is admitted without clauses only.
* `open … in` (tactic and term) may open only `GateAllowList.openableNamespaces` (`Classical`,
  which `by_cases` expands to): opening a namespace activates its `scoped` macros, and the
  gate expands macros with the table of the header environment, where those are not active.
  (Identifiers written by a macro carry macro scopes, hence `eraseMacroScopes`.) -/
def restrictedArgsProblem (kind : SyntaxNodeKind) (args : Array Syntax) : Option String :=
  if GateAllowList.noClauseKinds.contains kind &&
      (args.toList.drop 1).any (fun a => !(collectTokens a {}).atoms.isEmpty) then
    some (kind.toString ++ " (clauses)")
  else if GateAllowList.openKinds.contains kind then
    let t := collectTokens (args.getD 1 Syntax.missing) {}
    if t.atoms.isEmpty && !t.idents.isEmpty &&
        t.idents.all (fun n =>
          GateAllowList.openableNamespaces.contains n.eraseMacroScopes) then none
    else some ("open … in (" ++ toString (t.idents.toList.map toString) ++ ")")
  else none

/-- The allow-list walk. `statement`: term syntax only (every tactic-block kind refused).
A node is admitted when
* its kind is `null` or `choice` (every alternative of a `choice` is checked: the elaborator
  may try any), or reviewed (`GateAllowList.allowedKinds`), or structural (no elaborator, no
  macro: part of the grammar of the reviewed node above it); its children are then walked;
* or its kind is not reviewed, has no elaborator, and has macros: then at least one macro must
  expand it and every expansion is walked in its place (so `conv => run_conv …` is judged by
  the `run_tac` it expands to). `path` holds the macro nodes being expanded (`Syntax.structEq`:
  structural equality, source positions ignored): a node equal to one of them is not expanded
  again, which ends the recursion of self-referring macros without admitting anything new.
Everything else is refused with the kind's name. Identifiers and atoms are the deny layer's
and the constant gate's business. -/
partial def walk (env : Environment) (statement : Bool) (path : Array Syntax) (stx : Syntax)
    (s : WalkState) : WalkState :=
  if s.fuel == 0 then s.add "gate: syntax too large" else
  let s := { s with fuel := s.fuel - 1 }
  match stx with
  | Syntax.node _ kind args =>
    let s := configProblemsAt args s
    let walkArgs (s : WalkState) : WalkState :=
      args.foldl (fun s a => walk env statement path a s) s
    if kind == nullKind || kind == choiceKind then walkArgs s
    else if GateAllowList.refusedKinds.contains kind then s.add kind.toString
    else if statement && isTacticKind env kind then s.add kind.toString
    else if GateAllowList.allowedKinds.contains kind then
      (match restrictedArgsProblem kind args with
       | some p => s.add p
       | none => walkArgs s)
    else if hasElaborator env kind then s.add kind.toString
    else if (Elab.macroAttribute.getEntries env kind).isEmpty then walkArgs s  -- structural
    -- A macro node already being expanded on this path (`trivial` ⇒ `… <;> trivial`,
    -- `repeat t` ⇒ `first | (t); repeat t | skip`): its expansions are being checked already.
    else if path.any (·.structEq stx) then s
    else if path.size ≥ maxExpansionDepth then s.add "gate: macro expansion too deep"
    else
      let (expansions, _) := macroExpansions env stx
      if expansions.isEmpty then s.add (kind.toString ++ " (macro did not expand)")
      else expansions.foldl (fun s e => walk env statement (path.push stx) e s) s
  | _ => s

/-- The parts of a declaration command: `(modifiers, [declId, signature], declVal, rest)`, where
`rest` holds what follows the value (`deriving`). `theorem`/`def`/`abbrev` (core
`declaration`) and Mathlib's `lemma` (`declModifiers group("lemma " declId declSig declVal)`,
kind `lemma`, read structurally rather than through its macro). `none` for any other command. -/
def declParts? (cmd : Syntax) : Option (Syntax × Array Syntax × Syntax × Array Syntax) :=
  match declKindOf cmd with
  | none => none
  | some _ =>
    let mods := cmd.getArg 0
    let d := cmd.getArg 1
    -- [keyword, declId, (opt)declSig, declVal, (def: optDefDeriving)]
    some (mods, #[d.getArg 1, d.getArg 2], d.getArg 3, (d.getArgs.toList.drop 4).toArray)

/-- Declaration modifiers a checked declaration may carry: a doc comment and `noncomputable`.
Attributes (`@[implemented_by]`, `@[simp]`, …), `private`/`protected`, `unsafe`, `partial` and
`nonrec` are refused. -/
def modifierProblems (mods : Syntax) : List String :=
  let args := mods.getArgs.toList
  -- child 0 is the optional doc comment; its text is free.
  let atoms := (args.drop 1).foldl (fun t a => collectTokens a t) ({} : Tokens)
  (atoms.atoms.toList.map Compat.trimText).filter (· != "noncomputable") |>.map
    (fun a => "modifier " ++ a)

def hasNoTokens (stx : Syntax) : Bool :=
  let t := collectTokens stx {}
  t.atoms.isEmpty && t.idents.isEmpty

/-- The statement gate: `cmds` is the reference text `statement ++ " sorry"`, parsed. Admitted
(`[]`) when it passes the deny layer (the appended `sorry` allowed) and is exactly one
`theorem`/`lemma`/`def`/`abbrev` with only a doc comment or `noncomputable` as modifiers,
whose name, binders and type contain term syntax only (allow-list walk in statement mode: no
`by`, no tactic block, no auto-param tactic, after macro expansion), whose value is exactly
`sorry` and which has no `where`/`deriving`/termination clause. Entries name the offending
syntax kind, atom or identifier. -/
def statementGateProblems (env : Environment) (cmds : Array Syntax) : IO (List String) := do
  let mut found : Array String := (forbiddenIn cmds ["sorry"]).toArray
  let some cmd := (if cmds.size == 1 then cmds[0]? else none)
    | return (found.push "statement: not exactly one command").toList.eraseDups
  let some (mods, sig, val, rest) := declParts? cmd
    | return (found.push ("statement: command " ++ cmd.getKind.toString ++
        " (only one theorem/lemma/def/abbrev)")).toList.eraseDups
  found := found ++ (modifierProblems mods).toArray
  let s := sig.foldl (fun s x => walk env true #[] x s) ({} : WalkState)
  found := found ++ s.found
  let body := val.getArg 1
  let valueIsSorry := val.getKind == GateAllowList.declValSimpleKind &&
    body.getKind == GateAllowList.sorryTermKind &&
    (val.getArgs.toList.drop 2).all hasNoTokens
  if !valueIsSorry then found := found.push "statement: value other than the appended sorry"
  if !rest.all hasNoTokens then found := found.push "statement: deriving clause"
  return found.toList.eraseDups

/-- The proof gate: `cmds` is the checked text `statement ++ proof`, parsed. Admitted (`[]`)
when it passes the deny layer and every command is a `theorem`/`lemma`/`def`/`abbrev` (how many
is the caller's rule: strict = one) with only a doc comment or `noncomputable` as modifiers and
no `deriving`, whose every syntax node passes the allow-list walk (tactics and terms, after
macro expansion, tactic configurations plain literals). Entries name the offending syntax kind,
atom or identifier. -/
def proofGateProblems (env : Environment) (cmds : Array Syntax) : IO (List String) := do
  let mut found : Array String := (forbiddenIn cmds).toArray
  let mut s : WalkState := {}
  for cmd in cmds do
    match declParts? cmd with
    | none => found := found.push ("command " ++ cmd.getKind.toString)
    | some (mods, sig, val, rest) =>
      found := found ++ (modifierProblems mods).toArray
      s := (sig.push val).foldl (fun s x => walk env false #[] x s) s
      if !rest.all hasNoTokens then found := found.push "deriving"
  return (found ++ s.found).toList.eraseDups

/-! ### Untrusted headers, with the allow-list -/

/-- `headerCommandProblem` plus the allow-list walk (proof mode: tactics and terms, macro
expansion, literal configurations) over what a header command elaborates: the signature and
value of a plain `def`/`abbrev` and the binders of a `variable`. `headerCommandProblem` alone
sees only the deny list, which misses evaluating syntax such as Mathlib's `trace <term>` in
`def d : True := by trace …; trivial` (the header's `def` body runs while the header is
elaborated). Takes the environment the command will be elaborated in (for its macro and
elaborator tables); `Session.elabGatedCommands` calls it for every untrusted header command. -/
def headerCommandProblemIn (env : Environment) (cmd : Syntax) : Option String :=
  match headerCommandProblem cmd with
  | some p => some p
  | none =>
    let parts : Array Syntax :=
      (match declParts? cmd with
       | some (_, sig, val, _) => sig.push val
       | none =>
         if cmd.getKind == Name.mkStr `Lean.Parser.Command "variable" then #[cmd.getArg 1]
         else #[])
    let s := parts.foldl (fun s x => walk env false #[] x s) ({} : WalkState)
    if s.found.isEmpty then none
    else some ("untrusted header: not admitted " ++ toString s.found.toList ++ " in `" ++
      firstAtom cmd ++ "`")

/-! ### Constant gate (after elaboration) -/

/-- Is `n` inside one of the denied namespaces (or one of the denied constants)? -/
def deniedByName (n : Name) : Bool :=
  GateAllowList.deniedConstantPrefixes.any (·.isPrefixOf n)

/-- Does the type of `ci` mention an effect type (`IO`, `EIO`, `BaseIO`, `ST`, …)? -/
def hasEffectType (ci : ConstantInfo) : Bool :=
  ci.type.getUsedConstants.any (GateAllowList.effectTypes.contains ·)

/-- Why the constant `n` may not appear in a checked proof (`none` = it may). A theorem never
does: a proof of a proposition runs nothing, and the proof terms of `omega`, `simp` or
`norm_num` cite lemmas from namespaces whose definitions are denied. -/
def constantProblem (env : Environment) (n : Name) : Option String :=
  match env.find? n with
  | none => if deniedByName n then some n.toString else none
  | some (ConstantInfo.thmInfo _) => none
  | some ci =>
    if deniedByName n then some n.toString
    else if ci.isUnsafe then some (n.toString ++ " (unsafe)")
    else if ci.isPartial then some (n.toString ++ " (partial)")
    else if hasEffectType ci then some (n.toString ++ " (effect type)")
    else
      let compiled := Compat.isExternConst env n || Compat.isImplementedBy env n
      let isOpaque := (match ci with | ConstantInfo.opaqueInfo _ => true | _ => false)
      if compiled && isOpaque then some (n.toString ++ " (extern/implemented_by)") else none

/-- The constant gate: every constant that the info trees' term infos (`TermInfo.expr`) and the
types and values of `newConsts` mention directly, checked by `constantProblem`: nothing from
`IO`/`EIO`/`BaseIO`/`EStateM.run`/`timeit`/`IO.FS`/`IO.Process`/`Lean.Elab`/`Lean.Meta`/
`Lean.Core`/`ST.Ref`/… (`GateAllowList.deniedConstantPrefixes`), no `unsafe` or `partial`
constant, no constant whose type mentions an effect type, no opaque `extern`/`implemented_by`
constant, none of `Lean.reduceBool`/`reduceNat`/`ofReduceBool`/`ofReduceNat` (theorems are
exempt: see `constantProblem`). The new
constants themselves are checked too. Dot-identifiers resolved from an expected type
(`timeit "" (.FS.writeFile …)`) are seen here, where the syntax gate saw only `.FS.writeFile`.
This runs after elaboration: it keeps such a proof from passing, while the syntax gate is what
keeps evaluating syntax from running at all. `headerEnv` tells which constants are new. -/
def constantGateProblems (headerEnv env : Environment) (trees : Array Elab.InfoTree)
    (newConsts : List Name) : IO (List String) := do
  let mut names : Array Name := #[]
  for t in trees do
    names := t.foldInfo (init := names) fun _ info acc =>
      match info with
      | Elab.Info.ofTermInfo ti => acc ++ ti.expr.getUsedConstants
      | _ => acc
  for n in newConsts do
    names := names.push n
    if let some ci := env.find? n then
      names := names ++ ci.type.getUsedConstants
      match ci with
      | ConstantInfo.defnInfo v => names := names ++ v.value.getUsedConstants
      | ConstantInfo.thmInfo v => names := names ++ v.value.getUsedConstants
      | ConstantInfo.opaqueInfo v => names := names ++ v.value.getUsedConstants
      | _ => pure ()
  let mut seen : NameSet := {}
  let mut found : Array String := #[]
  for n in names do
    if seen.contains n then continue
    seen := seen.insert n
    -- A new constant is judged in `env`; an imported one is the same in both.
    let e := if headerEnv.contains n then headerEnv else env
    if let some p := constantProblem e n then
      found := found.push p
  return found.toList

end STP
