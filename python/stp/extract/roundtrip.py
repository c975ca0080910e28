"""Round-trip check of extracted theorems: does each extracted proof still prove its statement?
(Named for what it checks, not `verify`, so it is not confused with the `stp.verify` package.)

Each theorem is restated in a session whose header imports its own module and replays the scope
commands before it; the theorem is renamed (the original is already in that environment) so
the check is of the extracted proof text against the extracted statement. Theorems that fail
measure the scope-reconstruction error rate and are kept aside, not dropped silently.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from stp.extract.records import ExtractedTheorem
from stp.verify.types import VerifyItem, VerifyResult

if TYPE_CHECKING:
    from stp.config import STPConfig

RENAME_SUFFIX = "_stp_roundtrip"
_HEAD = re.compile(r"^(theorem|lemma)(\s+)(\S+)")


def checkable(thm: ExtractedTheorem) -> bool:
    return thm.val_kind == "term"


def roundtrip_item(thm: ExtractedTheorem) -> VerifyItem:
    """The restated check of one theorem (only for `checkable` records)."""
    m = _HEAD.match(thm.statement)
    if m is None:
        raise ValueError(f"{thm.name}: statement does not start with theorem/lemma")
    statement = "theorem" + m.group(2) + m.group(3) + RENAME_SUFFIX + thm.statement[m.end():]
    scope = "\n".join(thm.context.commands)
    header = f"import {thm.module}\n" + (scope + "\n" if scope else "")
    return VerifyItem(statement=thm.inline_prefix + statement, proof=thm.proof, header=header,
                      name=thm.name)


def roundtrip_check(cfg: STPConfig, theorems: list[ExtractedTheorem]
                    ) -> tuple[list[ExtractedTheorem], list[tuple[ExtractedTheorem, VerifyResult]]]:
    """(passing, failing with their results). Non-checkable records count as failures with an
    `error` status so the report accounts for every theorem."""
    from stp.verify import make_verifier

    todo = [t for t in theorems if checkable(t)]
    failed: list[tuple[ExtractedTheorem, VerifyResult]] = [
        (t, VerifyResult(status="error", detail=f"value kind {t.val_kind!r} is not checkable"))
        for t in theorems if not checkable(t)
    ]
    # Group by header so the pool keeps few warm header sessions at a time.
    todo.sort(key=lambda t: (t.module, roundtrip_item(t).header))
    passed: list[ExtractedTheorem] = []
    with make_verifier(cfg) as verifier:
        results = verifier.verify_all(roundtrip_item(t) for t in todo)
    for thm, result in zip(todo, results, strict=True):
        if result.passed:
            passed.append(thm)
        else:
            failed.append((thm, result))
    return passed, failed
