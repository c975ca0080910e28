"""Settings of Mathlib extraction (`python -m stp.extract run`)."""

from __future__ import annotations

import msgspec

from stp.ranges import NonNegativeInt

# A fresh extractor process per module: Lean mmaps an .olean on a process's first import of it
# but copies it into never-freed memory on every later import, so a long-lived extractor grows
# without bound over Mathlib (issue #12 item 8). A start costs far less than re-elaborating a
# module, and the first import of each dependency is then always the cheap mmap.
DEFAULT_MODULES_PER_PROCESS = 1


class ExtractConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Restart each extractor process after this many modules (0 = never restart a healthy one).
    modules_per_process: NonNegativeInt = DEFAULT_MODULES_PER_PROCESS
