"""`python -m stp.data info`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stp.data.__main__ import main
from stp.errors import UsageError


def test_info_json_lists_every_dataset(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--data-dir", str(data_dir), "--json"]) == 0
    out = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert out["minif2f"]["counts"] == {"valid": 244, "test": 244}
    assert out["proofnet"]["counts"] == {"valid": 185, "test": 186}
    assert out["putnam"]["counts"] == {"test": 644}
    assert out["lean_workbook"]["present"] is False
    assert out["stp_sft"]["present"] is False and "kfdong/STP_Lean_SFT" in out["stp_sft"]["source"]
    assert any("trailing_sorry fixed x247" in line for line in out["minif2f"]["defects"])


def test_info_text_and_defects(data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["info", "--data-dir", str(data_dir), "--defects", "putnam"]) == 0
    text = capsys.readouterr().out
    assert "putnam" in text and "test 644" in text
    assert "[fixed] putnam/test/asserts: leaked_docstring" in text


def test_info_unknown_dataset_exit_code(data_dir: Path) -> None:
    with pytest.raises(UsageError, match="known datasets"):
        main(["info", "--data-dir", str(data_dir), "nope"])
    proc = subprocess.run([sys.executable, "-m", "stp.data", "info", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "unknown dataset 'nope'; known datasets: minif2f" in proc.stderr
