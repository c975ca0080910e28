"""The local pool against the stand-in checker: verdicts, failure isolation, lifecycle."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from standin import read_log, standin_command, with_checker

from stp.config import STPConfig, load_config
from stp.verify import Verifier, VerifyItem, make_verifier

STATEMENT = "theorem t (n : ℕ) : n + 0 = n :="


def config(tmp_path: Path, **verifier: Any) -> STPConfig:
    # pass re-checks cost a process start per pass; the tests of re-checks turn them on
    settings = {"workers": 2, "timeout_s": 5.0, "cache_dir": "off", "start_timeout_s": 20.0,
                "memory_check_s": 0.1, "recheck": "off", **verifier}
    overrides = [f"verifier.{k}={v!r}" if isinstance(v, str) else f"verifier.{k}={v}"
                 for k, v in settings.items()]
    overrides = [o.replace("True", "true").replace("False", "false") for o in overrides]
    overrides.append(f"run.run_dir={str(tmp_path / 'run')!r}")
    return load_config(None, overrides)


@pytest.fixture
def verifier_factory(tmp_path: Path) -> Iterator[Any]:
    made: list[Verifier] = []

    def make(spec: dict[str, Any], **verifier: Any) -> tuple[Verifier, Path]:
        log = tmp_path / f"standin-{len(made)}.log"
        state = tmp_path / f"state-{len(made)}"
        state.mkdir()
        spec = {"log": str(log), "state_dir": str(state), **spec}
        v = make_verifier(with_checker(config(tmp_path, **verifier), standin_command(spec)))
        made.append(v)
        return v, log

    yield make
    for v in made:
        v.close()


def item(proof: str, header: str = "", **kw: Any) -> VerifyItem:
    return VerifyItem(statement=STATEMENT, proof=proof, header=header, **kw)


def test_thousands_of_items_follow_the_rules(verifier_factory: Any) -> None:
    spec = {"rules": [{"pattern": "omega", "action": "fail"},
                      {"pattern": "decide", "action": "error", "reasons": ["internal_error"]},
                      {"pattern": "simp", "action": "pass", "premises": ["Nat.add_zero"]}],
            "default": "pass"}
    v, log = verifier_factory(spec, workers=3, recycle_after=700)
    tactics = ["simp", "omega", "decide", "rfl"]
    items = [item(f" by {tactics[i % 4]} -- {i}", premises=(i % 2 == 0)) for i in range(4000)]
    seen: Counter[int] = Counter()
    results = {}
    for index, result in v.verify(items):
        seen[index] += 1
        results[index] = result
    assert sorted(seen) == list(range(len(items)))
    assert set(seen.values()) == {1}, "an item was answered twice"
    expected = {"simp": "pass", "omega": "fail", "decide": "error", "rfl": "pass"}
    for i, it in enumerate(items):
        tactic = tactics[i % 4]
        r = results[i]
        assert r.status == expected[tactic], (i, r)
        if tactic == "simp":
            assert r.premises == (["Nat.add_zero"] if it.premises else None)
        if tactic == "omega":
            assert r.reasons == ["elab_error"] and r.errors[0].text == "stand-in rejects this proof"
    checks = [e for e in read_log(log) if e["ev"] == "check"]
    assert len(checks) == len(items)
    assert len({e["pid"] for e in checks}) >= 3, "work was not spread over the workers"
    # input order from verify_all
    again = v.verify_all(items[:40])
    assert [r.status for r in again] == [expected[tactics[i % 4]] for i in range(40)]


def test_each_failure_mode_gets_its_status_while_the_rest_complete(verifier_factory: Any) -> None:
    spec = {"rules": [{"pattern": "HANG", "action": "hang"},
                      {"pattern": "CRASH", "action": "crash"},
                      {"pattern": "GARBAGE", "action": "garbage"},
                      {"pattern": "WRONGID", "action": "wrong_id"},
                      {"pattern": "LEAK", "action": "leak", "mb_per_s": 600},
                      {"pattern": "ORDER", "action": "out_of_order", "times": 1}]}
    v, log = verifier_factory(spec, workers=3, timeout_s=1.5, memory_mb=120)
    bad = {"HANG": "timeout", "CRASH": "crash", "GARBAGE": "crash", "WRONGID": "error",
           "LEAK": "memory", "ORDER": "pass"}
    items, expected = [], []
    for i in range(600):
        if i % 100 == 50:
            kind = list(bad)[(i // 100) % len(bad)]
            items.append(item(f" by {kind} {i}"))
            expected.append(bad[kind])
        else:
            items.append(item(f" by simp {i}"))
            expected.append("pass")
    results = v.verify_all(items)
    got = [r.status for r in results]
    assert got == expected, [(i, g, e) for i, (g, e) in enumerate(zip(got, expected, strict=True)) if g != e]
    by_kind = {items[i].proof.split()[1]: results[i] for i in range(len(items))
               if expected[i] != "pass" or "ORDER" in items[i].proof}
    assert "no answer within 1.5s" in by_kind["HANG"].detail
    assert "stand-in: crashing" in by_kind["CRASH"].detail
    assert "undecodable line" in by_kind["GARBAGE"].detail
    assert "response id" in by_kind["WRONGID"].detail
    assert "MiB" in by_kind["LEAK"].detail
    stats = v.backend.stats  # type: ignore[attr-defined]
    assert stats.timeouts == 1 and stats.memory_kills == 1
    # every innocent item is checked exactly once, plus once more each time it was in flight
    # behind a bad item (or that item's retry) on a worker that was then killed for it
    events = [e for e in read_log(log) if e["ev"] == "check"]
    bad_seen: dict[int, int] = {}  # pid -> index of its first bad item
    for n, e in enumerate(events):
        if any(kind in e["proof"] for kind in ("HANG", "CRASH", "GARBAGE", "WRONGID", "LEAK",
                                               "ORDER")):
            bad_seen.setdefault(e["pid"], n)
    for it, exp in zip(items, expected, strict=True):
        if exp != "pass" or "ORDER" in it.proof:
            continue
        runs = [(n, e["pid"]) for n, e in enumerate(events) if e["proof"] == it.proof]
        assert len({pid for _, pid in runs}) == len(runs), (it.proof, runs)
        for n, pid in runs[:-1]:  # every run but the accepted one died with a bad item
            assert pid in bad_seen and bad_seen[pid] < n, (it.proof, runs)


def test_crashed_item_is_retried_once_on_a_fresh_worker(verifier_factory: Any) -> None:
    spec = {"rules": [{"pattern": "FLAKY", "action": "crash", "times": 1},
                      {"pattern": "ALWAYS", "action": "crash"}]}
    v, log = verifier_factory(spec, workers=1, crash_retries=1)
    results = v.verify_all([item(" by FLAKY"), item(" by ALWAYS"), item(" by simp")])
    assert [r.status for r in results] == ["pass", "crash", "pass"]
    checks = [e for e in read_log(log) if e["ev"] == "check"]
    per_proof = Counter(e["proof"] for e in checks)
    assert per_proof[" by FLAKY"] == 2
    assert per_proof[" by ALWAYS"] == 2, "retried exactly once, then marked crash"
    flaky_pids = [e["pid"] for e in checks if e["proof"] == " by FLAKY"]
    assert flaky_pids[0] != flaky_pids[1], "the retry must run on another worker"


def test_no_retry_when_crash_retries_is_zero(verifier_factory: Any) -> None:
    v, log = verifier_factory({"rules": [{"pattern": "FLAKY", "action": "crash", "times": 1}]},
                              workers=1, crash_retries=0)
    assert v.verify_all([item(" by FLAKY")])[0].status == "crash"
    assert sum(1 for e in read_log(log) if e["ev"] == "check") == 1


def test_workers_are_recycled_after_n_checks(verifier_factory: Any) -> None:
    v, log = verifier_factory({}, workers=1, recycle_after=10, pipeline_depth=3)
    results = v.verify_all([item(f" by simp {i}") for i in range(55)])
    assert all(r.passed for r in results)
    events = read_log(log)
    assert sum(1 for e in events if e["ev"] == "start") == 6
    per_pid = Counter(e["pid"] for e in events if e["ev"] == "check")
    assert max(per_pid.values()) == 10


def test_header_pools_are_kept_warm_and_evicted_lru(verifier_factory: Any) -> None:
    v, log = verifier_factory({}, workers=3, max_header_pools=2)

    def run(header: str) -> None:
        assert v.verify_all([item(" by simp", header=header)])[0].passed

    for header in ["import A", "import B", "import A", "import C", "import A", "import B"]:
        run(header)
    starts = [e["header"] for e in read_log(log) if e["ev"] == "start"]
    # A and B start; A is reused warm; C evicts B (least recently used); A still warm; B restarts
    assert starts == ["import A", "import B", "import C", "import B"]
    assert len(v.backend.headers()) == 2  # type: ignore[attr-defined]


def test_many_headers_interleaved_on_few_workers(verifier_factory: Any) -> None:
    v, log = verifier_factory({"rules": [{"pattern": "bad", "action": "fail"}]},
                              workers=2, max_header_pools=1)
    headers = ["import A", "import B", "import C"]
    items = [item(f" by {'bad' if i % 5 == 0 else 'simp'} {i}", header=headers[i % 3])
             for i in range(300)]
    results = v.verify_all(items)
    assert [r.status for r in results] == ["fail" if i % 5 == 0 else "pass" for i in range(300)]
    checks = [e for e in read_log(log) if e["ev"] == "check"]
    assert len(checks) == 300


def test_empty_header_means_default_and_proof_gets_a_newline(verifier_factory: Any,
                                                             tmp_path: Path) -> None:
    v, log = verifier_factory({})
    assert v.verify_all([item("simp"), item("\n  simp")])[0].passed
    events = read_log(log)
    starts = [e["header"] for e in events if e["ev"] == "start"]
    assert set(starts) == {config(tmp_path).lean.default_header}
    proofs = sorted(e["proof"] for e in events if e["ev"] == "check")
    assert proofs == ["\n  simp", "\nsimp"]


def test_header_that_cannot_start_answers_error_and_others_pass(verifier_factory: Any) -> None:
    v, _ = verifier_factory({"start_crash": "BROKEN"}, workers=2)
    results = v.verify_all([item(" by simp", header="import BROKEN"), item(" by simp")])
    assert results[0].status == "error"
    assert "checker could not start" in results[0].detail
    assert "refusing this header" in results[0].detail
    assert results[1].passed


def test_header_errors_reported_by_the_checker(verifier_factory: Any) -> None:
    v, _ = verifier_factory({"header_error": "Missing"})
    r = v.verify_all([item(" by simp", header="import Missing")])[0]
    assert r.status == "error" and r.reasons == ["header_error"]


def test_abandoning_the_stream_cancels_and_the_verifier_stays_usable(
        verifier_factory: Any) -> None:
    v, log = verifier_factory({"rules": [{"pattern": "slow", "action": "slow", "ms": 20}]},
                              workers=1)
    stream = v.verify([item(f" by slow {i}") for i in range(200)])
    first = [next(stream) for _ in range(3)]
    stream.close()
    assert len(first) == 3
    results = v.verify_all([item(" by simp")])
    assert results[0].passed
    checks = sum(1 for e in read_log(log) if e["ev"] == "check")
    assert checks < 200, "cancelled work kept running"


def test_concurrent_callers_from_threads(verifier_factory: Any) -> None:
    v, _ = verifier_factory({"rules": [{"pattern": "bad", "action": "fail"}]}, workers=2)
    outcomes: dict[int, list[str]] = {}

    def call(k: int) -> None:
        items = [item(f" by {'bad' if i % 2 else 'simp'} {k} {i}") for i in range(300)]
        outcomes[k] = [r.status for r in v.verify_all(items)]

    threads = [threading.Thread(target=call, args=(k,)) for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    expected = ["fail" if i % 2 else "pass" for i in range(300)]
    assert outcomes == {0: expected, 1: expected, 2: expected}


def test_versions_come_from_ready(verifier_factory: Any) -> None:
    v, _ = verifier_factory({"checker_version": "ck-7", "lean_version": "4.9.0"})
    assert v.versions() == ("ck-7", "4.9.0")


def test_closing_kills_every_worker(verifier_factory: Any) -> None:
    import psutil

    v, _ = verifier_factory({}, workers=2)
    v.verify_all([item(f" by simp {i}") for i in range(20)])
    pids = v.backend.worker_pids()  # type: ignore[attr-defined]
    assert pids
    descendants = [c.pid for pid in pids for c in psutil.Process(pid).children(recursive=True)]
    v.close()
    for pid in pids + descendants:  # killed and reaped: no zombie left behind
        assert not psutil.pid_exists(pid), psutil.Process(pid).status()


def test_a_replay_worker_that_cannot_start_confirms_nothing(verifier_factory: Any) -> None:
    """Check workers start, the replay worker never does: after MAX_START_FAILURES attempts the
    waiting passes become `error` (never a pass), fails stay fails, and the pool keeps working."""
    from stp.verify.pool import MAX_START_FAILURES

    spec = {"start_crash": ".*", "start_crash_role": "replay",
            "rules": [{"pattern": "bad", "action": "fail"}]}
    v, log = verifier_factory(spec, recheck="replay")
    results = v.verify_all([item(" by simp"), item(" by bad")])
    assert [r.status for r in results] == ["error", "fail"]
    assert results[0].reasons == ["recheck_disagreement"]
    assert "judge could not start" in results[0].detail
    starts = [e for e in read_log(log) if e["ev"] == "start"]
    assert sum(e["role"] == "replay" for e in starts) == MAX_START_FAILURES
    assert v.backend.stats.start_failures == MAX_START_FAILURES  # type: ignore[attr-defined]
    assert v.verify_all([item(" by bad 2")])[0].status == "fail"


def test_replay_under_load_answers_every_item_once(verifier_factory: Any) -> None:
    """Hundreds of items over two headers with the replay re-check on, recycling of check and
    replay workers, replay crashes and replay rejections mixed in: one answer per index, passes
    only where both the check and the replay pass, one replay worker per header at a time."""
    spec = {"rules": [{"pattern": "omega", "action": "fail"},
                      {"pattern": "CRASH", "role": "replay", "action": "crash"},
                      {"pattern": "FORGE", "action": "forge_consistent"}]}
    v, log = verifier_factory(spec, recheck="replay", recycle_after=50, workers=2,
                              replay_workers=1)
    kinds = ["simp", "omega", "simp", "FORGE", "simp", "CRASH"]
    items = [item(f" by {kinds[i % 6]} {i}", header="" if i % 2 else "import Other\n")
             for i in range(600)]
    seen: Counter[int] = Counter()
    results = {}
    for index, result in v.verify(items):
        seen[index] += 1
        results[index] = result
    assert sorted(seen) == list(range(len(items))) and set(seen.values()) == {1}
    # FORGE: the judge refutes the forged pass and its verdict decides (`fail`)
    expected = {"simp": "pass", "omega": "fail", "FORGE": "fail", "CRASH": "error"}
    for i in range(len(items)):
        assert results[i].status == expected[kinds[i % 6]], (i, results[i])
    events = read_log(log)
    replay_starts = [e for e in events if e["ev"] == "start" and e["role"] == "replay"]
    # the judge gets the header's imports (read by Python), never the header text
    assert {tuple(e["imports"]) for e in replay_starts} == {("Other",), ("Mathlib", "Aesop")}
    assert {e["header"] for e in replay_starts} == {""}
    replays = [e for e in events if e["ev"] == "replay"]
    assert all("proof" not in e["fields"] and "statement" not in e["fields"] for e in replays)
    # one statement, two headers: its reference is made once per header, by statement processes
    references = [e for e in events if e["ev"] == "reference"]
    assert len(references) == 2
    stats = v.backend.stats  # type: ignore[attr-defined]
    assert stats.recycled > 0 and stats.replays >= 400


def test_a_fairness_tie_does_not_retire_and_respawn_forever(verifier_factory: Any) -> None:
    """Two headers, two slots, pending 2:1: the second slot used to go to the first pool on the
    tie (200/2 == 100/1), the pool without a worker then freed it by retiring that starting
    worker, and the two steps repeated — hundreds of process starts (each lingering until its
    start timeout) for one batch. A pool without any worker now gets the slot first."""
    v, _ = verifier_factory({}, workers=2)
    items = [item(f" by simp {i}", header="import A\n" if i < 200 else "import B\n")
             for i in range(300)]
    results: list[Any] = []
    runner = threading.Thread(target=lambda: results.extend(v.verify_all(items)), daemon=True)
    runner.start()
    runner.join(60)
    spawned = v.backend.stats.spawned  # type: ignore[attr-defined]
    assert not runner.is_alive(), f"no result within 60 s; {spawned} process starts"
    assert len(results) == 300 and all(r.passed for r in results)
    assert spawned == 2


def test_a_worker_killed_while_being_created_does_not_linger() -> None:
    """kill() before the process had a pid could not signal it: the process started anyway and
    lived, ignored, until its start timeout (hundreds of them in a retire/respawn storm). Now
    start() kills it as soon as the pid exists and fails at once."""
    import asyncio
    import time

    import psutil

    from stp.lean.client import CheckerProcess, CheckerStartError
    from stp.lean.protocol import CheckerConfig

    class Quiet:
        def on_responses(self, responses: Any) -> None: ...
        def on_protocol_error(self, detail: str, kind: Any = "crash") -> None: ...
        def on_exit(self, detail: str) -> None: ...

    cfg = CheckerConfig(role="check", export=False, header="", imports=[], header_trusted=True,
                        max_heartbeats=0, mode="strict", profile="strict", allowed_axioms=[])

    async def scenario() -> tuple[float, int | None]:
        proc = CheckerProcess(standin_command({}), Quiet())
        task = asyncio.ensure_future(proc.start(cfg, 30.0))
        proc.kill()  # the pool retires a worker still being created
        started = time.monotonic()
        with pytest.raises(CheckerStartError, match="killed while starting"):
            await task
        await proc.wait_closed(5.0)
        return time.monotonic() - started, proc.pid

    elapsed, pid = asyncio.run(scenario())
    assert elapsed < 10
    assert pid is not None and not psutil.pid_exists(pid)


def test_judges_are_sized_from_the_pool_and_the_pass_rate() -> None:
    """At the old default (one judge per pool) a 64-worker pool reached ~30 % of ideal; the
    judge count now follows workers x pass rate x judge/check time (1.5x headroom)."""
    from stp.verify.pool import judge_target, statement_target

    assert judge_target(64, 0.2, 0.25, cap=64) == 5  # 64 x 0.2 x 0.25 x 1.5 = 4.8
    assert judge_target(2, 0.2, 0.25, cap=2) == 1
    assert judge_target(64, 1.0, 1.0, cap=64) == 64  # capped at the pool size
    assert judge_target(64, 0.0, 0.25, cap=64) == 1  # always one
    assert statement_target(64, 0.2, cap=64) == 4 and statement_target(2, 0.2, cap=2) == 1


def test_the_shipped_configs_size_judges_automatically() -> None:
    from pathlib import Path

    from stp.verify.config import VerifierConfig

    repo = Path(__file__).resolve().parents[2]
    assert VerifierConfig().replay_workers == 0 and VerifierConfig().statement_workers == 0
    for name in ("stp-7b.toml", "stp-7b-released-script.toml", "released-0320.toml"):
        cfg = load_config(repo / "configs" / name, [])
        assert cfg.verifier.replay_workers == 0, name


def test_auto_sizing_starts_more_judges_when_passes_queue(verifier_factory: Any) -> None:
    """Four workers, every item passes, each judgement slower than a check: one judge would be
    the bottleneck; the auto sizing (replay_workers = 0) starts more, and every item passes."""
    spec = {"replay_cpu_ms": 30, "check_cpu_ms": 5}
    v, log = verifier_factory(spec, recheck="replay", workers=4, replay_workers=0)
    results = v.verify_all([item(f" by simp {i}") for i in range(300)])
    assert all(r.passed for r in results)
    judges = {e["pid"] for e in read_log(log) if e["ev"] == "start" and e["role"] == "replay"}
    assert len(judges) > 1, "the auto sizing started more than one judge"
    sizing = v.backend.sizing()  # type: ignore[attr-defined]
    assert sizing["pass_rate"] == 1.0 and sizing["replay_ratio"] > 1.0


def test_a_cancelled_caller_leaves_no_reference_waiters(verifier_factory: Any) -> None:
    """Jobs waiting for a statement's reference whose caller cancels are dropped without leaving
    an empty waiting list behind (which would keep their header pool busy for ever)."""
    from stp.verify.pool import Sink

    spec = {"rules": [{"pattern": "SLOWREF", "field": "statement", "role": "statement",
                       "action": "hang"}]}
    v, _ = verifier_factory(spec, recheck="replay")
    engine = v.backend  # type: ignore[attr-defined]
    slow = [VerifyItem(statement="theorem s_SLOWREF : True :=", proof=f" by simp {i}",
                       header=v.default_header) for i in range(4)]
    sink = Sink(len(slow))
    engine.submit(list(enumerate(slow)), sink)

    def waiting() -> dict[str, int]:
        return engine._on_loop(lambda: {s: len(js) for p in engine._pools.values()
                                        for s, js in p.ref_waiters.items()})

    deadline = time.monotonic() + 20
    while sum(waiting().values()) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)  # the checks pass; the jobs then wait for the reference
    assert sum(waiting().values()) == 4
    engine.cancel(sink)
    time.sleep(0.3)
    assert waiting() == {}, "cancelled waiters leave no (empty) entry behind"
