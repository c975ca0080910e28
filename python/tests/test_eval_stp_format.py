"""Reading the original STP `generated_proofs_tests.jsonl.gz` and matching it to the benchmark."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from stp.eval.__main__ import main
from stp.eval.loading import load_log
from stp.eval.stp_format import build_benchmark_index, clean_statement
from stp.eval.summarize import summarize_log


def test_cleaning_rule_cuts_at_the_last_sorry() -> None:
    assert clean_statement("theorem t : 1 = 1 := by sorryby") == "theorem t : 1 = 1 := by"
    assert clean_statement("theorem sorry_x : True := sorry\n") == "theorem sorry_x : True :="
    assert clean_statement("  theorem t : True :=  ") == "theorem t : True :="


def _minif2f_test_rows(data_dir: Path) -> list[dict]:
    rows = json.loads((data_dir / "miniF2F_lean.json").read_text())
    return [r for r in rows if r["split"] == "miniF2F test"]


def test_benchmark_index_covers_every_row_once(data_dir: Path) -> None:
    index = build_benchmark_index(data_dir)
    assert {k: len(v) for k, v in index.split_members.items()} == {
        "minif2f:valid": 244, "minif2f:test": 244, "proofnet:valid": 185,
        "proofnet:test": 186, "putnam:test": 644}
    assert len(index.entries) == 244 * 2 + 185 + 186 + 644


def write_stp_log(path: Path, data_dir: Path) -> tuple[str, str]:
    rows = _minif2f_test_rows(data_dir)
    s1, s2 = clean_statement(rows[0]["formal_statement"]), clean_statement(
        rows[1]["formal_statement"])
    records = []
    for it in range(4):
        records.append({"lemma_id": 0, "statement": s1, "label": ["miniF2F test"],
                        "header": None, "iter": it, "proof": f" simp -- {it}",
                        "multiplicity": 1, "complete": it == 2, "pass": it == 2,
                        "errors": [], "verify_time": 1.5})
        rec = {"lemma_id": 1, "statement": s2, "iter": it, "proof": "omega",
               "multiplicity": 1, "complete": False}
        if it == 3:
            rec["system_errors"] = "test failed"
        records.append(rec)
    # An attempt on a statement that is in no benchmark file.
    records.append({"statement": "theorem not_in_benchmark : True := by", "iter": 0,
                    "complete": True, "multiplicity": 1})
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for rec in records:
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    return s1, s2


def test_reader_matches_statements_and_reports_the_rest(tmp_path: Path, data_dir: Path) -> None:
    path = tmp_path / "generated_proofs_tests.jsonl.gz"
    write_stp_log(path, data_dir)
    loaded = load_log(path, data_dir=data_dir)  # format auto-detected
    assert loaded.format == "stp"
    assert loaded.unmatched_records == 1
    assert loaded.unmatched_statements == ["theorem not_in_benchmark : True := by"]
    [s] = summarize_log(loaded, budgets=(1, 2, 4), resamples=0)
    assert s.split == "minif2f:test" and s.statements == 244
    assert s.statements_source == "benchmark"
    assert s.zero_attempt_count == 242 and len(s.zero_attempt_statements) == 50
    assert (s.attempts, s.solved, s.system_errors) == (8, 1, 1)
    # Only the first statement passes, at iter 2: k=1 chunks [0,0,1,0]/244, k=2 [0,1]/244.
    assert [e.mean for e in s.chunk] == pytest.approx([1 / 976, 1 / 488, 1 / 244])
    assert [e.mean for e in s.unbiased] == pytest.approx([0.25 / 244, 0.5 / 244, 1 / 244])


def test_cli_reads_stp_logs_and_applies_the_system_error_rule(
        tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "generated_proofs_tests.jsonl.gz"
    write_stp_log(path, data_dir)
    # 1 of 8 attempts has system_errors: above 1 %.
    assert main(["summarize", "--log", str(path), "--format", "stp", "--json"]) == 1
    assert main(["summarize", "--log", str(path), "--json", "--allow-system-errors",
                 "--split", "miniF2F", "--max-iter", "2"]) == 0
    out = capsys.readouterr().out
    second = json.loads(out[out.rindex('{\n  "minif2f:test"'):])
    assert second["minif2f:test"]["max_iter"] == 2
    assert second["minif2f:test"]["format"] == "stp"
