"""scripts/locks.py: lock files merged across Pythons, the check that re-resolves them (driven here
through a stand-in `uv`, so no network), and the README's tested-versions table."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load_locks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stp_locks_script", REPO / "scripts" / "locks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


locks = _load_locks()


def test_merge_marks_only_the_pins_that_differ_between_pythons() -> None:
    lines = locks.merge({
        "3.11": {"vllm": "0.23.0", "setuptools": "81.0.0", "tomli": "2.0.0"},
        "3.12": {"vllm": "0.23.0", "setuptools": "80.10.2"},
        "3.13": {"vllm": "0.23.0", "setuptools": "80.10.2"},
    })
    assert lines == [
        'setuptools==81.0.0 ; python_version == "3.11"',
        'setuptools==80.10.2 ; python_version == "3.12" or python_version == "3.13"',
        'tomli==2.0.0 ; python_version == "3.11"',
        "vllm==0.23.0",
    ]
    text = "# header ; with a semicolon\n" + "\n".join(lines) + "\n"
    assert locks.pins_for(text, "3.11") == {"setuptools": "81.0.0", "tomli": "2.0.0",
                                            "vllm": "0.23.0"}
    assert locks.pins_for(text, "3.13") == {"setuptools": "80.10.2", "vllm": "0.23.0"}


def test_a_malformed_lock_line_is_named() -> None:
    with pytest.raises(locks.LockError, match=r"line 2: `torch>=2` is not `name==version`"):
        locks.parse_lock("a==1\ntorch>=2\n")


def test_the_shipped_locks_pin_what_the_stacks_need() -> None:
    """Every stack's top-level pins hold on every Python it names; the CPU lock carries the
    type checker and the resolver the CI steps run, and no CUDA library; one CUDA major version
    on GPU; the GPU lock keeps vLLM 0.23's setuptools < 81 above Python 3.11."""
    for stack in locks.STACKS.values():
        text = (REPO / "constraints" / f"{stack.name}.txt").read_text()
        assert f"pinned for Python {', '.join(stack.pythons)} on Linux" in text
        for python in stack.pythons:
            pins = locks.pins_for(text, python)
            for pin in stack.pins:
                name, version = pin.split("==")
                assert pins[name] == version, (stack.name, python, pin)
    cpu = locks.pins_for((REPO / "constraints" / "cpu-test.txt").read_text(), "3.12")
    assert {"mypy", "ruff", "pytest", "uv"} <= set(cpu)
    assert not [n for n in cpu if locks.CUDA_PACKAGE.match(n)]
    gpu_text = (REPO / "constraints" / "gpu.txt").read_text()
    for python in ("3.12", "3.13"):
        gpu = locks.pins_for(gpu_text, python)
        assert tuple(int(x) for x in gpu["setuptools"].split(".")[:2]) < (81, 0)
        assert not any("cu12" in name for name in gpu) and "jax-cuda13-plugin" in gpu
    cpu311, gpu311 = locks.pins_for((REPO / "constraints" / "cpu-test.txt").read_text(), "3.11"), \
        locks.pins_for(gpu_text, "3.11")
    for package in ("transformers", "jax", "levanter"):
        assert cpu311[package] == gpu311[package], package


FAKE_UV = r"""#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
log = os.environ["FAKE_UV_LOG"]
with open(log, "a") as f:
    config = open(args[args.index("--config-file") + 1]).read()
    constraints = [open(args[i + 1]).read() for i, a in enumerate(args) if a == "-c"]
    f.write(json.dumps({"args": args, "config": config, "constraints": constraints,
                        "pip_env": sorted(k for k in os.environ if k.startswith(("PIP_", "UV_")))})
            + "\n")
python = args[args.index("--python-version") + 1]
answer = json.loads(os.environ["FAKE_UV_ANSWER"])
if python not in answer:
    print("error: No solution found when resolving dependencies", file=sys.stderr)
    print("  cause: Because vllm==0.23.0 depends on setuptools<81 ...", file=sys.stderr)
    sys.exit(1)
with open(args[args.index("-o") + 1], "w") as f:
    f.write("".join(f"{n}=={v}\n" for n, v in answer[python].items()))
"""


@pytest.fixture
def fake_uv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    uv = tmp_path / "uv"
    uv.write_text(FAKE_UV)
    uv.chmod(0o755)
    monkeypatch.setattr(locks, "uv_binary", lambda: str(uv))
    monkeypatch.setattr(locks, "CONSTRAINTS", tmp_path / "locks")
    (tmp_path / "locks").mkdir()
    monkeypatch.setattr(locks, "cpu_torch_requirements",
                        lambda version, python: ["filelock", "setuptools>=77.0.3"])
    monkeypatch.setenv("FAKE_UV_LOG", str(tmp_path / "uv.log"))
    monkeypatch.setenv("PIP_FIND_LINKS", "/opt/wheels")  # a local torch wheel must not leak in
    return tmp_path


def _calls(root: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (root / "uv.log").read_text().splitlines()]


STACK = locks.Stack(name="demo", extras=("test",), pins=("torch==2.13.0",),
                    pythons=("3.11", "3.12"), cpu_torch=True, use="x", why="y")


def test_generate_then_check_round_trip(fake_uv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    answer = {"3.11": {"torch": "2.13.0", "setuptools": "81.0.0"},
              "3.12": {"torch": "2.13.0", "setuptools": "80.10.2"}}
    monkeypatch.setenv("FAKE_UV_ANSWER", json.dumps(answer))
    locks.generate([STACK], upgrade=False)
    text = (fake_uv / "locks" / "demo.txt").read_text()
    assert "GENERATED by `python scripts/locks.py generate --stack demo`" in text
    assert 'setuptools==81.0.0 ; python_version == "3.11"' in text and "\ntorch==2.13.0\n" in text
    assert locks.check([STACK]) == []
    calls = _calls(fake_uv)
    assert len(calls) == 4
    for call, python in zip(calls, ("3.11", "3.12", "3.11", "3.12"), strict=True):
        args = call["args"]
        assert isinstance(args, list)
        assert args[args.index("--python-version") + 1] == python
        assert args[args.index("--python-platform") + 1] == "x86_64-manylinux_2_28"
        assert args[args.index("--index-url") + 1] == locks.INDEX_URL
        assert args[args.index("--extra"):args.index("--extra") + 2] == ["--extra", "test"]
        assert call["pip_env"] == []  # pip's configuration never reaches the resolver
        # torch resolved as its CPU build: the metadata without CUDA libraries
        assert 'name = "torch"' in str(call["config"]) and "setuptools>=77.0.3" in str(
            call["config"])
    # the check passes the lock itself as constraints
    assert any("setuptools==81.0.0" in c for c in calls[2]["constraints"])  # type: ignore[union-attr]


def test_check_fails_on_a_conflict_a_missing_pin_and_a_moved_pin(
        fake_uv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (fake_uv / "locks" / "demo.txt").write_text(
        "# lock\ntorch==2.13.0\nsetuptools==81.0.0\nstale==1.0\n")
    monkeypatch.setenv("FAKE_UV_ANSWER", json.dumps(
        {"3.11": {"torch": "2.13.0", "setuptools": "80.10.2", "mypy": "2.4.1"}}))
    problems = locks.check([STACK])
    assert len(problems) == 2
    assert ("not pinned: mypy==2.4.1; pinned but not needed: stale; resolves differently: "
            "setuptools 81.0.0 -> 80.10.2; regenerate") in problems[0]
    assert "Python 3.12 does not resolve" in problems[1]
    assert "vllm==0.23.0 depends on setuptools<81" in problems[1]  # uv's own reason


def test_main_exit_codes(fake_uv: Path, monkeypatch: pytest.MonkeyPatch,
                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(locks, "STACKS", {"demo": STACK})
    assert locks.main(["check"]) == 1
    assert "demo.txt is missing" in capsys.readouterr().err

    def unreachable() -> str:
        raise locks.EnvironmentProblem("uv is not installed: pip install uv")

    monkeypatch.setattr(locks, "uv_binary", unreachable)
    (fake_uv / "locks" / "demo.txt").write_text("torch==2.13.0\n")
    assert locks.main(["generate"]) == 2
    assert "locks: error: uv is not installed" in capsys.readouterr().err


def test_readme_table_is_the_generated_one_and_names_the_cpu_lock() -> None:
    """The README's table is exactly what `locks.py tested-versions` writes for the versions the
    CPU lock pins (CI's last step checks it against the environment the tests ran in)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index(locks.TABLE_BEGIN):readme.index(locks.TABLE_END)]
    tested_python = block.split("the test suite ran in, Python ")[1].split(")")[0]
    cpu = locks.pins_for((REPO / "constraints" / "cpu-test.txt").read_text(), tested_python)
    row = next(line for line in block.splitlines() if line.startswith("| CPU tests"))
    shown = dict(item.rsplit(" ", 1) for item in row.split("): ")[1].rstrip(" |").split(", "))
    assert set(shown) == set(locks.TESTED)
    tested = {name: version for name, version in shown.items()}
    for name, version in tested.items():
        assert version.split("+")[0] == cpu[name], f"README says {name} {version}, lock {cpu[name]}"
    assert locks.replace_table(readme, locks.render_table(tested_python, tested)) == readme


def test_tested_versions_check_fails_when_the_environment_differs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"x\n{locks.TABLE_BEGIN}\nold\n{locks.TABLE_END}\ny\n")
    monkeypatch.setattr(locks, "README", readme)
    versions = {name: "1.0" for name in locks.TESTED}
    monkeypatch.setattr(locks, "installed_versions", lambda python: ("3.12", versions))
    assert locks.tested_versions("py", check_only=True) != []
    assert locks.tested_versions("py", check_only=False) == []
    text = readme.read_text()
    assert text.startswith("x\n") and text.endswith("\ny\n") and "torch 1.0" in text
    assert locks.tested_versions("py", check_only=True) == []
    versions["torch"] = "2.0"
    assert "differs from the environment" in locks.tested_versions("py", check_only=True)[0]


def test_installed_versions_reads_the_given_interpreter() -> None:
    python, versions = locks.installed_versions(sys.executable)
    assert python == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert versions["pytest"] == pytest.__version__
    assert os.path.exists(sys.executable)
