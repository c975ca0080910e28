"""The lemma dictionary and the Mathlib SFT examples (docs/reference.md §3.4, §3.5, §7).

Two prompt formats:
- "stp": the exact strings of the original notebook. Proving examples show the whole file prefix
  before the theorem and target the theorem's full source text; conjecture examples show the file
  prefix before the easy theorem, the shared lemma's full text and the easy theorem's full text,
  and target the hard theorem's statement.
- "clean": the restated minimal context (imports + namespace/section/open/variable commands)
  instead of the file prefix; proving examples show the statement and target only the proof
  (the way the prover is used at run time), conjecture examples show the lemma's statement only.

The `stp.model.prompts` module owns the run-time prompts; the Mathlib-specific assembly below is
the notebook's, kept here with the literal strings of the reference.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from stp import storage
from stp.data.lemmas import LemmaEntry
from stp.data.records import TrainingExample
from stp.extract.records import ExtractedTheorem
from stp.model.prompts import Format

FENCE = "Complete the following Lean 4 code:\n\n```lean4\n"
INVOKED_LEMMA = "<lemma>"
START_LEMMA_STMT = "<easy theorem>"
START_THM = "<hard theorem>"
END_THM = "</hard theorem>"
# The original kept only theorems with at least one traced tactic (tactic-style proofs).
_TACTIC = re.compile(r"\bby\b")


def is_tactic_proof(thm: ExtractedTheorem) -> bool:
    return bool(_TACTIC.search(thm.proof))


def lemma_entries(theorems: Iterable[ExtractedTheorem]) -> list[LemmaEntry]:
    """Full name -> statement (the declaration before its value, as the original's
    theorem_dict gave it), marked `tactic` when proved by tactics (the original's vocabulary;
    `data.lemma_vocabulary` chooses at load time); the first record of a name wins."""
    seen: set[str] = set()
    out = []
    for thm in theorems:
        if thm.name in seen:
            continue
        seen.add(thm.name)
        out.append(LemmaEntry(name=thm.name, statement=thm.lemma_statement, module=thm.module,
                              tactic=is_tactic_proof(thm)))
    return out


def sharing_pairs(theorems: list[ExtractedTheorem], known: set[str]
                  ) -> Iterator[tuple[ExtractedTheorem, str, ExtractedTheorem]]:
    """(easy E, shared premise p, hard T) for theorems of one file in source order: for each T
    and each premise p of T that is a known theorem, every earlier E of the same file whose
    premises contain p, most recent first (§7 step 5)."""
    by_module: dict[str, list[ExtractedTheorem]] = {}
    for thm in theorems:
        by_module.setdefault(thm.module, []).append(thm)
    for group in by_module.values():
        group.sort(key=lambda t: t.start_byte)
        premise_sets = [set(t.premises or ()) & known for t in group]
        for j, hard in enumerate(group):
            for p in dict.fromkeys(hard.premises or ()):
                if p not in known or p == hard.name:
                    continue
                for i in range(j - 1, -1, -1):
                    if p in premise_sets[i] and group[i].name != p:
                        yield group[i], p, hard


def prover_example(thm: ExtractedTheorem, source: str | None, fmt: Format) -> TrainingExample:
    if fmt == "stp":
        if source is None:
            raise ValueError("the stp format needs the module source")
        prefix = _prefix(source, thm.line_start_byte)
        return TrainingExample(prompt=FENCE + prefix,
                               target=_slice(source, thm.line_start_byte, thm.end_byte))
    return TrainingExample(prompt=FENCE + thm.context.text + "\n" + thm.inline_prefix
                           + thm.statement, target=thm.proof)


def conjecture_example(easy: ExtractedTheorem, lemma: ExtractedTheorem, hard: ExtractedTheorem,
                       easy_source: str | None, fmt: Format) -> TrainingExample:
    if fmt == "stp":
        if easy_source is None:
            raise ValueError("the stp format needs the module source")
        context = _prefix(easy_source, easy.line_start_byte)
        prompt = (FENCE + context.strip() + "\n" + INVOKED_LEMMA + "\n"
                  + lemma.full_text.strip() + "\n" + START_LEMMA_STMT + "\n"
                  + easy.full_text.strip() + "\n" + START_THM)
        target = "\n" + hard.lemma_statement.strip() + "\n" + END_THM
        return TrainingExample(prompt=prompt, target=target)
    prompt = (FENCE + easy.context.text.strip() + "\n" + INVOKED_LEMMA + "\n"
              + lemma.lemma_statement.strip() + "\n" + START_LEMMA_STMT + "\n"
              + (easy.statement + easy.proof).strip() + "\n" + START_THM)
    hard_statement = hard.statement[:-2] if hard.val_kind == "term" else hard.statement
    return TrainingExample(prompt=prompt, target="\n" + hard_statement.strip() + "\n" + END_THM)


def _prefix(source: str, end_byte: int) -> str:
    return _slice(source, 0, end_byte)


def _slice(source: str, begin: int, end: int) -> str:
    return source.encode("utf-8")[begin:end].decode("utf-8")


@dataclass
class SFTBuild:
    lemmas: list[LemmaEntry]
    conjecture: list[TrainingExample]
    prove_train: list[TrainingExample]
    prove_eval: list[TrainingExample]
    # conjecture + prove_train, shuffled (the original's mathlib_conjecture.json).
    sft: list[TrainingExample] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)


def build_sft(theorems: list[ExtractedTheorem], sources: dict[str, str], *, fmt: Format = "stp",
              eval_size: int = 4096, seed: int = 0,
              max_pairs_per_theorem: int | None = None) -> SFTBuild:
    """All Mathlib-derived examples. `sources` maps module -> source text (stp format)."""
    lemmas = lemma_entries(theorems)
    by_name = {t.name: t for t in theorems}
    tactic = [t for t in theorems if is_tactic_proof(t)
              and (fmt == "stp" or t.val_kind == "term")]
    skipped = {"not_tactic_proof": len(theorems) - len(tactic)}
    # Easy theorem, shared lemma and hard theorem are all tactic proofs, as in the original
    # (its premises were restricted to the keys of theorem_dict, the tactic-proof theorems).
    conjecture: list[TrainingExample] = []
    per_hard: dict[str, int] = {}
    for easy, p, hard in sharing_pairs(tactic, {t.name for t in tactic}):
        if max_pairs_per_theorem is not None:
            if per_hard.get(hard.name, 0) >= max_pairs_per_theorem:
                continue
            per_hard[hard.name] = per_hard.get(hard.name, 0) + 1
        conjecture.append(conjecture_example(easy, by_name[p], hard,
                                             sources.get(easy.module), fmt))
    proving = [prover_example(t, sources.get(t.module), fmt) for t in tactic]
    order = np.random.default_rng(seed).permutation(len(proving))
    shuffled = [proving[i] for i in order]
    n_eval = min(eval_size, len(shuffled))
    train = shuffled[n_eval:]
    mixed = conjecture + train
    mix_order = np.random.default_rng(seed).permutation(len(mixed))
    return SFTBuild(lemmas, conjecture, train, shuffled[:n_eval],
                    [mixed[i] for i in mix_order], skipped)


def length_stats(examples: list[TrainingExample]) -> dict[str, dict[str, float]]:
    """Character lengths of prompts and targets (mean, median, p95, max)."""
    out: dict[str, dict[str, float]] = {}
    for part in ("prompt", "target"):
        lengths = sorted(len(getattr(e, part)) for e in examples)
        if not lengths:
            out[part] = {"mean": 0, "median": 0, "p95": 0, "max": 0}
            continue
        out[part] = {"mean": round(statistics.fmean(lengths), 1),
                     "median": float(statistics.median(lengths)),
                     "p95": float(lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))]),
                     "max": float(lengths[-1])}
    return out


def write_examples(path: str, examples: list[TrainingExample]) -> None:
    storage.write_jsonl(path, examples)
