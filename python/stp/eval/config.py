"""Evaluation settings (stp.eval)."""

from __future__ import annotations

import msgspec

from stp.ranges import NonNegativeFloat, NonNegativeInt, PositiveInt, Seed, UnitFloat


class EvalConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Dataset names/splits to evaluate, e.g. "minif2f:test", "proofnet:test", "putnam".
    splits: list[str] = msgspec.field(default_factory=lambda: ["minif2f", "proofnet"])
    samples_per_statement: PositiveInt = 3200
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
