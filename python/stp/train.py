"""`python -m stp.train` — weighted supervised fine-tuning (stage 1 SFT and any weighted SFT).

    python -m stp.train --config configs/stp-7b.toml --data sft.jsonl --out runs/sft \\
        --set trainer.learning_rate=1e-4 --set trainer.warmup_steps=20

The data file holds `{"prompt", "target", "weight"}` records (JSONL, .jsonl.gz, or the original's
JSON array). The run is resumable: rerunning the same command continues from the last checkpoint,
and a finished run prints its result again without retraining. Exit codes: 0 done, 2 bad input
(the message names file, line and field) or environment.
"""

from __future__ import annotations

import argparse
import json
import sys

import msgspec

from stp import storage
from stp.cli import (
    EXIT_OK,
    ArgumentParser,
    UsageError,
    add_config_arguments,
    config_from_args,
    count_arg,
    positive_float_arg,
    run_main,
    setup_logging,
)
from stp.errors import STPError


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m stp.train",
                                description="weighted supervised fine-tuning with Levanter")
    add_config_arguments(p)
    p.add_argument("--data", required=True,
                   help="training examples: .jsonl, .jsonl.gz or .json with prompt/target/weight")
    p.add_argument("--out", default=None,
                   help="output directory (local or gs://; default: <run.run_dir>/sft)")
    p.add_argument("--model", default=None,
                   help="base checkpoint: HF id, local dir or gs:// (default: model.name)")
    p.add_argument("--learning-rate", type=positive_float_arg, default=None,
                   help="override trainer.learning_rate")
    p.add_argument("--epochs", type=positive_float_arg, default=None, help="override trainer.epochs")
    p.add_argument("--min-steps", type=count_arg(0), default=None, help="override trainer.min_steps")
    p.add_argument("--max-steps", type=count_arg(1), default=None,
                   help="stop after this many steps (smoke tests)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = config_from_args(args)
    setup_logging(cfg.run.log_level)
    if not storage.exists(args.data):
        raise UsageError(f"--data: no such file: {args.data}")
    out = args.out or storage.join(cfg.run.run_dir, "sft")
    base = args.model or cfg.model.name

    from stp.model.training import train_weighted

    try:
        result = train_weighted(base, args.data, out, cfg.trainer, cfg.model,
                                learning_rate=args.learning_rate, min_steps=args.min_steps,
                                epochs=args.epochs, max_steps=args.max_steps)
    except STPError:
        raise
    except Exception as err:
        # A full or read-only --out reported without a file name (Python's write(2) errors,
        # Rust libraries' "(os error 28)"): name the output directory; anything else propagates.
        os_error = storage.as_os_error(err, out)
        if os_error is None or os_error is err:
            raise
        raise os_error from None
    summary = msgspec.to_builtins(result)
    summary["losses"] = [round(x, 5) for x in result.losses]
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return EXIT_OK


if __name__ == "__main__":
    run_main(main)
