"""Where the Lean workspace and our programs live, and how the checker is configured.

The checking policy (heartbeats, mode, profile, allowed axioms) is defined here once and sent to
the checker in every session's first line; the Lean side holds no defaults of its own.
"""

from __future__ import annotations

import msgspec

from stp.lean.protocol import Mode, Profile
from stp.ranges import NonNegativeInt

# The header STP's verifier elaborated once per worker (docs/reference.md §3.6), minus the
# `set_option maxHeartbeats 0` line: the heartbeat limit is the checker's setting, never 0.
DEFAULT_HEADER = "import Mathlib\nimport Aesop\nopen BigOperators Real Nat Topology Rat\n"

# The `paper` profile runs under the same header: the original verifier's LEAN_HEADER
# (docs/reference.md §3.6) with `import miniF2F` (a 55-line library of Mathlib imports the
# original added to its workspace, not part of ours) replaced by `import Mathlib`, its superset,
# is exactly DEFAULT_HEADER; its `set_option maxHeartbeats 0` is expressed as max_heartbeats = 0
# (no limit; the wall clock bounds a check, as in the original).
PAPER_MAX_HEARTBEATS = 0


class LeanConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # The Lake workspace root (holds lakefile.lean); relative paths resolve from the cwd. Empty:
    # $STP_LEAN_PROJECT, else the checkout stp is installed from (pip install -e), else the cwd
    # (stp.lean.toolchain.project_dir), so commands work from any directory.
    project_dir: str = ""
    # Built executables, relative to project_dir (`lake build` puts them there).
    checker_exe: str = ".lake/build/bin/stp_check"
    extractor_exe: str = ".lake/build/bin/stp_extract"
    # Header used for statements whose record carries none (miniF2F, LeanWorkbook, conjectures).
    # It is trusted (elaborated without the header allow-list); headers read from .lean files
    # and JSONL records are not.
    default_header: str = DEFAULT_HEADER
    # Lean's own deterministic limit per check; the wall-clock limit is verifier.timeout_s.
    # 0 = no heartbeat limit (only the wall clock stops a check; the smoke test's timeout case).
    max_heartbeats: NonNegativeInt = 400_000
    # "strict": only theorem/lemma commands in a proof; "lenient" also allows plain defs.
    mode: Mode = "strict"
    # "strict": the full judgement (gate, reference type match, axiom walk); "paper": the
    # original STP rule (no error, no sorry, no warning containing "failed") under the original
    # header (DEFAULT_HEADER, see above) without a heartbeat limit.
    profile: Profile = "strict"
    # The checker process to run instead of the built `stp_check` (argv; empty = the built
    # checker, started as `lake env <project_dir>/<checker_exe>` from project_dir). The test suite
    # points it at its stand-in; users point it at a wrapper if they need one.
    checker_command: list[str] = msgspec.field(default_factory=list)
    allowed_axioms: list[str] = msgspec.field(
        default_factory=lambda: ["propext", "Classical.choice", "Quot.sound"]
    )


def session_header(lean_cfg: LeanConfig) -> str:
    """The header of items that carry none (the same for both profiles: see DEFAULT_HEADER)."""
    return lean_cfg.default_header


def session_heartbeats(lean_cfg: LeanConfig) -> int:
    """The heartbeat limit sent to the checker: the paper profile runs without one."""
    return PAPER_MAX_HEARTBEATS if lean_cfg.profile == "paper" else lean_cfg.max_heartbeats
