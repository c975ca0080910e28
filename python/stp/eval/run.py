"""Generate-and-test on benchmark splits: sample k proofs per statement, verify, log every attempt.

Work is cut into shards of `eval.shard_size` prompts. Shard i is verified (in a background thread)
while shard i+1 is sampled, and appended to the log as one atomically written file once its
verdicts are in. A restarted run reads the (statement id, sample index) pairs already logged and
samples only the rest, so a crash loses at most the shards in flight.

Every request carries its own seed derived from (eval seed, statement id, sample index): repeated
prompts never collapse to identical samples (the original shared one seed per call), and a resumed
run draws exactly the samples the interrupted one would have drawn.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from stp import storage
from stp.backends import Backends
from stp.config import STPConfig, resolve_data_dir
from stp.data import Statement, load_dataset
from stp.errors import UsageError
from stp.eval import log as evlog
from stp.model.types import Sampler, SampleRequest
from stp.verify.types import BatchVerifier, VerifyItem, VerifyResult

if TYPE_CHECKING:
    from stp.metrics import MetricsWriter
    from stp.verify import Verifier

logger = logging.getLogger(__name__)

_SEED_MASK = (1 << 63) - 1
_MAX_ERRORS = 5
_MAX_ERROR_CHARS = 500


def derive_seed(eval_seed: int, statement_id: str, sample: int) -> int:
    """A 63-bit seed unique to (eval seed, statement, sample index), stable across runs."""
    digest = hashlib.blake2b(f"{eval_seed}\x00{statement_id}\x00{sample}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "little") & _SEED_MASK


def load_splits(specs: Sequence[str], data_dir: str | Path | None, limit: int = 0
                ) -> dict[str, list[Statement]]:
    """{"dataset:split": statements} for specs like "minif2f:test" or "putnam" (all splits);
    `limit` > 0 keeps the first `limit` statements of each split."""
    out: dict[str, list[Statement]] = {}
    for spec in specs:
        dataset, sep, split = spec.partition(":")
        dataset = dataset.strip().lower()
        if not dataset or (sep and not split):
            raise UsageError(f"split {spec!r} should look like dataset:split, e.g. minif2f:test")
        for rec in load_dataset(dataset, data_dir, split=split or None):
            out.setdefault(f"{dataset}:{rec.split}", []).append(rec)
    if limit > 0:
        out = {split: recs[:limit] for split, recs in out.items()}
    return out


@dataclass
class RunSettings:
    model: str
    splits: list[str]
    samples: int
    out: str
    seed: int
    temperature: float
    top_p: float
    max_tokens: int
    prompt_format: str
    shard_size: int
    # Resume a log whose manifest records other sampling settings (recorded per shard).
    allow_changed_settings: bool = False


# Manifest fields that change what is sampled or how it is judged: a resume must match them.
RESULT_FIELDS = ("model", "seed", "temperature", "top_p", "max_tokens", "prompt_format",
                 "profiles")


def settings_from_config(cfg: STPConfig, *, model: str | None, splits: list[str] | None,
                         samples: int | None, out: str,
                         allow_changed_settings: bool = False) -> RunSettings:
    settings = RunSettings(
        model=model or cfg.model.name, splits=list(splits or cfg.eval.splits),
        samples=samples if samples is not None else cfg.eval.samples_per_statement, out=out,
        seed=cfg.eval.seed, temperature=cfg.eval.temperature, top_p=cfg.sampler.top_p,
        max_tokens=cfg.sampler.max_tokens, prompt_format=cfg.model.prompt_format,
        shard_size=cfg.eval.shard_size, allow_changed_settings=allow_changed_settings)
    # `samples` (--samples: count_arg(1, ...), eval.samples_per_statement: SampleCount) and
    # `shard_size` (PositiveInt) are in range by type; `splits` may be an empty --splits.
    if not settings.splits:
        raise UsageError("no splits to evaluate (--splits or eval.splits)")
    return settings


def _reconcile_manifest(settings: RunSettings, statements: dict[str, list[Statement]],
                        profiles: list[str] | None = None) -> evlog.Manifest:
    """The manifest to write: a new one, or the existing one extended by new splits/samples.

    Resuming with a different model or sampling settings would mix two experiments in one log,
    so that is refused in one line naming every changed field, unless
    `settings.allow_changed_settings`: then the manifest takes the new values and records the
    change with the first shard written under them (`stp.settings_guard`)."""
    from stp import settings_guard as guard

    fresh = evlog.Manifest(model=settings.model, seed=settings.seed,
                           temperature=settings.temperature, top_p=settings.top_p,
                           max_tokens=settings.max_tokens,
                           prompt_format=settings.prompt_format, samples=settings.samples,
                           splits={k: [s.id for s in v] for k, v in statements.items()},
                           profiles=list(profiles or []))
    old = evlog.read_manifest(settings.out) if storage.exists(settings.out) else None
    if old is None:
        return fresh
    recorded = {name: getattr(old, name) for name in RESULT_FIELDS
                if getattr(old, name) is not None}
    changes = guard.changed(recorded, {name: getattr(fresh, name) for name in RESULT_FIELDS})
    if changes and not settings.allow_changed_settings:
        guard.refuse(settings.out, changes, "log")
    splits = dict(old.splits)
    for split, ids in fresh.splits.items():
        if split in splits and splits[split] != ids:
            raise UsageError(f"{settings.out}: the statements of {split} differ from the ones "
                             "this log was started with (dataset changed?); use a new --out")
        splits[split] = ids
    history = list(old.changes)
    if changes:
        history.append({"from_shard": len(storage.list_shards(settings.out, evlog.SHARD_PREFIX)),
                        "changed": guard.json_safe(changes)})
    return msgspec.structs.replace(fresh, samples=max(old.samples, fresh.samples),
                                   splits=splits, changes=history)


@dataclass
class RunResult:
    planned: int
    skipped: int
    written: int
    by_status: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    # Attempts left without a verdict (not logged; a rerun redoes them).
    unverified: int = 0


def _errors_of(result: VerifyResult) -> list[str]:
    texts = list(result.reasons)
    texts += [f"{m.line}:{m.column}: {m.text}" for m in result.errors]
    if result.detail:
        texts.append(result.detail)
    return [t[:_MAX_ERROR_CHARS] for t in texts[:_MAX_ERRORS]]


Verifiers = Mapping[str, BatchVerifier]


def run_eval(settings: RunSettings, statements: dict[str, list[Statement]], *,
             sampler: Sampler, verifier: BatchVerifier | Verifiers,
             prompt: Callable[[Statement], str], extract: Callable[[str], str],
             retries: int = 1, max_unverified_fraction: float = 0.005,
             metrics: MetricsWriter | None = None) -> RunResult:
    """Sample, verify and log every missing (statement, sample) pair of `statements`.

    `verifier` is a `stp.verify.Verifier` (anything with `verify_all(items)`), or a mapping
    profile -> verifier ({"strict": ..., "paper": ...}): each attempt is then judged by every
    profile from the one sample, its `status` is the first profile's verdict and `verdicts` holds
    all of them. `prompt` builds the prover prompt of a statement and `extract` turns a
    completion into the proof text. Attempts that got no verdict under some profile after
    `retries` re-verifications are not logged (a rerun redoes exactly those); above
    `max_unverified_fraction` of this run's attempts the run fails with one line."""
    from stp.verify.runner import NO_VERDICT, ShardRunner, check_outage, verify_with_retries

    start = time.monotonic()
    verifiers: dict[str, BatchVerifier] = (dict(verifier) if isinstance(verifier, Mapping)
                                           else {"": verifier})
    if not verifiers:
        raise UsageError("no verifier profile to evaluate with (eval.profiles is empty)")
    profiles = [p for p in verifiers if p]
    manifest = _reconcile_manifest(settings, statements, profiles)
    evlog.write_manifest(settings.out, manifest)
    done = evlog.done_keys(settings.out)
    # Sample-major order: an interrupted run leaves every statement with about the same n.
    work: list[tuple[str, Statement, int]] = []
    total = 0
    for sample in range(settings.samples):
        for split, recs in statements.items():
            for rec in recs:
                total += 1
                if (rec.id, sample) not in done:
                    work.append((split, rec, sample))
    result = RunResult(planned=total, skipped=total - len(work), written=0)
    logger.info("%d attempts planned, %d already in %s, %d to do", total, result.skipped,
                settings.out, len(work))
    if not work:
        return result
    writer = evlog.AttemptLog(settings.out)
    prompts: dict[str, str] = {}
    shards = [work[lo:lo + settings.shard_size]
              for lo in range(0, len(work), settings.shard_size)]
    Sampled = tuple[list[str], list[int]]

    def draw(index: int) -> Sampled:
        shard = shards[index]
        seeds = [derive_seed(settings.seed, rec.id, k) for _, rec, k in shard]
        requests = []
        for (_, rec, _), seed in zip(shard, seeds, strict=True):
            text = prompts.get(rec.id)
            if text is None:
                text = prompts[rec.id] = prompt(rec)
            requests.append(SampleRequest(prompt=text, seed=seed, n=1,
                                          temperature=settings.temperature,
                                          top_p=settings.top_p, max_tokens=settings.max_tokens))
        completions = sampler.generate(requests)
        if len(completions) != len(requests):
            raise RuntimeError(f"sampler returned {len(completions)} results for "
                               f"{len(requests)} requests")
        return [extract(c[0]) if c else "" for c in completions], seeds

    def store(index: int, sampled: Sampled) -> int:
        shard = shards[index]
        proofs, seeds = sampled
        items = [VerifyItem(statement=rec.statement, proof=proof, header=rec.header,
                            name=rec.name) for (_, rec, _), proof in zip(shard, proofs,
                                                                        strict=True)]
        verdicts = {profile: verify_with_retries(v.verify_all, items, retries)[0]
                    for profile, v in verifiers.items()}
        attempts = []
        for i, ((split, rec, k), proof, seed) in enumerate(zip(shard, proofs, seeds,
                                                               strict=True)):
            judged = {profile: results[i] for profile, results in verdicts.items()}
            if any(v.status in NO_VERDICT for v in judged.values()):
                # Resume policy "resample" (`stp.verify.runner`): not logged, so a rerun
                # samples (the same seed, the same proof) and verifies it again.
                result.unverified += 1
                continue
            main = next(iter(judged.values()))
            attempts.append(evlog.Attempt(
                statement_id=rec.id, split=split, sample=k, status=main.status, proof=proof,
                seconds=main.seconds, errors=_errors_of(main), seed=seed,
                verdicts={p: v.status for p, v in judged.items() if p},
                reasons={p: list(v.reasons) for p, v in judged.items() if p and v.reasons}))
        writer.append(attempts)
        result.written += len(attempts)
        result.by_status.update(a.status for a in attempts)
        logger.info("logged %d attempts (%d/%d)", len(attempts), result.written, len(work))
        return len(shard)

    ShardRunner("eval", draw, store, metrics=metrics, event={"out": settings.out}).run(
        0, len(shards), total, result.skipped)
    result.seconds = time.monotonic() - start
    check_outage(f"evaluation {settings.out}", result.unverified, len(work),
                 max_unverified_fraction)
    return result


def profile_config(cfg: STPConfig, profile: str) -> STPConfig:
    """`cfg` with `lean.profile` set. A profile other than strict gets its own verdict cache
    (`<cache>-<profile>`), so the two profiles never answer from each other's verdicts."""
    from stp.verify.service import cache_directory

    verifier = cfg.verifier
    # The strict profile's cache as the verifier resolves it (local even for a gs:// run
    # directory, whose cache lives under ~/.cache), so the other profiles' sit beside it.
    base = cache_directory(cfg)
    if profile != "strict" and base is not None:
        verifier = msgspec.structs.replace(verifier, cache_dir=f"{base}-{profile}")
    return msgspec.structs.replace(cfg, lean=msgspec.structs.replace(cfg.lean, profile=profile),
                                   verifier=verifier)


def make_components(cfg: STPConfig, settings: RunSettings, backends: Backends
                    ) -> tuple[Sampler, dict[str, Verifier], Callable[[Statement], str],
                               Callable[[str], str]]:
    """The sampler of `settings.model` and one verifier per `eval.profiles` entry, from
    `backends` (the pipeline passes its own bundle, so evaluation is wired in exactly one
    place), and the prompt functions for `settings`."""
    from stp.lean.toolchain import checker_command
    from stp.model.prompts import extract_proof, prover_prompt

    checker_command(cfg.lean)  # fail before the model loads when Lean is missing
    fmt = settings.prompt_format
    sampler = backends.sampler(settings.model)
    verifiers: dict[str, Verifier] = {}
    try:
        for profile in cfg.eval.profiles:
            verifiers[profile] = backends.verifier(profile_config(cfg, profile))
    except BaseException:
        close_all(verifiers)
        sampler.close()
        raise

    def prompt(rec: Statement) -> str:
        return prover_prompt(rec.statement, rec.header, fmt)

    return sampler, verifiers, prompt, extract_proof


def record_checkers(cfg: STPConfig, out: str) -> None:
    """Write `<log>/checker.json`: the checker of every profile this run judges with, named in
    the first lines of `summarize` and of the pipeline report."""
    from stp.verify.identity import describe_checker, write_record

    write_record(out, {f"eval {p}": describe_checker(profile_config(cfg, p))
                       for p in cfg.eval.profiles})


def close_all(verifiers: Mapping[str, Verifier]) -> None:
    for v in verifiers.values():
        v.close()


def run_from_config(cfg: STPConfig, settings: RunSettings, *, data_dir: str | None = None,
                    metrics: MetricsWriter | None = None,
                    backends: Backends | None = None) -> RunResult:
    """Evaluate `settings.model` on `settings.splits` with `backends` (default: the production
    bundle of `cfg`)."""
    root = resolve_data_dir(cfg.run.data_dir, data_dir)
    statements = load_splits(settings.splits, root, cfg.eval.statements_per_split)
    sampler, verifiers, prompt, extract = make_components(
        cfg, settings, backends if backends is not None else Backends.from_config(cfg))
    record_checkers(cfg, settings.out)
    try:
        return run_eval(settings, statements, sampler=sampler, verifier=verifiers,
                        prompt=prompt, extract=extract,
                        retries=cfg.verifier.unverified_retries,
                        max_unverified_fraction=cfg.verifier.max_unverified_fraction,
                        metrics=metrics)
    finally:
        close_all(verifiers)
        sampler.close()
