"""`python -m stp.selfplay`: run or continue self-play; `... report --run-dir D`: plots + markdown.

    python -m stp.pipeline --config configs/tiny-cpu.toml --stages sft   # Stage 1 first, then
    python -m stp.selfplay --config configs/tiny-cpu.toml
    python -m stp.selfplay --config configs/stp-7b.toml --rounds 4    # after the pipeline's sft
    python -m stp.selfplay --config configs/stp-7b.toml --set selfplay.initial_model='"M"'
    python -m stp.selfplay report --run-dir runs/tiny-cpu
"""

from __future__ import annotations

import argparse
import json

from stp.cli import (
    EXIT_OK,
    ArgumentParser,
    add_config_arguments,
    config_from_args,
    count_arg,
    run_main,
    setup_logging,
)


def _run_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="python -m stp.selfplay",
        description="Run self-play rounds (continues a stopped run in the same run directory). "
                    "`python -m stp.selfplay report --run-dir D` renders a report instead.")
    add_config_arguments(parser)
    parser.add_argument("--rounds", type=count_arg(1), default=None,
                        help="total rounds to complete (default: selfplay.rounds)")
    parser.add_argument("--run-dir", default=None, help="override run.run_dir")
    return parser


def _report_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m stp.selfplay report",
                                     description="Plots (PNG) and a markdown report of a run.")
    add_config_arguments(parser)
    parser.add_argument("--run-dir", default=None,
                        help="the run directory (local or gs://; default: run.run_dir)")
    parser.add_argument("--out", default=None, help="output folder (default: RUN_DIR/report)")
    return parser


def main(argv: list[str] | None = None) -> int:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "report":
        args = _report_parser().parse_args(argv[1:])
        cfg = config_from_args(args)
        setup_logging(cfg.run.log_level)
        from stp.selfplay.report import render_report

        print(render_report(args.run_dir or cfg.run.run_dir, args.out))
        return EXIT_OK
    args = _run_parser().parse_args(argv)
    if args.run_dir:
        args.overrides.append(f"run.run_dir={json.dumps(args.run_dir)}")
    cfg = config_from_args(args)
    setup_logging(cfg.run.log_level)
    from stp.lean.toolchain import checker_command

    # Before any model or dataset is touched: without Lean nothing can be verified.
    checker_command(cfg.lean)
    import msgspec

    from stp.selfplay.inputs import check_inputs, selfplay_start_model

    # Round 0 starts from the run's Stage-1 model when the config's pipeline has Stage 1 (or
    # refuses, saying how to get one), never silently from the public base model.
    start = selfplay_start_model(cfg, config_name=args.config or "CONFIG")
    cfg = msgspec.structs.replace(cfg, model=msgspec.structs.replace(cfg.model, name=start))
    check_inputs(cfg, ["selfplay"], config_name=args.config or "CONFIG")
    from stp.selfplay.loop import run_selfplay

    summaries = run_selfplay(cfg, rounds=args.rounds)
    for s in summaries:
        b = s.stages.get("bookkeeping", {})
        print(f"round {s.round}: solved {b.get('dataset_solved_total')}/{b.get('dataset_size')}"
              f", model {s.stages.get('train', {}).get('model')}")
    return EXIT_OK


if __name__ == "__main__":
    run_main(main)
