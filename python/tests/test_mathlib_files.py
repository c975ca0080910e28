"""The data directory's Mathlib file names are written in one module (stp.data.mathlib_files).

Producers (`python -m stp.extract`) and consumers (self-play's lemma dictionary, the Stage-1 and
re-training SFT sets, the pipeline's input checks) used to spell them each; a rename on one side
left the other looking for a file nobody writes.
"""

from __future__ import annotations

import ast
from pathlib import Path

from stp.config import STPConfig
from stp.data import mathlib_files
from stp.selfplay.inputs import lemma_dict_path, retrain_sft_path, stage1_sft_path

PACKAGE = Path(mathlib_files.__file__).resolve().parents[1]
OWNER = Path(mathlib_files.__file__).resolve()
# The names, and the directory spelled as a path prefix ("mathlib/..."; Lake's
# `.lake/packages/mathlib` checkout is another directory and stays allowed).
FORBIDDEN = (*mathlib_files.FILE_NAMES, f"{mathlib_files.MATHLIB_DIR}/")


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _offending_literals(source: str, label: str) -> list[str]:
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docs):
            found += [f"{label}:{node.lineno}: {node.value!r}"
                      for name in FORBIDDEN if name in node.value]
    return found


def test_no_mathlib_file_name_literal_outside_the_owner() -> None:
    offending = [hit for path in sorted(PACKAGE.rglob("*.py")) if path.resolve() != OWNER
                 for hit in _offending_literals(path.read_text(encoding="utf-8"),
                                                str(path.relative_to(PACKAGE.parent)))]
    assert offending == [], "Mathlib file names belong in stp/data/mathlib_files.py:\n" + \
        "\n".join(offending)


def test_scanner_catches_a_spelled_name() -> None:
    # The guard itself: a consumer spelling the lemma dictionary's path is found (both the
    # directory and the file name), its docstring mentioning the path is not, nor is an f-string
    # built from the owner's constants.
    source = ('"""Reads mathlib/lemmas.jsonl.gz."""\n'
              'PATH = "mathlib/lemmas.jsonl.gz"\n'
              'HELP = f"default {files.SFT_DIR_HELP}/{files.LEMMAS}"\n')
    hits = _offending_literals(source, "probe.py")
    assert sorted(hits) == ["probe.py:2: 'mathlib/lemmas.jsonl.gz'"] * 2


def test_consumers_default_to_what_the_producer_writes(tmp_path: Path) -> None:
    cfg = STPConfig()
    cfg.run.data_dir = str(tmp_path)
    sft_dir = tmp_path / "mathlib"
    assert mathlib_files.sft_dir(tmp_path) == str(sft_dir)
    assert lemma_dict_path(cfg) == str(sft_dir / "lemmas.jsonl.gz")
    assert stage1_sft_path(cfg) == str(sft_dir / "sft.jsonl.gz")
    assert retrain_sft_path(cfg) == str(sft_dir / "sft-mathlib-only.jsonl.gz")
    assert mathlib_files.extract_dir(tmp_path) == str(sft_dir / "extract")
