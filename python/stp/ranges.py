"""Value ranges of configuration fields, written into their types.

A config value outside its range must fail when the config is loaded, naming the key, exactly
like a typo does; found later, it hangs a pool (`pipeline_depth = 0`), loops for minutes on
nothing (`statements_per_round = -5`) or ends in a traceback deep in a library. msgspec checks
`Annotated[..., Meta(...)]` constraints whenever a struct is decoded or converted
(`stp.config.convert`), so writing the range in the field's type is enough. Where a value means
"off" or "auto" (0 = none, 0 = one per CPU, ...) the field's comment says so and the range
includes it.

This module imports nothing from `stp`, so every `*/config.py` can use it.
"""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta

# Every range is finite: `inf` passed `gt=0` (msgspec lets infinity through a lower bound), and a
# count of 10**20 is accepted at load time and then hangs. The upper bounds are the largest values
# that still mean something: a count a machine can hold in a 32-bit index, a duration or scale
# below 10**9 (seconds: 30 years). `nan` fails every comparison, so every bound refuses it.
MAX_COUNT = 2**31 - 1
MAX_SCALE = 1e9

# Counts and sizes that must be at least one (a zero would mean "do nothing forever").
PositiveInt = Annotated[int, Meta(ge=1, le=MAX_COUNT)]
# Counts where 0 has a stated meaning (off / none / auto), never negative.
NonNegativeInt = Annotated[int, Meta(ge=0, le=MAX_COUNT)]
# Durations, rates and scales that must be strictly positive.
PositiveFloat = Annotated[float, Meta(gt=0, le=MAX_SCALE)]
# Penalties, weights and temperatures where 0 is meaningful.
NonNegativeFloat = Annotated[float, Meta(ge=0, le=MAX_SCALE)]
# Probabilities, thresholds and fractions.
UnitFloat = Annotated[float, Meta(ge=0, le=1)]
# Fractions that must keep something (0 would sample, cap or use nothing).
PositiveUnitFloat = Annotated[float, Meta(gt=0, le=1)]
# Fractions that must leave something (1.0 would drop or replace everything).
UnitFloatBelowOne = Annotated[float, Meta(ge=0, lt=1)]
# Random seeds: numpy and JAX accept only non-negative seeds, and JAX (without x64) keeps only the
# low 32 bits of `PRNGKey(seed)`, so seed 2**32 would silently repeat seed 0's stream.
MAX_SEED = 2**32 - 1
Seed = Annotated[int, Meta(ge=0, le=MAX_SEED)]
# Sequences per optimizer step: the paper uses 2048; beyond this a step never finishes.
MAX_BATCH = 65_536
BatchSize = Annotated[int, Meta(ge=1, le=MAX_BATCH)]
# A non-zero training weight below this underflows float32 (5e-324 made the loss infinite).
MIN_TRAINING_WEIGHT = 1e-30
MAX_TRAINING_WEIGHT = 1e30

# The most samples one statement can get (evaluation --samples, self-play sample counts); also
# bounds a log's sample indices and multiplicities, so pass@k arrays stay small (the chunk
# estimator allocates one counter per chunk of max_iter).
MAX_SAMPLES = 1_000_000
SampleCount = Annotated[int, Meta(ge=1, le=MAX_SAMPLES)]

__all__ = ["MAX_BATCH", "MAX_COUNT", "MAX_SAMPLES", "MAX_SCALE", "MAX_SEED",
           "MAX_TRAINING_WEIGHT", "MIN_TRAINING_WEIGHT", "BatchSize", "NonNegativeFloat", "NonNegativeInt", "PositiveFloat", "PositiveInt",
           "PositiveUnitFloat", "SampleCount", "Seed", "UnitFloat", "UnitFloatBelowOne"]
