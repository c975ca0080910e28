"""Evaluation settings (stp.eval)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta

from stp.lean.protocol import Profile
from stp.ranges import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    SampleCount,
    Seed,
    UnitFloat,
)

# More resamples than this only add time: the interval's Monte-Carlo error is already < 0.1 %.
MAX_BOOTSTRAP = 100_000


class EvalConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Dataset names/splits to evaluate, e.g. "minif2f:test", "proofnet:test", "putnam".
    splits: list[str] = msgspec.field(default_factory=lambda: ["minif2f", "proofnet"])
    samples_per_statement: SampleCount = 3200
    # 0 = every statement of each split; N = only the first N of each split in file order (smoke
    # runs such as configs/tiny-cpu.toml; the log's manifest lists exactly the ones evaluated).
    statements_per_split: NonNegativeInt = 0
    temperature: NonNegativeFloat = 1.0
    seed: Seed = 1
    budgets: list[SampleCount] = msgspec.field(
        default_factory=lambda: [1, 32, 128, 640, 3200, 6400, 25600]
    )
    # Abort summaries when more than this fraction of attempts are infrastructure failures.
    max_system_error_fraction: UnitFloat = 0.01
    # Bootstrap resamples of the pass@k confidence interval (0 = no interval).
    bootstrap_samples: Annotated[int, Meta(ge=0, le=MAX_BOOTSTRAP)] = 1000
    # Prompts sampled per shard of `run`; each shard is verified while the next one samples and
    # is appended to the log as one atomic file, so it is also the unit of resumption.
    shard_size: PositiveInt = 4096
    # Verifier profiles every attempt is judged under, from one sampling run: "strict" (the sound
    # checks; self-play trains on these) and "paper" (what the original counted, comparable with
    # the paper's numbers). The first is the attempt's `status`; summarize reports each. At
    # least one (an empty list fails at load, naming the key).
    profiles: Annotated[list[Profile], Meta(min_length=1)] = msgspec.field(default_factory=lambda: ["strict", "paper"])
