"""Packaging: the distribution name, the `stp` console script and its subcommands, and an sdist
that carries the whole tree a user runs STP from (MANIFEST.in)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tomllib
from pathlib import Path

import pytest

from stp import __main__ as stp_main
from stp.errors import UsageError

REPO = Path(__file__).resolve().parents[2]
META = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_distribution_name_is_not_the_unrelated_pypi_stp() -> None:
    project = META["project"]
    assert project["name"] == "stp-prover"  # `stp` on PyPI is another project
    # self-references in extras must name this distribution, or pip fetches the other `stp`
    for extra, requirements in project["optional-dependencies"].items():
        for requirement in requirements:
            assert not re.match(r"^stp(\[|$)", requirement), (extra, requirement)
    assert project["urls"]
    assert "Programming Language :: Python :: 3.11" in project["classifiers"]


def test_console_script_is_the_dispatcher() -> None:
    scripts = META["project"]["scripts"]
    assert list(scripts) == ["stp"]
    module, func = scripts["stp"].split(":")
    assert getattr(importlib.import_module(module), func) is stp_main.entry_point


def test_every_readme_command_has_a_subcommand() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    modules = set(re.findall(r"python -m (stp(?:\.[a-z_]+)+)", readme))
    assert {"stp.pipeline", "stp.verify", "stp.eval", "stp.model.tiny"} <= modules
    dispatched = {module for module, _ in stp_main.COMMANDS.values()}
    assert modules <= dispatched, modules - dispatched
    for module in dispatched:
        assert importlib.util.find_spec(module) is not None, module


def _stp(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "stp", *args], capture_output=True, text=True,
                          timeout=300, env=env, stdin=subprocess.DEVNULL)


def test_subcommand_runs_the_module_with_its_arguments_and_exit_code(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "python"), "STP_DATA_DIR": str(tmp_path)}
    via_stp = _stp("verify", "--help", env=env)
    direct = subprocess.run([sys.executable, "-m", "stp.verify", "--help"], capture_output=True,
                            text=True, timeout=300, env=env)
    assert via_stp.returncode == direct.returncode == 0
    assert via_stp.stdout == direct.stdout and "--jobs" in via_stp.stdout
    bad = _stp("data", env=env)  # the module's own usage error, one line, exit 2
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "error: python -m stp.data: the following arguments are required: command (see --help)"]


def test_unknown_or_missing_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(UsageError, match=r"^stp: unknown command `frobnicate` \(choose from "
                                         r"pipeline, selfplay, retrain, train, verify, extract, "
                                         r"data, eval, model-tiny; `stp --help` lists them\)$"):
        stp_main.main(["frobnicate"])
    assert stp_main.main([]) == 2
    assert "model-tiny" in capsys.readouterr().out
    assert stp_main.main(["--help"]) == 0
    proc = _stp("frobnicate", env={**os.environ, "PYTHONPATH": str(REPO / "python")})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "error: stp: unknown command `frobnicate` (choose from pipeline, selfplay, retrain, train, "
        "verify, extract, data, eval, model-tiny; `stp --help` lists them)"]


def test_help_into_a_closed_pipe_is_quiet() -> None:
    """`stp --help | head -n 1`: the reader is gone before we write (closed here first, so the
    write fails every time); no traceback, like the commands themselves."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "python")}
    proc = subprocess.Popen([sys.executable, "-m", "stp", "--help"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) != 0 or err == ""
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_sdist_carries_the_tree_a_user_runs_from(tmp_path: Path) -> None:
    """Built with setuptools' own PEP 517 hook from a copy of the tracked files: every tracked
    file (Lean sources, lakefile, manifest, toolchain, configs, shipped data, locks, scripts) is in
    it, and nothing local (venvs, Lean build output, caches) is."""
    git = shutil.which("git")
    assert git, "git is needed to list the tracked files"
    tracked = subprocess.run([git, "-C", str(REPO), "ls-files", "-z"], capture_output=True,
                             check=True).stdout.decode().split("\0")
    tracked = [path for path in tracked if path and (REPO / path).is_file()]
    src = tmp_path / "src"
    for path in tracked:
        (src / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / path, src / path)
    for local in (".venv/bin/python", ".lake/build/x.olean", "data/downloads/big.jsonl",
                  "python/stp/__pycache__/x.pyc", ".ci/.venv/bin/python"):
        (src / local).parent.mkdir(parents=True, exist_ok=True)
        (src / local).write_text("local\n")
    proc = subprocess.run(
        [sys.executable, "-c", "from setuptools import build_meta as b; print(b.build_sdist('dist'))"],
        cwd=src, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    archive = src / "dist" / proc.stdout.strip().splitlines()[-1]
    with tarfile.open(archive) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
        pkg_info = tar.extractfile(f"{archive.name.removesuffix('.tar.gz')}/PKG-INFO")
        assert pkg_info is not None
        metadata = pkg_info.read().decode()
    # Package archives are never part of the tree a user runs from (main carries two stray ones
    # at the root, future-1.0.0-py3-none-any.whl and lzstring-1.0.4.tar.gz).
    missing = sorted(p for p in set(tracked) - names - {".gitignore"}
                     if not p.endswith((".whl", ".tar.gz")))
    assert not missing, missing
    for needed in ("lakefile.lean", "lake-manifest.json", "lean-toolchain", "lean/STP.lean",
                   "configs/stp-7b.toml", "data/benchmarks/miniF2F_lean.json",
                   "constraints/gpu.txt", "scripts/setup.sh", "scripts/lib/bubblewrap.sh"):
        assert needed in names, needed
    assert not [n for n in names if n.startswith((".venv", ".lake", "data/downloads", ".ci/.venv"))
                or "__pycache__" in n]
    assert "Name: stp-prover" in metadata
