"""Proof verification: a pool of long-lived Lean checkers behind dedup and a persistent cache.

`make_verifier(cfg)` builds the configured Verifier (local pool or Ray); `python -m stp.verify`
checks .lean and JSONL files from the command line. See docs/verify.md.

Names are resolved lazily: `stp.config` imports `stp.verify.config` while it is itself being
imported, and the service needs `stp.config`, so importing the service here eagerly would cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from stp.verify.types import Status, VerifyItem, VerifyResult

if TYPE_CHECKING:
    from stp.verify.service import Verifier, VerifierError, VerifyStats, make_verifier

__all__ = [
    "Status",
    "Verifier",
    "VerifierError",
    "VerifyItem",
    "VerifyResult",
    "VerifyStats",
    "make_verifier",
]

_LAZY = {"Verifier", "VerifierError", "VerifyStats", "make_verifier"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from stp.verify import service

        return getattr(service, name)
    raise AttributeError(f"module 'stp.verify' has no attribute {name!r}")
