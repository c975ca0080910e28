"""SFT builders: the exact reference strings (docs/reference.md §3.4, §3.5), the clean format, premise-sharing
pairs (§7 step 5), the lemma dictionary, and the optional round-trip verification."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from standin import standin_command, with_checker

from stp.config import load_config
from stp.extract.assemble import assemble_module
from stp.extract.records import ExtractedTheorem, TheoremContext
from stp.extract.roundtrip import RENAME_SUFFIX, roundtrip_check, roundtrip_item
from stp.extract.sft import (
    FENCE,
    build_sft,
    conjecture_example,
    lemma_entries,
    length_stats,
    prover_example,
    sharing_pairs,
)
from stp.lean.protocol import extractor_output_decoder

# The one extractor fixture tree (sources + golden lines), shared with the Lean smoke run.
FIXTURES = Path(__file__).resolve().parents[2] / "lean" / "test" / "golden"


def _fixture() -> tuple[list[ExtractedTheorem], dict[str, str]]:
    msgs: dict[str, list] = defaultdict(list)
    for line in (FIXTURES / "extractor_out.jsonl").read_bytes().splitlines():
        m = extractor_output_decoder.decode(line)
        msgs[m.module].append(m)
    theorems, sources = [], {}
    for module in ("Mathlib.Algebra.Group.Semiconj.Defs", "Mathlib.Algebra.Group.Semiconj.Basic"):
        rel = module.replace(".", "/") + ".lean"
        source = (FIXTURES / "mathlib" / rel).read_bytes()
        sources[module] = source.decode()
        theorems += assemble_module(module, rel, source, msgs[module]).theorems
    return theorems, sources


def _thm(name: str, module: str, start: int, premises: list[str]) -> ExtractedTheorem:
    return ExtractedTheorem(name=name, module=module, path="x.lean", keyword="theorem",
                            statement=f"theorem {name} : True :=", proof=" by trivial",
                            val_kind="term", premises=premises, start_byte=start,
                            end_byte=start + 10, context=TheoremContext(text="import X\n"))


def test_sharing_pairs_order_and_scope() -> None:
    a = _thm("A", "M", 0, ["p", "q"])
    b = _thm("B", "M", 10, ["p"])
    c = _thm("C", "M", 20, ["p", "q", "r"])
    other = _thm("D", "N", 0, ["p"])
    pairs = [(e.name, p, h.name) for e, p, h in sharing_pairs([c, a, other, b],
                                                              {"p", "q", "A"})]
    # For each hard theorem, premises in order, earlier theorems most recent first; never
    # across files; unknown premises (r) ignored.
    assert pairs == [("A", "p", "B"), ("B", "p", "C"), ("A", "p", "C"), ("A", "q", "C")]


def test_shared_lemma_must_be_a_tactic_theorem() -> None:
    """The original linked only premises that are keys of `theorem_dict` (theorems with tactic
    proofs): a term-mode theorem used by two tactic theorems is not a shared lemma."""
    from msgspec.structs import replace

    def tactic(name: str, start: int, premises: list[str]) -> ExtractedTheorem:
        return replace(_thm(name, "M", start, premises), proof=" by\n  simp")

    term_lemma = replace(_thm("L", "M", 0, []), proof=" rfl")
    tac_lemma = tactic("T", 5, [])
    easy = tactic("E", 10, ["L", "T"])
    hard = tactic("H", 20, ["L", "T"])
    theorems = [term_lemma, tac_lemma, easy, hard]
    sources = {"M": "x" * 40}
    build = build_sft(theorems, sources, fmt="stp", eval_size=0, seed=0)
    lemmas_used = [ex.prompt.split("<lemma>\n", 1)[1].split("\n", 1)[0] for ex in build.conjecture]
    assert len(build.conjecture) == 1, lemmas_used
    assert "T" in lemmas_used[0] and "L" not in lemmas_used[0]


def test_stp_prover_format_is_file_prefix_and_full_text() -> None:
    theorems, sources = _fixture()
    thm = next(t for t in theorems if t.name == "SemiconjBy.mul_left")
    ex = prover_example(thm, sources[thm.module], "stp")
    src = sources[thm.module]
    start = src.index("/-- If `b` semiconjugates")
    assert ex.prompt == "Complete the following Lean 4 code:\n\n```lean4\n" + src[:start]
    assert ex.target == src[start:src.index("\n", src.index("rw [mul_assoc, hb.eq"))]
    assert ex.weight == 1.0


def test_stp_conjecture_format_exact() -> None:
    theorems, sources = _fixture()
    by = {t.name: t for t in theorems}
    easy, lemma, hard = by["SemiconjBy.mul_right"], by["SemiconjBy.eq"], by["SemiconjBy.mul_left"]
    ex = conjecture_example(easy, lemma, hard, sources[easy.module], "stp")
    src = sources[easy.module]
    context = src[:src.index("/-- If `a` semiconjugates `x` to `y` and `x'`")]
    assert ex.prompt == (
        "Complete the following Lean 4 code:\n\n```lean4\n" + context.strip() + "\n<lemma>\n"
        + lemma.full_text.strip() + "\n<easy theorem>\n" + easy.full_text.strip()
        + "\n<hard theorem>")
    assert ex.target.startswith("\n/-- If `b` semiconjugates")
    assert ex.target.endswith("SemiconjBy (a * b) x z\n</hard theorem>")
    assert ":=" not in ex.target


def test_clean_formats() -> None:
    theorems, _ = _fixture()
    by = {t.name: t for t in theorems}
    wrapped = by["SemiconjBy.eq_one_iff"]
    ex = prover_example(wrapped, None, "clean")
    assert ex.prompt == FENCE + wrapped.context.text + "\nvariable (a) in\n" + wrapped.statement
    assert ex.prompt.endswith("x = 1 ↔ y = 1 :=") and ex.target == wrapped.proof
    conj = conjecture_example(by["SemiconjBy.mul_right"], by["SemiconjBy.eq"],
                              by["SemiconjBy.mul_left"], None, "clean")
    assert "\n<lemma>\n/-- Equality behind" in conj.prompt and "  h\n<easy" not in conj.prompt
    assert conj.target == ("\ntheorem mul_left (ha : SemiconjBy a y z) (hb : SemiconjBy b x y) "
                           ": SemiconjBy (a * b) x z\n</hard theorem>")


def test_build_sft_counts_split_and_determinism() -> None:
    theorems, sources = _fixture()
    build = build_sft(theorems, sources, fmt="stp", eval_size=3, seed=0)
    assert len(build.lemmas) == 16
    # The fixture's one premise shared by two tactic theorems is a term-mode theorem, which the
    # original's theorem_dict (tactic proofs only) did not link: no conjecture example.
    assert len(build.conjecture) == 0
    tactic = [t for t in theorems if " by" in t.proof or "by\n" in t.proof]
    assert len(build.prove_train) + len(build.prove_eval) == len(tactic) == 12
    assert len(build.prove_eval) == 3 and len(build.sft) == 9
    again = build_sft(theorems, sources, fmt="stp", eval_size=3, seed=0)
    assert again.sft == build.sft and again.prove_eval == build.prove_eval
    stats = length_stats(build.prove_train)
    assert stats["prompt"]["max"] >= stats["prompt"]["median"] > 0


def test_lemma_dictionary_statements() -> None:
    theorems, _ = _fixture()
    entries = {e.name: e for e in lemma_entries(theorems)}
    assert entries["SemiconjBy.one_right"].statement == (
        "/-- Any element semiconjugates `1` to `1`. -/\n@[to_additive (attr := simp) \"Any "
        "element semiconjugates `0` to `0`.\"]\ntheorem one_right (a : M) : SemiconjBy a 1 1")
    assert entries["SemiconjBy.zpow_right"].statement.endswith("SemiconjBy a (x ^ m) (y ^ m)")
    assert entries["SemiconjBy.eq"].module == "Mathlib.Algebra.Group.Semiconj.Defs"


def test_lemma_vocabulary_defaults_to_tactic_proofs(tmp_path: Path) -> None:
    """The default vocabulary is the original's (theorems with tactic proofs); "all" keeps the
    term-mode ones too."""
    from stp.config import STPConfig
    from stp.data.lemmas import load_lemma_dict, write_lemma_dict

    theorems, _ = _fixture()
    entries = lemma_entries(theorems)
    tactic = {t.name for t in theorems if " by" in t.proof or "by\n" in t.proof}
    assert {e.name for e in entries if e.tactic} == tactic
    assert 0 < len(tactic) < len(entries)
    path = str(tmp_path / "lemmas.jsonl.gz")
    write_lemma_dict(path, entries)
    assert STPConfig().data.lemma_vocabulary == "tactic"
    assert set(load_lemma_dict(path, STPConfig().data.lemma_vocabulary)) == tactic
    assert set(load_lemma_dict(path, "all")) == {e.name for e in entries}


def test_roundtrip_verification_with_standin(tmp_path: Path) -> None:
    theorems, _ = _fixture()
    item = roundtrip_item(next(t for t in theorems if t.name == "SemiconjBy.eq_one_iff"))
    assert item.header.startswith("import Mathlib.Algebra.Group.Semiconj.Basic\nnamespace")
    assert item.statement.startswith("variable (a) in\ntheorem eq_one_iff" + RENAME_SUFFIX)
    cfg = load_config(None, ["verifier.workers=2", f'run.run_dir="{tmp_path}"',
                             f'verifier.cache_dir="{tmp_path / "cache"}"'])
    rules = {"rules": [{"pattern": "conj_iff", "field": "statement", "action": "fail"}]}
    passed, failed = roundtrip_check(with_checker(cfg, standin_command(rules)), theorems)
    failed_names = {t.name: r.status for t, r in failed}
    assert failed_names["SemiconjBy.conj_iff"] == "fail"
    # equation-compiler values are not restatable as statement + proof: reported, not dropped.
    assert failed_names["SemiconjBy.zpow_right"] == "error"
    assert len(passed) + len(failed) == len(theorems) == 16
    assert "SemiconjBy.mul_left" in {t.name for t in passed}
