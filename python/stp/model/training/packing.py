"""Which examples go into which optimizer step and which row, and the per-token loss weights.

`batch_size` keeps the original's meaning: examples per optimizer step (docs/reference.md §4.10), so steps, epochs
and learning rates transfer unchanged. Throughput comes from packing: the examples of a step are
placed first-fit-decreasing into rows of `seq_len` tokens (separate attention segments and
positions restarting at 0, so packed examples never see each other), instead of one padded row
per example. Every step gets the same number of rows (the maximum any step needs, rounded to the
micro-batch size) so the training step compiles once; spare rows carry zero weight.

The weighted loss of a step is Σᵢ wᵢ Σ_t CEᵢₜ / Σᵢ wᵢ|targetᵢ| (§4.10). Its denominator is known
before the step runs, so it is folded into per-token weights wᵢ / D (times the number of
micro-batches, because Levanter averages micro-batch losses) and the loss becomes a plain
weighted sum that gradient accumulation and data parallelism add up exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from stp.model.training.data import TokenizedExamples


@dataclass
class StepPlan:
    """rows[s * rows_per_step + r] = example ids packed in row r of step s."""

    rows: list[list[int]]
    rows_per_step: int
    seq_len: int
    # Σ wᵢ|targetᵢ| of each step (the loss denominator).
    denominators: np.ndarray
    # Example ids of each step, in order (for bookkeeping and tests).
    step_examples: list[np.ndarray]

    @property
    def steps(self) -> int:
        return len(self.step_examples)


def example_order(n: int, total: int, seed: int) -> np.ndarray:
    """`total` example ids: one shuffled pass after another (a fresh permutation per epoch)."""
    parts: list[np.ndarray] = []
    epoch = 0
    while sum(len(p) for p in parts) < total:
        parts.append(np.random.default_rng([seed, epoch]).permutation(n))
        epoch += 1
    return np.concatenate(parts)[:total] if parts else np.zeros(0, dtype=np.int64)


def _first_fit_decreasing(ids: np.ndarray, lengths: np.ndarray, capacity: int) -> list[list[int]]:
    rows: list[list[int]] = []
    free: list[int] = []
    for i in sorted(ids.tolist(), key=lambda k: -int(lengths[k])):
        need = int(lengths[i])
        for r, space in enumerate(free):
            if space >= need:
                rows[r].append(i)
                free[r] -= need
                break
        else:
            rows.append([i])
            free.append(capacity - need)
    return rows


def plan_steps(toks: TokenizedExamples, *, steps: int, batch_size: int, max_seq_len: int,
               packing: bool, row_multiple: int, seed: int) -> StepPlan:
    lengths = toks.lengths
    longest = int(lengths.max()) if len(lengths) else 1
    # Rows need not be longer than the longest example when that is shorter than the limit.
    seq_len = min(max_seq_len, _round_up(longest, 64)) if not packing else max_seq_len
    order = example_order(len(toks), steps * batch_size, seed)
    step_rows: list[list[list[int]]] = []
    step_examples = []
    denominators = np.zeros(steps, dtype=np.float64)
    for s in range(steps):
        ids = order[s * batch_size:(s + 1) * batch_size]
        step_examples.append(ids)
        denominators[s] = float(np.sum(toks.weights[ids] * toks.n_target[ids]))
        if packing:
            step_rows.append(_first_fit_decreasing(ids, lengths, seq_len))
        else:
            step_rows.append([[int(i)] for i in ids])
    rows_per_step = _round_up(max(len(r) for r in step_rows), row_multiple)
    rows: list[list[int]] = []
    for r in step_rows:
        rows.extend(r + [[] for _ in range(rows_per_step - len(r))])
    return StepPlan(rows, rows_per_step, seq_len, denominators, step_examples)


def build_row(toks: TokenizedExamples, ids: Sequence[int], seq_len: int, pad_id: int,
              scale: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(tokens, weights, segment_ids, pos_ids) of one row.

    weights[p] is the weight of predicting token p+1 from position p: `scale * wᵢ` for every
    target token of example i (its first target token and its EOS included), else 0. Padding is
    segment -1 at weight 0."""
    tokens = np.full(seq_len, pad_id, dtype=np.int32)
    weights = np.zeros(seq_len, dtype=np.float32)
    segments = np.full(seq_len, -1, dtype=np.int32)
    positions = np.zeros(seq_len, dtype=np.int32)
    at = 0
    for seg, i in enumerate(ids):
        ex = toks.example(i)
        n = len(ex)
        tokens[at:at + n] = ex
        segments[at:at + n] = seg
        positions[at:at + n] = np.arange(n)
        n_tgt = int(toks.n_target[i])
        # Target tokens occupy [at+n-n_tgt, at+n); each is predicted from the position before.
        weights[at + n - n_tgt - 1:at + n - 1] = scale * toks.weights[i]
        at += n
    return tokens, weights, segments, positions


def _round_up(x: int, multiple: int) -> int:
    return -(-x // multiple) * multiple
