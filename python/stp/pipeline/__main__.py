"""`python -m stp.pipeline`: Stage-1 SFT → self-play rounds → final re-training → evaluation →
report, in one run directory; rerunning the same command continues where it stopped.

    python -m stp.pipeline --config configs/stp-7b.toml
    python -m stp.pipeline --config configs/tiny-cpu.toml --data-dir data/benchmarks
    python -m stp.pipeline --config configs/stp-7b.toml --stages sft     # Stage 1 only
"""

from __future__ import annotations

import json

from stp.cli import (
    EXIT_OK,
    ArgumentParser,
    add_config_arguments,
    config_from_args,
    run_main,
    setup_logging,
)
from stp.errors import UsageError
from stp.pipeline.config import ALL_STAGES


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m stp.pipeline",
        description="The whole STP pipeline (SFT, self-play, re-training, evaluation, report) "
                    "in one resumable run directory.")
    add_config_arguments(parser)
    parser.add_argument("--run-dir", default=None, help="override run.run_dir")
    parser.add_argument("--stages", nargs="+", choices=ALL_STAGES, default=None,
                        help="run only these of pipeline.stages now (default: all of them); "
                             "the plan (Stage 1, blocks) stays the config's")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.run_dir:
        args.overrides.append(f"run.run_dir={json.dumps(args.run_dir)}")
    cfg = config_from_args(args)
    setup_logging(cfg.run.log_level)
    if args.stages:
        unknown = [s for s in args.stages if s not in cfg.pipeline.stages]
        if unknown:
            raise UsageError(f"--stages {' '.join(unknown)}: not in pipeline.stages "
                             f"{cfg.pipeline.stages} of the config (add it there with --set)")
    from stp.pipeline.run import run_pipeline

    manifest = run_pipeline(cfg, stages=args.stages, config_name=args.config or "CONFIG")
    for stage, summary in manifest.stages.items():
        shown = {k: v for k, v in summary.items() if k in ("model", "report", "attempts")}
        print(f"{stage}: done {shown}")
    return EXIT_OK


if __name__ == "__main__":
    run_main(main)
