"""Process isolation of checker processes (issue #20 items 4 and 6, issue #21 item 3).

A checker that elaborated model-written Lean is assumed compromised. The stand-in's `payload`
action plays proof code that took it over and turns on other processes: a child reading the
checker's memory through /proc/<ppid>/mem (how the nonce was read back), another worker's memory
(/proc/<pid>/mem, process_vm_readv, ptrace), signals, running a program, writing the binary or the
cache. Each attempt must fail in the sandbox, and (where this machine allows it) succeed without.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standin import STANDIN, read_dirs, standin_command, with_checker
from verify_helpers import item, verifier_config

from stp.errors import EnvironmentSetupError
from stp.verify import make_verifier, sandbox

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def victim() -> Iterator[dict[str, Any]]:
    """Another process of this user holding a secret (what another worker's nonce is)."""
    code = ("import os, sys, time\n"
            "secret = b'victim-secret-' + os.urandom(8).hex().encode()\n"
            "print(os.getpid(), id(secret) + sys.getsizeof(b'') - 1, secret.hex(), flush=True)\n"
            "time.sleep(300)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        pid, address, secret = proc.stdout.readline().split()
        yield {"pid": int(pid), "address": int(address), "secret": secret}
    finally:
        proc.kill()
        proc.wait()


def memory_of_others_readable() -> bool:
    """Whether this machine lets a process read a same-user non-descendant's memory at all
    (root, or no Yama ptrace restriction): only then can the unsandboxed run show success."""
    scope = Path("/proc/sys/kernel/yama/ptrace_scope")
    return os.geteuid() == 0 or not scope.exists() or scope.read_text().strip() == "0"


def run_payload(tmp_path: Path, mode: str, spec: dict[str, Any]) -> dict[str, Any]:
    cfg = verifier_config(tmp_path, f"verifier.sandbox='{mode}'")
    command = standin_command({"rules": [{"pattern": "PAYLOAD", "action": "payload"}], **spec})
    with make_verifier(with_checker(cfg, command)) as v:
        result = v.verify_all([item(" by PAYLOAD")])[0]
    assert result.status == "fail", result
    return dict(json.loads(result.errors[0].text))


def test_a_taken_over_checker_cannot_reach_other_processes(
        tmp_path: Path, victim: dict[str, Any]) -> None:
    """Without the sandbox the payload forks a child that reads the checker's secret from
    /proc/<ppid>/mem, runs a program, reads another process's secret three ways and can signal
    it. Under the default `auto` (which used to leave a `lean.checker_command` unsandboxed) every
    attempt fails: no process creation, no ptrace or process_vm_readv (seccomp), and no other
    process to name (pid 1 of its own pid namespace, a fresh /proc)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    spec = {"payload_victim": victim,
            "payload_write": [str(cache / "planted"), str(STANDIN)]}
    free = run_payload(tmp_path, "none", spec)
    assert free["fork"] == "ok" and free["run_program"] == "ok"
    assert free["victim_signal"] == "ok"
    if memory_of_others_readable():
        assert free["child_reads_parent"] == "ok" and free["parent_mem"] == "ok"
        assert free["victim_mem"] == free["victim_vm_readv"] == free["victim_ptrace"] == "ok"
    assert free[f"write:{cache / 'planted'}"] == "ok"

    jailed = run_payload(tmp_path, "auto", spec)
    assert jailed["pid"] == 1 and jailed["proc"] == [1], "alone in its pid namespace"
    assert jailed["fork"] == "PermissionError"
    assert jailed["child_reads_parent"] == "PermissionError", "no child to read anything"
    assert jailed["parent_mem"] == "FileNotFoundError", "its parent is outside its namespace"
    assert jailed["run_program"] == "PermissionError"
    assert jailed["victim_mem"] == "FileNotFoundError", "other processes are not in its /proc"
    assert jailed["victim_vm_readv"] == "PermissionError"
    assert jailed["victim_ptrace"] == "PermissionError"
    assert jailed["victim_signal"] == "PermissionError"
    # the cache directory and the checker itself are outside every writable mount
    assert jailed[f"write:{cache / 'planted'}"] != "ok"
    assert jailed[f"write:{STANDIN}"] == "OSError"  # read-only bind (EROFS)


def test_threads_still_work_in_the_sandbox(tmp_path: Path) -> None:
    """Lean runs tasks on threads: the filter refuses clone without CLONE_THREAD only."""
    probe = tmp_path / "threads.py"
    probe.write_text("import threading\nout = []\n"
                     "ts = [threading.Thread(target=out.append, args=(i,)) for i in range(8)]\n"
                     "[t.start() for t in ts]; [t.join() for t in ts]\nprint(sorted(out))\n")
    cfg = verifier_config(tmp_path)
    command = [sys.executable, str(probe), *read_dirs()]
    cfg.lean.checker_command = command
    argv, cwd, env = sandbox.wrap(cfg, command, None)
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(list(range(8)))
    assert "--seccomp" in json.loads(argv[-1])["argv"]


def test_a_bwrap_without_namespaces_is_an_error_naming_the_fix(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ubuntu 24.04 blocks unprivileged user namespaces through AppArmor: bwrap is installed
    but fails. `auto` used to run unsandboxed there too."""
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: setting up uid map: Permission denied' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sandbox, "bwrap_path", lambda: str(fake))
    cfg = with_checker(verifier_config(tmp_path), standin_command({}))
    with pytest.raises(EnvironmentSetupError) as err:
        make_verifier(cfg)
    message = str(err.value)
    assert "setting up uid map: Permission denied" in message
    assert "sysctl kernel.apparmor_restrict_unprivileged_userns=0" in message
    assert "AppArmor profile" in message and "\n" not in message
    assert "UNAVAILABLE" in sandbox.describe_sandbox(cfg)


def test_the_sandbox_state_is_described_for_reports(tmp_path: Path) -> None:
    """Reports print one line; `none` must stand out there."""
    on = sandbox.describe_sandbox(verifier_config(tmp_path))
    off = sandbox.describe_sandbox(verifier_config(tmp_path, "verifier.sandbox='none'"))
    assert on.startswith("sandbox: bwrap + seccomp")
    assert off.startswith("sandbox: NONE") and "unsandboxed" in off


def test_a_changed_checker_binary_is_refused_at_the_next_worker_start(tmp_path: Path) -> None:
    """The digest used to be taken once (at make_verifier, for the cache fingerprint): a checker
    rewritten mid-run was started by every later worker. Now each start re-hashes it."""
    checker = tmp_path / "checker.sh"
    spec = {"default": "pass", "rules": [{"pattern": "CRASH", "action": "crash"}]}
    argv = [sys.executable, str(STANDIN), json.dumps(spec)]
    checker.write_text("#!/bin/sh\nexec " + " ".join(f"'{a}'" for a in argv) + "\n")
    checker.chmod(0o755)
    cfg = verifier_config(tmp_path, "verifier.crash_retries=0")
    with make_verifier(with_checker(cfg, [str(checker), *read_dirs()])) as v:
        assert v.verify_all([item(" by simp")])[0].status == "pass"
        checker.write_text(checker.read_text() + "# rewritten by a proof\n")
        assert v.verify_all([item(" by CRASH")])[0].status == "crash"  # the worker is gone
        after = v.verify_all([item(" by simp 2")])[0]
    assert after.status == "error"
    assert f"{checker} changed since the verifier was made" in after.detail


def test_the_sandbox_runs_from_a_checkout_under_tmp(tmp_path: Path) -> None:
    """Issue #21: the private /tmp was mounted after the project paths were bound, hiding a
    checkout (or venv, or workspace) under /tmp inside the sandbox. The stand-in and the `stp`
    it imports are copied to a checkout under /tmp and run sandboxed from there."""
    checkout = Path("/tmp") / f"stp-checkout-{os.getpid()}"
    try:
        shutil.copytree(REPO / "python" / "stp", checkout / "python" / "stp",
                        ignore=shutil.ignore_patterns("__pycache__"))
        (checkout / "python" / "tests").mkdir()
        shutil.copy(STANDIN, checkout / "python" / "tests" / "standin_checker.py")
        command = [sys.executable, str(checkout / "python" / "tests" / "standin_checker.py"),
                   json.dumps({"default": "pass", "rules": [
                       {"pattern": "PAYLOAD", "action": "payload"}]}),
                   *sorted({sys.prefix, sys.base_prefix}), str(checkout / "python")]
        cfg = verifier_config(tmp_path, "verifier.sandbox='bwrap'")
        with make_verifier(with_checker(cfg, command)) as v:
            results = v.verify_all([item(" by simp"), item(" by PAYLOAD")])
        assert results[0].status == "pass", results[0]
        assert json.loads(results[1].errors[0].text)["fork"] == "PermissionError"
    finally:
        shutil.rmtree(checkout, ignore_errors=True)


def fake_workspace(tmp_path: Path) -> tuple[Path, Path]:
    """A Lake workspace whose `stp_check` is the stand-in, and a `lake` whose `env` sets
    LEAN_PATH/LEAN_SYSROOT and runs the command as a child (as Lake does)."""
    root = tmp_path / "workspace"
    (root / ".lake" / "build" / "bin").mkdir(parents=True)
    (root / ".lake" / "build" / "lib").mkdir()
    (root / "lakefile.lean").write_text("-- fake\n")
    exe = root / ".lake" / "build" / "bin" / "stp_check"
    spec = {"default": "pass", "rules": [{"pattern": "PAYLOAD", "action": "payload"}]}
    argv = [sys.executable, str(STANDIN), json.dumps(spec)]
    exe.write_text("#!/bin/sh\nexec " + " ".join(f"'{a}'" for a in argv) + "\n")
    exe.chmod(0o755)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    lake = bindir / "lake"
    lake.write_text("#!/bin/sh\n[ \"$1\" = env ] || exit 2\nshift\n"
                    f"LEAN_PATH={root}/.lake/build/lib LEAN_SYSROOT={sys.base_prefix} "
                    "\"$@\"\n")  # a child, not exec: `lake env` spawns its command
    lake.chmod(0o755)
    return root, bindir


def test_the_built_checker_runs_directly_with_lake_env_variables(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lake env` spawns the checker as a child, which the filter forbids: in the sandbox the
    built checker is exec'd directly (pid 1), with the variables `lake env` sets."""
    root, bindir = fake_workspace(tmp_path)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    binds = json.dumps(read_dirs())
    cfg = verifier_config(tmp_path, f"lean.project_dir={str(root)!r}",
                          f"verifier.sandbox_binds={binds}")
    from stp.lean import toolchain

    with make_verifier(cfg) as v:
        results = v.verify_all([item(" by simp"), item(" by PAYLOAD")])
    assert results[0].status == "pass", results[0]
    seen = json.loads(results[1].errors[0].text)
    assert seen["pid"] == 1 and seen["fork"] == "PermissionError"
    env = toolchain.lake_environment(str(bindir / "lake"), root)
    assert env["LEAN_PATH"] == f"{root}/.lake/build/lib"
    assert env["LEAN_SYSROOT"] == sys.base_prefix


def test_the_cross_check_repl_runs_in_the_same_sandbox(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lean-interact REPL elaborates the same model text and used to run unsandboxed:
    lean-interact now gets a `lake` that starts exactly its REPL in the checker sandbox."""
    import lean_interact

    from stp.lean import toolchain
    from stp.verify.crosscheck import LeanInteractBackend

    root, bindir = fake_workspace(tmp_path)
    repl_dir = tmp_path / "repl"
    repl = repl_dir / ".lake" / "build" / "bin" / "repl"
    repl.parent.mkdir(parents=True)
    probe = ("import json, os\nfrom pathlib import Path\n"
             "try:\n    os.fork(); fork = 'ok'\nexcept OSError as e:\n    fork = type(e).__name__\n"
             "print(json.dumps({'pid': os.getpid(), 'fork': fork, 'cwd': os.getcwd(),"
             " 'LEAN_PATH': os.environ.get('LEAN_PATH')}))\n")
    repl.write_text(f"#!{sys.executable}\n{probe}")
    repl.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    started: list[Any] = []

    class Config:
        def __init__(self, **kwargs: Any) -> None:
            self.lake_path = kwargs["lake_path"]
            self.cache_repl_dir = str(repl_dir)
            self.working_dir = str(root)

    class Server:
        def __init__(self, config: Config) -> None:  # what lean_interact's LeanServer.start runs
            started.append(subprocess.run(
                [str(config.lake_path), "env", f"{config.cache_repl_dir}/.lake/build/bin/repl"],
                cwd=config.working_dir, capture_output=True, text=True, timeout=60))

    monkeypatch.setattr(lean_interact, "LeanREPLConfig", Config)
    monkeypatch.setattr(lean_interact, "AutoLeanServer", Server)
    monkeypatch.setattr(lean_interact, "LocalProject", lambda **kwargs: None)
    monkeypatch.setattr(toolchain, "require_lean", lambda *args: None)
    cfg = verifier_config(tmp_path, f"lean.project_dir={str(root)!r}")
    verifier_cfg = cfg.verifier
    verifier_cfg.sandbox_binds = read_dirs()
    backend = LeanInteractBackend(cfg.lean, timeout_s=10, memory_mb=0, verifier_cfg=verifier_cfg)
    try:
        assert started and started[0].returncode == 0, started[0].stderr
        seen = json.loads(started[0].stdout)
        assert seen == {"pid": 1, "fork": "PermissionError", "cwd": str(root),
                        "LEAN_PATH": f"{root}/.lake/build/lib"}
        refused = subprocess.run([str(backend.config.lake_path), "env", "/bin/sh"],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2, "the wrapper starts nothing but its REPL"
        repl.write_text(repl.read_text() + "# changed\n")
        changed = subprocess.run([str(backend.config.lake_path), "env", str(repl)],
                                 capture_output=True, text=True, timeout=60)
        assert changed.returncode != 0 and f"{repl} changed" in changed.stderr
    finally:
        backend.close()
    assert not Path(str(backend.config.lake_path)).exists()
