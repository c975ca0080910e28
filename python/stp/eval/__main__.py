"""`python -m stp.eval {run,summarize,plot}` — see docs/eval.md.

Exit codes: 0 success; 1 infrastructure failures above `eval.max_system_error_fraction` (unless
--allow-system-errors); 2 usage, configuration or environment errors.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from stp.cli import (
    EXIT_FAILURES,
    EXIT_OK,
    ArgumentParser,
    UsageError,
    add_config_arguments,
    config_from_args,
    count_arg,
    run_main,
    setup_logging,
)
from stp.config import STPConfig, resolve_data_dir
from stp.ranges import MAX_SAMPLES
from stp.storage import CorruptRecordError

T = TypeVar("T")

if TYPE_CHECKING:
    from stp.eval.loading import LoadedLog
    from stp.eval.summarize import SplitSummary


def _add_summary_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--split", action="append", default=None,
                   help="only these splits: a dataset (miniF2F, proofnet, putnam) or a full "
                        "label such as minif2f:test; repeatable")
    p.add_argument("--max-iter", type=count_arg(1, MAX_SAMPLES), default=None,
                   help="use sample indices < N only (the original used 3200); default: all")
    p.add_argument("--format", choices=("auto", "stp-eval", "stp"), default="auto",
                   help="log format: ours, or the original generated_proofs_tests.jsonl.gz")
    p.add_argument("--allow-system-errors", action="store_true",
                   help="exit 0 even when infrastructure failures exceed the configured limit")
    p.add_argument("--profile", default=None,
                   help="count verdicts of this verifier profile only (strict, paper); default: "
                        "every profile the log was judged under, side by side")


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m stp.eval",
                                     description="pass@k evaluation on benchmark splits")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="sample, verify and log proofs for benchmark splits")
    add_config_arguments(run)
    run.add_argument("--model", default=None, help="checkpoint (default: model.name)")
    run.add_argument("--splits", nargs="+", default=None, metavar="DATASET[:SPLIT]",
                     help="e.g. minif2f:test proofnet:test putnam (default: eval.splits)")
    run.add_argument("--samples", type=count_arg(1, MAX_SAMPLES), default=None,
                     help="samples per statement (default: eval.samples_per_statement)")
    run.add_argument("--out", required=True, help="log directory (local or gs://); resumable")
    run.add_argument("--allow-system-errors", action="store_true",
                     help="exit 0 even when infrastructure failures exceed the configured limit")
    run.add_argument("--json", action="store_true", help="print the final summary as JSON")
    run.add_argument("--allow-changed-settings", action="store_true",
                     help="resume a log whose manifest records other sampling settings (the "
                          "change is recorded in the manifest with its first shard)")

    summ = sub.add_parser("summarize", help="pass@k tables of a log")
    add_config_arguments(summ)
    summ.add_argument("--log", required=True, help="log directory or .jsonl[.gz] file")
    _add_summary_arguments(summ)
    summ.add_argument("--json", action="store_true",
                      help="print {split: summary} as JSON instead of tables")

    plot = sub.add_parser("plot", help="pass@k curves and a markdown table for several logs")
    add_config_arguments(plot)
    plot.add_argument("--log", action="append", required=True,
                      help="a log (repeat for several runs on one figure)")
    plot.add_argument("--label", action="append", default=None,
                      help="legend label of each --log, in order (default: model or file name)")
    plot.add_argument("--out", required=True, help="output directory for PNG/SVG/table.md")
    _add_summary_arguments(plot)
    return parser


def _load_errors_as_usage(load: Callable[[], T]) -> T:
    try:
        return load()
    except CorruptRecordError as err:
        raise UsageError(f"corrupt log record: {err}") from None
    except ValueError as err:  # LogFormatError and friends name file and line
        raise UsageError(str(err)) from None


def _check_max_iter(args: argparse.Namespace) -> None:
    if args.max_iter is not None and args.max_iter < 1:
        raise UsageError(f"--max-iter must be >= 1, got {args.max_iter}")


def _summaries(cfg: STPConfig, args: argparse.Namespace,
               loaded: LoadedLog) -> list[SplitSummary]:
    from stp.eval.summarize import summarize_log

    return summarize_log(loaded, args.split, budgets=tuple(cfg.eval.budgets),
                         max_iter=args.max_iter, resamples=cfg.eval.bootstrap_samples,
                         seed=cfg.eval.seed)


def _summarize_one(cfg: STPConfig, args: argparse.Namespace, path: str, label: str | None,
                   profile: str | None = None) -> tuple[LoadedLog, list[SplitSummary]]:
    from stp.eval.loading import load_log

    _check_max_iter(args)
    data_dir = resolve_data_dir(cfg.run.data_dir, args.data_dir)
    loaded = _load_errors_as_usage(lambda: load_log(
        path, args.format, data_dir, label, profile=profile or getattr(args, "profile", None)))
    return loaded, _summaries(cfg, args, loaded)


def _system_error_exit(cfg: STPConfig, summaries: list, allow: bool) -> int:
    from stp.eval.summarize import check_system_errors

    check = check_system_errors(summaries, cfg.eval.max_system_error_fraction)
    if check.exceeded:
        if allow:
            print(f"warning: {check.message()} (accepted: --allow-system-errors)",
                  file=sys.stderr)
            return EXIT_OK
        print(f"error: {check.message()}", file=sys.stderr)
        return EXIT_FAILURES
    return EXIT_OK


def _print(loaded: LoadedLog, summaries: list[SplitSummary], as_json: bool) -> None:
    from stp.eval.summarize import render_tables, summaries_json

    if as_json:
        print(json.dumps(summaries_json(loaded, summaries), indent=2))
        return
    from rich.console import Console

    render_tables(loaded, summaries, Console())


def _log_profiles(path: str) -> list[str]:
    from stp import storage
    from stp.eval import log as evlog

    if not (storage.exists(path) and evlog.is_log_dir(path)):
        return []
    manifest = evlog.read_manifest(path)
    return list(manifest.profiles) if manifest is not None else []


def summarize_profiles(cfg: STPConfig, args: argparse.Namespace, path: str
                       ) -> tuple[int, dict[str, Any]]:
    """Summaries under every profile of a log, printed side by side (or as JSON)."""
    from stp.eval.loading import load_log_profiles
    from stp.eval.summarize import RejectionTally, render_profiles, summaries_json

    profiles = _log_profiles(path)
    strict, lenient = ("strict", "paper") if {"strict", "paper"} <= set(profiles) else (
        profiles[0], profiles[-1])
    _check_max_iter(args)
    data_dir = resolve_data_dir(cfg.run.data_dir, args.data_dir)
    # One read of the log gives every profile's columns and the strict rejections.
    tally = RejectionTally(strict, lenient)
    loaded_by = _load_errors_as_usage(lambda: load_log_profiles(
        path, profiles, args.format, data_dir, observe=tally.add))
    by_profile = {p: _summaries(cfg, args, loaded_by[p]) for p in profiles}
    splits = [s.split for s in by_profile[profiles[0]]]
    rejections = tally.result(splits)
    payload = {"profiles": {p: summaries_json(loaded_by[p], by_profile[p])
                            for p in profiles},
               "rejections": {k: v.to_json() for k, v in rejections.items()}}
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        from rich.console import Console

        render_profiles(by_profile, rejections, Console())
    return _system_error_exit(cfg, by_profile[profiles[0]], args.allow_system_errors), payload


def _print_checker(path: str, as_json: bool) -> None:
    """The checker that judged the log, before the tables (and plainly when it was not
    stp_check); `run` records it in `<log>/checker.json`."""
    from stp import storage
    from stp.eval import log as evlog
    from stp.verify.identity import identity_lines, read_record

    if as_json or not (storage.exists(path) and evlog.is_log_dir(path)):
        return
    lines = identity_lines(read_record(path), "pass rates")
    if lines:
        print("\n".join(lines).rstrip())


def cmd_summarize(args: argparse.Namespace) -> int:
    cfg = config_from_args(args)
    _print_checker(args.log, args.json)
    if args.profile is None and len(_log_profiles(args.log)) > 1:
        return summarize_profiles(cfg, args, args.log)[0]
    loaded, summaries = _summarize_one(cfg, args, args.log, None)
    _print(loaded, summaries, args.json)
    return _system_error_exit(cfg, summaries, args.allow_system_errors)


def cmd_plot(args: argparse.Namespace) -> int:
    from stp.eval.plots import RunSummaries, write_report

    cfg = config_from_args(args)
    labels = args.label or []
    if labels and len(labels) != len(args.log):
        raise UsageError(f"{len(labels)} --label for {len(args.log)} --log; give one per log "
                         "or none")
    runs = []
    code = EXIT_OK
    for i, path in enumerate(args.log):
        loaded, summaries = _summarize_one(cfg, args, path, labels[i] if labels else None)
        code = max(code, _system_error_exit(cfg, summaries, args.allow_system_errors))
        runs.append(RunSummaries(loaded.label, summaries))
    from stp.lock import lock_dir

    with lock_dir(args.out, purpose="stp.eval plot"):
        written = write_report(runs, args.out)
    for path in written:
        print(path)
    return code


def cmd_run(args: argparse.Namespace) -> int:
    from stp.eval.loading import load_log
    from stp.eval.run import run_from_config, settings_from_config
    from stp.eval.summarize import summarize_log

    cfg = config_from_args(args)
    setup_logging(cfg.run.log_level)  # the run's own level (`run.log_level`), as every command
    settings = settings_from_config(cfg, model=args.model, splits=args.splits,
                                    samples=args.samples, out=args.out,
                                    allow_changed_settings=args.allow_changed_settings)
    from stp.lock import lock_dir

    # Two runs appending to one log would duplicate attempts (summarize then refuses the log).
    with lock_dir(settings.out, purpose="stp.eval run"):
        result = run_from_config(cfg, settings, data_dir=args.data_dir)
    print(f"{result.written} attempts written, {result.skipped} already logged, "
          f"statuses: {dict(result.by_status)}", file=sys.stderr)
    args.split, args.max_iter, args.format, args.profile = None, None, "stp-eval", None
    if len(_log_profiles(settings.out)) > 1:
        return summarize_profiles(cfg, args, settings.out)[0]
    loaded = load_log(settings.out, "stp-eval", resolve_data_dir(cfg.run.data_dir, args.data_dir))
    summaries = summarize_log(loaded, None, budgets=tuple(cfg.eval.budgets),
                              resamples=cfg.eval.bootstrap_samples, seed=cfg.eval.seed)
    _print(loaded, summaries, args.json)
    return _system_error_exit(cfg, summaries, args.allow_system_errors)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command != "run":  # `run` logs at run.log_level, known once its config is read
        setup_logging("WARNING")
    handlers = {"run": cmd_run, "summarize": cmd_summarize, "plot": cmd_plot}
    return handlers[args.command](args)


if __name__ == "__main__":
    run_main(main)
