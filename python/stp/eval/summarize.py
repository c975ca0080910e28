"""Per-split pass@k summaries of a loaded log, as JSON-ready dicts and rich tables.

Definitions (docs/eval.md repeats them for users):
* The statements of a split are its universe (see `stp.eval.loading`); a statement with no
  attempt counts as unsolved in both estimators and is listed in `zero_attempt_statements`.
* `--max-iter N` keeps attempts with sample index < N for both estimators; by default N is the
  largest sample index in the split + 1.
* n per statement = sum of multiplicities of its kept attempts (varies per statement when a run
  was interrupted or attempts were lost); the unbiased estimator uses each statement's own n, the
  chunk estimator uses max_iter.
* k runs over the configured budgets up to max(max_iter, largest n); an estimator that cannot
  give a value at some k reports null there.
* Infrastructure failures are attempts with status error/timeout/memory/crash (original logs:
  `system_errors` or no `complete`), counted with multiplicity.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stp.errors import UsageError
from stp.eval import log as evlog
from stp.eval.estimators import (
    ChunkEstimate,
    UnbiasedEstimate,
    chunk_pass_at_k,
    per_statement_counts,
    unbiased_pass_at_k,
)
from stp.eval.loading import LoadedLog

DEFAULT_BUDGETS: tuple[int, ...] = (1, 32, 128, 640, 3200, 6400, 25600)
_MAX_LISTED = 50


@dataclass
class SplitSummary:
    split: str
    statements: int
    statements_source: str
    records: int
    attempts: int
    solved: int
    max_iter: int
    n_min: int
    n_max: int
    n_mean: float
    zero_attempt_statements: list[str]
    system_errors: int
    by_status: dict[str, int]
    ks: list[int]
    chunk: list[ChunkEstimate | None]
    unbiased: list[UnbiasedEstimate | None]
    bootstrap_resamples: int
    outside_records: int = 0  # attempts of this split whose statement is not in the universe
    zero_attempt_count: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def system_error_fraction(self) -> float:
        return self.system_errors / self.attempts if self.attempts else 0.0

    def to_json(self) -> dict[str, Any]:
        rows = []
        for k, ch, ub in zip(self.ks, self.chunk, self.unbiased, strict=True):
            rows.append({"k": k,
                         "chunk": None if ch is None else {
                             "mean": ch.mean, "std": ch.std, "chunks": ch.chunks,
                             "unused_samples": ch.unused_samples},
                         "unbiased": None if ub is None else {
                             "mean": ub.mean, "ci_low": ub.ci_low, "ci_high": ub.ci_high,
                             "short_statements": ub.short_statements}})
        return {
            "split": self.split, "statements": self.statements,
            "statements_source": self.statements_source,
            "records": self.records, "attempts": self.attempts, "solved": self.solved,
            "max_iter": self.max_iter,
            "n": {"min": self.n_min, "max": self.n_max, "mean": self.n_mean},
            "zero_attempt_count": self.zero_attempt_count,
            "zero_attempt_statements": self.zero_attempt_statements,
            "outside_records": self.outside_records,
            "system_errors": {"count": self.system_errors,
                              "fraction": self.system_error_fraction,
                              "by_status": self.by_status},
            "bootstrap_resamples": self.bootstrap_resamples,
            "pass_at_k": rows, "notes": self.notes,
        }


def select_splits(available: list[str], wanted: list[str] | None) -> list[str]:
    """Splits matching `wanted`: a full label ("minif2f:test") or a dataset name ("miniF2F"),
    case-insensitively. Order follows `available`."""
    if not wanted:
        return list(available)
    chosen = []
    for split in available:
        dataset = split.partition(":")[0].lower()
        if any(w.lower() in (split.lower(), dataset) for w in wanted):
            chosen.append(split)
    if not chosen:
        raise UsageError(f"no split matches {', '.join(wanted)}; the log has: "
                         + (", ".join(available) or "(no splits)"))
    return chosen


def summarize_split(loaded: LoadedLog, split: str, *, budgets: tuple[int, ...] = DEFAULT_BUDGETS,
                    max_iter: int | None = None, resamples: int = 1000,
                    seed: int = 0) -> SplitSummary:
    cols = loaded.columns
    members = loaded.universe[split]
    num = int(members.shape[0])
    if num == 0:
        raise UsageError(f"{loaded.path}: split {split} has no statements")
    # Position of each statement inside this split's universe (-1: not a member).
    position = np.full(len(cols.statement_ids), -1, dtype=np.int64)
    position[members] = np.arange(num)
    split_idx = cols.splits.index(split) if split in cols.splits else -1
    in_split = cols.split == split_idx
    pos = position[cols.stmt[in_split]]
    inside = pos >= 0
    outside_records = int(np.count_nonzero(~inside))
    stmt = pos[inside]
    sample = cols.sample[in_split][inside]
    status = cols.status[in_split][inside]
    mult = cols.multiplicity[in_split][inside]
    observed_max = int(sample.max()) + 1 if sample.size else 0
    limit = observed_max if max_iter is None else max_iter
    if limit < observed_max:
        keep = sample < limit
        stmt, sample, status, mult = stmt[keep], sample[keep], status[keep], mult[keep]
    passed = status == evlog.PASS_CODE
    n, c = per_statement_counts(stmt, passed, mult, num)
    zero = np.flatnonzero(n == 0)
    zero_ids = [cols.statement_ids[members[i]] for i in zero[:_MAX_LISTED]]
    by_status = {}
    for code, name in enumerate(evlog.STATUSES):
        total = int(mult[status == code].sum())
        if total:
            by_status[name] = total
    infra = np.isin(status, list(evlog.INFRA_CODES))
    attempts = int(mult.sum())
    top = max(limit, int(n.max()) if n.size else 0)
    ks = [k for k in budgets if k <= top]
    chunk = [chunk_pass_at_k(stmt, sample, passed, num, k, limit) for k in ks]
    n_max = int(n.max())
    ub_ks = [k for k in ks if k <= n_max]
    ub = unbiased_pass_at_k(n, c, ub_ks, resamples=resamples, seed=seed) if ub_ks else []
    ub_by_k = {e.k: e for e in ub}
    notes = []
    if loaded.universe_source.get(split) == "log":
        notes.append("statements listed from the log itself: zero-attempt statements unknown")
    if outside_records:
        notes.append(f"{outside_records} records of statements outside the split's statement "
                     "list were ignored")
    return SplitSummary(
        split=split, statements=num, statements_source=loaded.universe_source.get(split, "log"),
        records=int(stmt.shape[0]), attempts=attempts, solved=int(np.count_nonzero(c > 0)),
        max_iter=limit, n_min=int(n.min()), n_max=n_max, n_mean=float(n.mean()),
        zero_attempt_statements=zero_ids, zero_attempt_count=int(zero.shape[0]),
        system_errors=int(mult[infra].sum()), by_status=by_status, ks=ks, chunk=chunk,
        unbiased=[ub_by_k.get(k) for k in ks], bootstrap_resamples=resamples,
        outside_records=outside_records, notes=notes)


def summarize_log(loaded: LoadedLog, splits: list[str] | None = None, **kwargs: Any
                  ) -> list[SplitSummary]:
    chosen = select_splits(sorted(loaded.universe), splits)
    return [summarize_split(loaded, split, **kwargs) for split in chosen]


@dataclass
class SystemErrorCheck:
    count: int
    attempts: int
    threshold: float

    @property
    def fraction(self) -> float:
        return self.count / self.attempts if self.attempts else 0.0

    @property
    def exceeded(self) -> bool:
        return self.fraction > self.threshold

    def message(self) -> str:
        return (f"{self.count} of {self.attempts} attempts ({100 * self.fraction:.2f} %) are "
                f"infrastructure failures (error/timeout/memory/crash), above the "
                f"{100 * self.threshold:.2f} % limit (eval.max_system_error_fraction); the "
                "numbers understate the prover. Fix the verifier set-up and re-run, or pass "
                "--allow-system-errors to accept them")


def check_system_errors(summaries: list[SplitSummary], threshold: float) -> SystemErrorCheck:
    return SystemErrorCheck(count=sum(s.system_errors for s in summaries),
                            attempts=sum(s.attempts for s in summaries), threshold=threshold)


def summaries_json(loaded: LoadedLog, summaries: list[SplitSummary]) -> dict[str, Any]:
    """{split: summary} — one object per split, like the original's {split: [[k, mean, std]]}."""
    return {s.split: {**s.to_json(), "log": loaded.path, "format": loaded.format,
                      "label": loaded.label} for s in summaries}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def render_tables(loaded: LoadedLog, summaries: list[SplitSummary], console: Any) -> None:
    """Readable rich tables: one per split, both estimators side by side, percentages."""
    from rich.table import Table

    for note in loaded.notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    for s in summaries:
        title = (f"{s.split} — {s.statements} statements ({s.statements_source}), "
                 f"{s.attempts} attempts, n per statement {s.n_min}..{s.n_max}, "
                 f"max_iter {s.max_iter}, solved at least once {s.solved}")
        table = Table(title=title, title_justify="left")
        table.add_column("k", justify="right")
        table.add_column("pass@k % (chunks, paper)", justify="right")
        table.add_column("± std", justify="right")
        table.add_column("chunks", justify="right")
        table.add_column("pass@k % (unbiased)", justify="right")
        table.add_column("95% CI (bootstrap)", justify="right")
        for k, ch, ub in zip(s.ks, s.chunk, s.unbiased, strict=True):
            table.add_row(
                str(k),
                "—" if ch is None else _pct(ch.mean),
                "—" if ch is None or ch.std is None else _pct(ch.std),
                "—" if ch is None else (str(ch.chunks) + (f" (+{ch.unused_samples} unused)"
                                                         if ch.unused_samples else "")),
                "—" if ub is None else _pct(ub.mean) + ("*" if ub.short_statements else ""),
                "—" if ub is None else f"[{_pct(ub.ci_low)}, {_pct(ub.ci_high)}]",
            )
        console.print(table)
        if any(ub is not None and ub.short_statements for ub in s.unbiased):
            console.print("  * some statements have fewer than k attempts; they are estimated "
                          "at k = their n (a lower bound)")
        if s.zero_attempt_count:
            shown = ", ".join(s.zero_attempt_statements[:10])
            more = s.zero_attempt_count - min(10, len(s.zero_attempt_statements))
            console.print(f"  [yellow]{s.zero_attempt_count} statements have no attempt "
                          f"(counted unsolved):[/yellow] {shown}"
                          + (f" … and {more} more" if more > 0 else ""))
        if s.system_errors:
            parts = ", ".join(f"{k} {v}" for k, v in s.by_status.items()
                              if k in ("error", "timeout", "memory", "crash"))
            console.print(f"  infrastructure failures: {s.system_errors} "
                          f"({100 * s.system_error_fraction:.2f} %): {parts}")
        for note in s.notes:
            console.print(f"  note: {note}")


# ---------------------------------------------------------------------------------------------
# Verifier profiles side by side (logs judged under several profiles, see stp.eval.run)


@dataclass
class ProfileRejections:
    """Attempts that pass under `lenient` but not under `strict`, and the strict reasons."""

    strict: str
    lenient: str
    attempts: int = 0
    statements: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"strict": self.strict, "lenient": self.lenient, "attempts": self.attempts,
                "statements": self.statements, "reasons": self.reasons,
                "examples": self.examples}


class RejectionTally:
    """Counts, batch by batch, the `lenient`-passes that the `strict` profile rejects; fed by
    the same read that builds the columns (`load_log_profiles(observe=tally.add)`)."""

    def __init__(self, strict: str = "strict", lenient: str = "paper") -> None:
        self.strict, self.lenient = strict, lenient
        self.by_split: dict[str, ProfileRejections] = {}
        self._statements: dict[str, set[str]] = {}

    def add(self, records: list[Any]) -> None:
        strict, lenient = self.strict, self.lenient
        for a in records:
            verdicts = a.verdicts
            if not verdicts or verdicts.get(lenient) != "pass" or verdicts.get(
                    strict, "pass") == "pass":
                continue
            rej = self.by_split.get(a.split)
            if rej is None:
                rej = self.by_split[a.split] = ProfileRejections(strict, lenient)
            rej.attempts += a.multiplicity
            for reason in a.reasons.get(strict) or [verdicts[strict]]:
                rej.reasons[reason] = rej.reasons.get(reason, 0) + a.multiplicity
            seen = self._statements.setdefault(a.split, set())
            if a.statement_id not in seen:
                seen.add(a.statement_id)
                if len(rej.examples) < 5:
                    rej.examples.append(a.statement_id)
            rej.statements = len(seen)

    def result(self, splits: list[str] | None = None) -> dict[str, ProfileRejections]:
        """Per split (only `splits`, when given), in the order splits were first rejected."""
        return {k: v for k, v in self.by_split.items() if not splits or k in splits}


def profile_rejections(path: str, strict: str = "strict", lenient: str = "paper",
                       splits: list[str] | None = None) -> dict[str, ProfileRejections]:
    """Per split: how many `lenient`-passes the `strict` profile rejects, counted by the strict
    checker's reasons (one attempt can have several), with a few statement ids as examples."""
    tally = RejectionTally(strict, lenient)
    for batch in _attempt_batches(path):
        tally.add(batch)
    return tally.result(splits)


def _attempt_batches(path: str) -> Iterator[list[evlog.Attempt]]:
    batch: list[evlog.Attempt] = []
    for a in evlog.iter_attempts(path):
        batch.append(a)
        if len(batch) >= 4096:
            yield batch
            batch = []
    if batch:
        yield batch


def render_profiles(by_profile: dict[str, list[SplitSummary]],
                    rejections: dict[str, ProfileRejections], console: Any) -> None:
    """One table per split: pass@k under each profile side by side (chunk estimator as the
    paper reported it, and the unbiased one), then what the strict profile rejected and why."""
    from rich.table import Table

    profiles = list(by_profile)
    first = by_profile[profiles[0]]
    for i, s in enumerate(first):
        table = Table(title=f"{s.split} — pass@k % by verifier profile ({s.statements} "
                            f"statements, max_iter {s.max_iter})", title_justify="left")
        table.add_column("k", justify="right")
        for p in profiles:
            table.add_column(f"{p} (chunks)", justify="right")
            table.add_column(f"{p} (unbiased)", justify="right")
        for j, k in enumerate(s.ks):
            row = [str(k)]
            for p in profiles:
                other = by_profile[p][i]
                ch = other.chunk[j] if j < len(other.chunk) else None
                ub = other.unbiased[j] if j < len(other.unbiased) else None
                row += ["—" if ch is None else _pct(ch.mean), "—" if ub is None else _pct(ub.mean)]
            table.add_row(*row)
        console.print(table)
        solved = ", ".join(f"{p} {by_profile[p][i].solved}" for p in profiles)
        console.print(f"  solved at least once: {solved}")
        rej = rejections.get(s.split)
        if rej is not None and rej.attempts:
            why = ", ".join(f"{r} {n}" for r, n in sorted(rej.reasons.items(),
                                                          key=lambda kv: -kv[1]))
            console.print(f"  {rej.strict} rejects {rej.attempts} {rej.lenient}-passing attempts "
                          f"({rej.statements} statements, e.g. {', '.join(rej.examples)}): {why}")
        elif rej is not None or len(profiles) > 1:
            console.print("  every paper-passing attempt also passes strict")
