"""Where the Lean workspace and our programs live, and how the checker is configured."""

from __future__ import annotations

from typing import Literal

import msgspec

# The header STP's verifier elaborated once per worker (stp-reference.md §3.6), minus the
# `set_option maxHeartbeats 0` line: the heartbeat limit is the checker's setting, never 0.
DEFAULT_HEADER = "import Mathlib\nimport Aesop\nopen BigOperators Real Nat Topology Rat\n"


class LeanConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The Lake workspace root (holds lakefile.lean); relative paths resolve from the cwd.
    project_dir: str = "."
    # Built executables, relative to project_dir (`lake build` puts them there).
    checker_exe: str = ".lake/build/bin/stp_check"
    extractor_exe: str = ".lake/build/bin/stp_extract"
    # Header used for statements whose record carries none (miniF2F, LeanWorkbook, conjectures).
    default_header: str = DEFAULT_HEADER
    # Lean's own deterministic limit per check; the wall-clock limit is verifier.timeout_s.
    max_heartbeats: int = 400_000
    # "strict": only theorem/lemma commands in a proof; "lenient" also allows plain defs.
    mode: str = "strict"
    profile: Literal["strict", "paper"] = "strict"
    # The checker process to run instead of the built `stp_check` (argv; empty = the built
    # checker, started as `lake env <project_dir>/<checker_exe>` from project_dir). The test suite
    # points it at its stand-in; users point it at a wrapper if they need one.
    checker_command: list[str] = msgspec.field(default_factory=list)
    allowed_axioms: list[str] = msgspec.field(
        default_factory=lambda: ["propext", "Classical.choice", "Quot.sound"]
    )
