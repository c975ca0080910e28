"""The Mathlib lemma dictionary (full name -> statement text) that seeds conjectures.

Written by `python -m stp.extract sft` as JSON lines of `LemmaEntry`; `load_lemma_dict` also reads
a plain JSON object {name: statement}. The statement is the lemma's source text before its `:=`
(doc comment and attributes included, as in the original's theorem_dict), stripped.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import Literal

import msgspec

from stp import storage
from stp.errors import UsageError

# "tactic": the original's vocabulary, Mathlib theorems with a tactic proof (its theorem_dict,
# 59,742 names, came from LeanDojo theorems with at least one traced tactic); "all": every
# extracted theorem, term-mode proofs included (about twice as many lemmas to pair with).
LemmaVocabulary = Literal["tactic", "all"]


class LemmaEntry(msgspec.Struct, kw_only=True, omit_defaults=True):
    name: str
    statement: str
    module: str = ""
    # Whether the theorem's proof is a tactic block; entries without the field (older files, the
    # plain-JSON form) count as tactic proofs, as every entry of the original's dictionary was.
    tactic: bool = True


def write_lemma_dict(path: str, entries: list[LemmaEntry]) -> None:
    storage.write_jsonl(path, entries)


def load_lemma_dict(path: str | Path, vocabulary: LemmaVocabulary = "tactic") -> dict[str, str]:
    """Full name -> statement, restricted to `vocabulary` ("tactic": lemmas proved by tactics, as
    the original; "all": every entry). Duplicate names are an error (they would silently
    shadow)."""
    path = str(path)
    if not storage.exists(path):
        raise UsageError(f"lemma dictionary not found: {path} (build it with "
                         "`python -m stp.extract sft`)")
    name = path[:-3] if path.endswith(".gz") else path
    out: dict[str, str] = {}
    skipped: set[str] = set()
    if name.endswith(".json"):
        raw = storage.read_bytes(path)
        try:
            if path.endswith(".gz"):  # lemmas.json.gz was read compressed and called corrupt
                raw = gzip.decompress(raw)
            data = msgspec.json.decode(raw)
        except (msgspec.DecodeError, UnicodeDecodeError, OSError, EOFError, zlib.error) as err:
            raise UsageError(f"{path}: corrupt JSON ({err})") from None
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise UsageError(f"{path}: expected a JSON object mapping names to statements")
        return dict(data)
    for lineno, entry in enumerate(storage.iter_jsonl(path, type=LemmaEntry), 1):
        if entry.name in out or entry.name in skipped:
            raise UsageError(f"{path}:{lineno}: duplicate lemma name {entry.name!r}")
        if vocabulary == "tactic" and not entry.tactic:
            skipped.add(entry.name)
            continue
        out[entry.name] = entry.statement
    return out
