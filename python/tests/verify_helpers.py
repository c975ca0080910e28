"""Shared pieces of the verifier tests (defences, sandbox): a one-worker config and an item.

    from verify_helpers import STATEMENT, item, verifier_config
"""

from __future__ import annotations

from pathlib import Path

from stp.config import STPConfig, load_config
from stp.verify import VerifyItem

STATEMENT = "theorem t (n : ℕ) : n + 0 = n :="


def verifier_config(tmp_path: Path, *overrides: str) -> STPConfig:
    """One worker, no cache and no pass re-checks (the tests that need them say so), a run
    directory under `tmp_path`; `overrides` are `--set` style."""
    return load_config(None, ["verifier.workers=1", "verifier.timeout_s=30",
                              "verifier.cache_dir='off'", "verifier.start_timeout_s=60",
                              "verifier.recheck='off'",
                              f"run.run_dir={str(tmp_path / 'run')!r}", *overrides])


def item(proof: str) -> VerifyItem:
    """`proof` of the one statement these tests check."""
    return VerifyItem(statement=STATEMENT, proof=proof)
