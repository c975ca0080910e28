"""Real signals: a long command killed mid-stage (SIGINT, SIGTERM, SIGKILL) resumes to the output of
an uninterrupted run.

The in-process crash tests (test_selfplay_loop.py) stop a run with a Python exception at stage
and shard boundaries; here a separate process is sent a real signal while it works, so open
files, temporary files, the run-directory lock and the metrics stream are left exactly as a
killed process leaves them, and the rerun has to cope with that.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from selfplay_helpers import (
    RULES,
    make_config,
    run_contents,
    scripted_backends,
)
from standin import checker_override, standin_command, with_checker

from stp import metrics
from stp.selfplay.loop import run_selfplay

TESTS = Path(__file__).resolve().parent
PYTHON_DIR = str(TESTS.parent)

# The self-play loop with the scripted sampler and trainer, in its own process, announcing every
# committed stage and shard on stdout so the parent can pick a moment to kill it.
_SELFPLAY_DRIVER = """
import sys
from pathlib import Path
from selfplay_helpers import RULES, make_config, scripted_backends
from standin import standin_command, with_checker
from stp.cli import run_main
from stp.selfplay.loop import run_selfplay

def hook(event):
    print(f"{event.round} {event.stage} {event.shard}", flush=True)

def main(argv):
    cfg = with_checker(make_config(Path(sys.argv[1]), sys.argv[2]), standin_command(RULES))
    run_selfplay(cfg, hook=hook, backends=scripted_backends())
    return 0

run_main(main, [])
"""


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([PYTHON_DIR, str(TESTS)]),
            "STP_PROGRESS": "0"}


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    tmp = tmp_path_factory.mktemp("ref")
    cfg = make_config(tmp, "run")
    run_selfplay(with_checker(cfg, standin_command(RULES)), backends=scripted_backends())
    return _contents(tmp)


def _contents(tmp: Path) -> dict[str, object]:
    """The run's comparable content, with this test's temporary folder (lemma file) masked."""
    out = run_contents(tmp / "run")
    out["config.toml"] = out["config.toml"].replace(str(tmp).encode(), b"<TMP>")  # type: ignore[union-attr]
    return out


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL],
                         ids=["SIGINT", "SIGTERM", "SIGKILL"])
def test_selfplay_killed_inside_a_stage_resumes_to_the_same_run(
        sig: signal.Signals, tmp_path: Path, uninterrupted: dict[str, object]) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _SELFPLAY_DRIVER, str(tmp_path), "run"],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    assert proc.stdout is not None
    # Kill once the first proving shard of round 0 is committed: the stage is under way.
    seen = []
    for line in proc.stdout:
        seen.append(line.strip())
        if line.startswith("0 proving 0"):
            proc.send_signal(sig)
            break
    _, err = proc.communicate(timeout=300)
    assert seen and seen[-1].startswith("0 proving"), seen
    assert proc.returncode != 0, "the run finished before the signal arrived"
    if sig == signal.SIGINT:
        assert proc.returncode == 130 and "Traceback" not in err, err
    run_dir = tmp_path / "run"
    manifest = json.loads((run_dir / "round-0000" / "manifest.json").read_text())
    assert "bookkeeping" not in manifest["stages"]  # it really stopped inside round 0
    # The rerun (another process, like a user restarting the command) completes the run.
    again = subprocess.run([sys.executable, "-c", _SELFPLAY_DRIVER, str(tmp_path), "run"],
                           env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert _contents(tmp_path) == uninterrupted
    # The metrics stream of the killed and the resumed process reads back whole.
    rounds = [r["round"] for r in metrics.read_metrics(run_dir / "metrics.jsonl", "round")]
    assert rounds == [0, 1]


def _cached_results(cache: Path) -> int:
    """Rows in the verifier cache's results table (0 while it does not exist yet)."""
    import sqlite3

    for db in cache.glob("*.sqlite*") if cache.is_dir() else []:
        if db.suffix not in (".sqlite", ".sqlite3"):
            continue
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                return int(conn.execute("SELECT count(*) FROM results").fetchone()[0])
        except sqlite3.Error:
            return 0
    return 0


def test_verify_json_killed_then_rerun_with_its_cache_gives_the_same_output(
        tmp_path: Path) -> None:
    proofs = tmp_path / "proofs.jsonl"
    with proofs.open("w") as fh:
        for i in range(40):
            tactic = "norm_num" if i % 3 else "sorry"
            fh.write(json.dumps({"name": f"t{i}", "statement": f"theorem t{i} : {i} = {i}",
                                 "proof": f" := by {tactic}"}) + "\n")
    spec = {"rules": [{"pattern": "norm_num", "action": "slow", "ms": 40}], "default": "fail"}
    base = [sys.executable, "-m", "stp.verify", str(proofs), "--json", "--jobs", "1",
            "--set", checker_override(standin_command(spec))]

    def records(out: str) -> list[dict[str, object]]:
        rows = [json.loads(line) for line in out.splitlines()]
        return [{k: v for k, v in r.items() if k not in ("seconds", "cached", "checker_ms")}
                for r in rows]

    reference = subprocess.run(base, env=_env(), capture_output=True, text=True, timeout=300)
    assert reference.returncode == 1  # some proofs fail
    cache = tmp_path / "cache"
    proc = subprocess.Popen([*base, "--cache", str(cache)], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    # Let it check and cache part of the file (a worker start in the sandbox can take seconds on
    # a loaded machine: wait for a cached result, not a fixed time), then kill it without warning.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _cached_results(cache) == 0:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    resumed = subprocess.run([*base, "--cache", str(cache)], env=_env(), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 1, resumed.stderr
    assert records(resumed.stdout) == records(reference.stdout)
    assert any(json.loads(line).get("cached") for line in resumed.stdout.splitlines())


@pytest.mark.slow
def test_eval_run_killed_after_a_shard_resumes_to_the_same_log(tmp_path: Path) -> None:
    from stp.eval import log as evlog
    from stp.model.tiny import create_tiny_model

    model = create_tiny_model(tmp_path / "tiny")

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "stp.eval", "run", "--model", model, "--splits",
                "proofnet:valid", "--samples", "1", "--out", str(out),
                "--set", 'sampler.backend="hf"', "--set", "sampler.max_tokens=4",
                "--set", "model.max_prompt_tokens=48", "--set", "model.max_model_len=64",
                "--set", "eval.shard_size=16", "--set", "verifier.workers=1",
                "--set", "verifier.cache_dir='off'", "--set", "eval.bootstrap_samples=0",
                "--set", f"run.run_dir={json.dumps(str(tmp_path / 'run'))}",
                "--set", checker_override(standin_command(RULES))]

    def attempts(out: Path) -> list[tuple[str, int, str, str, int | None]]:
        return sorted((a.statement_id, a.sample, a.status, a.proof, a.seed)
                      for a in evlog.iter_attempts(str(out)))

    from stp.eval.__main__ import main as eval_main

    # The uninterrupted reference runs in this process (one interpreter start less).
    assert eval_main(command(tmp_path / "ref")[3:]) in (0, 1)
    out = tmp_path / "log"
    proc = subprocess.Popen(command(out), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(out.glob("part-*.jsonl.gz")):  # kill once the first shard is logged
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no shard written within 300 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    partial = len(list(evlog.iter_attempts(str(out))))
    total = len(attempts(tmp_path / "ref"))
    assert 0 < partial < total, (partial, total)
    again = subprocess.run(command(out), env=_env(), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode in (0, 1), again.stderr
    # Only what was left is sampled again, and the log equals the uninterrupted one.
    assert f"{total - partial} attempts written, {partial} already logged" in again.stderr
    assert attempts(out) == attempts(tmp_path / "ref")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_extract_run_killed_after_some_modules_resumes_without_redoing_them(
        sig: signal.Signals, tmp_path: Path) -> None:
    from test_extract_driver import FAKE, GOLDEN, _requested, _theorems, _tree

    from stp import storage
    from stp.extract.driver import done_modules

    src = _tree(tmp_path / "src", 8)
    modules = [f"Mathlib.Fake.M{i:02d}" for i in range(8)]

    def command(out: Path, log: Path) -> list[str]:
        return [sys.executable, "-m", "stp.extract", "run", "--mathlib-dir", str(src),
                "--out", str(out), "--extractor-command",
                f"{sys.executable} {FAKE} {GOLDEN} {log}", "--no-progress", "--workers", "1"]

    # Each module takes the fake extractor 0.3 s, so the driver is mid-run for seconds.
    env = {**_env(), "FAKE_EXTRACTOR_DELAY": "0.3"}
    clean = tmp_path / "clean"
    ref = subprocess.run(command(clean, tmp_path / "clean.log"), env=env, capture_output=True,
                         text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    assert sorted(_requested(tmp_path / "clean.log")) == modules

    out, log = tmp_path / "out", tmp_path / "out.log"
    proc = subprocess.Popen(command(out, log), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while len(done_modules(str(out))) < 2:  # kill once two modules are written
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no two modules extracted within 120 s"
        time.sleep(0.02)
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert proc.returncode != 0, "the run finished before the signal arrived"
    done = done_modules(str(out))
    assert 2 <= len(done) < len(modules), done
    assert not (out / "summary.json").exists()  # it never reached the assembly
    # A new log: after SIGKILL the orphaned extractor may still serve the request it holds.
    log = tmp_path / "rerun.log"
    again = subprocess.run(command(out, log), env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    # Only the unfinished modules are served again, each once.
    assert sorted(_requested(log)) == sorted(set(modules) - done)
    assert f"{len(done)} already done, {len(modules) - len(done)} extracted now" in again.stdout
    assert _theorems(out) == _theorems(clean)
    assert (storage.read_json(str(out / "summary.json"))
            == storage.read_json(str(clean / "summary.json")))


@pytest.mark.slow
def test_train_killed_after_a_checkpoint_resumes_from_it(tmp_path: Path,
                                                         tiny_model: str) -> None:
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"theorem t{i} : {i} = {i} := by",
                                        "target": "\n  rfl", "weight": 1 + i % 2}) + "\n"
                            for i in range(6)))
    steps = 8

    def command(out: Path) -> list[str]:
        return [sys.executable, "-m", "stp.train", "--data", str(data), "--model", tiny_model,
                "--out", str(out), "--set", "model.dtype='float32'",
                "--set", "trainer.mp='p=f32,c=f32'", "--set", "trainer.batch_size=4",
                "--set", "trainer.per_device_batch_size=2", "--set", "trainer.max_seq_len=64",
                "--set", "trainer.checkpoint_every_steps=2", "--min-steps", str(steps)]

    ref = subprocess.run(command(tmp_path / "ref"), env=_env(), capture_output=True, text=True,
                         timeout=300)
    assert ref.returncode == 0, ref.stderr
    reference = json.loads(ref.stdout)
    assert reference["steps"] == steps and reference["resumed_from_step"] == 0

    out = tmp_path / "sft"
    proc = subprocess.Popen(command(out), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    # Kill once Levanter has committed a checkpoint (its metadata is written last).
    while not list((out / "checkpoints").glob("**/metadata.json")):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        assert time.monotonic() < deadline, "no checkpoint written within 300 s"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "hf" / "config.json").exists()  # it never reached the export
    killed = [r["step"] for r in metrics.read_metrics(out / "metrics.jsonl", "train_step")]
    assert killed and killed[0] == 0 and max(killed) < steps - 1, killed
    again = subprocess.run(command(out), env=_env(), capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr
    resumed = json.loads(again.stdout)
    start = resumed["resumed_from_step"]
    assert 0 < start <= max(killed) + 1, (start, killed)
    # The rerun's own train_step records begin at the checkpoint's step, not at step 0.
    rerun = [r["step"] for r in metrics.read_metrics(out / "metrics.jsonl", "train_step")]
    assert rerun[:len(killed)] == killed
    assert rerun[len(killed)] == start and set(rerun[len(killed):]) == set(range(start, steps))
    # The resume is recorded, so a reader knows which records of redone steps are superseded.
    events = metrics.read_metrics(out / "metrics.jsonl", "train_resume")
    assert [e["from_step"] for e in events] == [start]
    assert resumed["steps"] == steps and len(resumed["losses"]) == steps
    assert (Path(resumed["hf_path"]) / "config.json").is_file()
    # Same data plan, restored optimizer state: the losses match the uninterrupted run's.
    assert resumed["losses"] == pytest.approx(reference["losses"], abs=1e-5)


@pytest.mark.slow
def test_train_interrupted_by_ctrl_c_while_saving_a_checkpoint(tmp_path: Path,
                                                               tiny_model: str) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) the moment Levanter
    starts writing a checkpoint: exit 130 at once, not a run to the end, and a rerun resumes from
    a complete checkpoint and finishes."""
    data = tmp_path / "sft.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"theorem t{i} : {i} = {i} := by",
                                        "target": "\n  rfl", "weight": 1.0}) + "\n"
                            for i in range(6)))
    steps = 40
    out = tmp_path / "sft"
    command = [sys.executable, "-m", "stp.train", "--data", str(data), "--model", tiny_model,
               "--out", str(out), "--set", "model.dtype='float32'",
               "--set", "trainer.mp='p=f32,c=f32'", "--set", "trainer.batch_size=4",
               "--set", "trainer.per_device_batch_size=2", "--set", "trainer.max_seq_len=64",
               "--set", "trainer.checkpoint_every_steps=2", "--min-steps", str(steps)]
    proc = subprocess.Popen(command, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    deadline = time.monotonic() + 300
    # The second checkpoint's directory appears when its save starts (before its metadata).
    while not (out / "checkpoints" / "stp" / "step-4").exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "no checkpoint started within 300 s"
        time.sleep(0.002)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr[-2000:]
    assert stdout == "" and "interrupted" in stderr and "Traceback" not in stderr
    assert not (out / "hf" / "config.json").exists()  # it stopped: no export
    again = subprocess.run(command, env=_env(), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    resumed = json.loads(again.stdout)
    assert 0 < resumed["resumed_from_step"] < steps and resumed["steps"] == steps
