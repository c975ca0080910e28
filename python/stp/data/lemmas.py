"""The Mathlib lemma dictionary (full name -> statement text) that seeds conjectures.

Written by `python -m stp.extract sft` as JSON lines of `LemmaEntry`; `load_lemma_dict` also reads
a plain JSON object {name: statement}. The statement is the lemma's source text before its `:=`
(doc comment and attributes included, as in the original's theorem_dict), stripped.
"""

from __future__ import annotations

from pathlib import Path

import msgspec

from stp import storage
from stp.errors import UsageError


class LemmaEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    statement: str
    module: str = ""


def write_lemma_dict(path: str, entries: list[LemmaEntry]) -> None:
    storage.write_jsonl(path, entries)


def load_lemma_dict(path: str | Path) -> dict[str, str]:
    """Full name -> statement. Duplicate names are an error (they would silently shadow)."""
    path = str(path)
    if not storage.exists(path):
        raise UsageError(f"lemma dictionary not found: {path} (build it with "
                         "`python -m stp.extract sft`)")
    name = path[:-3] if path.endswith(".gz") else path
    out: dict[str, str] = {}
    if name.endswith(".json"):
        try:
            data = msgspec.json.decode(storage.read_bytes(path))
        except (msgspec.DecodeError, UnicodeDecodeError) as err:
            raise UsageError(f"{path}: corrupt JSON ({err})") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise UsageError(f"{path}: expected a JSON object mapping names to statements")
        return dict(data)
    for lineno, entry in enumerate(storage.iter_jsonl(path, type=LemmaEntry), 1):
        if entry.name in out:
            raise UsageError(f"{path}:{lineno}: duplicate lemma name {entry.name!r}")
        out[entry.name] = entry.statement
    return out
