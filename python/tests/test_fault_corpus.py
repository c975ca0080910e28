"""The fault corpus: every command x bad inputs -> exit 2 and one line naming the culprit.

Each case runs a command the way a user would (through `stp.cli.run_main`, in-process where the
command's behaviour does not depend on being a fresh process, in a subprocess for resource limits
and other users) and asserts the project's contract for bad input: exit status 2, exactly one
line on stderr, starting `error:` and naming the culprit (file, flag or config key), no traceback,
and no output left behind. The commands come from `stp.cli.COMMANDS` and the out-of-range values
from the config types themselves, so a new command or a new config field joins the corpus by
construction (an unlisted command or a numeric field without a range fails here).
"""

from __future__ import annotations

import contextlib
import gzip
import importlib
import json
import math
import os
import pkgutil
import re
import signal
import subprocess
import sys
import typing
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
from standin import checker_override, standin_command

import stp
from stp.cli import COMMANDS, run_main
from stp.config import STPConfig

pytest_plugins = ["gcs_emulator"]

REPO_PYTHON = str(Path(__file__).resolve().parents[1])

# --------------------------------------------------------------------------------------------
# Running a command and checking the contract


class Outcome(typing.NamedTuple):
    code: int | str | None
    out: str
    err: str


def run_command(command: str, argv: list[str], capsys: pytest.CaptureFixture[str]) -> Outcome:
    """`python -m <command> argv...` in-process, through run_main like the real entry point."""
    main = importlib.import_module(COMMANDS[command]).main
    capsys.readouterr()
    try:
        run_main(main, argv)
    except SystemExit as exit_:
        code = exit_.code
    else:  # run_main always exits
        code = "returned"
    captured = capsys.readouterr()
    return Outcome(code, captured.out, captured.err)


def assert_one_line_error(outcome: Outcome, *culprits: str) -> None:
    lines = [line for line in outcome.err.splitlines() if line.strip()]
    assert outcome.code == 2, outcome
    assert len(lines) == 1, outcome.err
    assert lines[0].startswith("error: "), lines
    assert "Traceback" not in outcome.err
    for culprit in culprits:
        assert culprit in lines[0], (culprit, lines[0])


def files_under(root: Path) -> set[str]:
    """Files (not empty directories, not the run-directory lock) a command left under root."""
    return {p.relative_to(root).as_posix() for p in root.rglob("*")
            if p.is_file() and p.name != ".stp-lock"}


# --------------------------------------------------------------------------------------------
# Every command, with arguments that would do real work (so the fault, not a missing argument,
# is what stops it)


@pytest.fixture
def ws(tmp_path: Path) -> SimpleWorkspace:
    return SimpleWorkspace(tmp_path)


class SimpleWorkspace:
    """Valid inputs for every command, and a fresh output location per command."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.proofs = root / "proofs.jsonl"
        self.proofs.write_text(json.dumps({"statement": "theorem t : True", "proof": " := trivial"})
                               + "\n")
        self.examples = root / "sft.jsonl"
        self.examples.write_text(json.dumps({"prompt": "p", "target": "t", "weight": 1.0}) + "\n")
        self.log = root / "log.jsonl"
        self.log.write_text(json.dumps({"statement_id": "a", "split": "toy:test", "sample": 0,
                                        "status": "pass"}) + "\n")
        self.out = root / "out"
        self.model = root / "model"
        self.model.mkdir()
        (self.model / "config.json").write_text("{}")

    def invocations(self) -> dict[str, list[str]]:
        """One argv per command and sub-command; each writes only under self.out."""
        out = str(self.out)
        return {
            "stp.selfplay": ["--set", f"run.run_dir={json.dumps(out)}",
                             "--set", checker_override(standin_command())],
            "stp.selfplay report": ["report", "--run-dir", out],
            "stp.retrain": ["--set", f"run.run_dir={json.dumps(out)}"],
            "stp.pipeline": ["--set", f"run.run_dir={json.dumps(out)}", "--stages", "retrain",
                             "--set", checker_override(standin_command())],
            "stp.train": ["--data", str(self.examples), "--out", out, "--model", str(self.model)],
            "stp.verify": [str(self.proofs), "--json",
                           "--set", checker_override(standin_command())],
            "stp.extract run": ["run", "--out", out],
            "stp.extract sft": ["sft", "--extraction", str(self.root / "extraction"), "--out", out],
            "stp.data info": ["info"],
            "stp.eval summarize": ["summarize", "--log", str(self.log)],
            "stp.eval run": ["run", "--out", out, "--set", checker_override(standin_command())],
            "stp.eval plot": ["plot", "--log", str(self.log), "--out", out],
            "stp.model.tiny": [out],
        }


def command_of(invocation: str) -> str:
    return next(c for c in sorted(COMMANDS, key=len, reverse=True) if invocation.startswith(c))


INVOCATIONS = [
    "stp.pipeline", "stp.selfplay", "stp.selfplay report", "stp.retrain", "stp.train",
    "stp.verify",
    "stp.extract run", "stp.extract sft", "stp.data info", "stp.eval summarize", "stp.eval run",
    "stp.eval plot", "stp.model.tiny"]


def test_every_command_is_in_the_corpus(tmp_path: Path) -> None:
    # Every `python -m stp...` module (a __main__.py, or a module ending in run_main(main)) is
    # listed in stp.cli.COMMANDS, and every listed command has invocations in this corpus.
    found = set()
    for info in pkgutil.walk_packages(stp.__path__, "stp."):
        spec = importlib.util.find_spec(info.name)
        assert spec is not None and spec.origin is not None
        text = Path(spec.origin).read_text(encoding="utf-8")
        if info.name.endswith(".__main__") or re.search(r"if __name__ == .__main__.:\s*\n(\s+.*\n)*"
                                                        r"\s+run_main\(main\)", text):
            found.add(info.name.removesuffix(".__main__"))
    # `python -m stp` is the `stp <command>` dispatcher: it runs the commands listed here, as
    # they are (test_packaging.py checks the dispatch), so it has no invocations of its own.
    found.discard("stp")
    assert found == set(COMMANDS), found ^ set(COMMANDS)
    assert {command_of(i) for i in INVOCATIONS} == set(COMMANDS)
    assert set(SimpleWorkspace(tmp_path).invocations()) == set(INVOCATIONS)


# --------------------------------------------------------------------------------------------
# Configuration: bad files and bad values, for every command


def _bad_config_files(root: Path) -> dict[str, Path]:
    files = {"latin1": root / "latin1.toml", "binary": root / "binary.toml",
             "garbage": root / "garbage.toml", "directory": root / "dir.toml",
             "missing": root / "missing.toml", "wrong type": root / "types.toml"}
    files["latin1"].write_bytes('[run]\nname = "café"\n'.encode("latin-1"))
    files["binary"].write_bytes(bytes(range(256)) * 4)
    files["garbage"].write_text("[run\nname = = 3\n")
    files["directory"].mkdir()
    files["wrong type"].write_text('[trainer]\nbatch_size = "big"\n')
    return files


@pytest.mark.parametrize("invocation", INVOCATIONS)
def test_bad_config_file_is_one_line(invocation: str, ws: SimpleWorkspace,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    argv = ws.invocations()[invocation]
    for kind, path in _bad_config_files(ws.root).items():
        outcome = run_command(command_of(invocation), [*argv, "--config", str(path)], capsys)
        assert_one_line_error(outcome, path.name)
        if kind == "wrong type":
            assert "trainer.batch_size" in outcome.err
        assert not ws.out.exists(), (invocation, kind)


@pytest.mark.parametrize("invocation", INVOCATIONS)
def test_bad_overrides_and_flags_are_one_line(invocation: str, ws: SimpleWorkspace,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    argv = ws.invocations()[invocation]
    cases = [(["--set", "trainer.lrr=1"], "trainer.lrr"),
             (["--set", "verifier.pipeline_depth=0"], "verifier.pipeline_depth"),
             (["--set", "trainer"], "trainer"),
             (["--no-such-flag"], "--no-such-flag")]
    for extra, culprit in cases:
        outcome = run_command(command_of(invocation), [*argv, *extra], capsys)
        assert_one_line_error(outcome, culprit)
        assert not ws.out.exists(), (invocation, extra)


def _numeric_and_closed_fields() -> Iterator[tuple[str, Any]]:
    """(dotted key, msgspec type info) of every numeric or Literal field of the config tree."""

    def walk(prefix: str, info: Any) -> Iterator[tuple[str, Any]]:
        for f in info.fields:
            key = f"{prefix}{f.encode_name}"
            t = f.type
            if isinstance(t, msgspec.inspect.StructType):
                yield from walk(key + ".", t)
            elif isinstance(t, msgspec.inspect.ListType) and isinstance(
                    t.item_type, msgspec.inspect.StructType):
                yield from ((f"{key}[].{k}", v) for k, v in walk("", t.item_type))
            elif isinstance(t, msgspec.inspect.ListType) and isinstance(
                    t.item_type, msgspec.inspect.IntType | msgspec.inspect.FloatType):
                yield f"{key}[]", t.item_type
            elif isinstance(t, msgspec.inspect.IntType | msgspec.inspect.FloatType
                            | msgspec.inspect.LiteralType):
                yield key, t

    yield from walk("", msgspec.inspect.type_info(STPConfig))


FIELDS = dict(_numeric_and_closed_fields())


def _out_of_range(t: Any) -> list[Any]:
    """Values just outside each bound of a numeric type (or not in a closed set); for floats
    also inf, -inf and nan, which every float range must refuse."""
    if isinstance(t, msgspec.inspect.LiteralType):
        return ["no-such-choice"]
    is_int = isinstance(t, msgspec.inspect.IntType)
    bad: list[Any] = []
    if t.ge is not None:
        bad.append(t.ge - 1 if is_int else math.nextafter(t.ge, -math.inf))
    if t.gt is not None:
        bad.append(t.gt)
    if t.le is not None:
        bad.append(t.le + 1 if is_int else math.nextafter(t.le, math.inf))
    if t.lt is not None:
        bad.append(t.lt)
    if not is_int and bad:
        bad += [math.inf, -math.inf, math.nan]
    return bad


def test_every_numeric_config_field_has_a_range() -> None:
    # Both ends: a field without an upper bound accepts 10**20 samples or a batch of 10**9.
    unbounded = [k for k, t in FIELDS.items()
                 if not isinstance(t, msgspec.inspect.LiteralType)
                 and ((t.ge is None and t.gt is None) or (t.le is None and t.lt is None))]
    assert not unbounded, f"give these fields a finite range (stp.ranges): {unbounded}"
    assert len(FIELDS) > 60


# Boundary values written out, not read from the types: a range weakened in the type (a
# PositiveInt that allows 0, a seed without its 32-bit bound) would move the values read from it
# along and pass unnoticed.
EXPLICIT_BAD_VALUES: dict[str, list[Any]] = {
    **{key: [0] for key in [
        "verifier.pipeline_depth", "verifier.max_header_pools", "verifier.max_response_mb",
        "model.max_prompt_tokens", "model.max_model_len",
        "sampler.max_tokens", "sampler.tensor_parallel_size", "sampler.shard_size",
        "sampler.embed_max_tokens", "sampler.embed_batch_size",
        "trainer.checkpoint_every_steps", "selfplay.rounds", "selfplay.min_conjecture_samples",
        "selfplay.max_conjecture_samples", "selfplay.window_rounds",
        "retrain.max_proofs_per_statement", "eval.shard_size"]},
    "run.seed": [-1, 2**32], "trainer.seed": [-1, 2**32], "eval.seed": [2**32],
    "trainer.batch_size": [0, 65_537, 10**9], "trainer.per_device_batch_size": [0, 65_537],
    "selfplay.samples_first_round": [0, 1_000_001],
    "selfplay.samples_per_statement": [0, 1_000_001, 10**20],
    "eval.samples_per_statement": [0, 1_000_001], "eval.bootstrap_samples": [-1, 100_001],
    "trainer.mp": ["p=f32,c=bfloat17", "bf16"],
    "trainer.learning_rate": [0.0, math.inf, math.nan], "verifier.timeout_s": [0.0, math.inf],
    "sampler.top_p": [0.0, 1.5, math.nan], "selfplay.matching_cap": [math.inf],
    "verifier.workers": [-1, 2**31],
}


def test_explicit_boundary_values_are_in_the_corpus() -> None:
    missing = [key for key in EXPLICIT_BAD_VALUES if key not in FIELDS]
    assert not missing, missing


@pytest.mark.parametrize("key", sorted(EXPLICIT_BAD_VALUES))
def test_explicit_boundary_values_fail_at_load(key: str,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    for value in EXPLICIT_BAD_VALUES[key]:
        outcome = run_command("stp.data", ["info", "--set", _override(key, value)], capsys)
        assert_one_line_error(outcome, key)


def _override(key: str, value: Any) -> str:
    if isinstance(value, float) and not math.isfinite(value):
        toml = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    else:
        toml = json.dumps(value)
    if key.endswith("[]"):  # a list of numbers: one bad element
        return f"{key[:-2]}=[{toml}]"
    if "[]." in key:  # a field of a struct inside a list (data.selfplay[].weight)
        head, field = key.split("[].")
        return f'{head}=[{{name = "minif2f", {field} = {toml}}}]'
    return f"{key}={toml}"


@pytest.mark.parametrize("key", sorted(FIELDS))
def test_out_of_range_config_values_fail_at_load_naming_the_key(
        key: str, capsys: pytest.CaptureFixture[str]) -> None:
    for value in _out_of_range(FIELDS[key]):
        # stp.data info is the cheapest command; the others load the config the same way
        # (test_bad_overrides_and_flags_are_one_line runs one range error through each).
        outcome = run_command("stp.data", ["info", "--set", _override(key, value)], capsys)
        assert_one_line_error(outcome, key.split("[]")[0])


@pytest.mark.parametrize(("argv", "culprit"), [
    (["--timeout", "0"], "verifier.timeout_s"), (["--timeout", "-5"], "verifier.timeout_s"),
    (["--memory", "-1"], "verifier.memory_mb"), (["--jobs", "-1"], "verifier.workers"),
])
def test_verify_flags_follow_the_config_ranges(argv: list[str], culprit: str,
                                               ws: SimpleWorkspace,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_command("stp.verify", [*ws.invocations()["stp.verify"], *argv], capsys)
    assert_one_line_error(outcome, culprit)


@pytest.mark.parametrize(("invocation", "argv", "culprit"), [
    ("stp.model.tiny", ["--hidden-size", "0"], "--hidden-size"),
    ("stp.model.tiny", ["--hidden-size", "30"], "--hidden-size"),
    ("stp.model.tiny", ["--layers", "-1"], "--layers"),
    ("stp.selfplay", ["--rounds", "0"], "--rounds"),
    ("stp.train", ["--max-steps", "0"], "--max-steps"),
    ("stp.train", ["--epochs", "nan"], "--epochs"),
    ("stp.eval run", ["--samples", "-2"], "--samples"),
    ("stp.extract run", ["--workers", "-1"], "--workers"),
])
def test_numeric_flags_are_range_checked(invocation: str, argv: list[str], culprit: str,
                                         ws: SimpleWorkspace,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_command(command_of(invocation), [*ws.invocations()[invocation], *argv], capsys)
    assert_one_line_error(outcome, culprit)
    assert not ws.out.exists()


# --------------------------------------------------------------------------------------------
# Bad input files


def _bad_inputs(root: Path, suffix: str) -> dict[str, Path]:
    """The corpus of broken input files, named with the suffix the command expects."""
    root.mkdir(parents=True, exist_ok=True)
    good = json.dumps({"statement": "theorem t : True", "proof": " := trivial", "prompt": "p",
                       "target": "t", "weight": 1.0, "statement_id": "a", "split": "x:y",
                       "sample": 0, "status": "pass"}) + "\n"
    files: dict[str, bytes | None] = {
        "empty": b"",
        "binary": bytes(range(256)) * 8,
        "latin1": '{"statement": "café", "prompt": "café", "statement_id": "é"}\n'.encode(
            "latin-1"),
        "wrong-types": b'{"statement": 3, "proof": [], "prompt": 1, "target": {}, "weight": "x",'
                       b' "statement_id": 1, "split": 2, "sample": "0", "status": 5}\n',
        "huge-line": b'{"statement": "' + b"x" * (4 << 20) + b'", "weight": "heavy"}\n',
        "directory": None,
    }
    out: dict[str, Path] = {}
    for kind, data in files.items():
        path = root / f"{kind}{suffix}"
        if data is None:
            path.mkdir()
        else:
            path.write_bytes(data)
        out[kind] = path
    gz = root / f"truncated{suffix}.gz"
    gz.write_bytes(gzip.compress(good.encode() * 200)[:-30])
    out["truncated-gzip"] = gz
    return out


INPUT_SLOTS: dict[str, Callable[[list[str], Path], list[str]]] = {
    # invocation -> how a bad input file replaces the good one in its argv
    "stp.verify": lambda argv, path: [str(path), *argv[1:]],
    "stp.train": lambda argv, path: ["--data", str(path), *argv[2:]],
    "stp.eval summarize": lambda argv, path: ["summarize", "--log", str(path)],
    "stp.eval plot": lambda argv, path: ["plot", "--log", str(path), *argv[3:]],
}


@pytest.mark.parametrize("invocation", sorted(INPUT_SLOTS))
def test_bad_input_files_are_one_line_naming_the_file(
        invocation: str, ws: SimpleWorkspace, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ws.invocations()[invocation]
    for kind, path in _bad_inputs(ws.root / "bad", ".jsonl").items():
        if invocation.startswith("stp.eval") and kind == "directory":
            continue  # a directory is a log there; test_directories_are_not_logs covers it
        outcome = run_command(command_of(invocation), INPUT_SLOTS[invocation](argv, path), capsys)
        if outcome.code != 2:
            pytest.fail(f"{kind}: {outcome}")
        assert_one_line_error(outcome, path.name)
        assert len(outcome.err) < 2000, (kind, outcome.err[:300])  # no echo of a huge line
        assert not ws.out.exists(), (invocation, kind)


def test_directories_are_not_logs_and_files_are_not_directories(
        ws: SimpleWorkspace, capsys: pytest.CaptureFixture[str]) -> None:
    unrelated = ws.root / "unrelated"
    unrelated.mkdir()
    (unrelated / "notes.txt").write_text("hello\n")
    assert_one_line_error(run_command("stp.eval", ["summarize", "--log", str(unrelated)], capsys),
                          "unrelated", "not an evaluation log")
    manifest_dir = ws.root / "mlog"
    (manifest_dir / "manifest.json").mkdir(parents=True)
    assert_one_line_error(run_command("stp.eval", ["summarize", "--log", str(manifest_dir)],
                                      capsys), "manifest.json")
    a_file = ws.root / "afile"
    a_file.write_text("x")
    for invocation, argv in [("stp.selfplay report", ["report", "--run-dir", str(a_file)]),
                             ("stp.model.tiny", [str(a_file)]),
                             ("stp.extract sft", ["sft", "--extraction", str(a_file),
                                                  "--out", str(ws.out)]),
                             ("stp.verify", [*ws.invocations()["stp.verify"], "--cache",
                                             str(a_file)]),
                             ("stp.data info", ["info", "--data-dir", str(a_file)]),
                             ("stp.selfplay", ["--set", f"run.run_dir={json.dumps(str(a_file))}",
                                               "--set", checker_override(standin_command())])]:
        outcome = run_command(command_of(invocation), argv, capsys)
        assert_one_line_error(outcome, "afile")
    assert not ws.out.exists()


def test_verify_header_from_a_binary_file(ws: SimpleWorkspace,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    binary = ws.root / "header.bin"
    binary.write_bytes(bytes(range(128, 256)))
    outcome = run_command("stp.verify", [*ws.invocations()["stp.verify"], "--header",
                                         f"@{binary}"], capsys)
    assert_one_line_error(outcome, "header.bin", "not UTF-8")


@pytest.mark.usefixtures("gcs_without_credentials")
def test_gcs_without_credentials_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_command("stp.eval", ["summarize", "--log", "gs://bucket/log"], capsys)
    assert_one_line_error(outcome, "gs://", "credentials")


def test_missing_optional_package_names_the_extra(ws: SimpleWorkspace,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes `import matplotlib` fail
    outcome = run_command("stp.eval", ws.invocations()["stp.eval plot"], capsys)
    assert_one_line_error(outcome, "matplotlib", "pip install 'stp-prover[plots]'")


# --------------------------------------------------------------------------------------------
# Read-only and full output locations


def run_subprocess(command: str, argv: list[str], *, fsize: int, timeout: float = 300
                   ) -> Outcome:
    """The command in a fresh process whose files may not grow beyond `fsize` bytes.

    RLIMIT_FSIZE (`ulimit -f`) makes every write past the limit fail with EFBIG, like a full
    disk makes it fail with ENOSPC, without needing a small file system; SIGXFSZ is ignored so
    the write fails instead of the process being killed.
    """

    def limit() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    env = {**os.environ, "PYTHONPATH": REPO_PYTHON, "STP_PROGRESS": "0"}
    code = f"from stp.cli import run_main; from {COMMANDS[command]} import main; run_main(main)"
    proc = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=limit)
    return Outcome(proc.returncode, proc.stdout, proc.stderr)


@contextlib.contextmanager
def read_only(directory: Path) -> Iterator[None]:
    """Make a directory unwritable, for root too (root ignores permission bits)."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    # The immutable attribute stops root as well (ext4, xfs, btrfs; needs CAP_LINUX_IMMUTABLE).
    subprocess.run(["chattr", "+i", str(directory)], check=True)
    try:
        probe = directory / "probe"
        with pytest.raises(PermissionError):
            probe.write_text("x")
        yield
    finally:
        subprocess.run(["chattr", "-i", str(directory)], check=True)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    from stp.model.tiny import create_tiny_model

    return create_tiny_model(tmp_path_factory.mktemp("tiny"))


def _output_cases(root: Path, model: str) -> dict[str, tuple[str, list[str]]]:
    """Commands that write, with their output under root/'out' (inputs elsewhere under root)."""
    ws = SimpleWorkspace(root / "in")
    out = str(root / "out" / "x")
    ws.out = Path(out)
    ws.model = Path(model)
    inv = ws.invocations()
    lemmas = root / "in" / "lemmas.json"
    lemmas.write_text(json.dumps({"Nat.add_comm": "theorem Nat.add_comm (n m : ℕ) : n + m = m + n"}))
    log_dir = root / "in" / "log"
    from stp.eval import log as evlog

    evlog.AttemptLog(str(log_dir)).append([evlog.Attempt(statement_id="a", split="toy:test",
                                                         sample=0, status="pass")])
    dataset = ["--set", 'data.selfplay=[{name = "minif2f", split = "valid"}]',
               "--set", "data.allow_download=false", "--set", 'run.log_level="WARNING"',
               "--set", f"data.lemma_dict={json.dumps(str(lemmas))}",
               "--set", 'sampler.backend="hf"',
               # The config's plan has Stage 1: round 0 starts from a named model instead.
               "--set", f"selfplay.initial_model={json.dumps(model)}"]
    return {
        "stp.selfplay": ("stp.selfplay", [*inv["stp.selfplay"], *dataset]),
        "stp.eval plot": ("stp.eval", ["plot", "--log", str(log_dir), "--out", out]),
        "stp.model.tiny": ("stp.model.tiny", [out]),
        "stp.train": ("stp.train", inv["stp.train"]),
    }


OUTPUT_CASES = ["stp.selfplay", "stp.eval plot", "stp.model.tiny", "stp.train"]


@pytest.mark.parametrize("invocation", OUTPUT_CASES)
def test_read_only_output_location(invocation: str, tmp_path: Path, tiny_model: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    command, argv = _output_cases(tmp_path, tiny_model)[invocation]
    with read_only(tmp_path / "out"):
        outcome = run_command(command, argv, capsys)
    assert_one_line_error(outcome, str(tmp_path / "out"))
    assert re.search(r"permission denied|not permitted|read-only", outcome.err), outcome.err
    assert files_under(tmp_path / "out") == set()


FSIZE = 4096  # small files fit; a model, a plot or the dataset shard of a run does not


# stp.train fills the disk at its first large file, the HF export after training (~30 s in a
# fresh process on 2 cores); the half-written export directory must not stay.
@pytest.mark.parametrize("invocation", OUTPUT_CASES)
def test_full_disk_says_what_to_free_and_leaves_nothing_cut(invocation: str, tmp_path: Path,
                                                            tiny_model: str) -> None:
    command, argv = _output_cases(tmp_path, tiny_model)[invocation]
    before = files_under(tmp_path / "in")
    outcome = run_subprocess(command, argv, fsize=FSIZE)
    # Libraries may log progress before the failure; the failure itself is one error line.
    errors = [line for line in outcome.err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and outcome.code == 2 and "Traceback" not in outcome.err, outcome
    assert str(tmp_path / "out") in errors[0] and "free space" in errors[0], errors
    left = files_under(tmp_path / "out")
    # Whatever was finished may stay (a rerun resumes from it); nothing half-written may.
    assert not [f for f in left if f.endswith(".stp-tmp") or ".stp-tmp/" in f], left
    assert not [f for f in left if (tmp_path / "out" / f).stat().st_size >= FSIZE], left
    assert files_under(tmp_path / "in") == before


@contextlib.contextmanager
def small_filesystem(directory: Path, size_kb: int, leave_free: int) -> Iterator[Path]:
    """A real tmpfs of `size_kb` KiB mounted at `directory`, filled until `leave_free` bytes are
    left: writes then fail with ENOSPC from the kernel, like a full disk (unlike `ulimit -f`,
    which only limits one process's file sizes and never reaches a library's own writer).
    Tests run as root here; the mount is always removed."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(directory)],
                   check=True, capture_output=True)
    try:
        filler = directory / "filler"
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while os.write(fd, b"\0" * 4096) > 0:
                pass
        except OSError:
            pass
        finally:
            os.close(fd)
        free = os.statvfs(directory).f_bavail * os.statvfs(directory).f_frsize
        os.truncate(filler, max(0, filler.stat().st_size - (leave_free - free)))
        yield directory
    finally:
        result = subprocess.run(["umount", str(directory)], capture_output=True)
        if result.returncode != 0:  # something still holds it open: detach it lazily
            subprocess.run(["umount", "-l", str(directory)], check=True)


def test_small_filesystem_really_fills(tmp_path: Path) -> None:
    with small_filesystem(tmp_path / "fs", 256, 8192) as fs:
        with pytest.raises(OSError) as full, open(fs / "x", "wb") as f:
            for _ in range(100):
                f.write(b"x" * 4096)
                f.flush()
                os.fsync(f.fileno())
        assert full.value.errno == 28  # ENOSPC
    assert not os.path.ismount(tmp_path / "fs")


def test_verify_cache_on_a_full_filesystem_prints_its_results_then_one_line(
        tmp_path: Path) -> None:
    """`stp.verify --cache DIR` on a full disk: the verdicts computed so far are printed, then
    one line names the cache directory and says to free space (it was a sqlite traceback that
    printed none of them)."""
    proofs = tmp_path / "proofs.jsonl"
    proofs.write_text("".join(json.dumps({"name": f"t{i}", "statement": f"theorem t{i} : True",
                                          "proof": f" := by trivial -- {'x' * 300} {i}"}) + "\n"
                              for i in range(2000)))
    with small_filesystem(tmp_path / "fs", 1024, 160 * 1024) as fs:
        cache = fs / "cache"
        env = {**os.environ, "PYTHONPATH": REPO_PYTHON, "STP_PROGRESS": "0"}
        proc = subprocess.run(
            [sys.executable, "-m", "stp.verify", str(proofs), "--json", "--no-progress",
             "--cache", str(cache), "--set", checker_override(standin_command())],
            env=env, capture_output=True, text=True, timeout=300)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, proc
    assert str(cache) in errors[0] and "free space" in errors[0], errors
    printed = [json.loads(line) for line in proc.stdout.splitlines()]
    match = re.search(r"\((\d+) of 2000 proofs checked and printed above", errors[0])
    assert match and 0 < int(match.group(1)) == len(printed) < 2000, (errors, len(printed))
    assert all(rec["status"] == "pass" for rec in printed)


@pytest.mark.slow
def test_train_on_a_full_filesystem_is_one_line_naming_the_output(tmp_path: Path,
                                                                   tiny_model: str) -> None:
    """stp.train whose --out fills up inside the Levanter checkpoint (tensorstore's ValueError
    with os_error_code 28, a traceback before): one line naming --out and what to free."""
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"p{i}", "target": "t", "weight": 1.0}) + "\n"
                            for i in range(6)))
    with small_filesystem(tmp_path / "fs", 4096, 256 * 1024) as fs:
        out = fs / "out"
        env = {**os.environ, "PYTHONPATH": REPO_PYTHON, "STP_PROGRESS": "0"}
        proc = subprocess.run(
            [sys.executable, "-m", "stp.train", "--data", str(data), "--model", tiny_model,
             "--out", str(out), "--set", "model.dtype='float32'",
             "--set", "trainer.mp='p=f32,c=f32'", "--set", "trainer.batch_size=4",
             "--set", "trainer.per_device_batch_size=2", "--set", "trainer.max_seq_len=64",
             "--set", "trainer.checkpoint_every_steps=2", "--min-steps", "4"],
            env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, (
        proc.returncode, proc.stderr[-3000:])
    assert str(out) in errors[0] and "free space" in errors[0], errors


def _selfplay_argv(run_dir: Path, model: str) -> list[str]:
    """One self-play round of the tiny model with the stand-in checker, as a user runs it."""
    from selfplay_helpers import DATA_DIR, REPO_ROOT, tiny_model_rules

    rules = checker_override(standin_command(tiny_model_rules("Nat.mul_comm")))
    return ["--config", str(REPO_ROOT / "configs" / "tiny-cpu.toml"), "--run-dir", str(run_dir),
            "--set", f"selfplay.initial_model={json.dumps(model)}",
            "--set", f"model.name={json.dumps(model)}", "--set", rules,
            "--set", f"run.data_dir={json.dumps(str(DATA_DIR))}",
            "--set", f"data.lemma_dict={json.dumps(str(REPO_ROOT / 'data/tiny/lemmas.jsonl'))}",
            "--set", "selfplay.rounds=1", "--set", "selfplay.statements_per_round=4",
            "--set", "sampler.max_tokens=24", "--set", "selfplay.trainer.max_steps=1",
            "--set", "trainer.batch_size=4", "--set", "trainer.per_device_batch_size=4",
            "--set", "trainer.min_steps=1", "--set", "trainer.warmup_steps=0",
            # The verifier's cache (a SQLite WAL of varying size while the round runs) is off:
            # the room left on the small filesystem below is counted in whole pages.
            "--set", 'verifier.cache_dir="off"', "--set", 'run.log_level="INFO"']


def _selfplay(argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": REPO_PYTHON, "STP_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "stp.selfplay", *argv], env=env,
                          capture_output=True, text=True, timeout=600)


def _pages(root: Path, skip: tuple[str, ...]) -> int:
    """Bytes `root`'s files take on a tmpfs (whole 4 KiB pages), those under `skip` left out."""
    return sum(-(-p.stat().st_size // 4096) * 4096 for p in root.rglob("*")
               if p.is_file() and not p.relative_to(root).as_posix().startswith(skip))


@pytest.fixture(scope="module")
def selfplay_reference(tmp_path_factory: pytest.TempPathFactory, tiny_model: str) -> Path:
    """The run of `_selfplay_argv` that never stopped."""
    reference = tmp_path_factory.mktemp("selfplay") / "reference"
    done = _selfplay(_selfplay_argv(reference, tiny_model))
    assert done.returncode == 0, done.stderr[-3000:]
    return reference


@pytest.mark.slow
@pytest.mark.parametrize("write", ["weights", "tokenizer"])
def test_selfplay_train_stage_on_a_full_filesystem_keeps_the_round_and_resumes(
        write: str, tmp_path: Path, tiny_model: str, selfplay_reference: Path) -> None:
    """The self-play train stage whose export (weights, then the Rust tokenizer's
    `tokenizer.json`) fills the run directory's real filesystem: one line naming what to free,
    the round's earlier stages kept, and after freeing space the rerun finishes with the same
    files as a run that never stopped."""
    from selfplay_helpers import run_contents

    reference = selfplay_reference
    export = reference / "round-0000" / "model" / "hf"
    # Room for everything the run writes before its export (the export and the result written
    # after it left out), then: half the weights, or the weights and one page (the tokenizer's
    # config fits, its tokenizer.json does not).
    before_export = _pages(reference, ("round-0000/model/hf/", "round-0000/model/train_result"))
    weights = _pages(export, ("tokenizer",))
    room = before_export + (weights // 2 if write == "weights" else weights + 4096)
    with small_filesystem(tmp_path / "fs", 8192, room) as fs:
        run = fs / "run"
        proc = _selfplay(_selfplay_argv(run, tiny_model))
        errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
        assert proc.returncode == 2 and len(errors) == 1 and "Traceback" not in proc.stderr, (
            proc.returncode, proc.stderr[-3000:])
        model_dir = run / "round-0000" / "model"
        assert str(model_dir) in errors[0] and "free space" in errors[0], errors
        assert ("Saving tokenizer" in proc.stderr) == (write == "tokenizer"), proc.stderr[-3000:]
        # The round's earlier stages are kept (a rerun does not redo them); no half export.
        manifest = json.loads((run / "round-0000" / "manifest.json").read_text())
        assert "train_set" in manifest["stages"] and "train" not in manifest["stages"]
        assert (run / "round-0000" / "train.jsonl.gz").is_file()
        assert not (model_dir / "hf").exists() and not (model_dir / "hf.tmp").exists()
        kept = {p: (run / p).read_bytes() for p in ("round-0000/train.jsonl.gz",)}
        (fs / "filler").unlink()  # the user frees space
        resumed = _selfplay(_selfplay_argv(run, tiny_model))
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert {p: (run / p).read_bytes() for p in kept} == kept
        timed = ("round-0000/model/metrics.jsonl", "round-0000/model/train_result.json")
        a, b = run_contents(run, skip=timed), run_contents(reference, skip=timed)
        assert a.keys() == b.keys() and [k for k in a if a[k] != b[k]] == []
        assert "round-0000/model/hf/model.safetensors" in a  # the same weights, byte for byte
        result, expected = (json.loads((root / timed[1]).read_text())
                            for root in (run, reference))
        assert result.pop("seconds") >= 0 and expected.pop("seconds") >= 0
        assert result == {**expected, "hf_path": str(model_dir / "hf")}


# --------------------------------------------------------------------------------------------
# Output into a closed pipe


def test_output_into_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    # `python -m stp.data info --json | head -c 10`: the reader leaves; we stop with no traceback.
    env = {**os.environ, "PYTHONPATH": REPO_PYTHON}
    cmd = (f"{sys.executable} -m stp.data info --json --defects | head -c 10 >/dev/null; "
           "echo status=${PIPESTATUS[0]}")
    proc = subprocess.run(["bash", "-c", cmd], env=env, capture_output=True, text=True,
                          timeout=120)
    assert "BrokenPipeError" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert "status=0" in proc.stdout



# --------------------------------------------------------------------------------------------
# Edges of issue #24 item 8


@pytest.mark.parametrize(("invocation", "argv"), [
    ("stp.eval summarize", ["summarize", "--log", "gs://"]),
    ("stp.eval plot", ["plot", "--log", "gs://", "--out", "OUT"]),
    ("stp.selfplay report", ["report", "--run-dir", "gs://"]),
    ("stp.train", ["--data", "gs://", "--out", "OUT"]),
    ("stp.verify", ["gs://"]),
    ("stp.retrain", ["--set", 'run.run_dir="gs://"']),
])
def test_gcs_path_without_a_bucket_is_one_line(invocation: str, argv: list[str],
                                               ws: SimpleWorkspace,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = [str(ws.out) if a == "OUT" else a for a in argv]
    outcome = run_command(command_of(invocation), argv, capsys)
    assert_one_line_error(outcome, "gs://")


def test_unbalanced_quote_in_extractor_command(ws: SimpleWorkspace,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    outcome = run_command("stp.extract", ["run", "--out", str(ws.out),
                                          "--extractor-command", "lake 'env"], capsys)
    assert_one_line_error(outcome, "--extractor-command", "No closing quotation")
    assert not ws.out.exists()


def test_run_dir_that_is_not_utf8_is_refused_and_creates_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    bad = os.fsdecode(b"run\xff")
    outcome = run_command("stp.selfplay", ["--run-dir", bad,
                                           "--set", checker_override(standin_command())], capsys)
    assert_one_line_error(outcome, "--run-dir", "not a UTF-8 path")
    assert list(tmp_path.iterdir()) == []  # no directory named '"' (or anything else)


def test_valid_gzipped_lemma_dictionary_is_read(tmp_path: Path) -> None:
    from stp.data.lemmas import load_lemma_dict

    path = tmp_path / "lemmas.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"Nat.add_comm": "theorem Nat.add_comm"}).encode()))
    assert load_lemma_dict(path) == {"Nat.add_comm": "theorem Nat.add_comm"}
    path.write_bytes(gzip.compress(b"{")[:-4])
    with pytest.raises(stp.errors.UsageError, match=r"lemmas\.json\.gz: corrupt JSON"):
        load_lemma_dict(path)


def test_truncated_counts_on_resume_names_the_file(tmp_path: Path) -> None:
    import numpy as np

    from stp.selfplay.rundir import RunDir
    from stp.storage import CorruptRecordError

    rd = RunDir(str(tmp_path))
    path = rd.counts_path(0)
    rd.save_arrays(path, attempts=np.arange(100), successes=np.arange(100))
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptRecordError, match=r"counts.npz.*truncated or damaged"):
        rd.load_arrays(path)


def _damaged_npz(data: bytes) -> dict[str, bytes]:
    """Real damage to a saved .npz, by the field it hits (zip headers at fixed offsets)."""
    import struct

    central = data.find(b"PK\x01\x02")

    def patched(*edits: tuple[int, bytes]) -> bytes:
        out = bytearray(data)
        for at, new in edits:
            out[at:at + len(new)] = new
        return bytes(out)

    return {
        "flag bit flipped (reads as encrypted)": patched(
            (central + 8, bytes([data[central + 8] | 1]))),
        "compression method": patched((8, struct.pack("<H", 99)),
                                      (central + 10, struct.pack("<H", 99))),
        "version needed": patched((central + 6, struct.pack("<H", 0xFF))),
        "local header name": patched((30, b"X")),
    }


@pytest.mark.parametrize("damage", ["flag bit flipped (reads as encrypted)", "compression method",
                                    "version needed", "local header name"])
def test_damaged_counts_on_resume_name_the_file(damage: str, tmp_path: Path) -> None:
    import numpy as np

    from stp.selfplay.rundir import RunDir
    from stp.storage import CorruptRecordError

    rd = RunDir(str(tmp_path))
    path = rd.counts_path(0)
    rd.save_arrays(path, attempts=np.arange(100), successes=np.arange(100))
    Path(path).write_bytes(_damaged_npz(Path(path).read_bytes())[damage])
    with pytest.raises(CorruptRecordError, match=r"counts.npz: truncated or damaged"):
        rd.load_arrays(path)


def test_any_damaged_byte_of_an_array_file_loads_or_names_the_file(tmp_path: Path) -> None:
    """Every byte of a saved .npz set to 0x00, 0x01, 0xff or with its low bit flipped: the
    arrays load (a byte no reader checks) or the error is one CorruptRecordError naming the
    file. Nothing else escapes (an encrypted-flag RuntimeError and an unsupported-version
    NotImplementedError did; no damage raises the KeyError load_arrays used to list)."""
    import numpy as np

    from stp.selfplay.rundir import RunDir
    from stp.storage import CorruptRecordError

    rd = RunDir(str(tmp_path))
    path = rd.counts_path(0)
    rd.save_arrays(path, attempts=np.arange(100), successes=np.arange(100))
    data = Path(path).read_bytes()
    damaged = str(tmp_path / "damaged.npz")
    outcomes: dict[str, int] = {}
    for at in range(len(data)):
        for value in {0, 1, 0xFF, data[at] ^ 1} - {data[at]}:
            Path(damaged).write_bytes(data[:at] + bytes([value]) + data[at + 1:])
            try:
                rd.load_arrays(damaged)
            except CorruptRecordError as err:
                assert err.path == damaged
                outcome = "named"
            else:
                outcome = "loaded"
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    assert outcomes.get("named", 0) > len(data)  # most damage is caught, not silently read


# --------------------------------------------------------------------------------------------
# Corrupt or unreachable models (issue #24 item 6)


def _damaged_models(root: Path, model: str) -> dict[str, tuple[Path | str, str]]:
    """name -> (model, what the one line must name)."""
    import shutil

    def copy(name: str) -> Path:
        target = root / name
        shutil.copytree(model, target)
        return target

    cases: dict[str, tuple[Path | str, str]] = {}
    empty = copy("empty-weights")
    (empty / "model.safetensors").write_bytes(b"")
    cases["empty weights"] = (empty, "model.safetensors: empty weights file")
    cut = copy("truncated-weights")
    data = (cut / "model.safetensors").read_bytes()
    (cut / "model.safetensors").write_bytes(data[: len(data) // 2])
    cases["truncated weights"] = (cut, "model.safetensors: truncated safetensors")
    config = copy("bad-config")
    (config / "config.json").write_text('{"model_type": "llama",')
    cases["bad config.json"] = (config, "config.json: not valid JSON")
    tokenizer = copy("bad-tokenizer")
    (tokenizer / "tokenizer.json").write_text("not json")
    cases["broken tokenizer"] = (tokenizer, "tokenizer.json: not valid JSON")
    cases["unreachable hub id offline"] = ("nobody-here/no-such-model-xyz",
                                           "nobody-here/no-such-model-xyz: not in the local")
    return cases


DAMAGED = ["empty weights", "truncated weights", "bad config.json", "broken tokenizer",
           "unreachable hub id offline"]


@pytest.mark.parametrize("case", DAMAGED)
def test_a_damaged_model_is_one_line_in_every_command_that_loads_one(
        case: str, tmp_path: Path, tiny_model: str, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, culprit = _damaged_models(tmp_path, tiny_model)[case]
    ws = SimpleWorkspace(tmp_path / "ws")
    commands = {
        "stp.train": ["--data", str(ws.examples), "--out", str(ws.out), "--model", str(model)],
        "stp.eval run": ["run", "--out", str(ws.out), "--model", str(model),
                         "--splits", "minif2f:valid", "--samples", "1",
                         "--set", 'sampler.backend="hf"',
                         "--set", checker_override(standin_command())],
    }
    for invocation, argv in commands.items():
        outcome = run_command(command_of(invocation), argv, capsys)
        assert_one_line_error(outcome, culprit)


@contextlib.contextmanager
def silent_endpoint() -> Iterator[str]:
    """A local HTTP endpoint that accepts connections and never answers: a stalled proxy or
    Hub (a closed port, by contrast, refuses at once)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        with contextlib.suppress(OSError):
            while True:
                held.append(server.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}"
    finally:
        server.close()
        for conn in held:
            conn.close()


HUB_ID = "nobody-here/no-such-model"


@pytest.mark.parametrize("hub", ["closed port", "silent endpoint", "offline"])
def test_an_unreachable_hub_id_is_one_line_within_seconds(hub: str, tmp_path: Path) -> None:
    """A Hub id the Hub cannot be asked about: one line naming the id and what is wrong, from
    every command that loads a model, in bounded time. A Hub that accepts connections and never
    answers hung `snapshot_download` for ever (its metadata request has no time limit)."""
    import time

    ws = SimpleWorkspace(tmp_path / "ws")
    quiet = ["--set", 'run.log_level="WARNING"']
    commands = {
        "stp.train": ["--data", str(ws.examples), "--out", str(ws.out), "--model", HUB_ID, *quiet],
        "stp.eval": ["run", "--out", str(ws.out), "--model", HUB_ID, "--splits", "minif2f:valid",
                     "--samples", "1", "--set", 'sampler.backend="hf"',
                     "--set", checker_override(standin_command()), *quiet],
    }
    env = {**os.environ, "PYTHONPATH": REPO_PYTHON, "STP_PROGRESS": "0",
           "HF_HOME": str(tmp_path / "hf-home"), "HF_HUB_ETAG_TIMEOUT": "3"}
    env.pop("HF_HUB_OFFLINE", None)
    env.pop("TRANSFORMERS_OFFLINE", None)
    with silent_endpoint() as silent:
        if hub == "offline":
            env["HF_HUB_OFFLINE"] = "1"
        else:
            env["HF_ENDPOINT"] = "http://127.0.0.1:9" if hub == "closed port" else silent
        for command, argv in commands.items():
            began = time.monotonic()
            proc = subprocess.run([sys.executable, "-m", command, *argv], env=env,
                                  capture_output=True, text=True, timeout=60)
            seconds = time.monotonic() - began
            # One error line; anything else is a warning (run.log_level is WARNING: no INFO).
            lines = [line for line in proc.stderr.splitlines() if line.strip() and not
                     re.match(r"\d\d:\d\d:\d\d WARNING ", line)]
            assert proc.returncode == 2 and len(lines) == 1, (command, proc.stderr[-3000:])
            assert "Traceback" not in proc.stderr
            assert lines[0].startswith(f"error: model {HUB_ID}") or lines[0].startswith(
                f"error: base model {HUB_ID}"), lines
            assert ("not in the local" in lines[0]) and (
                hub == "offline" or "cannot be reached" in lines[0]), lines
            assert seconds < 30, (command, seconds)


def test_an_unreachable_hub_falls_back_to_the_cached_snapshot(tmp_path: Path) -> None:
    """No answer from the Hub, but the model is in the local cache: the cached snapshot is
    used, with a warning (what snapshot_download itself does when it cannot connect)."""
    commit = "c" * 40
    repo = tmp_path / "hf-home" / "hub" / "models--nobody-here--cached-model"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    env = {**os.environ, "PYTHONPATH": REPO_PYTHON, "HF_HOME": str(tmp_path / "hf-home"),
           "HF_ENDPOINT": "http://127.0.0.1:9"}
    env.pop("HF_HUB_OFFLINE", None)
    proc = subprocess.run(
        [sys.executable, "-c", "from stp import hub; "
         "print(hub.model_snapshot('nobody-here/cached-model'))"],
        env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == str(snapshot)
    assert "cannot be reached" in proc.stderr and "cached snapshot" in proc.stderr
