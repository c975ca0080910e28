import Mathlib.Algebra.Group.Semiconj.Defs

open SemiconjBy

theorem golden_ok {M : Type*} [Monoid M] (a : M) : SemiconjBy a 1 1 :=
  SemiconjBy.one_right a

theorem golden_broken (n : Nat) : n + 0 = n :=
  golden_no_such_lemma n
