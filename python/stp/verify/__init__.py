"""Proof verification: a pool of long-lived Lean checkers behind dedup and a persistent cache.

`make_verifier(cfg)` builds the configured Verifier (local pool or Ray); `python -m stp.verify`
checks .lean and JSONL files from the command line. See docs/verify.md.
"""

from __future__ import annotations

from stp.verify.service import Verifier, VerifierError, VerifyStats, make_verifier
from stp.verify.types import Status, VerifyItem, VerifyResult

__all__ = [
    "Status",
    "Verifier",
    "VerifierError",
    "VerifyItem",
    "VerifyResult",
    "VerifyStats",
    "make_verifier",
]
