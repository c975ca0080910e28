"""pass@k figures and the markdown table for several runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from stp.eval import log as evlog
from stp.eval.__main__ import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def synthetic_log(path: Path, rate: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    ids = [f"toy/{i}" for i in range(20)]
    log = evlog.AttemptLog(str(path))
    attempts = [evlog.Attempt(statement_id=sid, split="toy:test", sample=j,
                              status="pass" if rng.random() < rate * (i % 5) / 4 else "fail")
                for i, sid in enumerate(ids) for j in range(64)]
    log.append(attempts)
    evlog.write_manifest(str(path), evlog.Manifest(model=f"org/model-{seed}", samples=64,
                                                   splits={"toy:test": ids}))
    return path


def test_plot_writes_png_svg_and_table(tmp_path: Path, capsys) -> None:
    a = synthetic_log(tmp_path / "a", 0.05, 1)
    b = synthetic_log(tmp_path / "b", 0.2, 2)
    out = tmp_path / "report"
    assert main(["plot", "--log", str(a), "--log", str(b), "--label", "base",
                 "--label", "stp", "--out", str(out)]) == 0
    png = out / "passk_toy_test.png"
    svg = out / "passk_toy_test.svg"
    assert png.read_bytes().startswith(PNG_MAGIC) and png.stat().st_size > 1000
    assert b"<svg" in svg.read_bytes()[:2000]
    table = (out / "table.md").read_text()
    assert "### toy:test" in table and "| base |" in table and "| stp |" in table
    assert "pass@1 | pass@32 |" in table
    printed = capsys.readouterr().out.split()
    assert str(png) in printed and str(out / "table.md") in printed


def test_default_labels_come_from_the_manifest(tmp_path: Path) -> None:
    a = synthetic_log(tmp_path / "a", 0.1, 3)
    out = tmp_path / "r"
    assert main(["plot", "--log", str(a), "--out", str(out)]) == 0
    assert "| model-3 |" in (out / "table.md").read_text()
