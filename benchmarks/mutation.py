"""Mutation score of the rules, estimators, verdict and resume modules (cosmic-ray).

    python benchmarks/mutation.py [--per-module 25] [--seed 0] [--timeout 120]

A mutant is a small change to one line (an operator flipped, a constant moved, a comparison
weakened). The module's tests kill it when they fail with it; a mutant that survives is a defect
the tests would let through. cosmic-ray (a maintained mutation tool, `pip install cosmic-ray`)
lists every mutant of each module; to bound the runtime on a shared machine this script runs a
seeded random sample of `--per-module` of them per module, each against that module's test
subset only (listed below), in a copy of the repository (the working tree is never mutated).
It prints the machine and its load before and after, the score per module and overall, and the
diff of every surviving mutant.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "python"))

from stp.metrics import describe_machine  # noqa: E402

GAPS_2 = "python/tests/test_mutant_gaps_2.py"


def _tests(path: str, *names: str) -> list[str]:
    return [f"{path}::{name}" for name in names]


# module -> the tests that cover it (run with -x: the first failure kills the mutant)
MODULES: dict[str, list[str]] = {
    "python/stp/selfplay/rules.py": ["python/tests/test_selfplay_rules.py",
                                     "python/tests/test_mutant_boundaries.py::"
                                     "test_seed_threshold_is_strict_at_its_value",
                                     "python/tests/test_mutant_boundaries.py::"
                                     "test_recheck_threshold_is_strict_at_its_value",
                                     "python/tests/test_mutant_gaps.py::"
                                     "test_a_no_lemma_conjecture_is_never_counted_as_invoking_"
                                     "its_lemma",
                                     "python/tests/test_mutant_gaps.py::"
                                     "test_matching_votes_for_exactly_the_k_nearest",
                                     "python/tests/test_mutant_gaps.py::"
                                     "test_empty_query_or_statement_sets_give_zero_weights",
                                     "python/tests/test_mutant_gaps.py::"
                                     "test_proof_ratio_of_an_empty_statement_is_the_proof_length",
                                     *_tests(GAPS_2, "test_grow_extends_a_short_array_with_the_"
                                             "fill_and_keeps_a_long_one",
                                             "test_saturated_statements_pass_their_votes_to_the_"
                                             "next_nearest")],
    "python/stp/eval/estimators.py": ["python/tests/test_eval_estimators.py",
                                      "python/tests/test_mutant_boundaries.py::"
                                      "test_chunk_std_needs_exactly_four_chunks",
                                      "python/tests/test_mutant_boundaries.py::"
                                      "test_bootstrap_interval_is_the_central_95_percent_quantiles",
                                      "python/tests/test_mutant_boundaries.py::"
                                      "test_estimators_and_outage_on_the_smallest_inputs",
                                      "python/tests/test_mutant_gaps.py::"
                                      "test_unsolved_and_always_solved_statements_are_exact",
                                      "python/tests/test_mutant_gaps.py::"
                                      "test_unbiased_estimate_is_the_same_in_small_blocks_and_a_first_"
                                      "statement_over_a_block",
                                      *_tests(GAPS_2, "test_chunk_pass_at_k_counts_each_statement_"
                                              "and_chunk_once")],
    # The verdict bookkeeping of every sampling stage: attempts without a verdict, retries and
    # the outage limit.
    "python/stp/verify/runner.py": ["python/tests/test_runner_resume.py",
                                    "python/tests/test_mutant_boundaries.py::"
                                      "test_outage_limit_at_exactly_its_threshold",
                                      "python/tests/test_mutant_boundaries.py::"
                                      "test_estimators_and_outage_on_the_smallest_inputs",
                                      "python/tests/test_eval_run.py::"
                                      "test_interrupted_run_resumes_without_redoing_work",
                                      "python/tests/test_eval_run.py::"
                                      "test_attempts_without_a_verdict_are_not_logged_and_a_rerun_"
                                      "redoes_them",
                                      "python/tests/test_mutant_gaps.py::"
                                      "test_retries_resend_only_attempts_without_a_verdict_and_stop_"
                                      "when_all_have_one",
                                      "python/tests/test_mutant_gaps.py::"
                                      "test_retries_are_bounded_and_the_remaining_unverified_are_"
                                      "counted",
                                      *_tests(GAPS_2, "test_an_unverified_fraction_under_the_limit_"
                                              "warns_with_its_percentages",
                                              "test_each_retry_is_logged_with_its_number",
                                              "test_progress_events_carry_done_total_rate_eta_"
                                              "and_the_callers_fields",
                                              "test_no_eta_while_nothing_was_stored",
                                              "test_the_last_shards_verification_error_"
                                              "propagates_and_every_shard_is_counted",
                                              "test_no_attempt_without_a_verdict_is_not_worth_"
                                              "a_warning",
                                              "test_a_verifier_must_answer_every_item_exactly_"
                                              "once",
                                              "test_reverifying_stored_shards_needs_one_answer_"
                                              "per_record",
                                              "test_a_sampling_failure_still_stores_the_shard_"
                                              "in_verification",
                                              "test_progress_rates_are_per_second_of_this_run_"
                                              "to_the_millisecond")],
    # Resume: the run directory's manifests and the changed-settings guard.
    "python/stp/selfplay/rundir.py": ["python/tests/test_resume_settings.py",
                                      "python/tests/test_mutant_boundaries.py::"
                                      "test_rundir_lists_rounds_and_checks_the_statement_table",
                                      "python/tests/test_mutant_boundaries.py::"
                                      "test_rundir_reads_four_digit_rounds_and_earlier_rounds_"
                                      "conjectures",
                                      "python/tests/test_mutant_boundaries.py::"
                                      "test_selfplay_resume_does_not_redo_finished_stages",
                                      "python/tests/test_mutant_gaps.py::"
                                      "test_first_unfinished_round_starts_at_round_zero",
                                      *_tests(GAPS_2, "test_run_level_paths",
                                              "test_block_zero_is_the_run_itself_and_later_"
                                              "blocks_are_subdirectories",
                                              "test_record_config_without_replace_keeps_the_"
                                              "recorded_one_and_writes_a_missing_one",
                                              "test_each_kind_of_damaged_array_file_is_one_"
                                              "error_naming_it",
                                              "test_a_missing_local_array_file_is_file_not_"
                                              "found_and_a_saved_one_loads",
                                              "test_a_missing_gcs_array_file_is_file_not_"
                                              "found_as_a_local_one",
                                              "test_a_config_toml_not_utf8_or_not_toml_is_one_"
                                              "line_naming_it",
                                              "test_stray_round_names_are_not_rounds",
                                              "test_the_statement_table_must_be_in_sid_order")],
    # The one stage driver every level resumes through (skip what is recorded, event before
    # record, hook after).
    "python/stp/stages.py": ["python/tests/test_stages.py"],
    "python/stp/settings_guard.py": ["python/tests/test_resume_settings.py",
                                     "python/tests/test_mutant_boundaries.py::"
                                     "test_settings_guard_compares_and_describes_exactly",
                                     "python/tests/test_eval_run.py::"
                                     "test_resume_with_another_top_p_is_refused_naming_every_key_"
                                     "unless_allowed",
                                     *_tests(GAPS_2, "test_nested_settings_compare_keys_values_"
                                             "and_numbers_exactly",
                                             "test_describe_counts_the_changes_it_leaves_out",
                                             "test_describe_says_more_only_when_it_left_some_out",
                                             "test_values_of_another_shape_are_changes_and_lists_"
                                             "equal_tuples")],
}


def sample_session(session: Path, keep: int, seed: int) -> int:
    """Drop all but a seeded sample of `keep` mutants from a cosmic-ray session."""
    db = sqlite3.connect(session)
    # Job ids are random; order the mutants by where and what they change, so one seed draws
    # the same mutants in every run (scores of two runs compare the same mutants).
    jobs = [row[0] for row in db.execute(
        "SELECT job_id FROM mutation_specs ORDER BY start_pos_row, start_pos_col, end_pos_row, "
        "end_pos_col, operator_name, operator_args, occurrence")]
    total = len(jobs)
    chosen = set(random.Random(seed).sample(jobs, min(keep, total)))
    drop = [(j,) for j in jobs if j not in chosen]
    db.executemany("DELETE FROM mutation_specs WHERE job_id = ?", drop)
    db.executemany("DELETE FROM work_items WHERE job_id = ?", drop)
    db.commit()
    db.close()
    return total


def run_module(work: Path, module: str, tests: list[str], args: argparse.Namespace
               ) -> dict[str, object]:
    name = Path(module).stem
    config = work / f"{name}.toml"
    session = work / f"{name}.sqlite"
    pytest = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    env = {**os.environ, "PYTHONPATH": "python:python/tests", "STP_PROGRESS": "0"}
    # The unmutated module must pass its tests, or every mutant would count as killed.
    baseline = subprocess.run(pytest, cwd=work / "repo", env=env, capture_output=True,
                              text=True)
    if baseline.returncode != 0:
        raise SystemExit(f"{module}: its tests fail without any mutant:\n"
                         f"{baseline.stdout[-3000:]}")
    command = " ".join(["env", "PYTHONPATH=python:python/tests", "STP_PROGRESS=0", *pytest])
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        f"timeout = {args.timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n\n"
        "[cosmic-ray.distributor]\nname = \"local\"\n")
    cosmic = [sys.executable, "-m", "cosmic_ray.cli"]
    repo = work / "repo"
    subprocess.run([*cosmic, "init", str(config), str(session)], cwd=repo, check=True,
                   capture_output=True)
    total = sample_session(session, args.per_module, args.seed)
    subprocess.run([*cosmic, "exec", str(config), str(session)], cwd=repo, check=True,
                   capture_output=True)
    db = sqlite3.connect(session)
    rows = db.execute("SELECT r.test_outcome, r.diff, s.definition_name, s.start_pos_row, "
                      "s.operator_name FROM work_results r JOIN mutation_specs s "
                      "ON r.job_id = s.job_id").fetchall()
    db.close()
    outcomes = [str(r[0]).lower() for r in rows]
    killed = outcomes.count("killed")
    survived = [r for r in rows if str(r[0]).lower() == "survived"]
    incompetent = outcomes.count("incompetent")  # the mutant does not even import
    return {"module": module, "mutants": total, "run": len(rows), "killed": killed,
            "survived": survived, "incompetent": incompetent}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-module", type=int, default=25,
                        help="mutants sampled per module (runtime bound)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=120.0,
                        help="seconds per mutant's test run (a hang counts as killed)")
    parser.add_argument("--module", action="append", default=None,
                        help="only these modules (paths as in MODULES)")
    args = parser.parse_args()
    print(f"machine: {describe_machine()}", flush=True)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="stp-mutation-") as tmp:
        work = Path(tmp)
        repo = work / "repo"
        repo.mkdir()
        shutil.copytree(REPO / "python", repo / "python",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")
        shutil.copytree(REPO / "data" / "benchmarks", repo / "data" / "benchmarks")
        results = []
        for module, tests in MODULES.items():
            if args.module and module not in args.module:
                continue
            t0 = time.perf_counter()
            res = run_module(work, module, tests, args)
            results.append(res)
            judged = int(res["killed"]) + len(res["survived"])  # type: ignore[arg-type]
            score = 100 * int(res["killed"]) / judged if judged else float("nan")  # type: ignore[call-overload]
            print(f"{module}: {res['killed']}/{judged} killed ({score:.0f} %), "
                  f"{res['incompetent']} incompetent; sampled {res['run']} of "
                  f"{res['mutants']} mutants in {time.perf_counter() - t0:.0f} s", flush=True)
            for _outcome, diff, where, row, operator in res["survived"]:  # type: ignore[attr-defined]
                changed = [line for line in (diff or "").splitlines()
                           if line.startswith(("+", "-")) and not line.startswith(("+++", "---"))]
                print(f"  survived: {where} line {row + 1} ({operator}): {' | '.join(changed)}")
    killed = sum(int(r["killed"]) for r in results)  # type: ignore[call-overload]
    judged = killed + sum(len(r["survived"]) for r in results)  # type: ignore[arg-type]
    print(f"overall: {killed}/{judged} mutants killed "
          f"({100 * killed / judged if judged else float('nan'):.1f} %) in "
          f"{time.perf_counter() - start:.0f} s")
    print(f"machine after: {describe_machine()}")


if __name__ == "__main__":
    main()
