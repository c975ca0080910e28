#!/usr/bin/env python3
"""Every constraints file (lock) in constraints/ is generated and checked here, from pyproject.toml.

    python scripts/locks.py generate [--stack S ...] [--upgrade]   # rewrite constraints/S.txt
    python scripts/locks.py check [--stack S ...]                   # prove every lock (CI)
    python scripts/locks.py tested-versions [--python EXE] [--check]  # the README's table

Why a resolver run per stack and per Python: a pin set that resolves on Python 3.11 can fail on
3.12 (vLLM 0.23 needs setuptools < 81 above 3.11), so each stack is resolved for every Python it
supports and the results are merged into one file, a pin that differs between Pythons carrying a
`python_version` marker (pip honours markers in constraints files). The resolver is
`uv pip compile`: it targets a Python version and platform without installing them, reads wheel
metadata without downloading whole wheels, and ignores pip's configuration (so a local wheel
offered through pip.conf, such as the build machines' torch 2.13.0+cpu, cannot leak in).

`check` resolves pyproject.toml again for every stack and Python with the lock as constraints and
fails unless the resolution succeeds and equals the lock's pins for that Python exactly: a pin
that conflicts (torch 2.11 with setuptools 84), a dependency the lock lacks (a new extra) or a
stale pin all fail it, with uv's own error. Regenerating keeps the lock's current pins as
preferences (uv's behaviour for an existing output file) unless --upgrade is given.

CPU builds of torch (the CPU test stack, the TPU stack) live on download.pytorch.org, which CI may
not reach. They declare the same requirements as PyPI's Linux wheel of the same version minus the
CUDA libraries (nvidia-*, cuda-*, triton; every such requirement carries a `platform_system ==
"Linux"` marker), so the resolver is given exactly that metadata for the pinned torch version
(uv's `dependency-metadata`), derived from PyPI's Linux wheel at run time. The lock pins
`torch==X`, which the CPU build `X+cpu` satisfies.

Exit status: 0 all good, 1 a lock (or the README table) is inconsistent, 2 usage or environment
errors (uv missing, index unreachable).
"""

from __future__ import annotations

import argparse
import email.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONSTRAINTS = Path(os.environ.get("STP_LOCK_DIR", REPO / "constraints"))
README = REPO / "README.md"
INDEX_URL = os.environ.get("STP_LOCK_INDEX_URL", "https://pypi.org/simple")
# Linux x86_64 with glibc >= 2.28: torch 2.9+ ships manylinux_2_28 wheels only.
PLATFORM = "x86_64-manylinux_2_28"
CUDA_PACKAGE = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")


@dataclass(frozen=True)
class Stack:
    """One supported install: the extras of pyproject.toml, the top-level pins that choose the
    release line, the Pythons it is resolved for, and why (written into the lock's header)."""

    name: str
    extras: tuple[str, ...]
    pins: tuple[str, ...]
    pythons: tuple[str, ...]
    cpu_torch: bool
    use: str
    why: str
    platform: str = PLATFORM


STACKS: dict[str, Stack] = {stack.name: stack for stack in (
    Stack(
        name="cpu-test",
        extras=("test",),
        # torch 2.13.0 is the version the tests run on (CPU build); the GPU stack's 2.11.0 is
        # not run here: its PyPI wheel is a CUDA build and 2.11.0+cpu lives on an index the
        # build machines cannot reach.
        pins=("torch==2.13.0", "transformers==4.57.6", "jax==0.10.2"),
        pythons=("3.11", "3.12", "3.13"),
        cpu_torch=True,
        use="bash scripts/dev-setup.sh   (torch==X+cpu from the PyTorch CPU index, then\n"
            "#       pip install -c constraints/cpu-test.txt -e '.[test]')",
        why="transformers, jax and levanter equal the GPU stack's; torch is the CPU build of\n"
            "# 2.13.0, the version every test has run on (the GPU stack's torch 2.11.0 is a CUDA\n"
            "# build that the CPU test machines do not run).",
    ),
    Stack(
        name="gpu",
        extras=("cluster", "train", "gpu"),
        pins=("vllm==0.23.0", "torch==2.11.0", "transformers==4.57.6", "jax==0.10.2"),
        pythons=("3.11", "3.12", "3.13"),
        cpu_torch=False,
        use="pip install -c constraints/gpu.txt -e '.[cluster,train,gpu]'",
        why="vLLM 0.23 is the last release that takes transformers < 5 (Levanter 1.2.dev1644\n"
            "# needs < 5); it pins torch 2.11.0, whose PyPI wheel is a CUDA 13 build, so JAX takes\n"
            "# its cuda13 plugin and the environment holds one CUDA major version. vLLM 0.23 needs\n"
            "# setuptools < 81 above Python 3.11, hence per-Python pins.",
    ),
    Stack(
        name="tpu",
        extras=("cluster", "train", "tpu"),
        pins=("vllm-tpu==0.13.3", "transformers==4.57.6", "torch==2.9.0"),
        # vllm-tpu 0.13.3 needs nixl 0.3.0, which has no Python 3.13 wheels.
        pythons=("3.11", "3.12"),
        cpu_torch=True,
        use="pip install -c constraints/tpu.txt --extra-index-url https://download.pytorch.org/whl/cpu \\\n"
            "#           -e '.[cluster,train,tpu]'",
        why="tpu-inference pins jax/jaxlib 0.8.1 and libtpu, which Levanter 1.2.dev1644 trains\n"
            "# with; tpu-inference 0.18-0.19 pin gcsfs 2026 (Levanter: < 2026) and 0.20+ need\n"
            "# transformers 5 (Levanter: < 5). torch is the CPU build (for torchax). Not run on a\n"
            "# TPU here: checked by resolution only.",
        # libtpu 0.0.31 ships manylinux_2_31 wheels only (TPU VM images have glibc 2.35).
        platform="x86_64-manylinux_2_31",
    ),
)}


class LockError(Exception):
    """A lock is inconsistent (exit 1)."""


class EnvironmentProblem(Exception):
    """uv or the index is unavailable (exit 2)."""


# ---------------------------------------------------------------------------------------------
# Lock files: `name==version[ ; python_version marker]` lines under a comment header.

def parse_lock(text: str) -> list[tuple[str, str, str]]:
    """(name, version, marker) per pin line; marker is '' for a pin that holds on every Python."""
    pins = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, _, marker = (part.strip() for part in line.partition(";"))
        name, sep, version = requirement.partition("==")
        if not sep or not name.strip() or not version.strip():
            raise LockError(f"line {number}: `{raw}` is not `name==version`")
        pins.append((normalize(name), version.strip(), marker))
    return pins


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name.strip()).lower()


def pins_for(text: str, python: str) -> dict[str, str]:
    """The lock's pins that apply on `python` (markers evaluated with packaging)."""
    from packaging.markers import Marker

    env = {"python_version": python, "python_full_version": f"{python}.0",
           "sys_platform": "linux", "platform_system": "Linux", "platform_machine": "x86_64",
           "os_name": "posix", "implementation_name": "cpython"}
    out: dict[str, str] = {}
    for name, version, marker in parse_lock(text):
        if marker and not Marker(marker).evaluate(env):
            continue
        if name in out and out[name] != version:
            raise LockError(f"{name} is pinned twice for Python {python}")
        out[name] = version
    return out


def merge(per_python: dict[str, dict[str, str]]) -> list[str]:
    """One line per package and version; a pin that is not the same on every Python gets a
    `python_version` marker naming the Pythons it is for."""
    pythons = list(per_python)
    lines = []
    for name in sorted({n for pins in per_python.values() for n in pins}):
        by_version: dict[str, list[str]] = {}
        for python in pythons:
            if name in per_python[python]:
                by_version.setdefault(per_python[python][name], []).append(python)
        for version, where in by_version.items():
            if where == pythons:
                lines.append(f"{name}=={version}")
            else:
                marker = " or ".join(f'python_version == "{p}"' for p in where)
                lines.append(f"{name}=={version} ; {marker}")
    return lines


def header(stack: Stack) -> str:
    command = f"python scripts/locks.py generate --stack {stack.name}"
    return "\n".join([
        f"# {stack.name} stack: every package of '.[{','.join(stack.extras)}]' pinned for Python "
        f"{', '.join(stack.pythons)} on Linux {stack.platform}.",
        f"# GENERATED by `{command}` (uv pip compile, top-level pins "
        f"{' '.join(stack.pins)}); do not edit by hand.",
        "# Checked in CI by `python scripts/locks.py check`. Pins that differ between Pythons carry"
        " a python_version marker.",
        *(["# torch is resolved as its CPU build (PyPI's Linux metadata minus the CUDA libraries;"
           " the lock's torch==X",
           "# is satisfied by X+cpu from https://download.pytorch.org/whl/cpu)."]
          if stack.cpu_torch else []),
        f"# Use:  {stack.use}",
        f"# Why these: {stack.why}",
        "",
    ])


# ---------------------------------------------------------------------------------------------
# The resolver.

def uv_binary() -> str:
    beside = Path(sys.executable).parent / "uv"
    if beside.exists():
        return str(beside)
    try:
        from uv import find_uv_bin  # type: ignore[import-not-found, unused-ignore]

        return str(find_uv_bin())
    except ImportError:
        pass
    found = shutil.which("uv")
    if found:
        return found
    raise EnvironmentProblem("uv is not installed: pip install uv (it is in the test extra)")


def _get(url: str, accept: str | None = None) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return bytes(response.read())
    except OSError as error:
        raise EnvironmentProblem(f"{url}: {error}") from error


def cpu_torch_requirements(version: str, python: str) -> list[str]:
    """The requirements of torch `version`'s CPU build for `python`: PyPI's Linux x86_64 wheel
    metadata without the CUDA libraries (which that wheel adds under a Linux marker)."""
    index = json.loads(_get(f"{INDEX_URL.rstrip('/')}/torch/",
                            "application/vnd.pypi.simple.v1+json"))
    tag = "cp" + python.replace(".", "")
    pattern = re.compile(rf"^torch-{re.escape(version)}-{tag}-{tag}-manylinux.*x86_64\.whl$")
    files = [f for f in index["files"] if pattern.match(f["filename"])]
    if not files:
        raise EnvironmentProblem(f"no Linux x86_64 wheel of torch {version} for Python {python} "
                                 f"on {INDEX_URL}")
    metadata = email.parser.Parser().parsestr(_get(files[0]["url"] + ".metadata").decode())
    from packaging.requirements import Requirement

    kept = []
    for line in metadata.get_all("Requires-Dist") or []:
        requirement = Requirement(line)
        if CUDA_PACKAGE.match(normalize(requirement.name)):
            if "platform_system" not in str(requirement.marker):
                raise EnvironmentProblem(f"torch {version} requires {line} without a Linux "
                                         "marker: the CPU-build rule no longer holds")
            continue
        kept.append(line)
    return kept


def resolve(stack: Stack, python: str, constraints: str | None = None,
            preferences: dict[str, str] | None = None) -> dict[str, str]:
    """`uv pip compile` of pyproject.toml's extras for one Python; returns name -> version."""
    with tempfile.TemporaryDirectory(prefix="stp-locks-") as tmp:
        work = Path(tmp)
        config = work / "uv.toml"
        config.write_text("")
        if stack.cpu_torch:
            torch = next(p.split("==")[1] for p in stack.pins if p.startswith("torch=="))
            entry = {"name": "torch", "version": torch,
                     "requires-dist": cpu_torch_requirements(torch, python)}
            config.write_text("[[dependency-metadata]]\n" + "\n".join(
                f"{key} = {json.dumps(value)}" for key, value in entry.items()) + "\n")
        pins = work / "pins.txt"
        pins.write_text("\n".join(stack.pins) + "\n")
        out = work / "out.txt"
        if preferences:
            out.write_text("".join(f"{n}=={v}\n" for n, v in sorted(preferences.items())))
        command = [uv_binary(), "pip", "compile", "--config-file", str(config), "--quiet",
                   str(REPO / "pyproject.toml"), *(a for e in stack.extras for a in ("--extra", e)),
                   "-c", str(pins), "--python-version", python, "--python-platform", stack.platform,
                   "--index-url", INDEX_URL, "--no-header", "--no-annotate", "-o", str(out)]
        if constraints is not None:
            lock = work / "lock.txt"
            lock.write_text(constraints)
            command += ["-c", str(lock)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("UV_", "PIP_"))}
        if "UV_CACHE_DIR" in os.environ:
            env["UV_CACHE_DIR"] = os.environ["UV_CACHE_DIR"]
        proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp,
                              stdin=subprocess.DEVNULL, timeout=900)
        if proc.returncode != 0:
            detail = "\n".join(proc.stderr.strip().splitlines()[-25:])
            raise LockError(f"{stack.name} on Python {python} does not resolve:\n{detail}")
        return pins_for(out.read_text(), python)


# ---------------------------------------------------------------------------------------------
# Commands.

def display(path: Path) -> str:
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def lock_path(stack: Stack) -> Path:
    return CONSTRAINTS / f"{stack.name}.txt"


def generate(stacks: list[Stack], upgrade: bool) -> None:
    for stack in stacks:
        path = lock_path(stack)
        current = path.read_text() if path.exists() and not upgrade else ""
        per_python = {}
        for python in stack.pythons:
            started = time.monotonic()
            preferences = pins_for(current, python) if current else None
            per_python[python] = resolve(stack, python, preferences=preferences)
            print(f"{stack.name} / Python {python}: {len(per_python[python])} pins "
                  f"({time.monotonic() - started:.0f} s)")
        text = header(stack) + "\n".join(merge(per_python)) + "\n"
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
        print(f"wrote {display(path)}")


def check(stacks: list[Stack]) -> list[str]:
    problems = []
    for stack in stacks:
        path = lock_path(stack)
        if not path.exists():
            problems.append(f"{display(path)} is missing")
            continue
        text = path.read_text()
        for python in stack.pythons:
            started = time.monotonic()
            try:
                locked = pins_for(text, python)
                resolved = resolve(stack, python, constraints=text)
            except LockError as error:
                problems.append(f"{display(path)}: {error}")
                print(f"FAIL {stack.name} / Python {python}")
                continue
            diff = describe_difference(locked, resolved)
            if diff:
                problems.append(f"{display(path)} on Python {python}: {diff}")
            print(f"{'FAIL' if diff else 'ok  '} {stack.name} / Python {python}: "
                  f"{len(locked)} pins ({time.monotonic() - started:.0f} s)")
    return problems


def describe_difference(locked: dict[str, str], resolved: dict[str, str]) -> str:
    missing = sorted(set(resolved) - set(locked))
    extra = sorted(set(locked) - set(resolved))
    moved = sorted(n for n in set(locked) & set(resolved) if locked[n] != resolved[n])
    parts = []
    if missing:
        parts.append("not pinned: " + ", ".join(f"{n}=={resolved[n]}" for n in missing))
    if extra:
        parts.append("pinned but not needed: " + ", ".join(extra))
    if moved:
        parts.append("resolves differently: " + ", ".join(
            f"{n} {locked[n]} -> {resolved[n]}" for n in moved))
    return "; ".join(parts) + ("; regenerate with scripts/locks.py generate" if parts else "")


# The README's tested-versions table: the CPU row is what the test environment holds.
TABLE_BEGIN = "<!-- tested-versions: generated by scripts/locks.py tested-versions -->"
TABLE_END = "<!-- /tested-versions -->"
TESTED = ("torch", "transformers", "jax", "jaxlib", "levanter", "ray", "datasets", "numpy",
          "msgspec", "pytest", "mypy", "ruff")
GPU_SHOWN = ("vllm", "torch", "transformers", "jax", "jax-cuda13-plugin", "levanter", "ray")
TPU_SHOWN = ("vllm-tpu", "tpu-inference", "jax", "libtpu", "torch", "transformers", "levanter")


def installed_versions(python: str) -> tuple[str, dict[str, str]]:
    """(Python version, {package: version}) of the environment of interpreter `python`."""
    code = ("import json, sys, importlib.metadata as m\n"
            "out = {}\n"
            "for d in m.distributions():\n"
            "    out[d.metadata['Name']] = d.version\n"
            "print(json.dumps([f'{sys.version_info[0]}.{sys.version_info[1]}', out]))")
    proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise EnvironmentProblem(f"{python}: {proc.stderr.strip()[-300:]}")
    version, dists = json.loads(proc.stdout)
    return version, {normalize(k): v for k, v in dists.items()}


def render_table(tested_python: str, tested: dict[str, str]) -> str:
    def shown(pins: dict[str, str], names: tuple[str, ...]) -> str:
        return ", ".join(f"{n} {pins[n]}" for n in names if n in pins)

    def lock_pins(name: str) -> dict[str, str]:
        stack = STACKS[name]
        return pins_for(lock_path(stack).read_text(), stack.pythons[0])

    missing = [n for n in TESTED if n not in tested]
    if missing:
        raise LockError("the test environment lacks " + ", ".join(missing))
    gpu, tpu = STACKS["gpu"], STACKS["tpu"]
    rows = [
        TABLE_BEGIN,
        "| stack | command | Pythons locked | versions |",
        "|---|---|---|---|",
        f"| CPU tests | `bash scripts/dev-setup.sh` (= `pip install -c constraints/cpu-test.txt "
        f"-e \".[test]\"` with CPU torch) | {', '.join(STACKS['cpu-test'].pythons)} | **tested** "
        f"(the environment the test suite ran in, Python {tested_python}): "
        f"{shown(tested, TESTED)} |",
        f"| GPU (Linux, CUDA 13 only) | `pip install -c constraints/gpu.txt -e "
        f"\".[cluster,train,gpu]\"` | {', '.join(gpu.pythons)} | resolved, not run here: "
        f"{shown(lock_pins('gpu'), GPU_SHOWN)} |",
        f"| TPU VM | `pip install -c constraints/tpu.txt --extra-index-url "
        f"https://download.pytorch.org/whl/cpu -e \".[cluster,train,tpu]\"` | "
        f"{', '.join(tpu.pythons)} | resolved, not run here: "
        f"{shown(lock_pins('tpu'), TPU_SHOWN)} (torch: CPU build) |",
        TABLE_END,
    ]
    return "\n".join(rows)


def replace_table(readme: str, table: str) -> str:
    start, end = readme.find(TABLE_BEGIN), readme.find(TABLE_END)
    if start < 0 or end < start:
        raise LockError(f"README.md has no `{TABLE_BEGIN}` ... `{TABLE_END}` block")
    return readme[:start] + table + readme[end + len(TABLE_END):]


def tested_versions(python: str, check_only: bool) -> list[str]:
    tested_python, tested = installed_versions(python)
    readme = README.read_text(encoding="utf-8")
    updated = replace_table(readme, render_table(tested_python, tested))
    if updated == readme:
        print("README.md tested-versions table matches the test environment")
        return []
    if check_only:
        return ["README.md's tested-versions table differs from the environment of "
                f"{python}; regenerate with `python scripts/locks.py tested-versions "
                f"--python {python}`"]
    README.write_text(updated, encoding="utf-8")
    print("wrote the tested-versions table in README.md")
    return []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("generate", "check"):
        command = sub.add_parser(name)
        command.add_argument("--stack", action="append", choices=sorted(STACKS))
        if name == "generate":
            command.add_argument("--upgrade", action="store_true",
                                 help="ignore the current pins (otherwise kept as preferences)")
    table = sub.add_parser("tested-versions")
    table.add_argument("--python", default=sys.executable,
                       help="interpreter of the environment the tests ran in")
    table.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "tested-versions":
            problems = tested_versions(args.python, args.check)
        else:
            stacks = [STACKS[s] for s in (args.stack or STACKS)]
            if args.command == "generate":
                generate(stacks, args.upgrade)
                problems = []
            else:
                problems = check(stacks)
    except EnvironmentProblem as error:
        print(f"locks: error: {error}", file=sys.stderr)
        return 2
    except LockError as error:
        print(f"locks: {error}", file=sys.stderr)
        return 1
    for problem in problems:
        print(f"locks: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
