"""Each defence of the verifier against a checker whose stdout an exploit controls (issue #12).

The stand-in plays the compromised checker: it prints forged passes, duplicate keys, wrong nonces,
oversized lines, or (after a trigger) rewrites every later answer of its process into a pass. None
of these may ever come back as `pass`.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import socket
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from standin import read_log, standin_command, with_checker
from verify_helpers import STATEMENT, item, verifier_config

from stp.verify import Verifier, VerifyItem, make_verifier

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Any]:
    made: list[Verifier] = []

    def build(spec: dict[str, Any], *overrides: str) -> tuple[Verifier, Path]:
        log = tmp_path / f"log-{len(made)}"
        v = make_verifier(with_checker(verifier_config(tmp_path, *overrides),
                                       standin_command({"log": str(log), **spec})))
        made.append(v)
        return v, log

    yield build
    for v in made:
        v.close()


@pytest.mark.parametrize("action", ["forge_pass", "dup_verdict", "wrong_nonce", "no_nonce",
                                    "sorry_pass", "mismatch_pass"])
def test_inconsistent_answers_are_never_a_pass(make: Any, action: str) -> None:
    """Before v2 the minimal forged pass, the duplicate `verdict` key and passes with sorryAx or
    statement_match=false were accepted as passes. Now each is a protocol error of that worker:
    retried once on another worker, then `error`; honest items around it are unaffected."""
    v, log = make({"rules": [{"pattern": "EXPLOIT", "action": action}]})
    results = v.verify_all([item(" by simp 1"), item(" by EXPLOIT"), item(" by simp 2")])
    assert [r.status for r in results] == ["pass", "error", "pass"]
    assert results[1].reasons == ["protocol_error"]
    expected = "duplicate key 'verdict'" if action == "dup_verdict" else "inconsistent checker answer"
    assert expected in results[1].detail
    checks = [e for e in read_log(log) if e["ev"] == "check" and "EXPLOIT" in e["proof"]]
    assert len(checks) == 2, "retried exactly once"
    assert checks[0]["pid"] != checks[1]["pid"], "the retry runs on another worker"
    assert v.backend.stats.protocol_errors == 2  # type: ignore[attr-defined]


def test_a_huge_line_is_capped_not_buffered(make: Any) -> None:
    v, _ = make({"rules": [{"pattern": "HUGE", "action": "huge", "mb": 6}]},
                "verifier.max_response_mb=1")
    results = v.verify_all([item(" by HUGE"), item(" by simp")])
    assert [r.status for r in results] == ["error", "pass"]
    assert "longer than 1048576 bytes" in results[0].detail


def test_a_lone_surrogate_is_one_items_error(make: Any) -> None:
    """It used to abort the whole batch with UnicodeEncodeError."""
    v, _ = make({})
    bad = VerifyItem(statement=STATEMENT, proof=" by simp \ud800")
    results = v.verify_all([item(" by simp"), bad, item(" by simp 2"), bad])
    assert [r.status for r in results] == ["pass", "error", "pass", "error"]
    assert "proof is not valid Unicode" in results[1].detail


def test_hijacked_stream_is_caught_by_the_judge(make: Any) -> None:
    """After the trigger, every later answer of that process is a *consistent* forged pass with
    the right nonce and an honest-looking export (what a rewritten stdout prints). Without a
    confirmation the false proofs pass; the judge refutes them (its verdict decides: `fail`) and
    a fresh re-check comes on top under recheck = "fresh"."""
    spec = {"default": "fail", "rules": [{"pattern": "TRIGGER", "action": "hijack"},
                                         {"pattern": "honest", "action": "pass"}]}
    items = [item(" by TRIGGER"), item(" by false 1"), item(" by false 2"), item(" by honest")]
    v, _ = make(spec, "verifier.pipeline_depth=1")
    assert [r.status for r in v.verify_all(items)] == ["pass", "pass", "pass", "pass"]
    v, log = make(spec, "verifier.pipeline_depth=1", "verifier.recheck='fresh'",
                  "verifier.workers=2")
    results = v.verify_all(items)
    assert [r.status for r in results] == ["fail", "fail", "fail", "pass"]
    assert all(r.reasons == ["replay_failed"] for r in results[:3])
    events = read_log(log)
    per_pid = Counter(e["pid"] for e in events if e["ev"] == "check")
    rechecked = [e for e in events if e["ev"] == "check" and "honest" in e["proof"]]
    assert len(rechecked) == 2, "judged, then re-checked fresh on top"
    assert per_pid[rechecked[1]["pid"]] == 1, "a re-check runs alone in its process"


def test_recheck_runs_each_pass_in_a_process_with_no_earlier_request(make: Any) -> None:
    v, log = make({"rules": [{"pattern": "bad", "action": "fail"}]},
                  "verifier.recheck='fresh'", "verifier.workers=2")
    results = v.verify_all([item(f" by {'bad' if i % 3 == 0 else 'simp'} {i}")
                            for i in range(9)])
    assert [r.status for r in results] == ["fail" if i % 3 == 0 else "pass" for i in range(9)]
    events = read_log(log)
    checks = [e for e in events if e["ev"] == "check"]
    by_proof = Counter(e["proof"] for e in checks)
    assert all(by_proof[f" by simp {i}"] == 2 for i in range(9) if i % 3)
    assert all(by_proof[f" by bad {i}"] == 1 for i in range(9) if i % 3 == 0)
    order: dict[int, list[str]] = {}
    for e in checks:
        order.setdefault(e["pid"], []).append(e["proof"])
    second_runs = {}
    for proof in by_proof:
        pids = [e["pid"] for e in checks if e["proof"] == proof]
        if len(pids) == 2:
            second_runs[proof] = pids[1]
    for proof, pid in second_runs.items():
        assert order[pid] == [proof], f"re-check of {proof!r} shared its process"
    stats = v.backend.stats  # type: ignore[attr-defined]
    assert stats.replays == 6 and stats.rechecks == 12, "judged, then fresh on top"


def test_start_timeout_logs_no_unretrieved_future(make: Any, caplog: Any) -> None:
    """A checker that never becomes ready used to print asyncio's "Future exception was never
    retrieved" once per failed start."""
    v, _ = make({"start_delay_ms": 5000}, "verifier.start_timeout_s=0.3")
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        result = v.verify_all([item(" by simp")])[0]
        v.close()
        gc.collect()
    assert result.status == "error" and "no Ready line" in result.detail
    assert "never retrieved" not in caplog.text


def test_untrusted_header_is_gated(make: Any, tmp_path: Path) -> None:
    """Headers that come with the proofs (.lean files, JSONL records) are sent untrusted: the
    checker's allow-list refuses `set_option debug.skipKernelTC` there; the default is trusted."""
    v, _ = make({"untrusted_header_forbidden": "skipKernelTC"})
    evil = "import Mathlib\nset_option debug.skipKernelTC true\n"
    untrusted = VerifyItem(statement=STATEMENT, proof=" by simp", header=evil,
                           header_trusted=False)
    trusted = VerifyItem(statement=STATEMENT, proof=" by simp", header=evil)
    results = v.verify_all([untrusted, trusted, item(" by simp")])
    assert [r.status for r in results] == ["error", "pass", "pass"]
    assert results[0].reasons == ["header_error"]


def test_file_headers_are_untrusted_and_the_default_is_trusted(tmp_path: Path) -> None:
    from stp.verify.cli import load_entries

    lean = tmp_path / "p.lean"
    lean.write_text("import Mathlib\n\ntheorem a : True := by trivial\n")
    jsonl = tmp_path / "p.jsonl"
    jsonl.write_text(json.dumps({"statement": "theorem b : True :=", "proof": " trivial",
                                 "header": "import Mathlib\n"}) + "\n"
                     + json.dumps({"statement": "theorem c : True :=", "proof": " trivial"})
                     + "\n")
    entries = load_entries([lean, jsonl], "import Mathlib\n")
    assert [e.item.header_trusted for e in entries] == [False, False, True]


def test_sandbox_contains_the_checker(tmp_path: Path) -> None:
    """Under bwrap the checker cannot write the project tree, reach the network or read the
    driver's environment; the same probe without the sandbox can do all three (so the test
    means something)."""
    import shutil

    assert shutil.which("bwrap"), "bubblewrap must be installed (apt-get install bubblewrap)"
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)
    target = REPO / "python" / f".sandbox-probe-{os.getpid()}"
    spec = {"rules": [{"pattern": "PROBE", "action": "probe"}], "probe_write": str(target),
            "probe_connect": ["127.0.0.1", server.getsockname()[1]],
            "probe_env": "STP_TEST_SECRET"}
    os.environ["STP_TEST_SECRET"] = "hunter2"
    binds = json.dumps(sorted({sys.prefix, sys.base_prefix, str(REPO / "python")}))
    try:
        outcomes = {}
        for mode in ("none", "bwrap"):
            cfg = verifier_config(tmp_path, f"verifier.sandbox='{mode}'",
                                  f"verifier.sandbox_binds={binds}")
            # Processes this test did not start (a multiprocessing resource tracker left by an
            # earlier test in the same session) are not the verifier's to kill.
            before = {p.pid for p in psutil.Process().children(recursive=True)}
            with make_verifier(with_checker(cfg, standin_command(spec))) as v:
                r = v.verify_all([item(" by PROBE")])[0]
                tree = [p.pid for p in psutil.Process().children(recursive=True)
                        if p.pid not in before]
            assert r.status == "fail", r
            # closing kills everything, inside the sandbox too (--die-with-parent: bwrap's own
            # children die with it and are reaped by the system, within moments)
            procs = [psutil.Process(pid) for pid in tree if psutil.pid_exists(pid)]
            _, alive = psutil.wait_procs(procs, timeout=5)
            assert tree and not alive, alive
            outcomes[mode] = json.loads(r.errors[0].text)
            escaped = target.exists()
            target.unlink(missing_ok=True)
            outcomes[mode]["file_outside"] = escaped
    finally:
        os.environ.pop("STP_TEST_SECRET", None)
        server.close()
        target.unlink(missing_ok=True)
    assert outcomes["none"] == {"write": "ok", "connect": "ok", "env": "hunter2",
                                "file_outside": True}
    assert outcomes["bwrap"] == {"write": "OSError", "connect": "ConnectionRefusedError",
                                 "env": "absent", "file_outside": False}


@pytest.mark.parametrize("mode", ["auto", "bwrap"])
def test_sandbox_bwrap_required_but_missing_is_an_environment_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """`auto` used to fall back to running the checker unsandboxed (one log warning); now both
    modes refuse, with the fix in the one line."""
    from stp.errors import EnvironmentSetupError
    from stp.verify import sandbox

    monkeypatch.setattr(sandbox, "bwrap_path", lambda: None)
    cfg = with_checker(verifier_config(tmp_path, f"verifier.sandbox='{mode}'"), standin_command({}))
    with pytest.raises(EnvironmentSetupError, match="needs bubblewrap, which is not installed") \
            as err:
        make_verifier(cfg)
    assert "apt-get install bubblewrap" in str(err.value)
    assert "kernel.apparmor_restrict_unprivileged_userns=0" in str(err.value)
    assert "\n" not in str(err.value)


def test_cli_never_starts_a_file_header_as_trusted(tmp_path: Path) -> None:
    """The command line's start-up probe used the first file's header; it must use the trusted
    default, and the file's header only ever reaches a checker as untrusted."""
    from standin import UNSANDBOXED, checker_override

    from stp.verify.cli import main

    log = tmp_path / "log"
    lean = tmp_path / "evil.lean"
    lean.write_text("import Mathlib\nset_option debug.skipKernelTC true\n\n"
                    "theorem a : True := by trivial\n")
    code = main([str(lean), "--json", "--cache", str(tmp_path / "cache"),
                 "--set", checker_override(standin_command(
                     {"log": str(log), "untrusted_header_forbidden": "skipKernelTC"})),
                 "--set", UNSANDBOXED])
    assert code == 1
    starts = [e for e in read_log(log) if e["ev"] == "start"]
    assert starts and all(not e["trusted"] for e in starts if "skipKernelTC" in e["header"])
    assert any("skipKernelTC" in e["header"] for e in starts)


def test_recheck_with_a_single_worker_slot(make: Any) -> None:
    """With one slot, re-checks take turns with the normal worker (one slot freed at a time)."""
    v, log = make({"rules": [{"pattern": "bad", "action": "fail"}]},
                  "verifier.recheck='fresh'", "verifier.workers=1")
    results = v.verify_all([item(f" by {'bad' if i % 2 else 'simp'} {i}") for i in range(6)])
    assert [r.status for r in results] == ["pass", "fail"] * 3
    checks = [e for e in read_log(log) if e["ev"] == "check"]
    assert len(checks) == 9
    stats = v.backend.stats  # type: ignore[attr-defined]
    assert stats.rechecks == 6 and stats.replays == 3 and stats.recheck_rejections == 0


# -- protocol 4: the judge (kernel replay of EXPORT against REFERENCE) ----------------------------------------------------

REPLAY = "verifier.recheck='replay'"


def _events(log: Path, ev: str) -> list[dict[str, Any]]:
    return [e for e in read_log(log) if e["ev"] == ev]


def test_replay_confirms_honest_passes_without_ever_seeing_proof_text(make: Any) -> None:
    """Strict passes are confirmed by one long-lived replay worker (outside the `workers` cap)
    from the export alone: its request lines carry no `proof` field, and check workers are
    started with `export: true`. No fresh worker is started."""
    # One judge, pinned: the automatic sizing (replay_workers = 0) may start a second one when
    # judgements queue on a loaded machine (test_verify_pool.py tests that sizing).
    v, log = make({"rules": [{"pattern": "bad", "action": "fail"}]}, REPLAY, "verifier.workers=2",
                  "verifier.replay_workers=1")
    items = [item(f" by {'bad' if i % 3 == 0 else 'simp'} {i}") for i in range(9)]
    results = v.verify_all(items)
    assert [r.status for r in results] == ["fail" if i % 3 == 0 else "pass" for i in range(9)]
    starts = _events(log, "start")
    roles = Counter((e["role"], e["export"]) for e in starts)
    assert roles == {("check", True): 2, ("replay", False): 1, ("statement", False): 1}, roles
    replays = _events(log, "replay")
    assert sorted(int(e["id"]) for e in replays) == sorted(
        int(e["id"]) for e in _events(log, "check") if "simp" in e["proof"])
    # the judge gets REFERENCE + EXPORT: no statement, no proof, no text at all
    assert all(e["fields"] == ["export", "id", "nonce", "op", "reference"] for e in replays)
    assert len(_events(log, "reference")) == 1, "one statement: one reference"
    replay_pid = next(e["pid"] for e in starts if e["role"] == "replay")
    assert {e["pid"] for e in replays} == {replay_pid}, "one long-lived replay worker"
    assert replay_pid not in {e["pid"] for e in _events(log, "check")}
    stats = v.backend.stats  # type: ignore[attr-defined]
    assert stats.replays == stats.rechecks == 6 and stats.recheck_rejections == 0
    # the first check's result stands (a replay answer has no premises or messages)
    assert results[1].seconds == 0.001 and results[1].axioms == ["propext"]


def test_replay_rejects_a_consistent_forged_pass(make: Any) -> None:
    """A check worker prints a consistent pass (right nonce, honest export of the false proof):
    every Python-side consistency rule holds, only the replay can tell, and it says no."""
    v, _ = make({"rules": [{"pattern": "FALSE", "action": "forge_consistent"}]}, REPLAY)
    results = v.verify_all([item(" by simp"), item(" by FALSE"), item(" by simp 2")])
    assert [r.status for r in results] == ["pass", "fail", "pass"]
    assert results[1].reasons == ["replay_failed"]
    assert "the judge refuted the export" in results[1].detail
    assert v.backend.stats.judge_rejections == 1  # type: ignore[attr-defined]


def test_replay_catches_a_persistent_exploit(make: Any) -> None:
    """After the trigger the check worker passes everything (a rewritten stdout, with honest
    exports of the false proofs); the replay worker, whose state no proof text reaches, still
    rejects the false ones, long after the trigger."""
    spec = {"default": "fail", "rules": [
        {"pattern": "TRIGGER", "action": "hijack", "replay": "pass"},
        {"pattern": "honest", "action": "pass"}]}
    items = [item(" by TRIGGER"), *(item(f" by false {i}") for i in range(4)), item(" by honest")]
    v, log = make(spec, REPLAY, "verifier.pipeline_depth=1")
    results = v.verify_all(items)
    assert [r.status for r in results] == ["pass", "fail", "fail", "fail", "fail", "pass"]
    assert all(r.reasons == ["replay_failed"] for r in results[1:5])
    assert len(_events(log, "replay")) == 6


def test_a_large_export_travels_in_chunks(make: Any) -> None:
    """An EXPORT longer than the chunk size comes as `export_chunks` lines, is joined by the
    client and judged like any other (protocol 3 omitted it and re-ran the proof fresh: a
    downgrade the attacker chose)."""
    v, log = make({"rules": [{"pattern": "BIG", "action": "pass", "pad_export_kb": 40}],
                   "export_chunk_bytes": 4096}, REPLAY, "verifier.workers=2")
    results = v.verify_all([item(" by BIG"), item(" by simp")])
    assert [r.status for r in results] == ["pass", "pass"]
    stats = v.backend.stats  # type: ignore[attr-defined]
    assert stats.replays == stats.rechecks == 2
    assert sum("BIG" in e["proof"] for e in _events(log, "check")) == 1, "never re-run"


def test_an_export_over_the_cap_is_an_error_never_a_rerun(make: Any) -> None:
    v, log = make({"rules": [{"pattern": "BIG", "action": "pass", "pad_export_kb": 1200}],
                   "export_chunk_bytes": 65536}, REPLAY, "verifier.max_export_mb=1")
    results = v.verify_all([item(" by BIG"), item(" by simp")])
    assert [r.status for r in results] == ["error", "pass"]
    assert results[0].reasons == ["export_too_large"]
    assert sum("BIG" in e["proof"] for e in _events(log, "check")) == 1, "never re-run"
    assert v.backend.stats.export_too_large == 1  # type: ignore[attr-defined]


def test_a_pass_without_its_export_is_a_protocol_error(make: Any) -> None:
    v, log = make({"rules": [{"pattern": "NOEXP", "action": "no_export"}]}, REPLAY)
    results = v.verify_all([item(" by NOEXP"), item(" by simp")])
    assert [r.status for r in results] == ["error", "pass"]
    assert results[0].reasons == ["protocol_error"]
    assert "pass without export" in results[0].detail
    assert sum("NOEXP" in e["proof"] for e in _events(log, "check")) == 2, "retried once"
    assert not [e for e in _events(log, "start") if e["role"] == "check" and not e["export"]], (
        "no fresh re-run instead")


@pytest.mark.parametrize("action, status", [("crash", "crash"), ("hang", "timeout")])
def test_a_replay_that_crashes_or_hangs_is_never_a_pass(make: Any, action: str,
                                                        status: str) -> None:
    """The check passes, the replay worker crashes (retried on a new replay worker, then
    `error`) or hangs (killed at the timeout, `error`); honest items keep being confirmed."""
    spec = {"rules": [{"pattern": "ODD", "role": "replay", "action": action}]}
    v, log = make(spec, REPLAY, "verifier.timeout_s=2")
    results = v.verify_all([item(" by simp 1"), item(" by ODD"), item(" by simp 2")])
    assert [r.status for r in results] == ["pass", "error", "pass"]
    assert results[1].reasons == ["recheck_disagreement"]
    assert f"(re-check: {status})" in results[1].detail
    odd_ids = {c["id"] for c in _events(log, "check") if "ODD" in c["proof"]}
    odd = [e for e in _events(log, "replay") if e["id"] in odd_ids]
    assert len(odd) == (2 if action == "crash" else 1), "a crash is retried once (crash_retries)"
    assert len({e["pid"] for e in odd}) == len(odd)


def test_replay_workers_are_recycled(make: Any) -> None:
    v, log = make({}, REPLAY, "verifier.recycle_after=2", "verifier.workers=1",
                  "verifier.replay_workers=1")
    results = v.verify_all([item(f" by simp {i}") for i in range(5)])
    assert all(r.passed for r in results)
    pids = Counter(e["pid"] for e in _events(log, "replay"))
    assert sorted(pids.values()) == [1, 2, 2]


def test_recheck_off_and_paper_profile_never_replay(make: Any) -> None:
    """`off`: no re-check, no export asked; paper profile under `replay`: passes go to the fresh
    re-check (the paper rule compares no statement, there is nothing to replay against)."""
    v, log = make({}, "verifier.recheck='off'")
    assert v.verify_all([item(" by simp")])[0].passed
    assert [e["export"] for e in _events(log, "start")] == [False]
    assert not _events(log, "replay") and v.backend.stats.rechecks == 0  # type: ignore[attr-defined]
    v, log = make({}, REPLAY, "lean.profile='paper'", "verifier.workers=2")
    assert v.verify_all([item(" by simp")])[0].passed
    assert not _events(log, "replay")
    assert sum("simp" in e["proof"] for e in _events(log, "check")) == 2
    assert v.backend.stats.rechecks == 1  # type: ignore[attr-defined]


def test_cache_fingerprint_names_the_recheck_mode(tmp_path: Path) -> None:
    from stp.verify.service import checker_fingerprint

    command = standin_command({})
    prints = {mode: checker_fingerprint(
        with_checker(verifier_config(tmp_path, f"verifier.recheck='{mode}'"), command), command)
        for mode in ("replay", "fresh", "off")}
    assert len(set(prints.values())) == 3


def test_replay_ratio_script_measures_check_and_replay_ms(tmp_path: Path) -> None:
    """benchmarks/replay_ratio.py (the measurement of r for the first machine with Lean) runs
    end to end against the stand-in: it checks every proof, makes each statement's reference in
    a statement process, judges every pass from REFERENCE + EXPORT and reports the judgements
    that did not pass, with the machine and its load."""
    import subprocess

    from standin import checker_override

    proofs = tmp_path / "proofs.jsonl"
    proofs.write_text("".join(json.dumps({"statement": STATEMENT, "proof": p}) + "\n"
                              for p in (" by simp", " by bad", " by simp 2", " by FORGED")))
    spec = {"rules": [{"pattern": "bad", "action": "fail"},
                      {"pattern": "FORGED", "action": "forge_consistent"}]}
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "replay_ratio.py"), str(proofs),
         "--set", checker_override(standin_command(spec))],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": ""})
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "4 proofs checked, 3 passed, 3 judged, 0 passes not judged" in out
    assert "machine:" in out and "load average" in out
    assert "reference ms (statement process)" in out and "1 statements" in out
    assert "r(passes) = 1.000   r(model) = 1.000" in out  # the stand-in answers ms = 1
    assert out.count("replay did not pass") == 1 and "replay_failed" in out


def test_a_full_disk_while_persisting_references_is_one_warning_and_keeps_the_verdicts(
        make: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The statement references of a batch are stored in the verdict cache; when the disk is
    full that store fails as SQLite reports it. The run goes on with the references in memory,
    the verdicts are unchanged, and the log says so in one warning line (it printed a traceback
    under ERROR, which the one-line promise of every command forbids)."""
    import sqlite3

    from stp.verify.cache import ReferenceStore

    def full(self: Any, entries: Any) -> None:
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as err:
            # what the store's own ROLLBACK then raises, with the real cause as its context
            raise sqlite3.OperationalError("cannot rollback - no transaction is active") from err

    monkeypatch.setattr(ReferenceStore, "put", full)
    v, _ = make({"rules": [{"pattern": "bad", "action": "fail"}]}, REPLAY,
                f"verifier.cache_dir={str(tmp_path / 'cache')!r}")
    with caplog.at_level("WARNING", logger="stp.verify.pool"):
        results = v.verify_all([item(" by simp 1"), item(" by bad 2")])
    assert [r.status for r in results] == ["pass", "fail"]
    records = [r for r in caplog.records if r.name == "stp.verify.pool"]
    assert [r.levelname for r in records if "persist" in r.getMessage()] == ["WARNING"]
    assert not any(r.exc_info for r in records)


def test_out_of_space_reads_the_whole_error_chain() -> None:
    import errno
    import sqlite3

    from stp.verify.cache import out_of_space

    assert out_of_space(OSError(errno.ENOSPC, "No space left on device"))
    assert out_of_space(sqlite3.OperationalError("database or disk is full"))
    try:
        try:
            raise OSError(errno.EDQUOT, "Disk quota exceeded")
        except OSError as inner:
            raise RuntimeError("rollback failed") from inner
    except RuntimeError as outer:
        assert out_of_space(outer)
    assert not out_of_space(sqlite3.OperationalError("no such table: refs"))
    assert not out_of_space(OSError(errno.EACCES, "Permission denied"))
