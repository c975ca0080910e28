"""scripts/gate_corpus.py, estimate mode: it classifies the shipped corpus sample against the
allow-list of lean/STP/GateAllowList.lean and reports the rejection rate (issue #20)."""

from __future__ import annotations

import importlib.util
import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "gate_corpus.py"


def _load() -> Any:
    spec = importlib.util.spec_from_file_location("gate_corpus", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["gate_corpus"] = module  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


gc = _load()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_estimate_on_the_shipped_sample_reports_a_rejection_rate() -> None:
    proc = _run("--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["mode"] == "estimate"
    # The shipped sample: Kimina-Prover-Preview's 197 miniF2F-test proofs and InternLM2's 290
    # distinct successful searches (lean/gate/ALLOWLIST_SOURCES.md).
    assert report["proofs"] == 487
    assert report["sources"] == {"kimina-minif2f-test": 197, "internlm2-minif2f-test": 290}
    assert 0.0 <= report["rejection_rate"] < 0.005, report["rejected"]
    # native_decide (11 Kimina proofs) and polyrith (1) are refused on purpose, not counted
    # against the allow-list.
    assert report["policy_words"] == {"native_decide": 11, "polyrith": 1}
    text = _run()
    assert text.returncode == 0
    assert "rejected by the allow-list: 0 (0.00%)" in text.stdout


def test_a_tactic_outside_the_allow_list_is_counted_as_a_rejection(tmp_path: Path) -> None:
    sample = tmp_path / "sample.jsonl"
    rows = [{"source": "t", "name": "a", "tactics": ["by", "nlinarith"]},
            {"source": "t", "name": "b", "tactics": ["by", "apply_rules"]},
            {"source": "t", "name": "c", "tactics": ["by", "native_decide"]},
            {"source": "t", "name": "d", "tactics": ["by", "inl", "norm_num"]}]
    sample.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    report = json.loads(_run("--json", "--sample", str(sample)).stdout)
    assert report["rejected"] == ["t:b"]
    assert report["rejection_rate"] == 0.25
    assert report["refused_on_purpose"] == 1
    assert report["not_tactics"] == {"inl": 1}


def test_a_macro_is_admitted_only_when_its_expansion_is() -> None:
    table = gc.load_table()
    assert table.status("ring") == "allowed"  # first | ring1 | try_this ring_nf
    assert table.status("repeat") == "allowed"  # expands to itself
    assert table.status("run_conv") == "policy"
    assert table.status("trace") == "policy"  # shares its keyword with `trace "msg"`
    table.macros["weird"] = ["simp", "apply_rules"]
    assert table.status("weird") == "refused"


def test_every_macro_expansion_keyword_is_classified() -> None:
    """An expansion keyword the table does not know would make its macro look admitted or
    refused by accident."""
    table = gc.load_table()
    for word, expansion in table.macros.items():
        for inner in expansion:
            assert table.status(inner) in {"allowed", "refused", "policy"}, (word, inner)


def test_the_allow_list_file_is_parsed() -> None:
    kinds = gc.allowed_keywords()
    assert "Lean.Parser.Tactic.simp" in kinds["simp"]
    assert "nlinarith" in kinds["nlinarith"]
    assert "Lean.Parser.Term.byTactic" in kinds["by"]
    # Kinds that evaluate user terms are not reviewed.
    every = {k for ks in kinds.values() for k in ks}
    assert not every & {"Lean.Parser.Tactic.runTac", "Lean.Parser.Tactic.trace",
                        "Mathlib.Tactic.successIfFailWithMsg", "Lean.Parser.Term.sorry",
                        "Lean.Parser.Tactic.nativeDecide", "Lean.Parser.Term.do"}


def test_tactic_words_of_a_whole_proof() -> None:
    text = ("theorem t (x : ℝ) (h : 0 < x) : 0 < x ^ 2 + x := by\n"
            "  -- positivity would do\n"
            "  have h2 : 0 < x ^ 2 := by\n"
            "    nlinarith [sq_nonneg x,\n"
            "      h]\n"
            "  calc 0 < x ^ 2 := h2\n"
            "    _ < x ^ 2 + x := by linarith\n"
            "  <;> simp_all\n")
    proof = gc.Proof("t", "t", text)
    assert gc.words_of(proof) == ["by", "have", "nlinarith", "calc", "linarith", "simp_all"]


def test_malformed_sample_is_one_line_naming_file_and_line(tmp_path: Path) -> None:
    sample = tmp_path / "bad.jsonl"
    sample.write_text('{"source": "x", "name": "y", "tactics": ["by"]}\n{"tactics": 3}\n',
                      encoding="utf-8")
    proc = _run("--sample", str(sample))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {sample}:2: field 'tactics' must be a list of strings"


def test_exact_mode_counts_forbidden_verdicts_of_the_checker(tmp_path: Path) -> None:
    """Exact mode sends every raw proof through `stp.verify` (here the stand-in checker, told
    to refuse one of them as `forbidden`), splitting header, statement and proof."""
    from standin import standin_command

    corpus = tmp_path / "solved.jsonl"
    rows = [{"name": "a", "correct_proof": "import Mathlib\nopen Real\n\n"
                                           "theorem a (x : ℕ) : x = x := by\n  rfl"},
            {"name": "b", "correct_proof": "import Mathlib\n\n"
                                           "theorem b (x : ℕ) : x = x := by\n  apply_rules [rfl]"}]
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    spec = {"rules": [{"pattern": "apply_rules", "field": "text", "action": "fail",
                       "reasons": ["forbidden"]}], "default": "pass"}
    proc = _run("--exact", "--json", "--kimina", str(corpus),
                "--checker-command", shlex.join(standin_command(spec)))
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["mode"] == "exact"
    assert report["proofs"] == 2
    assert report["rejected"] == ["kimina-minif2f-test:b"]
    assert report["verdicts"] == {"pass": 1, "fail": 1}


def test_raw_corpus_readers_split_header_statement_and_proof(tmp_path: Path) -> None:
    corpus = tmp_path / "solved.jsonl"
    corpus.write_text(json.dumps({"name": "a", "correct_proof":
                                  "import Mathlib\n\ntheorem a : 1 = 1 := by\n  rfl"}) + "\n",
                      encoding="utf-8")
    (proof,) = list(gc.read_kimina(corpus))
    assert proof.header == "import Mathlib\n\n"
    assert proof.statement == "theorem a : 1 = 1 :="
    assert proof.text[len(proof.statement):] == " by\n  rfl"
    out = tmp_path / "internlm"
    out.mkdir()
    (out / "results__x__0.json").write_text(json.dumps({"results": [
        {"example": {"statement": "theorem t (a : ℕ) : a = a"},
         "attempt_results": [{"theorem": "t", "success": True, "proof": ["intro", "rfl"]},
                             {"theorem": "t", "success": True, "proof": ["intro", "rfl"]},
                             {"theorem": "t", "success": False, "proof": ["simp"]}]}]}),
        encoding="utf-8")
    proofs = list(gc.read_internlm(out))
    assert [p.text for p in proofs] == ["theorem t (a : ℕ) : a = a := by\n  intro\n  rfl"]
    assert gc.words_of(proofs[0]) == ["by", "intro", "rfl"]
