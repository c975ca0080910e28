"""Prompt and training-example formats of the prover and the conjecturer (docs/reference.md §3).

One model plays both roles; only the prompt tells it which. Two named formats:

- "stp": byte for byte what the released STP model saw. The prover prompt is the same at sampling
  and training time; the conjecturer prompt is NOT: sampling (§3.2) omits the Lean header and ends
  in "\\n theorem", while self-play training examples (§3.3) put the header before `<lemma>` and
  target "\\ntheorem ...". A faithful reproduction has to keep both.
- "clean": one format for sampling and training: the §3.3 training prompt (header, lemma, easy
  theorem, `<hard theorem>`) is also the sampling prompt, and the completion is the target
  "\\ntheorem ... := by\\n</hard theorem>". This matches the "clean" Mathlib SFT examples of
  `stp.extract.sft`, so a model trained from scratch sees a single conjecturer format.

Parsing of completions lives in `stp.model.parsing` and is re-exported here.
"""

from __future__ import annotations

from typing import Literal, cast, get_args

from stp.data.records import TrainingExample
from stp.model.parsing import ParsedConjecture, extract_proof, parse_conjecture

__all__ = [
    "CONJECTURER_STOP",
    "END_THM",
    "FENCE",
    "INVOKED_LEMMA",
    "NO_LEMMA",
    "PROVER_PROMPT",
    "PROVER_STOP",
    "START_LEMMA_STMT",
    "START_THM",
    "Format",
    "ParsedConjecture",
    "check_format",
    "conjecture_stop",
    "conjecture_training_example",
    "conjecturer_prompt",
    "conjecturer_stop",
    "extract_proof",
    "is_conjecture_prompt",
    "parse_conjecture",
    "prover_prompt",
    "prover_stop",
    "prover_training_example",
]

Format = Literal["stp", "clean"]
FORMATS: tuple[str, ...] = get_args(Format)

# The literal strings of the original (RL/utils/model_utils.py), docs/reference.md §3.
START_LEMMA_STMT = "<easy theorem>"
START_THM = "<hard theorem>"
END_THM = "</hard theorem>"
INVOKED_LEMMA = "<lemma>"
FENCE = "Complete the following Lean 4 code:\n\n```lean4\n"
PROVER_PROMPT = (FENCE + "import Mathlib\nimport Aesop\nset_option maxHeartbeats 0\n"
                 "open BigOperators Real Nat Topology Rat\n")
# Stands in for the lemma when a conjecture is generated without one (§3.2).
NO_LEMMA = "theorem true: True"

# Stop strings. The original used none (generation ran to EOS or the token limit, §11 item 20);
# they only cut text the parsers would discard anyway, so both formats use them. Samplers keep the
# matched stop string at the end of the completion so a parser can tell "ended" from "truncated".
PROVER_STOP: tuple[str, ...] = ("\n```",)
CONJECTURER_STOP: tuple[str, ...] = (END_THM, "```")


def check_format(fmt: str) -> Format:
    """The format name, or ValueError naming the accepted ones (config typos fail loudly)."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown prompt format {fmt!r}; expected one of {list(FORMATS)}")
    return cast(Format, fmt)  # checked against FORMATS just above


def prover_prompt(statement: str, header: str = "", fmt: str = "stp") -> str:
    """§3.1: the default header for records without one; the record's own header otherwise.

    Identical in both formats (the original was already consistent here)."""
    check_format(fmt)
    if header:
        return FENCE + header + statement.strip()
    return PROVER_PROMPT + "\n" + statement.strip()


def prover_stop(fmt: str = "stp") -> tuple[str, ...]:
    check_format(fmt)
    return PROVER_STOP


def prover_training_example(statement: str, header: str, proof: str, weight: float = 1.0,
                            fmt: str = "stp") -> TrainingExample:
    """Prompt as at sampling time; target = the proof without a closing fence (the trainer adds
    EOS)."""
    return TrainingExample(prompt=prover_prompt(statement, header, fmt),
                           target=extract_proof(proof), weight=weight)


def _context(lemma: str, seed_statement: str, seed_proof: str) -> str:
    lemma_text = lemma.strip() or NO_LEMMA
    return (INVOKED_LEMMA + "\n" + lemma_text + "\n" + START_LEMMA_STMT + "\n"
            + (seed_statement + seed_proof).strip() + "\n" + START_THM)


def conjecturer_prompt(lemma: str, seed_statement: str, seed_proof: str,
                       fmt: str = "stp") -> str:
    """The sampling-time conjecturer prompt: lemma (or the `theorem true: True` placeholder when
    empty), the seed theorem with its proof, then the `<hard theorem>` tag.

    "stp" (§3.2): no Lean header, ends in "\\n theorem" (newline, space). "clean": the training
    prompt of §3.3 (header included), ending right after `<hard theorem>`."""
    if check_format(fmt) == "stp":
        return FENCE + _context(lemma, seed_statement, seed_proof) + "\n theorem"
    return PROVER_PROMPT + "\n" + _context(lemma, seed_statement, seed_proof)


def conjecture_stop(fmt: str = "stp") -> tuple[str, ...]:
    check_format(fmt)
    return CONJECTURER_STOP


conjecturer_stop = conjecture_stop


def conjecture_training_example(lemma: str, seed_statement: str, seed_proof: str,
                                conjecture: str, weight: float = 1.0,
                                fmt: str = "stp") -> TrainingExample:
    """§3.3 in both formats: header + context prompt; target = "\\n" + statement + end tag.

    In "stp" this differs from the sampling prompt exactly as the original did; in "clean" the
    prompt equals `conjecturer_prompt(..., "clean")`."""
    check_format(fmt)
    prompt = PROVER_PROMPT + "\n" + _context(lemma, seed_statement, seed_proof)
    return TrainingExample(prompt=prompt, target="\n" + conjecture.strip() + "\n" + END_THM,
                           weight=weight)


def is_conjecture_prompt(prompt: str) -> bool:
    """How the original told conjecturer from prover examples apart in its statistics (§4.9)."""
    return START_THM in prompt
