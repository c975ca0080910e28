"""Shared command-line plumbing: --config/--set/--data-dir, and exit codes.

Exit codes across every `python -m stp.*` command: 0 success, 1 the work ran but found failures
(a proof failed, a test split regressed), 2 usage, configuration or environment errors.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from stp.config import STPConfig, load_config
from stp.errors import EXIT_FAILURES, EXIT_OK, EXIT_USAGE, STPError, UsageError

__all__ = ["EXIT_FAILURES", "EXIT_OK", "EXIT_USAGE", "UsageError", "add_config_arguments",
           "config_from_args", "run_main", "setup_logging"]


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, default=None,
                        help="TOML experiment config (see configs/)")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="override a config value, e.g. --set trainer.learning_rate=5e-5")
    parser.add_argument("--data-dir", default=None,
                        help="benchmark/dataset directory (default: $STP_DATA_DIR)")


def config_from_args(args: argparse.Namespace) -> STPConfig:
    overrides = list(args.overrides)
    if getattr(args, "data_dir", None):
        overrides.append(f"run.data_dir={_toml_string(args.data_dir)}")
    return load_config(args.config, overrides)


def _toml_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def run_main(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> None:
    """Run a command's main, mapping the project's errors to one-line messages and exit codes.

    This is the one place `STPError` is caught for the command line; library code raises it (see
    `stp.errors`) and never prints or exits itself.
    """
    try:
        code = main(argv)
    except STPError as err:
        print(f"error: {err}", file=sys.stderr)
        code = err.exit_code
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        code = EXIT_USAGE
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
