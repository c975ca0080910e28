"""Loaders on the shipped benchmark files, normalisation fixes, and the error paths."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path

import pytest

from stp.data import (
    DatasetFormatError,
    DatasetMissingError,
    DefectReport,
    DownloadError,
    list_datasets,
    load_dataset,
    load_examples,
    registry,
)
from stp.data import download as dl
from stp.data.lemmas import LemmaEntry, load_lemma_dict, write_lemma_dict
from stp.data.normalize import normalise_ending, strip_trailing_sorry
from stp.errors import UsageError
from stp.lean.config import DEFAULT_HEADER


def _counts(records):
    out: dict[str, int] = {}
    for r in records:
        out[r.split] = out.get(r.split, 0) + 1
    return out


@pytest.mark.parametrize(("name", "expected"), [
    ("minif2f", {"valid": 244, "test": 244}),
    ("proofnet", {"valid": 185, "test": 186}),
    ("putnam", {"test": 644}),
])
def test_benchmark_counts_and_unique_ids(data_dir: Path, name: str, expected: dict) -> None:
    records = load_dataset(name, data_dir)
    assert _counts(records) == expected
    assert len({r.id for r in records}) == len(records)
    assert all(r.id.startswith(f"{name}/{r.split}/{r.name}") for r in records)
    ending = r":=\s*by$" if registry.DATASETS[name].ending == "by" else r":=$"
    assert all(re.search(ending, r.statement) for r in records), name
    assert all("sorry" not in r.statement for r in records)
    for split, n in expected.items():
        assert len(load_dataset(name, data_dir, split=split)) == n


def test_minif2f_names_from_statement_and_sorryby_fixed(data_dir: Path) -> None:
    report = DefectReport()
    records = {r.id: r for r in load_dataset("minif2f", data_dir, report=report)}
    rec = records["minif2f/test/mathd_algebra_478"]
    assert rec.statement.endswith("v = 65 := by") and rec.header == "" and rec.tags == []
    # 244 test rows end in `sorryby` (one in `sorry\nby`), plus 3 valid rows.
    assert len(report.of_kind("trailing_sorry")) == 247
    endings = report.of_kind("ending")
    assert len(endings) == 1  # the term-mode `:= sorryby`; `:=\n  by` spacing is kept verbatim
    assert sum(1 for r in records.values() if r.statement.endswith(":=\n  by")) == 2
    assert any("term ending" in d.detail for d in endings)


def test_putnam_known_defects_fixed(data_dir: Path) -> None:
    report = DefectReport()
    records = {r.name: r for r in load_dataset("putnam", data_dir, report=report)}
    assert "putnam_1993_b5" in records and "putnam_1993_b5:" not in records
    fixed = records["putnam_1974_a3"]
    assert fixed.statement.startswith("theorem putnam_1974_a3")
    assert "sum of two perfect squres" in fixed.informal
    assert "asserts" not in records
    kinds = {d.kind for d in report.defects}
    assert {"name_mismatch", "leaked_docstring", "custom_header"} <= kinds
    assert all(r.header.startswith("import Mathlib") for r in records.values())


def test_proofnet_duplicate_names_flagged_and_ids_stable(data_dir: Path, tmp_path: Path) -> None:
    report = DefectReport()
    records = load_dataset("proofnet", data_dir, report=report)
    dups = report.of_kind("duplicate_name")
    assert dups and all(d.action == "flagged" for d in dups)
    three = [r for r in records if r.split == "test" and r.name == "exercise_5_1"]
    assert len(three) == 3 and len({r.id for r in three}) == 3
    # Ids depend on content, not on row order.
    rows = (data_dir / "proofnet.jsonl").read_text(encoding="utf-8").splitlines()
    (tmp_path / "proofnet.jsonl").write_text("\n".join(reversed(rows)) + "\n", encoding="utf-8")
    again = load_dataset("proofnet", tmp_path, allow_download=False)
    assert {r.id: r.statement for r in again} == {r.id: r.statement for r in records}
    assert len(report.of_kind("custom_header")) == 371


def _write_workbook(path: Path, rows: list[dict]) -> None:
    path.write_text(json.dumps(rows), encoding="utf-8")


def test_lean_workbook_fixture_normalised(tmp_path: Path) -> None:
    rows = [
        {"formal_statement": "theorem lean_workbook_1 (x : ℝ) : x ^ 2 ≥ 0 := by sorry",
         "split": "lean_workbook", "tags": ["algebra"]},
        {"formal_statement": "theorem lean_workbook_2 (x : ℝ) :  x^2 ≥ 0 :=\n  by sorry",
         "split": "lean_workbook", "tags": None, "header": DEFAULT_HEADER},
        {"formal_statement": "theorem lean_workbook_3 (a : ℕ) : a = a :=",
         "split": "lean_workbook", "tags": []},
    ]
    _write_workbook(tmp_path / "lean_workbook_dedup.json", rows)
    report = DefectReport()
    recs = load_dataset("lean_workbook", tmp_path, report=report, allow_download=False)
    assert [r.id for r in recs] == [f"lean_workbook/train/lean_workbook_{i}" for i in (1, 2, 3)]
    assert recs[0].statement == "theorem lean_workbook_1 (x : ℝ) : x ^ 2 ≥ 0 := by"
    # Verbatim ending spacing; default header recognised.
    assert recs[1].statement.endswith("≥ 0 :=\n  by") and recs[1].header == ""
    assert recs[2].statement.endswith("a = a := by")
    assert recs[0].tags == ["algebra"]
    assert len(report.of_kind("ending")) == 1


def test_whitespace_duplicates_flagged(tmp_path: Path) -> None:
    rows = [
        {"formal_statement": "theorem lean_workbook_1 (x : ℝ) : x ≥ 0 := by", "split":
         "lean_workbook"},
        {"formal_statement": "theorem  lean_workbook_1\n(x : ℝ) :  x ≥ 0 := by", "split":
         "lean_workbook"},
    ]
    _write_workbook(tmp_path / "lean_workbook_dedup.json", rows)
    report = DefectReport()
    recs = load_dataset("lean_workbook", tmp_path, report=report, allow_download=False)
    assert len(recs) == 2 and len({r.id for r in recs}) == 2
    assert len(report.of_kind("duplicate_statement")) == 1


def test_strip_trailing_sorry_variants() -> None:
    assert strip_trailing_sorry("theorem a : 1 = 1 := by sorryby") == ("theorem a : 1 = 1 := by",
                                                                       True)
    assert strip_trailing_sorry("theorem a : 1 = 1 := by sorry\nby")[0].endswith(":= by")
    assert strip_trailing_sorry("theorem a : 1 = 1 := sorryby")[0].endswith("1 = 1 :=")
    # A `sorry` that is not a trailing artefact is left alone (the original's last-sorry rule
    # would have cut the statement there).
    text = "theorem sorry_lemma : True := by"
    assert strip_trailing_sorry(text) == (text, False)
    # Spacing of the ending is the dataset's text, kept verbatim; only its kind is changed.
    assert normalise_ending("theorem a : b :=\n  by", "by") == ("theorem a : b :=\n  by", None)
    assert normalise_ending("theorem a : b  :=  by  ", "by") == ("theorem a : b  :=  by", None)
    assert normalise_ending("theorem a : b  :=", "by") == (
        "theorem a : b  := by", "term ending ':=' turned into ':= by' (dataset convention)")
    with pytest.raises(ValueError, match="does not end"):
        normalise_ending("theorem a : b", "by")


def test_missing_file_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # As from a wheel install: no checkout, so no shipped files; the data dir lacks the file.
    monkeypatch.setattr(dl, "shipped_dir", lambda: None)
    with pytest.raises(DatasetMissingError, match=r"miniF2F_lean\.json not found"):
        load_dataset("minif2f", tmp_path, allow_download=False)


def test_corrupt_jsonl_line_names_file_and_line(tmp_path: Path, data_dir: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dl, "shipped_dir", lambda: None)  # read the data dir's copy
    lines = (data_dir / "putnam_bench.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    lines[3] = lines[3][:40]
    (tmp_path / "putnam_bench.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"putnam_bench.jsonl:4: corrupt JSON line"):
        load_dataset("putnam", tmp_path, allow_download=False)


def test_missing_field_and_bad_split(tmp_path: Path) -> None:
    _write_workbook(tmp_path / "lean_workbook_dedup.json",
                    [{"formal_statement": "theorem x : True := by", "split": "lean_workbook"},
                     {"split": "lean_workbook"}])
    with pytest.raises(DatasetFormatError, match=r":2: missing field 'formal_statement'"):
        load_dataset("lean_workbook", tmp_path, allow_download=False)
    _write_workbook(tmp_path / "lean_workbook_dedup.json",
                    [{"formal_statement": "theorem x : True := by", "split": "other"}])
    with pytest.raises(DatasetFormatError, match=r":1: field 'split' has unknown value 'other'"):
        load_dataset("lean_workbook", tmp_path, allow_download=False)
    (tmp_path / "lean_workbook_dedup.json").write_text('[{"a": 1},\n{', encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=r"lean_workbook_dedup.json:2: corrupt JSON"):
        load_dataset("lean_workbook", tmp_path, allow_download=False)


def test_unknown_dataset_and_split(data_dir: Path) -> None:
    with pytest.raises(UsageError, match=r"unknown dataset 'mini'.*minif2f, proofnet, putnam"):
        load_dataset("mini", data_dir)
    with pytest.raises(UsageError, match="no split 'train'"):
        load_dataset("minif2f", data_dir, split="train")
    assert {d.name for d in list_datasets()} >= {"minif2f", "proofnet", "putnam",
                                                  "lean_workbook", "stp_sft", "stp_0320"}


def test_download_offline_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A closed local port: the real download code runs and fails without touching the network.
    info = registry.DATASETS["lean_workbook"]
    bad = registry.DataFile("lean_workbook_dedup.json", "json", {"lean_workbook": "train"},
                            url="http://127.0.0.1:9/lean_workbook_dedup.json")
    monkeypatch.setitem(registry.DATASETS, "lean_workbook",
                        registry.DatasetInfo(**{**info.__dict__, "files": (bad,)}))
    with pytest.raises(DownloadError, match="are you offline"):
        load_dataset("lean_workbook", tmp_path)
    assert not list(tmp_path.iterdir())  # no partial file left behind


def test_hf_download_offline_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dl, "HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.setenv("STP_HF_REVISIONS", "kfdong/STP_Lean_SFT=" + "0" * 40)  # pinned (stp.hub)
    with pytest.raises(DownloadError, match=r"kfdong/STP_Lean_SFT.*offline"):
        load_examples("stp_sft", tmp_path, "train")


# The dataset card of a local snapshot: like kfdong/STP_Lean_SFT, its `eval` split exists only
# through the card's configs (datasets' file-name conventions would call eval files "test").
CARD = """---
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train.jsonl.gz
  - split: eval
    path: data/eval.json
---
# tiny STP_Lean_SFT stand-in
"""


def test_load_examples_from_local_snapshot(tmp_path: Path) -> None:
    local = dl.hf_local_dir(registry.DATASETS["stp_sft"], tmp_path)
    (local / "data").mkdir(parents=True)
    rows = [{"prompt": "p1", "target": "t1"}, {"prompt": "p2", "target": "t2", "weight": 2}]
    with gzip.open(local / "data" / "train.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("\n".join(json.dumps(r) for r in rows) + "\n")
    # A file the card does not name is not read, whatever its name says.
    (local / "data" / "train_old.jsonl").write_text(json.dumps(rows[0]) + "\n", encoding="utf-8")
    (local / "data" / "eval.json").write_text(json.dumps(rows[:1]), encoding="utf-8")
    (local / "README.md").write_text(CARD, encoding="utf-8")
    (local / ".complete").write_text("ok\n")
    train = load_examples("stp_sft", tmp_path, "train", allow_download=False)
    assert [(e.prompt, e.target, e.weight) for e in train] == [("p1", "t1", 1.0),
                                                               ("p2", "t2", 2.0)]
    assert len(load_examples("stp_sft", tmp_path, "eval", allow_download=False)) == 1
    # The Arrow cache lives beside the data and is reused, not re-parsed into the listing.
    assert (local / ".arrow_cache").is_dir()
    assert len(load_examples("stp_sft", tmp_path, "train", allow_download=False)) == 2


def test_load_examples_parquet_by_convention_and_errors(tmp_path: Path) -> None:
    """No card: datasets' naming convention (train-*.parquet) decides; a missing column and a
    split the files do not have are one-line errors."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    local = dl.hf_local_dir(registry.DATASETS["stp_0320"], tmp_path)
    (local / "data").mkdir(parents=True)
    pq.write_table(pa.table({"prompt": ["a", "b"], "target": ["x", "y"], "weight": [1.0, 3.0]}),
                   local / "data" / "train-00000-of-00001.parquet")
    (local / ".complete").write_text("ok\n")
    got = load_examples("stp_0320", tmp_path, "train", allow_download=False)
    assert [(e.prompt, e.weight) for e in got] == [("a", 1.0), ("b", 3.0)]

    bad = dl.hf_local_dir(registry.DATASETS["stp_sft"], tmp_path)
    (bad / "data").mkdir(parents=True)
    pq.write_table(pa.table({"prompt": ["a"], "answer": ["x"]}),
                   bad / "data" / "train-00000-of-00001.parquet")
    (bad / ".complete").write_text("ok\n")
    with pytest.raises(DatasetFormatError, match=r"\[split train\] row:1: missing field 'target'"):
        load_examples("stp_sft", tmp_path, "train", allow_download=False)
    with pytest.raises(UsageError, match=r"cannot load split 'eval'"):
        load_examples("stp_sft", tmp_path, "eval", allow_download=False)


def test_lemma_dict_roundtrip_and_errors(tmp_path: Path) -> None:
    path = str(tmp_path / "lemmas.jsonl.gz")
    write_lemma_dict(path, [LemmaEntry(name="Nat.add_comm", statement="theorem add_comm ..."),
                            LemmaEntry(name="foo", statement="theorem foo : True")])
    assert load_lemma_dict(path) == {"Nat.add_comm": "theorem add_comm ...",
                                     "foo": "theorem foo : True"}
    as_json = tmp_path / "lemmas.json"
    as_json.write_text(json.dumps({"a": "theorem a : True"}), encoding="utf-8")
    assert load_lemma_dict(as_json) == {"a": "theorem a : True"}
    dup = str(tmp_path / "dup.jsonl")
    write_lemma_dict(dup, [LemmaEntry(name="a", statement="x"), LemmaEntry(name="a",
                                                                           statement="y")])
    with pytest.raises(UsageError, match=r"dup\.jsonl:2: duplicate lemma name 'a'"):
        load_lemma_dict(dup)
    with pytest.raises(UsageError, match="not found"):
        load_lemma_dict(tmp_path / "none.jsonl.gz")


def test_lean_workbook_text_is_verbatim_in_records_and_prompts(tmp_path: Path) -> None:
    """LeanWorkbook's `…  :=  by` spacing reaches the statement, the prover prompt and the
    self-play statement table unchanged (the released models saw that text); only dedup keys
    ignore whitespace."""
    from stp.data.records import statement_key
    from stp.model.prompts import prover_prompt

    rows = [{"formal_statement": "theorem lean_workbook_214 (x y : ℝ) : (x - y) ^ 2 ≥ 0  :=  by sorry",
             "split": "lean_workbook", "tags": ["inequality"]},
            {"formal_statement": "theorem lean_workbook_215 (x : ℝ) : x ^ 2 ≥ 0 :=  by\n  sorry",
             "split": "lean_workbook"}]
    (tmp_path / "lean_workbook_dedup.json").write_text(json.dumps(rows), encoding="utf-8")
    report = DefectReport()
    records = load_dataset("lean_workbook", tmp_path, report=report, allow_download=False)
    assert [r.statement for r in records] == [
        "theorem lean_workbook_214 (x y : ℝ) : (x - y) ^ 2 ≥ 0  :=  by",
        "theorem lean_workbook_215 (x : ℝ) : x ^ 2 ≥ 0 :=  by"]
    assert report.of_kind("ending") == []
    assert prover_prompt(records[0].statement).endswith("(x - y) ^ 2 ≥ 0  :=  by")
    assert statement_key(records[0].statement) == statement_key(
        "theorem lean_workbook_214 (x y : ℝ) : (x - y) ^ 2 ≥ 0 := by")


@pytest.mark.parametrize(("content", "message"), [
    # json.loads accepts a lone surrogate; self-play's msgspec readers crash on it later
    ('{"a": 1}\n{"name": "x", "formal_statement": "theorem x : True := \\ud800"}\n',
     r"bad\.jsonl:2: corrupt JSON line \(a string escape that is not valid Unicode"),
    (b'{"a": 1}\n{"name": "\xff"}\n', r"bad\.jsonl:2: not UTF-8 text"),
    ('{"a": ' + "[" * 200_000 + "]" * 200_000 + "}\n", r"bad\.jsonl:1: (JSON nested too deeply|corrupt JSON line)"),
])
def test_dataset_rows_use_one_strict_decoder(tmp_path: Path, content: str | bytes,
                                             message: str) -> None:
    """What `stp.data info` accepts, self-play can read: every dataset row goes through the
    same strict decoder, and each refusal names the file and the line (issue #24 item 8)."""
    from stp.data.loaders import iter_rows

    path = tmp_path / "bad.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(DatasetFormatError, match=message):
        list(iter_rows(path, "jsonl"))
