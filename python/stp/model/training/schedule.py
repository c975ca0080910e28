"""Step count and learning-rate schedule of one weighted fine-tuning run (docs/reference.md §4.10, §9).

steps = max(len(dataset) · epochs // batch_size, min_steps); linear warm-up from 0 over
min(steps − 1, warmup_steps) steps, then constant — the schedule Levanter built for the original
(`cosine` with `min_lr_ratio: 1.0` is constant after warm-up).
"""

from __future__ import annotations

import math


def num_train_steps(n_examples: int, epochs: float, batch_size: int, min_steps: int) -> int:
    if n_examples <= 0:
        raise ValueError("no training examples")
    if batch_size <= 0 or epochs <= 0:
        raise ValueError(f"batch_size and epochs must be positive (got {batch_size}, {epochs})")
    return max(math.floor(n_examples * epochs) // batch_size, min_steps, 1)


def warmup_steps(steps: int, warmup: int) -> int:
    return max(0, min(steps - 1, warmup))


def learning_rate_at(step: int, *, learning_rate: float, steps: int, warmup: int) -> float:
    """The rate the optimizer uses at `step` (0-based); mirrors the optax schedule we build."""
    w = warmup_steps(steps, warmup)
    if w and step < w:
        return learning_rate * step / w
    return learning_rate


def optax_schedule(*, learning_rate: float, steps: int, warmup: int):
    import optax

    w = warmup_steps(steps, warmup)
    if w == 0:
        return optax.constant_schedule(learning_rate)
    return optax.join_schedules(
        [optax.linear_schedule(0.0, learning_rate, w), optax.constant_schedule(learning_rate)], [w])
