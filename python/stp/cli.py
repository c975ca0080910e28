"""Shared command-line plumbing: --config/--set/--data-dir, and exit codes.

Exit codes across every `python -m stp.*` command: 0 success, 1 the work ran but found failures
(a proof failed, a test split regressed), 2 usage, configuration or environment errors.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import logging
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

# Upward by design: the CLI plumbing is the config loader's front end (--config/--set/--data-dir).
from stp.config import STPConfig, load_config
from stp.errors import (
    EXIT_FAILURES,
    EXIT_OK,
    EXIT_USAGE,
    FULL_DISK_ERRNOS,
    STPError,
    UsageError,
)

__all__ = ["COMMANDS", "EXIT_FAILURES", "EXIT_OK", "EXIT_USAGE", "ArgumentParser", "UsageError",
           "add_config_arguments", "config_from_args", "count_arg", "describe_os_error",
           "positive_float_arg",
           "run_main", "setup_logging"]


# Every `python -m` command -> the module whose `main(argv)` implements it. One list, so the fault
# corpus (python/tests/test_fault_corpus.py) runs every command, and a new command that is not
# listed here fails that test until it is.
COMMANDS: dict[str, str] = {
    "stp.pipeline": "stp.pipeline.__main__",
    "stp.selfplay": "stp.selfplay.__main__",
    "stp.retrain": "stp.retrain",
    "stp.train": "stp.train",
    "stp.verify": "stp.verify.cli",
    "stp.extract": "stp.extract.__main__",
    "stp.data": "stp.data.__main__",
    "stp.eval": "stp.eval.__main__",
    "stp.model.tiny": "stp.model.tiny",
}


class ArgumentParser(argparse.ArgumentParser):
    """argparse with the project's error convention: a bad flag is one `error:` line, exit 2.

    argparse itself prints the whole usage text before its message; here the message (naming the
    command and the flag) is raised as a UsageError, which `run_main` prints as one line. `--help`
    still prints the full usage. Sub-command parsers inherit the class.
    """

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see --help)")


def count_arg(minimum: int, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse type: an integer >= minimum (and <= maximum: the flag's range, like a config
    field's; a huge value would otherwise run for ever or exhaust memory)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be <= {maximum}, got {value}")
        return value

    parse.__name__ = f"integer >= {minimum}" + (f" and <= {maximum}" if maximum else "")
    return parse


def positive_float_arg(text: str) -> float:
    """An argparse type: a finite number > 0 (seconds, rates, epochs)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return value


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
    `stp.errors`) and never prints or exits itself. Operating-system failures that carry a file
    name (a full or read-only disk, a directory where a file belongs, ...) are the user's to fix,
    so they get the same one line, naming the file and saying what to do, instead of a traceback.
    A closed stdout (`... | head`) ends the command quietly.
    """
    try:
        code = main(argv)
        sys.stdout.flush()
    except STPError as err:
        code = _print_error(str(err), err.exit_code)
    except OSError as err:
        if isinstance(err, BrokenPipeError) and err.filename is None:
            code = _broken_pipe()
        else:
            message = describe_os_error(err)
            if message is None:
                raise
            code = _print_error(message, EXIT_USAGE)
    except UnicodeDecodeError as err:
        # Callers that know the file turn this into an InputFormatError; this is the safety net.
        code = _print_error(f"input is not UTF-8 text ({err})", EXIT_USAGE)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    sys.exit(code)


def _print_error(message: str, code: int) -> int:
    text = " ".join(message.split()) or "unknown error"
    # Nothing is left to report to when stderr itself is closed.
    with contextlib.suppress(BrokenPipeError, ValueError):
        print(f"error: {text}", file=sys.stderr)
    return code


def _broken_pipe() -> int:
    """The reader of our stdout went away (`| head`): stop quietly, like other Unix tools.

    Python would otherwise print a second BrokenPipeError when it flushes stdout at exit, so
    stdout is pointed at /dev/null first (the documented recipe).
    """
    with contextlib.suppress(OSError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_OK


# What a user can do about each operating-system failure that names a file.
_OS_ADVICE: dict[int, str] = {
    errno.ENOSPC: "no space left on the device; free space there (or choose another location) "
                  "and rerun: finished work is kept",
    errno.EDQUOT: "disk quota exceeded; free space or raise the quota and rerun: finished work is "
                  "kept",
    errno.EFBIG: "file too large for this file system or the process's file-size limit "
                 "(ulimit -f); free space or raise the limit and rerun",
    errno.EROFS: "read-only file system; choose a writable location",
    errno.EACCES: "permission denied; fix the permissions or choose another location",
    errno.EPERM: "operation not permitted; fix the permissions or choose another location",
    errno.EISDIR: "is a directory, where a file is expected",
    errno.ENOTDIR: "is a file (or under one), where a directory is expected",
    errno.ENOENT: "no such file or directory",
    errno.EEXIST: "already exists",
    errno.ENAMETOOLONG: "file name too long",
    errno.ELOOP: "too many levels of symbolic links",
}


def describe_os_error(err: OSError) -> str | None:
    """One line for an OSError a user can act on (it names a file or a full disk), else None."""
    advice = _OS_ADVICE.get(err.errno) if err.errno is not None else None
    names = [str(n) for n in (err.filename, err.filename2) if n is not None]
    if not names:
        if advice is not None and err.errno in FULL_DISK_ERRNOS:
            return f"writing failed: {advice}"
        if isinstance(err, FileNotFoundError | FileExistsError | IsADirectoryError
                      | NotADirectoryError | PermissionError) and str(err):
            return str(err)  # our own messages ("no such log: runs/x") already name the file
        return None
    return f"{' -> '.join(names)}: {advice or err.strerror or err}"


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
