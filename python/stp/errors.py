"""The project's error types, at the bottom layer so every package can raise them.

Every error a user can cause or fix (a bad flag, a bad config value, a malformed input file, a
missing prerequisite such as Lean) derives from `STPError` and carries the exit status its command
ends with. `stp.cli.run_main` catches `STPError` once and prints its message as one line; nothing
below the CLI imports `stp.cli`. This module imports nothing from `stp`, so importing it can never
create a cycle.
"""

from __future__ import annotations

import errno
import importlib
from types import ModuleType

EXIT_OK = 0
EXIT_FAILURES = 1
EXIT_USAGE = 2

# The errnos of a write that failed for lack of space (device full, quota, file-size limit):
# work already finished is kept and a rerun after freeing space continues.
FULL_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class STPError(Exception):
    """Base of every user-facing error: printed as `error: <message>`, exit status `exit_code`."""

    exit_code: int = EXIT_USAGE


class UsageError(STPError):
    """Bad command-line input, bad input data, or a missing prerequisite; exit status 2."""


class ConfigError(UsageError, ValueError):
    """A configuration file or override is invalid; the message names the file and the key."""


class InputFormatError(UsageError, ValueError):
    """An input file is malformed; the message names the file, the line and the field."""


class EnvironmentSetupError(UsageError):
    """A prerequisite of this machine is missing (Lean, a built checker, an optional package)."""


def import_optional(module: str, extra: str, purpose: str) -> ModuleType:
    """Import a package of an optional extra, or say in one line which extra installs it.

    An optional dependency missing on this machine is a setup step, not a bug, so the user gets
    `error: <purpose> needs matplotlib: pip install 'stp-prover[plots]'` instead of a ModuleNotFoundError.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        raise EnvironmentSetupError(f"{purpose} needs {top}: pip install 'stp-prover[{extra}]'") from None
