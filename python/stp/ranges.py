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

# Counts and sizes that must be at least one (a zero would mean "do nothing forever").
PositiveInt = Annotated[int, Meta(ge=1)]
# Counts where 0 has a stated meaning (off / none / auto), never negative.
NonNegativeInt = Annotated[int, Meta(ge=0)]
# Durations, rates and scales that must be strictly positive.
PositiveFloat = Annotated[float, Meta(gt=0)]
# Penalties, weights and temperatures where 0 is meaningful.
NonNegativeFloat = Annotated[float, Meta(ge=0)]
# Probabilities, thresholds and fractions.
UnitFloat = Annotated[float, Meta(ge=0, le=1)]
# Fractions that must keep something (0 would sample, cap or use nothing).
PositiveUnitFloat = Annotated[float, Meta(gt=0, le=1)]
# Fractions that must leave something (1.0 would drop or replace everything).
UnitFloatBelowOne = Annotated[float, Meta(ge=0, lt=1)]
# Random seeds (numpy and JAX accept only non-negative seeds).
Seed = Annotated[int, Meta(ge=0)]

__all__ = ["NonNegativeFloat", "NonNegativeInt", "PositiveFloat", "PositiveInt", "PositiveUnitFloat",
           "Seed", "UnitFloat", "UnitFloatBelowOne"]
