"""The extraction driver against a fake extractor replaying golden lines: parallel runs, resume
after an interruption, crashes, protocol errors, and the CLI."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import msgspec
import pytest

from stp import storage
from stp.extract.__main__ import main
from stp.extract.assemble import assemble_directory
from stp.extract.driver import (
    discover_modules,
    done_modules,
    raw_path,
    read_raw,
    run_extraction,
)
from stp.extract.records import ExtractedTheorem
from stp.lean.protocol import ExtractDecl, ExtractFailed

# The one extractor fixture tree (sources + golden lines), shared with the Lean smoke run.
FIXTURES = Path(__file__).resolve().parents[2] / "lean" / "test" / "golden"
FAKE = Path(__file__).resolve().with_name("fake_extractor.py")
GOLDEN = FIXTURES / "extractor_out.jsonl"
SOURCES = {
    "Defs": FIXTURES / "mathlib/Mathlib/Algebra/Group/Semiconj/Defs.lean",
    "Basic": FIXTURES / "mathlib/Mathlib/Algebra/Group/Semiconj/Basic.lean",
}


def _tree(root: Path, n: int) -> Path:
    """A Mathlib-shaped tree of n modules, alternating copies of the two real files."""
    for i in range(n):
        kind = "Defs" if i % 2 == 0 else "Basic"
        dest = root / "Mathlib" / "Fake" / f"M{i:02d}.lean"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(SOURCES[kind], dest)
    return root


def _command(log: Path, crash_on: str | None = None) -> list[str]:
    cmd = [sys.executable, str(FAKE), str(GOLDEN), str(log)]
    return [*cmd, crash_on] if crash_on else cmd


def _served(log: Path) -> list[tuple[int, str]]:
    """(pid of the extractor process, module) per request, in the order they were served."""
    if not log.exists():
        return []
    return [(int(pid), module) for pid, module in
            (line.split() for line in log.read_text().splitlines() if line.strip())]


def _requested(log: Path) -> list[str]:
    return [module for _, module in _served(log)]


def _theorems(out: Path) -> list[ExtractedTheorem]:
    return list(storage.iter_jsonl(str(out / "theorems.jsonl.gz"), type=ExtractedTheorem))


def test_discover_modules_prefix(tmp_path: Path) -> None:
    jobs = discover_modules(FIXTURES / "mathlib", ["Mathlib.Algebra.Group.Semiconj.Defs"])
    assert [j.module for j in jobs] == ["Mathlib.Algebra.Group.Semiconj.Defs"]
    assert len(discover_modules(FIXTURES / "mathlib", ["Mathlib.Algebra"])) == 2
    with pytest.raises(Exception, match="no Mathlib sources"):
        discover_modules(tmp_path)


def test_parallel_run_and_assembly(tmp_path: Path) -> None:
    jobs = discover_modules(_tree(tmp_path / "src", 4))
    out = tmp_path / "out"
    result = run_extraction(jobs, str(out), _command(tmp_path / "log"), workers=2,
                            progress=False)
    assert len(result.processed) == 4 and not result.failed
    assert sorted(_requested(tmp_path / "log")) == [j.module for j in jobs]
    res = assemble_directory(str(out))
    assert res.theorems == 2 * 11 + 2 * 5 and not res.failed_modules
    names = [t.name for t in _theorems(out) if t.module == "Mathlib.Fake.M00"]
    assert names[0] == "SemiconjBy.eq"
    assert storage.read_json(str(out / "summary.json"))["theorems"] == 32


@pytest.mark.parametrize(("per_process", "processes"), [(1, 5), (2, 3), (0, 1)])
def test_extractor_restarted_every_n_modules(tmp_path: Path, per_process: int,
                                             processes: int) -> None:
    """Lean never frees re-imported oleans, so the driver restarts the extractor every N modules;
    the restarts must neither lose nor repeat a module, and the result equals one long-lived run."""
    jobs = discover_modules(_tree(tmp_path / "src", 5))
    out, log = tmp_path / "out", tmp_path / "log"
    result = run_extraction(jobs, str(out), _command(log), workers=1, progress=False,
                            modules_per_process=per_process)
    assert not result.failed
    served = _served(log)
    assert [m for _, m in served] == [j.module for j in jobs]  # each once, none lost
    pids = [pid for pid, _ in served]
    assert len(set(pids)) == processes
    if per_process:
        assert all(pids.count(pid) <= per_process for pid in set(pids))
    assemble_directory(str(out))
    once = tmp_path / "once"
    run_extraction(jobs, str(once), _command(tmp_path / "once.log"), workers=1, progress=False,
                   modules_per_process=0)
    assemble_directory(str(once))
    assert _theorems(out) == _theorems(once) and len(_theorems(out)) == 3 * 11 + 2 * 5


def test_crash_restart_counts_from_the_new_process(tmp_path: Path) -> None:
    """A crash replaces the process; the replacement's N modules are counted from zero."""
    jobs = discover_modules(_tree(tmp_path / "src", 5))
    log = tmp_path / "log"
    result = run_extraction(jobs, str(tmp_path / "out"), _command(log, "Mathlib.Fake.M01"),
                            workers=1, progress=False, modules_per_process=2)
    assert [s.module for s in result.failed] == ["Mathlib.Fake.M01"]
    served = _served(log)
    assert [m for _, m in served] == [j.module for j in jobs]
    groups = [[m for p, m in served if p == pid] for pid in dict.fromkeys(p for p, _ in served)]
    assert groups == [["Mathlib.Fake.M00", "Mathlib.Fake.M01"],
                      ["Mathlib.Fake.M02", "Mathlib.Fake.M03"], ["Mathlib.Fake.M04"]]


def test_overlong_line_is_a_module_failure(tmp_path: Path) -> None:
    """A line beyond the cap ends the process (its rest is never read) and fails the module."""
    from stp.lean.extractor import ExtractorProcess

    script = tmp_path / "big.py"
    script.write_text("import sys\nfor line in sys.stdin:\n"
                      "    sys.stdout.write('x' * 5000 + '\\n'); sys.stdout.flush()\n")
    proc = ExtractorProcess([sys.executable, str(script)], None, None, max_line_bytes=1000)
    lines = proc.extract("M", "M.lean", premises=False)
    proc.kill()
    assert len(lines) == 1 and isinstance(lines[0], ExtractFailed)
    assert "longer than 1000 bytes" in lines[0].message


def test_resume_after_interruption(tmp_path: Path) -> None:
    jobs = discover_modules(_tree(tmp_path / "src", 6))
    clean = tmp_path / "clean"
    run_extraction(jobs, str(clean), _command(tmp_path / "clean.log"), workers=2, progress=False)
    assemble_directory(str(clean))

    out, log = tmp_path / "out", tmp_path / "out.log"
    seen: list[str] = []

    def interrupt(summary) -> None:
        seen.append(summary.module)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_extraction(jobs, str(out), _command(log), workers=1, progress=False,
                       on_module=interrupt)
    assert done_modules(str(out)) == set(seen)
    first = _requested(log)
    log.unlink()
    result = run_extraction(jobs, str(out), _command(log), workers=2, progress=False)
    assert result.resumed == 2
    rerun = _requested(log)
    assert sorted(rerun) == sorted(j.module for j in jobs if j.module not in seen)
    assert set(first) & set(rerun) <= set(first) - set(seen)  # only unfinished work redone
    assemble_directory(str(out))
    assert _theorems(out) == _theorems(clean)


def test_crash_recorded_then_retried(tmp_path: Path) -> None:
    jobs = discover_modules(_tree(tmp_path / "src", 3))
    out = tmp_path / "out"
    result = run_extraction(jobs, str(out), _command(tmp_path / "log", "Mathlib.Fake.M01"),
                            workers=1, progress=False)
    assert [s.module for s in result.failed] == ["Mathlib.Fake.M01"]
    assert "exited with status 3" in result.failed[0].message
    assert "simulated crash" in result.failed[0].message
    assert isinstance(read_raw(str(out), "Mathlib.Fake.M01")[-1], ExtractFailed)
    # The process is replaced: the module after the crash was still extracted.
    assert {s.module for s in result.processed if s.status == "done"} == {
        "Mathlib.Fake.M00", "Mathlib.Fake.M02"}
    res = assemble_directory(str(out))
    assert res.failed_modules and res.theorems == 22
    # A plain rerun keeps the failure; --retry-failed redoes only that module.
    again = run_extraction(jobs, str(out), _command(tmp_path / "log2"), progress=False)
    assert again.processed == []
    again = run_extraction(jobs, str(out), _command(tmp_path / "log3"), progress=False,
                           retry_failed=True)
    assert [s.module for s in again.processed] == ["Mathlib.Fake.M01"]
    assert assemble_directory(str(out)).theorems == 27


def test_protocol_error_is_a_module_failure(tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("import sys\nfor line in sys.stdin:\n    print('not json', flush=True)\n")
    jobs = discover_modules(_tree(tmp_path / "src", 1))
    result = run_extraction(jobs, str(tmp_path / "out"), [sys.executable, str(script)],
                            progress=False)
    assert result.failed and result.failed[0].message.startswith("protocol error")


def test_cli_run_resume_and_sft(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = _tree(tmp_path / "src", 2)
    out = tmp_path / "out"
    cmd = f"{sys.executable} {FAKE} {GOLDEN} {tmp_path / 'log'}"
    args = ["run", "--mathlib-dir", str(src), "--out", str(out), "--extractor-command", cmd,
            "--no-progress", "--workers", "2"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "2 extracted now (0 failed)" in text and "theorems: 16 from 2 modules" in text
    assert main(args) == 0
    assert "2 already done, 0 extracted now" in capsys.readouterr().out
    sft_dir = tmp_path / "sft"
    assert main(["sft", "--extraction", str(out), "--out", str(sft_dir), "--eval-size",
                 "2"]) == 0
    text = capsys.readouterr().out
    assert "conjecture examples: 0" in text and "lemmas: 16" in text  # lemma is term-mode
    for name in ("lemmas.jsonl.gz", "sft.jsonl.gz", "sft-mathlib-only.jsonl.gz", "eval.jsonl.gz"):
        assert (sft_dir / name).is_file()


def test_cli_failures_exit_1_and_missing_extractor(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src", 2)
    cmd = f"{sys.executable} {FAKE} {GOLDEN} {tmp_path / 'log'} Mathlib.Fake.M00"
    assert main(["run", "--mathlib-dir", str(src), "--out", str(tmp_path / "out"),
                 "--extractor-command", cmd, "--no-progress"]) == 1
    with pytest.raises(Exception, match=r"not built|Lean not found"):
        main(["run", "--mathlib-dir", str(src), "--out", str(tmp_path / "o2"),
              "--set", f"lean.project_dir={str(tmp_path)!r}".replace("'", '"')])


def test_malformed_extractor_line_fails_its_module_only(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One decl line whose range lies outside its source (a wrong file or an extractor bug) makes
    that module a failure named with the decl and its lines; the other module is assembled and
    the command ends with exit 1 and no traceback (it raised AssemblyError after every module
    had been extracted before)."""
    src = _tree(tmp_path / "src", 2)
    out = tmp_path / "out"
    cmd = f"{sys.executable} {FAKE} {GOLDEN} {tmp_path / 'log'}"
    args = ["run", "--mathlib-dir", str(src), "--out", str(out), "--extractor-command", cmd,
            "--no-progress", "--workers", "1"]
    assert main(args) == 0
    capsys.readouterr()
    lines = read_raw(str(out), "Mathlib.Fake.M00")
    bad = [msgspec.structs.replace(m, line=99_999, end_line=99_999)
           if isinstance(m, ExtractDecl) else m for m in lines]
    storage.write_jsonl(raw_path(str(out), "Mathlib.Fake.M00"), bad)
    assert main(args) == 1
    text = capsys.readouterr().out
    assert "failed modules: 1" in text
    assert "Mathlib.Fake.M00: assembly: Mathlib.Fake.M00: decl" in text
    assert "line 99999 outside the source" in text
    names = {t.module for t in _theorems(out)}
    assert names == {"Mathlib.Fake.M01"}
