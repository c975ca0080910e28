"""More tests for the gaps `benchmarks/mutation.py` found (issue #24, item 9), from the
`--per-module 30` run: each pins behaviour a surviving mutant changed and no test looked at. The
mutant each one kills is named in its docstring; README's "Mutation score" paragraph lists the
ones left and why."""

from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pytest

from stp.verify import runner
from stp.verify.runner import ShardRunner, VerificationOutage, check_outage, verify_with_retries

pytest_plugins = ["gcs_emulator"]


# ---------------------------------------------------------------------------------------------
# stp.verify.runner


def test_an_unverified_fraction_under_the_limit_warns_with_its_percentages(caplog) -> None:
    """Kills `fraction > max_fraction` -> `!=` (a fraction under the limit raised) and every
    change to the warning's `100 * fraction` (`99 *`, `100 //`, `100 -`)."""
    with caplog.at_level(logging.WARNING, logger="stp.verify.runner"):
        check_outage("proving", 1, 8, 0.25)
    assert [r.getMessage() for r in caplog.records] == [
        "proving: 1 of 8 attempts (12.50%) have no verdict; under the limit of 25.00%, they "
        "count as neither pass nor fail"]
    with pytest.raises(VerificationOutage, match=r"3 of 8 attempts \(37\.50%\)"):
        check_outage("proving", 3, 8, 0.25)


def test_each_retry_is_logged_with_its_number(caplog) -> None:
    """Kills `attempt + 1` -> `attempt + 2` in the retry log line."""

    @dataclass
    class Verdict:
        status: str

    with caplog.at_level(logging.WARNING, logger="stp.verify.runner"):
        verify_with_retries(lambda items: [Verdict("crash") for _ in items], ["a", "b"], 3)
    assert [r.getMessage() for r in caplog.records] == [
        f"re-verifying 2 attempt(s) without a verdict (retry {i} of 3)" for i in (1, 2, 3)]


class Metrics:
    """Stand-in for `stp.metrics.MetricsWriter`: collects the events."""

    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def log(self, event: str, **fields: Any) -> dict[str, Any]:
        self.events.append((event, fields))
        return fields


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    fake = Clock(100.0)
    monkeypatch.setattr(runner.time, "monotonic", fake)
    return fake


@pytest.fixture
def progress_totals(monkeypatch) -> list[int | None]:
    totals: list[int | None] = []

    def progress(iterable, total=None, desc=""):  # type: ignore[no-untyped-def]
        totals.append(total)
        yield from iterable

    monkeypatch.setattr(runner, "progress", progress)
    return totals


def test_progress_events_carry_done_total_rate_eta_and_the_callers_fields(
        clock: Clock, progress_totals: list[int | None]) -> None:
    """Shards 2..4 of a stage of 19 attempts, 2 stored before this run, 3 attempts a shard;
    sampling shard i happens at time 100 + 2 (i - 2). Kills the arithmetic mutants of `_event`
    (`monotonic() - start` -> `//`, `&`; `/ elapsed` -> `^`; `total - done` -> `^`, `>>`, `/`;
    `left / rate` -> `//`, `>>`, `&`; `rate > 0` -> `not rate > 0`), the progress total
    `n - first` -> `n + first`, `n & first`, and `dict(event or {})` -> `dict(event and {})`
    (the caller's fields were dropped from every event)."""
    metrics = Metrics()

    def sample(i: int) -> int:
        clock.now = 100.0 + 2 * (i - 2)
        return i

    stored: list[int] = []

    def store(i: int, sampled: int) -> int:
        stored.append(sampled)
        return 3

    shards = ShardRunner("proving", sample, store, metrics=metrics,  # type: ignore[arg-type]
                         event={"round": 7})
    shards.run(2, 5, items_total=19, items_before=2)
    assert stored == [2, 3, 4] and shards.items_done == 11
    assert progress_totals == [3]
    # done 5 at t = 102: rate (5 - 2) / 2 = 1.5, 14 left, ETA 9.3 s; done 8 at 104: 1.5, 11 left,
    # 7.3 s; done 11 at 104 (the last shard is finished after the loop): 9 / 4 = 2.25, 8 left,
    # 3.6 s.
    assert metrics.events == [
        ("progress", {"task": "proving", "done": 5, "total": 19, "rate": 1.5, "eta_s": 9.3,
                      "round": 7}),
        ("progress", {"task": "proving", "done": 8, "total": 19, "rate": 1.5, "eta_s": 7.3,
                      "round": 7}),
        ("progress", {"task": "proving", "done": 11, "total": 19, "rate": 2.25, "eta_s": 3.6,
                      "round": 7}),
    ]


def test_no_eta_while_nothing_was_stored(clock: Clock, progress_totals: list[int | None]
                                         ) -> None:
    """A shard that stores no attempt gives rate 0 and no ETA (kills `rate > 0` ->
    `not rate > 0`, a division by zero)."""
    metrics = Metrics()
    clock.now = 100.0

    def sample(i: int) -> int:
        clock.now += 5.0
        return i

    ShardRunner("eval", sample, lambda i, s: 0, metrics=metrics).run(  # type: ignore[arg-type]
        0, 1, items_total=4)
    assert metrics.events == [("progress", {"task": "eval", "done": 0, "total": 4, "rate": 0.0,
                                            "eta_s": None})]
    assert progress_totals == [1]


def test_the_last_shards_verification_error_propagates_and_every_shard_is_counted(
        progress_totals: list[int | None]) -> None:
    """Kills `if pending is not None: finish(pending)` -> `if not ...` after the loop: the last
    shard's result was never awaited, so its verification error was swallowed (the stage would
    be marked done without its last shard) and its attempts were not counted."""
    shards = ShardRunner("proving", lambda i: i, lambda i, s: 10 + i)
    shards.run(0, 3, items_total=33)
    assert shards.items_done == 10 + 11 + 12

    def store(i: int, sampled: int) -> int:
        if i == 2:
            raise RuntimeError("checker died on the last shard")
        return 1

    with pytest.raises(RuntimeError, match="checker died on the last shard"):
        ShardRunner("proving", lambda i: i, store).run(0, 3, items_total=3)


def test_no_attempt_without_a_verdict_is_not_worth_a_warning(caplog) -> None:
    """Kills `unverified == 0` -> `== -1`, `< 0` (a stage where every attempt got a verdict
    warned that 0 of its attempts had none)."""
    with caplog.at_level(logging.WARNING, logger="stp.verify.runner"):
        check_outage("proving", 0, 8, 0.25)
    assert caplog.records == []


@dataclass
class Stored:
    key: int
    status: str
    multiplicity: int = 1


def test_a_verifier_must_answer_every_item_exactly_once() -> None:
    """Kills `len(results) != len(items)` -> `<`, `>` (a verifier that dropped or added a result
    went unnoticed and verdicts were paired with the wrong items) and -> `is not` (equal counts
    above 256 are distinct int objects: a correct answer of 300 results was refused)."""
    items = list(range(300))
    results, unverified = verify_with_retries(
        lambda batch: [Stored(i, "pass") for i in batch], items, retries=1)
    assert [r.key for r in results] == items and unverified == 0
    for wrong in (lambda batch: [Stored(i, "pass") for i in batch[:-1]],
                  lambda batch: [Stored(i, "pass") for i in [*batch, 0]]):
        with pytest.raises(RuntimeError, match="results for"):
            verify_with_retries(wrong, items, retries=1)


def test_reverifying_stored_shards_needs_one_answer_per_record(tmp_path: Path) -> None:
    """The same rule for `reverify_stored_shards`' `verify_again` (`!=` -> `<`, `>`, `is not`)."""
    from stp import storage
    from stp.verify.runner import reverify_stored_shards

    directory = str(tmp_path / "attempts")
    storage.ShardedJsonlWriter(directory).write([Stored(i, "crash") for i in range(300)])
    stored, again = reverify_stored_shards(
        directory, Stored, lambda records: [Stored(r.key, "fail") for r in records])
    assert (stored, again) == (300, 300)
    storage.ShardedJsonlWriter(directory).write([Stored(i, "error") for i in range(3)])
    for wrong in (lambda records: records[:-1], lambda records: [*records, records[0]]):
        with pytest.raises(RuntimeError, match="verified again for"):
            reverify_stored_shards(directory, Stored, wrong)


def test_a_sampling_failure_still_stores_the_shard_in_verification(caplog) -> None:
    """When sampling shard 1 fails, shard 0 (already in verification) is still stored, the
    sampling error is what the caller sees, and a failure of shard 0 as well is logged (kills
    `if pending is not None` -> `is None` / `not` in the failure path, and `except Exception`
    narrowed: the verification error then replaced the sampling error)."""
    stored: list[int] = []

    def sample(i: int) -> int:
        if i == 1:
            raise KeyboardInterrupt
        return i

    def store(i: int, sampled: int) -> int:
        stored.append(i)
        return 1

    with pytest.raises(KeyboardInterrupt):
        ShardRunner("proving", sample, store).run(0, 3, items_total=3)
    assert stored == [0]

    def failing_store(i: int, sampled: int) -> int:
        raise RuntimeError("checker died as well")

    with caplog.at_level(logging.ERROR, logger="stp.verify.runner"), \
            pytest.raises(KeyboardInterrupt):
        ShardRunner("proving", sample, failing_store).run(0, 3, items_total=3)
    assert [r.getMessage() for r in caplog.records] == [
        "verifying the last sampled shard failed as well"]


def test_progress_rates_are_per_second_of_this_run_to_the_millisecond(clock: Clock) -> None:
    """Rates over a long and a sub-second stretch, with more decimals than are kept, and the
    last event's ETA of zero. Kills `monotonic() - start` -> `%` (the clock is past twice the
    start), the rate's `round(rate, 3)` -> 2 or 4 digits, `max(0, total - done)` -> `max(1, …)`
    and the elapsed floor `1e-9` -> `1.000000001` (a stretch under a second)."""
    metrics = Metrics()

    def sample(i: int) -> int:
        clock.now = 100.3 if i == 0 else 250.0
        return i

    clock.now = 100.0
    ShardRunner("eval", sample, lambda i, s: 7 if i == 0 else 3,
                metrics=metrics).run(0, 2, items_total=10)  # type: ignore[arg-type]
    assert metrics.events == [
        ("progress", {"task": "eval", "done": 7, "total": 10, "rate": 0.047, "eta_s": 64.3}),
        ("progress", {"task": "eval", "done": 10, "total": 10, "rate": 0.067, "eta_s": 0.0})]
    metrics.events.clear()
    clock.now = 100.0

    def quick(i: int) -> int:
        clock.now = 100.5
        return i

    ShardRunner("eval", quick, lambda i, s: 2, metrics=metrics).run(  # type: ignore[arg-type]
        0, 1, items_total=4)
    assert metrics.events == [
        ("progress", {"task": "eval", "done": 2, "total": 4, "rate": 4.0, "eta_s": 0.5})]


# ---------------------------------------------------------------------------------------------
# stp.selfplay.rundir


def test_run_level_paths(tmp_path: Path) -> None:
    """Kills the removal of `@property` from each run-level accessor (it became a method, so
    every caller got a bound method instead of a path) and pins where each file lives."""
    from stp.selfplay.rundir import RunDir

    root = str(tmp_path / "run")
    rd = RunDir(root)
    expected = {
        "metrics": "metrics.jsonl",
        "pipeline_manifest_path": "pipeline.json",
        "sft_dir": "sft",
        "sft_train_set_path": "sft/train.jsonl.gz",
        "sft_model_dir": "sft/model",
        "retrain_dir": "retrain",
        "retrain_manifest_path": "retrain/manifest.json",
        "retrain_train_set_path": "retrain/train.jsonl.gz",
        "retrain_model_dir": "retrain/model",
        "report_dir": "report",
        "dataset_statements": "dataset_statements.jsonl.gz",
        "config_path": "config.toml",
        "settings_changes_path": "settings-changes.json",
    }
    assert {name: getattr(rd, name) for name in expected} == {
        name: f"{root}/{rel}" for name, rel in expected.items()}
    assert rd.eval_dir("eval") == f"{root}/eval"


def test_block_zero_is_the_run_itself_and_later_blocks_are_subdirectories(tmp_path: Path
                                                                          ) -> None:
    """Kills `block == 0` -> `block != 0`, `block == 1` and `not block == 0` in `block_dir`."""
    from stp.selfplay.rundir import RunDir

    root = str(tmp_path / "run")
    rd = RunDir(root)
    assert [rd.block_dir(b) for b in (0, 1, 2)] == [root, f"{root}/block-1", f"{root}/block-2"]


def test_a_config_toml_not_utf8_or_not_toml_is_one_line_naming_it(tmp_path: Path) -> None:
    """A config.toml with a non-UTF-8 byte is one line naming it (storage.read_text's
    InputFormatError), and a TOML syntax error is a damaged record naming it."""
    from stp import storage
    from stp.config import STPConfig
    from stp.errors import InputFormatError
    from stp.selfplay.rundir import RunDir

    rd = RunDir(str(tmp_path / "run"))
    rd.record_config(STPConfig())
    Path(rd.config_path).write_bytes(b"[run]\nseed = 1\nname = \"\xff\"\n")
    with pytest.raises(InputFormatError, match=r"config\.toml: not UTF-8 text"):
        rd.check_settings(STPConfig(), allow_changed=False)
    Path(rd.config_path).write_text("[run\n")
    with pytest.raises(storage.CorruptRecordError, match=r"config\.toml"):
        rd.check_settings(STPConfig(), allow_changed=False)


def test_stray_round_names_are_not_rounds(tmp_path: Path) -> None:
    """Kills `name[6:].isdigit()` -> `name[7:]` (a directory `round-x1` was taken for a round
    and `int("x1")` ended the listing in a traceback)."""
    from stp.selfplay.rundir import RunDir

    rd = RunDir(str(tmp_path / "run"))
    rd.mark_done(3, "pairs", 0.0, {})
    for stray in ("round-x1", "round-", "rounds"):
        (tmp_path / "run" / stray).mkdir()
    assert rd.rounds() == [3]


def test_the_statement_table_must_be_in_sid_order(tmp_path: Path) -> None:
    """Kills `row.sid != i` -> `>` (a repeated sid went unnoticed) and -> `is not` (sids above
    256 are distinct int objects: a correct table of 300 rows was refused)."""
    from stp import storage
    from stp.selfplay.records import StatementRow
    from stp.selfplay.rundir import RunDir

    rd = RunDir(str(tmp_path / "run"))
    rows = [StatementRow(sid=i, statement=f"theorem t{i} : True", header="") for i in range(300)]
    storage.write_jsonl(rd.dataset_statements, rows)
    assert [r.sid for r in rd.statement_rows(0)] == list(range(300))
    storage.write_jsonl(rd.dataset_statements, [rows[0], rows[0]])
    with pytest.raises(storage.CorruptRecordError, match="row 1 has sid 0"):
        rd.statement_rows(0)


def test_record_config_without_replace_keeps_the_recorded_one_and_writes_a_missing_one(
        tmp_path: Path) -> None:
    """Kills `replace or not exists(...)` -> `replace or exists(...)`: with `replace=False` (the
    pipeline's start) an existing config.toml is the reference and must not be overwritten by
    the new settings, and a missing one is written."""
    import tomllib

    from stp.config import STPConfig
    from stp.selfplay.rundir import RunDir

    rd = RunDir(str(tmp_path / "run"))
    first = STPConfig()
    first = msgspec.structs.replace(first, run=msgspec.structs.replace(first.run, seed=1))
    second = msgspec.structs.replace(first, run=msgspec.structs.replace(first.run, seed=2))

    def recorded_seed() -> int:
        return int(tomllib.loads(Path(rd.config_path).read_text())["run"]["seed"])

    rd.record_config(first, replace=False)
    assert recorded_seed() == 1
    rd.record_config(second, replace=False)
    assert recorded_seed() == 1
    rd.record_config(second)
    assert recorded_seed() == 2


def _saved_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, attempts=np.arange(100), successes=np.arange(100))
    return buffer.getvalue()


def _flag_bit_flipped(data: bytes) -> bytes:
    central = data.find(b"PK\x01\x02")
    return data[:central + 8] + bytes([data[central + 8] | 1]) + data[central + 9:]


def _version_needed_raised(data: bytes) -> bytes:
    central = data.find(b"PK\x01\x02")
    return data[:central + 6] + b"\xff\x00" + data[central + 8:]


# name -> (damaged bytes, the error numpy/zipfile raise for it, which load_arrays must name)
DAMAGE = {
    "empty file": (b"", EOFError),
    "one byte": (_saved_npz()[:1], ValueError),
    "half the file": (_saved_npz()[: len(_saved_npz()) // 2], zipfile.BadZipFile),
    "flag bit flipped (reads as encrypted)": (_flag_bit_flipped(_saved_npz()), RuntimeError),
    "version needed": (_version_needed_raised(_saved_npz()), NotImplementedError),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_each_kind_of_damaged_array_file_is_one_error_naming_it(damage: str, tmp_path: Path
                                                                 ) -> None:
    """One case per exception type `load_arrays` turns into a CorruptRecordError (kills the
    replacement of each one in its except tuple, and `isinstance(err, OSError) and ...` ->
    `or`, which read `.filename` of errors that have none)."""
    from stp.selfplay.rundir import RunDir
    from stp.storage import CorruptRecordError

    data, raised = DAMAGE[damage]
    # The damage really raises that type (so each entry of the except tuple is exercised).
    with pytest.raises(raised), np.load(io.BytesIO(data)) as archive:
        {k: archive[k] for k in archive.files}
    rd = RunDir(str(tmp_path))
    path = rd.counts_path(0)
    Path(path).parent.mkdir(parents=True)
    Path(path).write_bytes(data)
    with pytest.raises(CorruptRecordError, match=r"counts\.npz: truncated or damaged") as err:
        rd.load_arrays(path)
    assert err.value.path == path


def test_a_missing_local_array_file_is_file_not_found_and_a_saved_one_loads(tmp_path: Path
                                                                           ) -> None:
    """An error of the file system naming the file (missing, unreadable) is not damage: it is
    raised as it is (kills dropping the `raise` of errors with a filename)."""
    from stp.selfplay.rundir import RunDir

    rd = RunDir(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        rd.load_arrays(rd.counts_path(0))
    rd.save_arrays(rd.counts_path(0), attempts=np.arange(3))
    assert rd.load_arrays(rd.counts_path(0))["attempts"].tolist() == [0, 1, 2]


def test_a_missing_gcs_array_file_is_file_not_found_as_a_local_one(gcs_root: str) -> None:
    from stp.selfplay.rundir import RunDir

    rd = RunDir(gcs_root)
    # A missing gs:// object was a FileNotFoundError without a filename, which load_arrays
    # reported as a "truncated or damaged" file; now it is what a missing local file is.
    with pytest.raises(FileNotFoundError) as missing:
        rd.load_arrays(rd.counts_path(0))
    assert missing.value.filename == rd.counts_path(0)


# ---------------------------------------------------------------------------------------------
# stp.settings_guard


def test_nested_settings_compare_keys_values_and_numbers_exactly() -> None:
    """Kills in `_same`: `a.keys() == b.keys()` -> `>=` (a recorded table with an extra key was
    the same), `... and all(...)` -> `or` (a table with the same keys and another value was the
    same), and the int/float test's first `and` -> `or` (the number 1 and the text "1" were the
    same setting)."""
    from stp.settings_guard import changed

    recorded = {"a": {"x": 1, "y": 2}, "b": {"x": 1}, "c": 1, "d": [1, {"x": 1}], "e": 1}
    current = {"a": {"x": 1}, "b": {"x": 2}, "c": "1", "d": (1.0, {"x": 1.0}), "e": 1.0}
    assert changed(recorded, current) == {"a": ({"x": 1, "y": 2}, {"x": 1}),
                                          "b": ({"x": 1}, {"x": 2}), "c": (1, "1")}
    assert changed({"a": {"x": 1}}, {"a": {"x": 1, "y": 2}}) == {"a": ({"x": 1},
                                                                       {"x": 1, "y": 2})}


def test_describe_counts_the_changes_it_leaves_out() -> None:
    """Kills `len(changes) - limit` -> `^` (5 - 3 = 2, 5 ^ 3 = 6)."""
    from stp.settings_guard import describe

    changes = {f"k{i}": (i, i + 1) for i in range(5)}
    assert describe(changes, limit=3) == "k0 0 -> 1, k1 1 -> 2, k2 2 -> 3, and 2 more"
    assert describe(changes) == ", ".join(f"k{i} {i} -> {i + 1}" for i in range(5))


def test_describe_says_more_only_when_it_left_some_out() -> None:
    """Kills `len(changes) > limit` -> `>=` ("and 0 more") and `- limit` -> `% limit`
    (7 - 3 = 4, 7 % 3 = 1)."""
    from stp.settings_guard import describe

    exactly = {f"k{i}": (i, i + 1) for i in range(3)}
    assert describe(exactly, limit=3) == "k0 0 -> 1, k1 1 -> 2, k2 2 -> 3"
    seven = {f"k{i}": (i, i + 1) for i in range(7)}
    assert describe(seven, limit=3).endswith(", and 4 more")


def test_values_of_another_shape_are_changes_and_lists_equal_tuples() -> None:
    """Kills `_same`'s list and table tests weakened to `or` (a one-element list and its
    element, or a table and a scalar, were the same setting or a traceback), `len(a) == len(b)`
    -> `>=` (a recorded list longer than the current one ended in zip's ValueError) and the
    table test's `not` (a list inside a table no longer compared as a value with a tuple)."""
    from stp.settings_guard import changed

    recorded = {"a": ["x"], "b": {"x": 1}, "c": [1, 2], "d": {"x": [1, 2]}}
    current = {"a": "x", "b": 1, "c": [1], "d": {"x": (1, 2)}}
    assert changed(recorded, current) == {"a": (["x"], "x"), "b": ({"x": 1}, 1),
                                          "c": ([1, 2], [1])}


# ---------------------------------------------------------------------------------------------
# stp.selfplay.rules


def test_grow_extends_a_short_array_with_the_fill_and_keeps_a_long_one() -> None:
    """Kills `len(array) >= size` -> `<` in `grow`."""
    from stp.selfplay.rules import grow

    short = np.array([0.5, 0.25])
    assert grow(short, 4, np.nan).tolist()[:2] == [0.5, 0.25]
    assert np.isnan(grow(short, 4, np.nan)[2:]).all() and len(grow(short, 4, np.nan)) == 4
    assert grow(np.array([True]), 3, False).tolist() == [True, False, False]
    long = np.array([1.0, 2.0, 3.0])
    assert grow(long, 2, 0.0) is long and grow(long, 3, 0.0) is long


def test_saturated_statements_pass_their_votes_to_the_next_nearest() -> None:
    """Two queries that both prefer statements 0 and 1, weight 2 each, cap 1: the first
    saturates 0 and 1, so the second votes for 2 and 3 and every statement ends at weight 1.
    Kills `free = int(n - saturated.sum())` -> `n >> saturated.sum()` (4 >> 2 = 1 free
    statement: the second query voted once)."""
    from stp.selfplay import rules

    q = np.array([[1.0, 0.9, 0.1, 0.0], [1.0, 0.9, 0.1, 0.0]])
    for seed in range(3):
        weights = rules.match_weights(np.eye(4), q, np.array([2, 2]), 1.0,
                                      np.random.default_rng(seed))
        assert weights.tolist() == [1.0, 1.0, 1.0, 1.0]


# ---------------------------------------------------------------------------------------------
# stp.eval.estimators


def test_chunk_pass_at_k_counts_each_statement_and_chunk_once() -> None:
    """pass@1 over 2 chunks of one sample: statements 0 and 1 pass in chunk 0, statement 1 in
    chunk 1 as well, so the chunks solve 2/3 and 1/3. Kills `s * n_chunks + chunk` ->
    `s // n_chunks + chunk` (statements 0 and 1 of chunk 0 became one pair)."""
    from stp.eval.estimators import chunk_pass_at_k

    stmt = np.array([0, 1, 1, 2, 2])
    sample = np.array([0, 0, 1, 0, 1])
    passed = np.array([True, True, True, False, False])
    got = chunk_pass_at_k(stmt, sample, passed, num_statements=3, k=1, max_iter=2)
    assert got is not None
    assert got.mean == pytest.approx(0.5) and got.chunks == 2
    # Two chunks: no std (it needs MIN_CHUNKS_FOR_STD); with four, the per-chunk fractions.
    stmt4 = np.repeat(np.arange(3), 4)
    sample4 = np.tile(np.arange(4), 3)
    passed4 = np.array([1, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0], dtype=bool)
    got4 = chunk_pass_at_k(stmt4, sample4, passed4, num_statements=3, k=1, max_iter=4)
    assert got4 is not None
    assert got4.mean == pytest.approx((2 / 3 + 1 / 3) / 4)
    assert got4.std == pytest.approx(float(np.std([2 / 3, 1 / 3, 0, 0])))
