"""The run-directory lock: a second process is refused with one line, a crashed holder is not."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from selfplay_helpers import RULES, make_config, scripted_backends
from standin import standin_command, with_checker

from stp import lock, storage
from stp.selfplay.loop import run_selfplay

pytest_plugins = ["gcs_emulator"]

REPO_PYTHON = str(Path(__file__).resolve().parents[1])

# Holds the lock of argv[1] until killed; prints a line once it holds it.
_HOLDER = """
import sys, time
from stp.lock import acquire
held = acquire(sys.argv[1], purpose="holder-test")
print("held", flush=True)
time.sleep(600)
"""


def _hold(directory: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": REPO_PYTHON}
    proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(directory)], env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_process_is_refused_and_a_killed_holder_releases(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = _hold(run_dir)
    try:
        with pytest.raises(lock.RunDirLockedError, match=r"run is in use by holder-test \(pid "
                                                         rf"{holder.pid} on "):
            lock.acquire(run_dir)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # SIGKILL gave no chance to clean up: the kernel dropped the flock anyway.
    with lock.lock_dir(run_dir, purpose="second") as held:
        assert held.path == str(run_dir)
        # The same process may take it again (a pipeline around run_selfplay): it nests, and
        # leaving the inner block keeps the directory locked against other processes.
        with lock.lock_dir(run_dir, purpose="inner"):
            pass
        other = subprocess.run([sys.executable, "-c", _HOLDER, str(run_dir)],
                               env={**os.environ, "PYTHONPATH": REPO_PYTHON},
                               capture_output=True, text=True, timeout=60)
        assert other.returncode != 0 and "in use by second" in other.stderr
    # Released by the outer block: another process gets it now.
    holder = _hold(run_dir)
    holder.kill()
    holder.wait(timeout=30)


def test_selfplay_refuses_a_run_directory_in_use(tmp_path: Path) -> None:
    cfg = with_checker(make_config(tmp_path, "run"), standin_command(RULES))
    stages: list[str] = []
    holder = _hold(Path(cfg.run.run_dir))
    try:
        with pytest.raises(lock.RunDirLockedError, match="in use by holder-test"):
            run_selfplay(cfg, rounds=1, hook=lambda event: stages.append(event.stage),
                         backends=scripted_backends())
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert stages == []  # nothing ran, so nothing was written twice
    assert not storage.list_shards(os.path.join(cfg.run.run_dir, "round-0000"))


def test_gcs_lease_refuses_while_live_and_is_taken_over_once_expired(gcs_root: str) -> None:
    run_dir = storage.join(gcs_root, "run")
    lease_path = storage.join(run_dir, lock.LEASE_NAME)
    first = lock.acquire(run_dir, purpose="first", ttl_s=60)
    lease = msgspec.json.decode(storage.read_bytes(lease_path), type=lock._Holder)
    assert lease.purpose == "first" and lease.expires > time.time() + 30
    first.release()
    assert not storage.exists(lease_path)
    # Another machine's live lease: refused, naming it.
    live = lock._Holder(owner="other", host="node-7", pid=99, purpose="other run",
                        since=time.time(), expires=time.time() + 60)
    storage.write_bytes(lease_path, msgspec.json.encode(live))
    with pytest.raises(lock.RunDirLockedError, match=r"in use by other run \(pid 99 on node-7"):
        lock.acquire(run_dir, purpose="second")
    # A holder that died without releasing: its lease has expired, so it is taken over.
    stale = lock._Holder(owner="dead", host="h", pid=1, purpose="dead", since=time.time() - 100,
                         expires=time.time() - 1)
    storage.write_bytes(storage.join(run_dir, lock.LEASE_NAME), msgspec.json.encode(stale))
    with lock.lock_dir(run_dir, purpose="third", ttl_s=60):
        lease = msgspec.json.decode(storage.read_bytes(storage.join(run_dir, lock.LEASE_NAME)),
                                    type=lock._Holder)
        assert lease.purpose == "third" and lease.expires > time.time() + 30


# Holds the lock like a running self-play does (purpose "self-play").
_SELFPLAY_HOLDER = _HOLDER.replace('purpose="holder-test"', 'purpose="self-play"')


def _run(command: str, argv: list[str]) -> tuple[int, str]:
    """`python -m <command> argv` in-process through run_main: (exit status, stderr)."""
    import contextlib
    import importlib
    import io

    from stp.cli import COMMANDS, run_main

    main = importlib.import_module(COMMANDS[command]).main
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            run_main(main, argv)
        except SystemExit as exit_:
            return int(exit_.code or 0), err.getvalue()
    raise AssertionError("run_main returned")


def test_retrain_is_refused_while_selfplay_holds_the_run_directory(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", _SELFPLAY_HOLDER, str(run_dir)],
                              env={**os.environ, "PYTHONPATH": REPO_PYTHON},
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        code, err = _run("stp.retrain", ["--set", f'run.run_dir="{run_dir}"'])
        assert code == 2, err
        lines = err.strip().splitlines()
        assert len(lines) == 1 and "in use by self-play" in lines[0], err
        # Nothing of a re-training was started or recorded as done.
        assert not (run_dir / "retrain").exists()
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_every_writing_command_is_refused_on_a_locked_output(tmp_path: Path) -> None:
    """stp.train (its --out, or the run directory by default), stp.extract (each sub-command's
    output directory), stp.eval plot and the self-play report take their output's lock."""
    from stp.eval import log as evlog

    examples = tmp_path / "sft.jsonl"
    examples.write_text('{"prompt": "p", "target": "t", "weight": 1.0}\n')
    log_dir = tmp_path / "log"
    evlog.AttemptLog(str(log_dir)).append([evlog.Attempt(statement_id="a", split="toy:test",
                                                         sample=0, status="pass")])
    run_dir = tmp_path / "run"
    (run_dir / "round-0000").mkdir(parents=True)
    storage.write_json(str(run_dir / "round-0000" / "manifest.json"),
                       {"round": 0, "stages": {"pairs": {"seconds": 1.0, "summary": {}}}})
    out = tmp_path / "out"
    cases = {
        "stp.train": (out, ["--data", str(examples), "--out", str(out), "--model", "m"]),
        "stp.train default out": (run_dir, ["--data", str(examples), "--model", "m",
                                            "--set", f'run.run_dir="{run_dir}"']),
        "stp.extract assemble": (out, ["assemble", "--out", str(out)]),
        "stp.extract sft": (out, ["sft", "--extraction", str(tmp_path / "x"), "--out",
                                  str(out)]),
        "stp.eval plot": (out, ["plot", "--log", str(log_dir), "--out", str(out)]),
        "stp.selfplay report": (out, ["report", "--run-dir", str(run_dir), "--out", str(out)]),
    }
    for name, (locked, argv) in cases.items():
        holder = _hold(locked)
        try:
            code, err = _run(name.split()[0], argv)
        finally:
            holder.kill()
            holder.wait(timeout=30)
        assert code == 2 and "in use by holder-test" in err and len(err.splitlines()) == 1, (
            name, err)
