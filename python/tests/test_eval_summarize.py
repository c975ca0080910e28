"""Our log format, split summaries, and the summarize CLI (exit codes, --json shape)."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from stp.errors import UsageError
from stp.eval import log as evlog
from stp.eval.__main__ import main
from stp.eval.loading import load_log
from stp.eval.summarize import summarize_log

# Statement A passes at samples 1 and 4, B at sample 3, C is in the manifest but never attempted.
PASSES = {"t/A": {1, 4}, "t/B": {3}}


def write_log(path: Path, *, infra: int = 0, split: str = "toy:test",
              manifest: bool = True) -> Path:
    log = evlog.AttemptLog(str(path))
    attempts = [evlog.Attempt(statement_id=sid, split=split, sample=i,
                              status="pass" if i in passes else "fail", proof=f"p{i}")
                for sid, passes in PASSES.items() for i in range(5)]
    # Two shards, as `run` would write them.
    log.append(attempts[:4])
    log.append(attempts[4:])
    if infra:
        log.append([evlog.Attempt(statement_id="t/B", split=split, sample=5 + i,
                                  status="timeout") for i in range(infra)])
    if manifest:
        evlog.write_manifest(str(path), evlog.Manifest(
            model="m", samples=5, splits={split: ["t/A", "t/B", "t/C"]}))
    return path


def test_summary_counts_zero_attempt_statements_from_the_manifest(tmp_path: Path) -> None:
    loaded = load_log(write_log(tmp_path / "log"))
    assert loaded.format == "stp-eval"
    [s] = summarize_log(loaded, budgets=(1, 2, 4, 8), resamples=50)
    assert (s.statements, s.attempts, s.solved, s.max_iter) == (3, 10, 2, 5)
    assert s.zero_attempt_statements == ["t/C"] and s.statements_source == "manifest"
    assert s.ks == [1, 2, 4]  # 8 exceeds both max_iter and every n
    assert [e.mean for e in s.chunk] == pytest.approx([0.2, 1 / 3, 2 / 3])
    assert [e.mean for e in s.unbiased] == pytest.approx([0.2, 1.1 / 3, 0.6])
    # --max-iter 3 keeps samples 0..2: only A's pass at 1 remains.
    [short] = summarize_log(loaded, budgets=(1,), max_iter=3, resamples=0)
    assert short.chunk[0].mean == pytest.approx(1 / 9)
    assert short.n_max == 3


def test_single_file_log_without_manifest_lists_statements_from_the_log(tmp_path: Path) -> None:
    directory = write_log(tmp_path / "log", manifest=False)
    single = tmp_path / "all.jsonl.gz"
    with gzip.open(single, "wb") as fh:
        for rec in evlog.iter_attempts(str(directory)):
            fh.write(json.dumps({"statement_id": rec.statement_id, "split": rec.split,
                                 "sample": rec.sample, "status": rec.status}).encode() + b"\n")
    [s] = summarize_log(load_log(single), budgets=(1,), resamples=0)
    assert s.statements == 2 and s.statements_source == "log"
    assert s.chunk[0].mean == pytest.approx(0.3)  # 3 passes / (5 chunks x 2 statements)


def test_corrupt_record_names_file_and_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    good = json.dumps({"statement_id": "a", "split": "s", "sample": 0, "status": "pass"})
    bad.write_text(good + "\n\n" + json.dumps({"statement_id": "a", "split": "s",
                                               "sample": 1, "status": "maybe"}) + "\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:3: Invalid enum value 'maybe' - at .\$.status"):
        load_log(bad)
    bad.write_text(good + "\n{not json\n")
    with pytest.raises(ValueError, match=r"bad.jsonl:2"):
        load_log(bad)
    # The CLI turns it into a usage error (exit 2 through run_main) naming file and line.
    with pytest.raises(UsageError, match=r"bad.jsonl:2"):
        main(["summarize", "--log", str(bad)])


def test_cli_json_shape(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_log(tmp_path / "log")
    assert main(["summarize", "--log", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["toy:test"]
    s = out["toy:test"]
    assert s["statements"] == 3 and s["attempts"] == 10
    assert s["n"] == {"min": 0, "max": 5, "mean": pytest.approx(10 / 3)}
    assert s["zero_attempt_statements"] == ["t/C"]
    ks = [row["k"] for row in s["pass_at_k"]]
    assert ks == [1]  # default budgets: 32 > 5 samples
    row = s["pass_at_k"][0]
    assert row["chunk"]["mean"] == pytest.approx(0.2) and row["chunk"]["chunks"] == 5
    assert row["chunk"]["std"] == pytest.approx(0.163299316)
    assert row["unbiased"]["mean"] == pytest.approx(0.2)
    assert row["unbiased"]["ci_low"] <= 0.2 <= row["unbiased"]["ci_high"]


def test_cli_table_and_split_filter(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_log(tmp_path / "log")
    assert main(["summarize", "--log", str(path), "--split", "TOY"]) == 0
    out = capsys.readouterr().out
    assert "toy:test" in out and "t/C" in out and "20.0" in out
    with pytest.raises(UsageError, match="no split matches"):
        main(["summarize", "--log", str(path), "--split", "proofnet"])


def test_system_errors_above_threshold_exit_1_unless_allowed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_log(tmp_path / "log", infra=1)  # 1 timeout of 11 attempts: 9 %
    assert main(["summarize", "--log", str(path), "--json"]) == 1
    err = capsys.readouterr().err
    assert "infrastructure failures" in err and "--allow-system-errors" in err
    assert main(["summarize", "--log", str(path), "--json", "--allow-system-errors"]) == 0
    # Raising the limit in the config accepts them too.
    assert main(["summarize", "--log", str(path), "--json",
                 "--set", "eval.max_system_error_fraction=0.1"]) == 0


def test_cli_usage_errors_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "stp.eval", "summarize", "--log",
                           str(tmp_path / "missing")], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert "no such log" in proc.stderr


def test_an_empty_shard_is_an_error_not_dropped_attempts(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log")
    # A 0-byte shard (a failed copy or sync): before, its attempts silently vanished.
    (path / "part-00002.jsonl.gz").write_bytes(b"")
    with pytest.raises(UsageError, match=r"part-00002.jsonl.gz: empty log shard"):
        main(["summarize", "--log", str(path)])
    # A whole gzip stream holding no record is the same damage.
    (path / "part-00002.jsonl.gz").write_bytes(gzip.compress(b""))
    with pytest.raises(UsageError, match=r"part-00002.jsonl.gz: empty log shard"):
        main(["summarize", "--log", str(path)])


def test_a_directory_that_is_not_a_log_is_an_error(tmp_path: Path) -> None:
    other = tmp_path / "runs"
    other.mkdir()
    (other / "notes.txt").write_text("not a log\n")
    with pytest.raises(UsageError, match=r"runs: not an evaluation log"):
        main(["summarize", "--log", str(other)])
    # A log whose manifest was written but no shard yet is a log with zero attempts.
    evlog.write_manifest(str(other), evlog.Manifest(model="m", splits={"toy:test": ["t/A"]}))
    [s] = summarize_log(load_log(other), budgets=(1,), resamples=0)
    assert (s.statements, s.attempts) == (1, 0)


def test_duplicated_attempts_are_an_error_not_counted_twice(tmp_path: Path) -> None:
    path = write_log(tmp_path / "log")
    # A second writer appending the same attempts again (two runs on one directory).
    evlog.AttemptLog(str(path)).append(
        [evlog.Attempt(statement_id="t/B", split="toy:test", sample=3, status="pass")])
    with pytest.raises(UsageError, match=r"1 duplicated attempt record.*'t/B' sample 3"):
        main(["summarize", "--log", str(path)])


def _raw_shard(path: Path, lines: list[str]) -> Path:
    shard = path / "part-00002.jsonl.gz"
    shard.write_bytes(gzip.compress("".join(line + "\n" for line in lines).encode()))
    return shard


def _record(**fields: object) -> str:
    return json.dumps({"statement_id": "t/B", "split": "toy:test", "sample": 7,
                       "status": "fail", **fields})


def _bad_manifest(path: Path, splits: dict[str, list[str]]) -> None:
    evlog.write_manifest(str(path), evlog.Manifest(model="m", samples=5, splits=splits))


# (damage to a valid log, extra CLI arguments, what the one error line must say)
BAD_LOGS = {
    "sample near 2**63": (lambda p: _raw_shard(p, [_record(sample=2**63 - 1)]), [],
                          r"part-00002.jsonl.gz:1: .*sample"),
    "sample just above the bound": (lambda p: _raw_shard(p, [_record(sample=1_000_000)]), [],
                                    r"part-00002.jsonl.gz:1: .*sample"),
    "multiplicity near 2**62": (
        lambda p: _raw_shard(p, ["", _record(multiplicity=2**62)]), [],
        r"part-00002.jsonl.gz:2: .*multiplicity"),
    "multiplicity 0": (lambda p: _raw_shard(p, [_record(multiplicity=0)]), [],
                       r"part-00002.jsonl.gz:1: .*multiplicity"),
    "unknown verdict": (
        lambda p: _raw_shard(p, [_record(verdicts={"strict": "maybe"})]), [],
        r"part-00002.jsonl.gz:1: .*verdicts"),
    "unknown status": (lambda p: _raw_shard(p, [_record(status="passed")]), [],
                       r"part-00002.jsonl.gz:1: .*status"),
    "id in two splits (records)": (
        lambda p: _raw_shard(p, [_record(split="toy:valid")]), [],
        r"part-00002.jsonl.gz:1: statement 't/B' appears in split 'toy:test' and in split 'toy:valid'"),
    "id in two splits (manifest)": (
        lambda p: _bad_manifest(p, {"toy:test": ["t/A", "t/B"], "toy:valid": ["t/B"]}), [],
        r"manifest.json: statement 't/B' is listed in splits 'toy:test' and 'toy:valid'"),
    "id twice in a split": (
        lambda p: _bad_manifest(p, {"toy:test": ["t/A", "t/B", "t/C", "t/A"]}), [],
        r"manifest.json: split 'toy:test' lists statement 't/A' 2 times"),
    "manifest split against the records": (
        lambda p: _bad_manifest(p, {"toy:valid": ["t/A", "t/B"]}), [],
        r"statement 't/A' belongs to split 'toy:valid' \(manifest\) but its attempt records "
        r"say 'toy:test'"),
    "shard of blank lines": (lambda p: _raw_shard(p, ["", "  ", ""]), [],
                             r"part-00002.jsonl.gz: log shard of 3 blank line"),
    "huge --max-iter": (lambda p: None, ["--max-iter", str(10**12)], r"--max-iter.*<= 1000000"),
    "huge bootstrap": (lambda p: None, ["--set", "eval.bootstrap_samples=1000000000"],
                       r"eval.bootstrap_samples"),
}


@pytest.mark.parametrize("case", sorted(BAD_LOGS))
def test_bad_records_fail_naming_the_shard_and_line(case: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from stp.cli import run_main

    damage, extra, expected = BAD_LOGS[case]
    path = write_log(tmp_path / "log")
    damage(path)
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_:
        run_main(main, ["summarize", "--log", str(path), "--json", *extra])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert re.search(expected, lines[0]), lines[0]


def test_one_read_of_a_two_profile_log_equals_one_read_per_profile(tmp_path) -> None:
    """`load_log_profiles` (one pass, with the rejection tally fed by it) gives the same columns,
    universe and rejections as one `load_log` per profile plus `profile_rejections`."""
    import numpy as np

    from stp.eval.loading import load_log_profiles
    from stp.eval.summarize import RejectionTally, profile_rejections

    ids = {"a:test": [f"a{i}" for i in range(4)], "b:test": ["b0", "b1"]}
    rng = np.random.default_rng(3)
    log = evlog.AttemptLog(str(tmp_path))
    for lo in (0, 3):
        block = []
        for split, members in ids.items():
            for sid in members:
                for j in range(lo, lo + 3):
                    paper = "pass" if rng.random() < 0.6 else "fail"
                    strict = paper if rng.random() < 0.5 else "error"
                    block.append(evlog.Attempt(
                        statement_id=sid, split=split, sample=j, status=strict,
                        multiplicity=int(rng.integers(1, 3)),
                        verdicts={"strict": strict, "paper": paper},
                        reasons={"strict": ["axiom"]} if strict == "error" and j % 2 else {}))
        log.append(block)
    evlog.write_manifest(str(tmp_path), evlog.Manifest(samples=6, splits=ids,
                                                       profiles=["strict", "paper"]))
    tally = RejectionTally("strict", "paper")
    together = load_log_profiles(tmp_path, ["strict", "paper"], observe=tally.add)
    assert not np.array_equal(together["strict"].columns.status,
                              together["paper"].columns.status)
    for p in ("strict", "paper"):
        alone = load_log(tmp_path, profile=p)
        assert together[p].label == alone.label
        for name in ("stmt", "split", "sample", "status", "multiplicity", "statement_split"):
            assert np.array_equal(getattr(together[p].columns, name),
                                  getattr(alone.columns, name)), (p, name)
        assert {k: v.tolist() for k, v in together[p].universe.items()} == {
            k: v.tolist() for k, v in alone.universe.items()}
    expected = profile_rejections(str(tmp_path), "strict", "paper")
    assert expected and {k: v.to_json() for k, v in tally.result().items()} == {
        k: v.to_json() for k, v in expected.items()}
    only_b = profile_rejections(str(tmp_path), "strict", "paper", ["b:test"])
    assert tally.result(["b:test"]).keys() == only_b.keys() == {"b:test"}
