"""Reports and evaluation logs name the checker that judged (and say so first when it is not the
real stp_check), report files get normal permissions, round axes have whole-number ticks, and the
docs no longer call reproduced baselines "not reproduced"."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from selfplay_helpers import (
    REPO_ROOT,
    RULES,
    make_config,
    scripted_backends,
)
from standin import standin_command, with_checker

from stp import storage
from stp.config import load_config


def test_the_real_checker_is_described_by_its_build_toolchain_and_mathlib(tmp_path: Path) -> None:
    from stp.verify.identity import describe_checker, identity_lines

    cfg = load_config(REPO_ROOT / "configs" / "stp-7b.toml",
                      [f'lean.project_dir="{REPO_ROOT}"', 'verifier.sandbox="none"'])
    ident = describe_checker(cfg)
    assert ident.real and ident.program == "stp_check"
    assert ident.toolchain == (REPO_ROOT / "lean-toolchain").read_text().strip()
    assert ident.mathlib.startswith("d1d1e4b7")
    assert (ident.profile, ident.max_heartbeats) == ("strict", 400000)
    assert ident.sandbox.startswith("sandbox: NONE")
    lines = identity_lines({"eval strict": ident})
    assert not any("Not judged" in line for line in lines)
    assert "`stp_check`" in lines[0] and "d1d1e4b7" in lines[0]


def test_selfplay_report_says_first_that_a_stand_in_judged(tmp_path: Path) -> None:
    from stp.selfplay.loop import run_selfplay
    from stp.selfplay.report import render_report

    cfg = with_checker(make_config(tmp_path, "run", ['model.name="m"', "selfplay.rounds=1"]),
                       standin_command(RULES))
    run_selfplay(cfg, backends=scripted_backends())
    record = json.loads((Path(cfg.run.run_dir) / "checker.json").read_text())
    assert record["self-play"]["real"] is False
    # Self-play's budget: the original's (no heartbeat limit, 200 s).
    assert (record["self-play"]["max_heartbeats"], record["self-play"]["timeout_s"]) == (0, 200.0)
    report = render_report(cfg.run.run_dir, str(tmp_path / "report")).read_text().splitlines()
    assert report[0].startswith("# Self-play report")
    first = "\n".join(report[1:4])
    assert "Not judged by `stp_check`" in first and "standin_checker.py" in first


def test_eval_summarize_names_the_checker_before_the_tables(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stp.eval import log as evlog
    from stp.eval.__main__ import main
    from stp.eval.run import record_checkers

    log_dir = tmp_path / "log"
    evlog.AttemptLog(str(log_dir)).append([evlog.Attempt(statement_id="a", split="toy:test",
                                                         sample=0, status="pass")])
    cfg = with_checker(load_config(None, ['eval.profiles=["strict", "paper"]']),
                       standin_command(RULES))
    record_checkers(cfg, str(log_dir))
    assert main(["summarize", "--log", str(log_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("**Not judged by `stp_check`:**")
    assert any("Checker (eval strict)" in line for line in out[:5])
    assert any("Checker (eval paper)" in line and "profile `paper`" in line for line in out[:5])


def test_pipeline_report_names_every_checker_first(tmp_path: Path) -> None:
    from test_pipeline_plan import alternation_config, run_alternation

    from stp.pipeline.report import write_pipeline_report

    cfg = alternation_config(tmp_path, "run")
    manifest = run_alternation(cfg)
    path = write_pipeline_report(cfg, manifest, str(tmp_path / "report"))
    lines = Path(path).read_text().splitlines()
    assert lines[0].startswith("# Pipeline report") and lines[2].startswith("**Not judged by")
    head = "\n".join(lines[:8])
    assert "Checker (self-play)" in head and "Checker (self-play (selfplay@1))" in head
    assert "Checker (eval strict)" in head and "Checker (eval paper)" in head


def test_artifacts_get_the_permissions_of_any_other_file(tmp_path: Path) -> None:
    """Atomic writes used to publish 0600 files (mkstemp's mode): a report only its owner
    could read."""
    mask = os.umask(0o022)
    os.umask(mask)
    storage.write_text(str(tmp_path / "report.md"), "# report\n")
    plain = tmp_path / "plain.md"
    plain.write_text("x")
    assert (tmp_path / "report.md").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777
    assert (tmp_path / "report.md").stat().st_mode & 0o044 == 0o044 & ~mask


def test_round_axes_have_whole_number_ticks(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from stp.selfplay.report import _finish

    fig, ax = plt.subplots()
    ax.plot([0, 1], [3, 5], label="solved")
    _finish(fig, ax, tmp_path / "solved.png", xlabel="round", ylabel="n", title="t", caption="c")
    ticks: Any = ax.get_xticks()
    assert len(ticks) >= 2 and all(float(t).is_integer() for t in ticks), ticks


def test_docs_no_longer_call_the_baselines_unreproduced_or_misname_the_paper_header() -> None:
    reference = (REPO_ROOT / "docs" / "reference.md").read_text()
    assert "(not reproduced)" not in reference
    assert "configs/baseline-expert-iteration.toml" in reference
    eval_doc = (REPO_ROOT / "docs" / "eval.md").read_text()
    profiles = eval_doc[eval_doc.index("### Verifier profiles"):]
    profiles = profiles[:profiles.index("\n#")]
    assert "DEFAULT_HEADER" in profiles and "`import Mathlib`" in profiles
