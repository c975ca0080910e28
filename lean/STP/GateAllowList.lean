import Lean

/-!
The reviewed syntax kinds of the proof and statement gates (`STP.Gate`), and the constant
deny-set of the constant gate. Every entry is `(kind, keyword)`: the syntax node kind as the
pinned parser produces it (Lean `v4.9.0-rc1`, Mathlib `d1d1e4b7`, Batteries `f96a344`, Aesop
`7e3bd93`) and the keyword a proof writes (`scripts/gate_corpus.py` reads the keywords from this
file to estimate the rejection rate of the list on the corpus; provenance and the corpus figure:
lean/gate/ALLOWLIST_SOURCES.md).

Only kinds with an **elaborator** are listed: a kind that is a pure macro is admitted when every
expansion passes (the gate expands it with the environment's macro table), and a kind with
neither elaborator nor macro is structural (part of the grammar of the reviewed node above it).
A kind is reviewed when its elaborator neither evaluates a user term (`evalExpr`, `evalTerm`,
`evalConst`, `run_tac`), nor changes the environment or options beyond the goal, nor performs
I/O; tactic configurations are evaluated, so they must be plain literals (`Gate.isPlainLiteral`).
A name that does not exist at the pin only fails to admit (never admits something else); where
the exact spelling at the pin was not certain both spellings are listed.
-/

namespace STP.GateAllowList

open Lean

/-- Term elaborators (core `Lean/Elab/BuiltinNotation.lean`, `App.lean`, `Binders.lean`,
`Match.lean`, `StructInst.lean`, `Do.lean` is NOT here: `do` blocks are refused). -/
def termKinds : List (Name × String) := [
  (`Lean.Parser.Term.app, "app"), (`Lean.Parser.Term.paren, "(…)"),
  (`Lean.Parser.Term.tuple, "(…, …)"), (`Lean.Parser.Term.typeAscription, "(e : t)"),
  (`Lean.Parser.Term.anonymousCtor, "⟨…⟩"), (`Lean.Parser.Term.hole, "_"),
  (`Lean.Parser.Term.syntheticHole, "?_"), (`Lean.Parser.Term.fun, "fun"),
  (`Lean.Parser.Term.forall, "∀"), (`Lean.Parser.Term.arrow, "→"),
  (`Lean.Parser.Term.depArrow, "(x : α) → β"), (`Lean.Parser.Term.explicit, "@"),
  (`Lean.Parser.Term.explicitUniv, "f.{u}"), (`Lean.Parser.Term.proj, "e.f"),
  (`Lean.Parser.Term.pipeProj, "|>."), (`Lean.Parser.Term.dotIdent, ".c"),
  (`Lean.Parser.Term.byTactic, "by"), (`Lean.Parser.Term.byTactic', "by"),
  (`Lean.Parser.Term.have, "have"), (`Lean.Parser.Term.haveI, "haveI"),
  (`Lean.Parser.Term.letI, "letI"), (`Lean.Parser.Term.let, "let"),
  (`Lean.Parser.Term.let_fun, "let_fun"), (`Lean.Parser.Term.show, "show"),
  (`Lean.Parser.Term.suffices, "suffices"), (`Lean.Parser.Term.prop, "Prop"),
  (`Lean.Parser.Term.type, "Type"), (`Lean.Parser.Term.sort, "Sort"),
  (`Lean.Parser.Term.cdot, "·"), (`Lean.Parser.Term.structInst, "{ x := … }"),
  (`Lean.Parser.Term.match, "match"), (`Lean.Parser.Term.nomatch, "nomatch"),
  (`Lean.Parser.Term.nofun, "nofun"), (`Lean.Parser.Term.binop, "binop%"),
  (`Lean.Parser.Term.binop_lazy, "binop_lazy%"), (`Lean.Parser.Term.leftact, "leftact%"),
  (`Lean.Parser.Term.rightact, "rightact%"), (`Lean.Parser.Term.unop, "unop%"),
  (`Lean.Parser.Term.binrel, "binrel%"), (`Lean.Parser.Term.binrel_no_prop, "binrel_no_prop%"),
  (`Lean.Parser.Term.noImplicitLambda, "no_implicit_lambda%"),
  (`Lean.Parser.Term.typeOf, "type_of%"), (`Lean.Parser.Term.ensureTypeOf, "ensure_type_of%"),
  (`Lean.Parser.Term.ensureExpectedType, "ensure_expected_type%"),
  (`Lean.Parser.Term.subst, "▸"), (`Lean.Parser.Term.noindex, "no_index"),
  (`Lean.Parser.Term.inaccessible, ".(e)"), (`Lean.Parser.Term.namedPattern, "x@p"),
  (`Lean.Parser.Term.open, "open … in"),
  -- targets of the `if … then … else` macros (`let_mvar% ?m := c; wait_if_type_mvar% ?m; …`)
  (`Lean.Parser.Term.letMVar, "let_mvar%"),
  (`Lean.Parser.Term.waitIfTypeMVar, "wait_if_type_mvar%"),
  (`Lean.Parser.Term.waitIfTypeContainsMVar, "wait_if_type_contains_mvar%"),
  (`Lean.Parser.Term.waitIfContainsMVar, "wait_if_contains_mvar%"),
  -- `↑e`, `⇑e`, `↥e` (`Init/Coe.lean`, `(name := coeNotation)` …; spelled both ways)
  (`coeNotation, "↑"), (`coeFunNotation, "⇑"), (`coeSortNotation, "↥"),
  (`Lean.Parser.Term.coeNotation, "↑"), (`Lean.Parser.Term.coeFunNotation, "⇑"),
  (`Lean.Parser.Term.coeSortNotation, "↥"),
  -- `mod_cast e` (core `Lean/Elab/Tactic/NormCast.lean`), target of `exact_mod_cast`
  (`Lean.Parser.Term.modCast, "mod_cast"), (`Lean.Elab.Tactic.NormCast.modCast, "mod_cast"),
  -- `calc` (namespace `Lean`: `syntax (name := calc) "calc" calcSteps : term`)
  (`Lean.calc, "calc"), (`Lean.Parser.Term.calc, "calc"),
  -- Mathlib term elaborators of statement syntax: `Type*`/`Sort*` (`Mathlib/Tactic/TypeStar.lean`,
  -- root namespace), `fbinop%` (target of `s ×ˢ t`, `Mathlib/Tactic/FBinop.lean`), the
  -- partially applied coercions `(↑)`, `(⇑)`, `(↥)` (`Mathlib/Tactic/Coe.lean`)
  (`«termType*», "Type*"), (`«termSort*», "Sort*"), (`FBinopElab.prodSyntax, "fbinop%"),
  (`Lean.Elab.Term.CoeImpl.«term(↑)», "(↑)"),
  (`Lean.Elab.Term.CoeImpl.«term(⇑)», "(⇑)"),
  (`Lean.Elab.Term.CoeImpl.«term(↥)», "(↥)"),
  -- literals
  (`num, "numeral"), (`str, "string"), (`scientific, "decimal"), (`char, "char")]

/-- Tactic elaborators of core (`Init/Tactics.lean`, `Init/Conv.lean`, `Init/Guard.lean`,
`Init/RCases.lean`, `Init/Ext.lean`, the Omega and NormCast frontends). -/
def coreTacticKinds : List (Name × String) := [
  (`Lean.Parser.Tactic.tacticSeq, "tactic block"),
  (`Lean.Parser.Tactic.tacticSeq1Indented, "tactic block"),
  (`Lean.Parser.Tactic.tacticSeqBracketed, "{ tacs }"),
  (`Lean.cdot, "·"), (`Lean.Parser.Tactic.paren, "(tacs)"),
  (`Lean.Parser.Tactic.withAnnotateState, "with_annotate_state"),
  (`Lean.Parser.Tactic.intro, "intro"), (`Lean.Parser.Tactic.intros, "intros"),
  (`Lean.Parser.Tactic.introMatch, "intro |"), (`Lean.Parser.Tactic.match, "match"),
  (`Lean.Parser.Tactic.rename, "rename"), (`Lean.Parser.Tactic.revert, "revert"),
  (`Lean.Parser.Tactic.clear, "clear"), (`Lean.Parser.Tactic.subst, "subst"),
  (`Lean.Parser.Tactic.substVars, "subst_vars"), (`Lean.Parser.Tactic.substEqs, "subst_eqs"),
  (`Lean.Parser.Tactic.assumption, "assumption"),
  (`Lean.Parser.Tactic.contradiction, "contradiction"),
  (`Lean.Parser.Tactic.apply, "apply"), (`Lean.Parser.Tactic.exact, "exact"),
  (`Lean.Parser.Tactic.refine, "refine"), (`Lean.Parser.Tactic.refine', "refine'"),
  (`Lean.Parser.Tactic.constructor, "constructor"), (`Lean.Parser.Tactic.left, "left"),
  (`Lean.Parser.Tactic.right, "right"), (`Lean.Parser.Tactic.case, "case"),
  (`Lean.Parser.Tactic.case', "case'"), (`Lean.Parser.Tactic.allGoals, "all_goals"),
  (`Lean.Parser.Tactic.anyGoals, "any_goals"), (`Lean.Parser.Tactic.focus, "focus"),
  (`Lean.Parser.Tactic.skip, "skip"), (`Lean.Parser.Tactic.done, "done"),
  (`Lean.Parser.Tactic.first, "first"), (`Lean.Parser.Tactic.fail, "fail"),
  (`Lean.Parser.Tactic.rotateLeft, "rotate_left"),
  (`Lean.Parser.Tactic.rotateRight, "rotate_right"),
  (`Lean.Parser.Tactic.withReducible, "with_reducible"),
  (`Lean.Parser.Tactic.withReducibleAndInstances, "with_reducible_and_instances"),
  (`Lean.Parser.Tactic.withUnfoldingAll, "with_unfolding_all"),
  (`Lean.Parser.Tactic.eqRefl, "eq_refl"), (`Lean.Parser.Tactic.applyRfl, "apply_rfl"),
  (`Lean.Parser.Tactic.acRfl, "ac_rfl"), (`Lean.Parser.Tactic.change, "change"),
  (`Lean.Parser.Tactic.changeWith, "change"), (`Lean.Parser.Tactic.rewriteSeq, "rewrite"),
  (`Lean.Parser.Tactic.injection, "injection"), (`Lean.Parser.Tactic.injections, "injections"),
  (`Lean.Parser.Tactic.simp, "simp"), (`Lean.Parser.Tactic.simpAll, "simp_all"),
  (`Lean.Parser.Tactic.dsimp, "dsimp"), (`Lean.Parser.Tactic.simpa, "simpa"),
  (`Lean.Parser.Tactic.delta, "delta"), (`Lean.Parser.Tactic.unfold, "unfold"),
  (`Lean.Parser.Tactic.induction, "induction"), (`Lean.Parser.Tactic.cases, "cases"),
  (`Lean.Parser.Tactic.generalize, "generalize"), (`Lean.Parser.Tactic.renameI, "rename_i"),
  (`Lean.Parser.Tactic.repeat', "repeat'"), (`Lean.Parser.Tactic.repeat1', "repeat1'"),
  (`Lean.Parser.Tactic.split, "split"), (`Lean.Parser.Tactic.specialize, "specialize"),
  (`Lean.Parser.Tactic.congr, "congr"), (`Lean.Parser.Tactic.replace, "replace"),
  (`Lean.Parser.Tactic.tacDepIfThenElse, "if h : c then"),
  (`Lean.Parser.Tactic.tacIfThenElse, "if c then"),
  (`Lean.Parser.Tactic.omega, "omega"), (`Lean.Parser.Tactic.decide, "decide"),
  (`Lean.Parser.Tactic.normCast0, "norm_cast0"), (`Lean.Parser.Tactic.pushCast, "push_cast"),
  (`Lean.Parser.Tactic.symm, "symm"), (`Lean.Parser.Tactic.symmSaturate, "symm_saturate"),
  (`Lean.Parser.Tactic.open, "open … in"), (`Lean.Parser.Tactic.traceMessage, "trace \"msg\""),
  (`Lean.Parser.Tactic.guardTarget, "guard_target"), (`Lean.Parser.Tactic.guardHyp, "guard_hyp"),
  (`Lean.Parser.Tactic.rcases, "rcases"), (`Lean.Parser.Tactic.obtain, "obtain"),
  (`Lean.Parser.Tactic.rintro, "rintro"),
  (`Lean.Elab.Tactic.Ext.ext, "ext"), (`Lean.Elab.Tactic.Ext.ext1, "ext1"),
  (`Lean.Parser.Tactic.ext, "ext"),
  (`Lean.calcTactic, "calc"), (`Lean.Parser.Tactic.calc, "calc"),
  -- conv mode (`Init/Conv.lean`)
  (`Lean.Parser.Tactic.Conv.conv, "conv"), (`Lean.Parser.Tactic.Conv.convSeq, "conv block"),
  (`Lean.Parser.Tactic.Conv.convSeq1Indented, "conv block"),
  (`Lean.Parser.Tactic.Conv.convSeqBracketed, "conv block"),
  (`Lean.Parser.Tactic.Conv.lhs, "lhs"), (`Lean.Parser.Tactic.Conv.rhs, "rhs"),
  (`Lean.Parser.Tactic.Conv.arg, "arg"), (`Lean.Parser.Tactic.Conv.enter, "enter"),
  (`Lean.Parser.Tactic.Conv.rewrite, "rewrite"), (`Lean.Parser.Tactic.Conv.simp, "simp"),
  (`Lean.Parser.Tactic.Conv.dsimp, "dsimp"), (`Lean.Parser.Tactic.Conv.congr, "congr"),
  (`Lean.Parser.Tactic.Conv.skip, "skip"), (`Lean.Parser.Tactic.Conv.change, "change"),
  (`Lean.Parser.Tactic.Conv.ext, "ext"), (`Lean.Parser.Tactic.Conv.unfold, "unfold"),
  (`Lean.Parser.Tactic.Conv.pattern, "pattern"), (`Lean.Parser.Tactic.Conv.first, "first"),
  (`Lean.Parser.Tactic.Conv.paren, "(convs)"), (`Lean.Parser.Tactic.Conv.nestedConv, "conv"),
  (`Lean.Parser.Tactic.Conv.nestedTactic, "tactic =>"), (`Lean.Parser.Tactic.Conv.done, "done"),
  (`Lean.Parser.Tactic.Conv.normCast, "norm_cast")]

/-- Tactic elaborators of Mathlib `d1d1e4b7`, Batteries `f96a344` and Aesop `7e3bd93` (kind =
enclosing namespace ++ `(name := …)`, or the name Lean generates from the syntax: category +
capitalised atoms + `_` per argument). -/
def libraryTacticKinds : List (Name × String) := [
  (`Mathlib.Tactic.normNum, "norm_num"), (`Mathlib.Tactic.normNum1, "norm_num1"),
  (`Mathlib.Tactic.normNumConv, "norm_num"), (`Mathlib.Tactic.normNum1Conv, "norm_num1"),
  (`Mathlib.Tactic.Positivity.positivity, "positivity"),
  (`linarith, "linarith"), (`nlinarith, "nlinarith"),
  (`Mathlib.Tactic.FieldSimp.fieldSimp, "field_simp"),
  (`Mathlib.Tactic.intervalCases, "interval_cases"),
  (`Mathlib.Tactic.Ring.ring1, "ring1"), (`ring1, "ring1"),
  (`Mathlib.Tactic.RingNF.ringNF, "ring_nf"), (`Mathlib.Tactic.RingNF.ring1NF, "ring1_nf"),
  (`Mathlib.Tactic.RingNF.ringNFConv, "ring_nf"),
  (`Mathlib.Tactic.tacticTry_this_, "try_this"), (`Mathlib.Tactic.convTry_this_, "try_this"),
  (`Mathlib.Tactic.PushNeg.tacticPush_neg_, "push_neg"),
  (`Mathlib.Tactic.PushNeg.pushNegConv, "push_neg"),
  (`Mathlib.Tactic.useSyntax, "use"), (`byContra!, "by_contra!"),
  (`Mathlib.Tactic.cases', "cases'"), (`Mathlib.Tactic.induction', "induction'"),
  (`Mathlib.Tactic.Tauto.tauto, "tauto"), (`Mathlib.Tactic.Zify.zify, "zify"),
  (`Mathlib.Tactic.Rify.rify, "rify"),
  (`Mathlib.Tactic.Contrapose.contrapose, "contrapose"),
  (`Mathlib.Tactic.Contrapose.contrapose!, "contrapose!"),
  (`Mathlib.Tactic.nthRewriteSeq, "nth_rewrite"), (`Mathlib.Tactic.lift, "lift"),
  (`Mathlib.Tactic.Choose.choose, "choose"), (`Mathlib.Tactic.wlog, "wlog"),
  (`Mathlib.Tactic.splitIfs, "split_ifs"), (`Mathlib.Tactic.applyFun, "apply_fun"),
  (`Mathlib.Tactic.LinearCombination.linearCombination, "linear_combination"),
  (`Mathlib.Tactic.convert, "convert"), (`Congr!.congr!, "congr!"),
  (`Mathlib.Tactic.GCongr.tacticGcongr_With_, "gcongr"),
  (`Mathlib.Tactic.setTactic, "set"), (`Mathlib.Tactic.tacticSimp_rw___, "simp_rw"),
  (`Mathlib.Tactic.tacticTrans__, "trans"), (`Mathlib.Tactic.filterUpwards, "filter_upwards"),
  (`Mathlib.Tactic.Abel.abel1, "abel1"), (`Mathlib.Tactic.Abel.abelNF, "abel_nf"),
  (`Batteries.Tactic.exacts, "exacts"),
  (`Aesop.Frontend.Parser.aesopTactic, "aesop")]

def allowedEntries : List (Name × String) := termKinds ++ coreTacticKinds ++ libraryTacticKinds

def allowedKinds : NameSet :=
  allowedEntries.foldl (fun s e => s.insert e.1) {}

/-- Kinds whose arguments may carry clauses that name code to run (Aesop's
`(add safe tactic t)`, `(rule_sets := …)`): admitted only with no clauses. -/
def noClauseKinds : List Name := [`Aesop.Frontend.Parser.aesopTactic]

/-- `open … in` as a tactic and as a term: `[keyword, openDecl, "in", body]`. -/
def openKinds : List Name := [`Lean.Parser.Tactic.open, `Lean.Parser.Term.open]

/-- What `open … in` may open (`openSimple`, identifiers only): `Classical`, the target of the
`by_cases` macro (`open Classical in refine if h : p then ?pos else ?neg`). -/
def openableNamespaces : List Name := [`Classical]

/-- Kinds that open a tactic block: refused anywhere in a statement (term syntax only), along
with every kind that has a tactic elaborator. `binderTactic` is an auto-param
`(h : p := by tac)`, whose tactic runs wherever the statement is used. -/
def tacticBlockKinds : List Name :=
  [`Lean.Parser.Term.byTactic, `Lean.Parser.Term.byTactic', `Lean.Parser.Term.binderTactic,
   `Lean.Parser.Tactic.tacticSeq, `Lean.Parser.Tactic.tacticSeq1Indented,
   `Lean.Parser.Tactic.tacticSeqBracketed]

/-- Structural kinds refused even inside a reviewed node: auxiliary definitions (`where`,
`let rec`: extra declarations, protocol 4 item 7). -/
def refusedKinds : List Name :=
  [`Lean.Parser.Term.whereDecls, `Lean.Parser.Term.letrec, `Lean.Parser.Command.whereStructInst]

/-- `:= body` of a declaration (children `[":=", body, Termination.suffix, whereDecls?]`) and
the `sorry` term: the shape of the reference text `statement ++ " sorry"`. -/
def declValSimpleKind : Name := `Lean.Parser.Command.declValSimple
def sorryTermKind : Name := `Lean.Parser.Term.sorry

/-- Namespaces and constants no checked proof may mention (`Name.isPrefixOf`: the constant
itself and everything under it). Effects (`IO` and its `FS`/`Process` parts, `EIO`, `BaseIO`,
`ST.Ref`/`ST.Prim`, `EStateM.run`, `timeit`), metaprogramming (`Lean.Elab`, `Lean.Meta`,
`Lean.Core`, `Lean.Compiler`, `Lean.Environment`, …), trust shortcuts (`Lean.reduceBool`,
`Lean.reduceNat`, `Lean.ofReduceBool`, `Lean.ofReduceNat`, `Lean.trustCompiler`) and
debugging/unsafe primitives. -/
def deniedConstantPrefixes : List Name := [
  `IO, `EIO, `BaseIO, `EStateM.run, `EStateM.run', `timeit, `allocprof, `System,
  `ST.Ref, `ST.Prim, `runST, `runEST,
  `Lean.Elab, `Lean.Meta, `Lean.Core, `Lean.Compiler, `Lean.IR, `Lean.Environment,
  `Lean.Server, `Lean.PrettyPrinter, `Lean.Parser, `Lean.Widget, `Lean.Linter,
  `Lean.addDecl, `Lean.addAndCompile, `Lean.compileDecl, `Lean.evalConst,
  `Lean.reduceBool, `Lean.reduceNat, `Lean.ofReduceBool, `Lean.ofReduceNat,
  `Lean.trustCompiler,
  `unsafeCast, `unsafeBaseIO, `unsafeIO, `unsafeEIO, `ptrAddrUnsafe, `withPtrAddrUnsafe,
  `dbgTrace, `dbgTraceIfShared, `dbgTraceVal, `dbgSleep, `dbgStackTrace, `panicCore]

/-- Types whose mention in a constant's type marks it as an effect or a metaprogram. -/
def effectTypes : List Name := [
  `IO, `EIO, `BaseIO, `IO.RealWorld, `ST, `EST, `EStateM, `StateRefT', `IO.Ref, `ST.Ref,
  `Task, `IO.Promise, `Lean.MacroM, `Lean.AttrM, `Lean.ImportM, `Lean.Core.CoreM,
  `Lean.Meta.MetaM, `Lean.Elab.Term.TermElabM, `Lean.Elab.Tactic.TacticM,
  `Lean.Elab.Command.CommandElabM]

end STP.GateAllowList
