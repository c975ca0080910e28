/-
The syntax gate: what may appear in text we elaborate for somebody else. It runs on parsed
syntax before any elaboration, because elaboration itself can run code (`#eval`, `eval%`, tactic
configurations compiled and evaluated with `evalExpr`, ...). Proof text, conjectured statements
and untrusted headers are all adversarial (docs/lean.md, threat model). Everything here is a
pure function of `Syntax`.
-/
import Lean
import STP.Compat

open Lean

namespace STP

/-! ### Deny lists -/

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

/-- A configuration value that elaborating cannot turn into running code: literals, `true`,
`false`, `.ctor`, and structure instances whose fields are such values. Anything else (a
function, a `do` block, a name of a definition, `{ c with … }`, a field abbreviation) is
compiled and run by `evalExpr` when the tactic reads its configuration. -/
partial def isPlainLiteral (stx : Syntax) : Bool :=
  match stx with
  | Syntax.atom _ _ => true
  | Syntax.ident _ _ n _ => n == `true || n == `false
  | Syntax.node _ k args =>
    if k == Compat.structInstFieldKind then
      args.size == 3 && isPlainFieldName (args.getD 0 Syntax.missing) &&
        isPlainLiteral (args.getD 2 Syntax.missing)
    else
      Compat.plainConfigKinds.contains k && args.all isPlainLiteral
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

end STP
