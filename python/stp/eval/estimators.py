"""pass@k estimators, vectorised over statements.

Two estimators are reported side by side:

* `chunk_pass_at_k` — the original STP `summary.py` estimator, kept so numbers are comparable with
  the paper: sample indices 0..max_iter-1 are cut into floor(max_iter / k) disjoint consecutive
  chunks of k indices; in each chunk a statement counts as solved if any attempt with an index in
  the chunk passed; pass@k is the mean over chunks of the fraction of statements solved, with the
  population standard deviation (ddof 0) over chunks when there are at least 4 chunks. When k does
  not divide max_iter the last max_iter mod k indices are not used for that k (reported as
  `unused_samples`). A record of multiplicity m stands for m attempts sharing its sample index, so
  it occupies one position in one chunk: multiplicity never changes whether a chunk is solved.

* `unbiased_pass_at_k` — per statement 1 - C(n-c, k) / C(n, k) (n attempts, c passing, counting
  multiplicities), averaged over statements, with a bootstrap confidence interval that resamples
  statements. Every sample is used for every k. A statement with 0 < n < k is estimated at k' = n
  (its pass@n, a lower bound of pass@k) and counted in `short_statements`; a statement with n = 0
  counts as unsolved (0).

Both take the statement universe size explicitly, so statements with no attempt at all count as
unsolved rather than silently vanishing from the denominator.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_CHUNKS_FOR_STD = 4
_BOOTSTRAP_CELLS = 4_000_000
_RAGGED_TERMS = 4_000_000


@dataclass(frozen=True)
class ChunkEstimate:
    k: int
    mean: float
    std: float | None  # population std over chunks; None with fewer than 4 chunks
    chunks: int
    unused_samples: int  # max_iter mod k: indices left out of every chunk


@dataclass(frozen=True)
class UnbiasedEstimate:
    k: int
    mean: float
    ci_low: float
    ci_high: float
    short_statements: int  # statements with 0 < n < k (estimated at k = n)


def chunk_pass_at_k(stmt: np.ndarray, sample: np.ndarray, passed: np.ndarray,
                    num_statements: int, k: int, max_iter: int) -> ChunkEstimate | None:
    """The original estimator; None when k > max_iter (not a single full chunk).

    `stmt` are statement indices in [0, num_statements), `sample` the sample indices; attempts
    with sample >= max_iter are ignored."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if num_statements <= 0:
        raise ValueError("the split has no statements")
    n_chunks = max_iter // k
    if n_chunks == 0:
        return None
    used = n_chunks * k
    keep = passed & (sample < used)
    s = stmt[keep].astype(np.int64)
    chunk = sample[keep].astype(np.int64) // k
    # One entry per (statement, chunk) that has at least one passing attempt.
    solved_pairs = np.unique(s * n_chunks + chunk)
    solved_per_chunk = np.bincount(solved_pairs % n_chunks, minlength=n_chunks)
    fractions = solved_per_chunk / num_statements
    std = float(np.std(fractions)) if n_chunks >= MIN_CHUNKS_FOR_STD else None
    return ChunkEstimate(k=k, mean=float(fractions.mean()), std=std, chunks=n_chunks,
                         unused_samples=max_iter - used)


def per_statement_counts(stmt: np.ndarray, passed: np.ndarray, multiplicity: np.ndarray,
                         num_statements: int) -> tuple[np.ndarray, np.ndarray]:
    """(n, c) per statement: attempts and passing attempts, each record weighted by multiplicity."""
    m = multiplicity.astype(np.int64)
    n = np.bincount(stmt, weights=m, minlength=num_statements).astype(np.int64)
    c = np.bincount(stmt, weights=m * passed, minlength=num_statements).astype(np.int64)
    return n, c


def _log_ratio(n: np.ndarray, c: np.ndarray, k: np.ndarray) -> np.ndarray:
    """log(C(n-c, k) / C(n, k)) for n - c >= k, as a sum of log1p terms.

    The ratio equals both prod_{i<k} (1 - c/(n-i)) and prod_{t=1..c} (1 - k/(n-c+t)); the shorter
    product is taken per statement, so the work is sum(min(c, k)) terms and every term is a
    log1p of a value in (-1, 0], which keeps full relative precision even for tiny pass rates
    (a difference of log-gammas of size ~1e5 would lose ~1e-10 in absolute terms). Statements
    are processed in blocks so the ragged term array stays small."""
    use_c = c <= k
    terms = np.where(use_c, c, k).astype(np.int64)
    numer = np.where(use_c, k, c).astype(np.float64)
    out = np.zeros(n.shape[0], dtype=np.float64)
    ends = np.cumsum(terms)
    lo = 0
    while lo < n.shape[0]:
        base = ends[lo - 1] if lo else 0
        hi = int(np.searchsorted(ends, base + _RAGGED_TERMS, side="right"))
        hi = max(hi, lo + 1)
        t = terms[lo:hi]
        total = int(t.sum())
        owner = np.repeat(np.arange(hi - lo), t)
        offset = np.arange(total) - np.repeat(np.cumsum(t) - t, t)
        nn = n[lo:hi][owner]
        den = np.where(use_c[lo:hi][owner], nn - c[lo:hi][owner] + 1 + offset, nn - offset)
        vals = np.log1p(-numer[lo:hi][owner] / den)
        out[lo:hi] = np.bincount(owner, weights=vals, minlength=hi - lo)
        lo = hi
    return out


def unbiased_per_statement(n: np.ndarray, c: np.ndarray, k: int) -> np.ndarray:
    """1 - C(n-c, k') / C(n, k') with k' = min(k, n), per statement; 0 where n = 0.

    The ratio is computed in log space by `_log_ratio` and 1 - exp(x) is taken with expm1, so
    small pass rates keep their relative precision."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = n.astype(np.int64)
    c = c.astype(np.int64)
    if np.any(c > n) or np.any(c < 0):
        raise ValueError("passing attempts must be between 0 and the number of attempts")
    kk = np.minimum(k, n)
    out = np.zeros(n.shape, dtype=np.float64)
    certain = (n > 0) & (n - c < kk)  # every draw of k' samples contains a pass
    out[certain] = 1.0
    mixed = (n > 0) & (c > 0) & ~certain
    if mixed.any():
        nm, cm, km = n[mixed], c[mixed], kk[mixed]
        x = _log_ratio(nm, cm, km)
        out[mixed] = -np.expm1(np.minimum(x, 0.0))
    return out


def unbiased_pass_at_k(n: np.ndarray, c: np.ndarray, ks: list[int], *,
                       resamples: int = 1000, seed: int = 0,
                       confidence: float = 0.95) -> list[UnbiasedEstimate]:
    """The combinatorial estimator for each k, with a percentile bootstrap interval.

    The same resamples serve every k, so the intervals of different k are consistent with each
    other (monotone in k like the means)."""
    num = n.shape[0]
    if num == 0:
        raise ValueError("the split has no statements")
    values = np.stack([unbiased_per_statement(n, c, k) for k in ks], axis=1)  # (S, K)
    means = values.mean(axis=0)
    if resamples > 0:
        boot = np.empty((resamples, len(ks)))
        rng = np.random.default_rng(seed)
        # Resamples are drawn in blocks so the weight matrix stays small for large splits.
        block = max(1, min(resamples, _BOOTSTRAP_CELLS // num))
        for start in range(0, resamples, block):
            size = min(block, resamples - start)
            weights = rng.multinomial(num, np.full(num, 1.0 / num), size=size)
            boot[start:start + size] = (weights @ values) / num  # (B, K)
        alpha = (1.0 - confidence) / 2.0
        low = np.quantile(boot, alpha, axis=0)
        high = np.quantile(boot, 1.0 - alpha, axis=0)
    else:
        low = high = means
    out = []
    for j, k in enumerate(ks):
        short = int(np.count_nonzero((n > 0) & (n < k)))
        out.append(UnbiasedEstimate(k=k, mean=float(means[j]), ci_low=float(low[j]),
                                    ci_high=float(high[j]), short_statements=short))
    return out
