"""Evaluation settings (stp.eval)."""

from __future__ import annotations

import msgspec

from stp.lean.protocol import Profile
from stp.ranges import NonNegativeFloat, NonNegativeInt, PositiveInt, Seed, UnitFloat


class EvalConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Dataset names/splits to evaluate, e.g. "minif2f:test", "proofnet:test", "putnam".
    splits: list[str] = msgspec.field(default_factory=lambda: ["minif2f", "proofnet"])
    samples_per_statement: PositiveInt = 3200
    # 0 = every statement of each split; N = only the first N of each split in file order (smoke
    # runs such as configs/tiny-cpu.toml; the log's manifest lists exactly the ones evaluated).
    statements_per_split: NonNegativeInt = 0
    temperature: NonNegativeFloat = 1.0
    seed: Seed = 1
    budgets: list[PositiveInt] = msgspec.field(
        default_factory=lambda: [1, 32, 128, 640, 3200, 6400, 25600]
    )
    # Abort summaries when more than this fraction of attempts are infrastructure failures.
    max_system_error_fraction: UnitFloat = 0.01
    # Bootstrap resamples of the pass@k confidence interval (0 = no interval).
    bootstrap_samples: NonNegativeInt = 1000
    # Prompts sampled per shard of `run`; each shard is verified while the next one samples and
    # is appended to the log as one atomic file, so it is also the unit of resumption.
    shard_size: PositiveInt = 4096
    # Verifier profiles every attempt is judged under, from one sampling run: "strict" (the sound
    # checks; self-play trains on these) and "paper" (what the original counted, comparable with
    # the paper's numbers). The first is the attempt's `status`; summarize reports each.
    profiles: list[Profile] = msgspec.field(default_factory=lambda: ["strict", "paper"])
