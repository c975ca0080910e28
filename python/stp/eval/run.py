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
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from stp import storage
from stp.config import STPConfig, resolve_data_dir
from stp.data import Statement, load_dataset
from stp.errors import UsageError
from stp.eval import log as evlog
from stp.model.types import Sampler, SampleRequest
from stp.verify.types import VerifyItem, VerifyResult

logger = logging.getLogger(__name__)

_SEED_MASK = (1 << 63) - 1
_MAX_ERRORS = 5
_MAX_ERROR_CHARS = 500


def derive_seed(eval_seed: int, statement_id: str, sample: int) -> int:
    """A 63-bit seed unique to (eval seed, statement, sample index), stable across runs."""
    digest = hashlib.blake2b(f"{eval_seed}\x00{statement_id}\x00{sample}".encode(),
                             digest_size=8).digest()
    return int.from_bytes(digest, "little") & _SEED_MASK


def load_splits(specs: Sequence[str], data_dir: str | Path | None
                ) -> dict[str, list[Statement]]:
    """{"dataset:split": statements} for specs like "minif2f:test" or "putnam" (all splits)."""
    out: dict[str, list[Statement]] = {}
    for spec in specs:
        dataset, sep, split = spec.partition(":")
        dataset = dataset.strip().lower()
        if not dataset or (sep and not split):
            raise UsageError(f"split {spec!r} should look like dataset:split, e.g. minif2f:test")
        for rec in load_dataset(dataset, data_dir, split=split or None):
            out.setdefault(f"{dataset}:{rec.split}", []).append(rec)
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


def settings_from_config(cfg: STPConfig, *, model: str | None, splits: list[str] | None,
                         samples: int | None, out: str) -> RunSettings:
    settings = RunSettings(
        model=model or cfg.model.name, splits=list(splits or cfg.eval.splits),
        samples=samples if samples is not None else cfg.eval.samples_per_statement, out=out,
        seed=cfg.eval.seed, temperature=cfg.eval.temperature, top_p=cfg.sampler.top_p,
        max_tokens=cfg.sampler.max_tokens, prompt_format=cfg.model.prompt_format,
        shard_size=cfg.eval.shard_size)
    if settings.samples < 1:
        raise UsageError(f"--samples must be >= 1, got {settings.samples}")
    if settings.shard_size < 1:
        raise UsageError(f"eval.shard_size must be >= 1, got {settings.shard_size}")
    if not settings.splits:
        raise UsageError("no splits to evaluate (--splits or eval.splits)")
    return settings


def _reconcile_manifest(settings: RunSettings, statements: dict[str, list[Statement]]
                        ) -> evlog.Manifest:
    """The manifest to write: a new one, or the existing one extended by new splits/samples.

    Resuming with a different model or sampling settings would mix two experiments in one log,
    so that is refused."""
    fresh = evlog.Manifest(model=settings.model, seed=settings.seed,
                           temperature=settings.temperature, max_tokens=settings.max_tokens,
                           prompt_format=settings.prompt_format, samples=settings.samples,
                           splits={k: [s.id for s in v] for k, v in statements.items()})
    old = evlog.read_manifest(settings.out) if storage.exists(settings.out) else None
    if old is None:
        return fresh
    for name in ("model", "seed", "temperature", "max_tokens", "prompt_format"):
        if getattr(old, name) != getattr(fresh, name):
            raise UsageError(
                f"{settings.out} holds a run with {name}={getattr(old, name)!r}, not "
                f"{getattr(fresh, name)!r}; resume with the same settings or choose a new --out")
    splits = dict(old.splits)
    for split, ids in fresh.splits.items():
        if split in splits and splits[split] != ids:
            raise UsageError(f"{settings.out}: the statements of {split} differ from the ones "
                             "this log was started with (dataset changed?); use a new --out")
        splits[split] = ids
    return evlog.Manifest(model=old.model, seed=old.seed, temperature=old.temperature,
                          max_tokens=old.max_tokens, prompt_format=old.prompt_format,
                          samples=max(old.samples, fresh.samples), splits=splits)


@dataclass
class RunResult:
    planned: int
    skipped: int
    written: int
    by_status: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0


def _errors_of(result: VerifyResult) -> list[str]:
    texts = list(result.reasons)
    texts += [f"{m.line}:{m.column}: {m.text}" for m in result.errors]
    if result.detail:
        texts.append(result.detail)
    return [t[:_MAX_ERROR_CHARS] for t in texts[:_MAX_ERRORS]]


def run_eval(settings: RunSettings, statements: dict[str, list[Statement]], *,
             sampler: Sampler, verifier: object,
             prompt: Callable[[Statement], str], extract: Callable[[str], str]) -> RunResult:
    """Sample, verify and log every missing (statement, sample) pair of `statements`.

    `verifier` is a `stp.verify.Verifier` (anything with `verify_all(items)`); `prompt` builds the
    prover prompt of a statement and `extract` turns a completion into the proof text."""
    start = time.monotonic()
    manifest = _reconcile_manifest(settings, statements)
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

    def verify_and_write(shard: list[tuple[str, Statement, int]], proofs: list[str],
                         seeds: list[int]) -> None:
        items = [VerifyItem(statement=rec.statement, proof=proof, header=rec.header,
                            name=rec.name) for (_, rec, _), proof in zip(shard, proofs,
                                                                        strict=True)]
        verdicts = verifier.verify_all(items)  # type: ignore[attr-defined]
        attempts = [evlog.Attempt(statement_id=rec.id, split=split, sample=sample,
                                  status=v.status, proof=proof, seconds=v.seconds,
                                  errors=_errors_of(v), seed=seed)
                    for (split, rec, sample), proof, v, seed in zip(shard, proofs, verdicts,
                                                                    seeds, strict=True)]
        writer.append(attempts)
        result.written += len(attempts)
        result.by_status.update(a.status for a in attempts)
        logger.info("logged %d attempts (%d/%d)", len(attempts), result.written, len(work))

    pending: Future[None] | None = None
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="eval-verify") as pool:
        try:
            for lo in range(0, len(work), settings.shard_size):
                shard = work[lo:lo + settings.shard_size]
                seeds = [derive_seed(settings.seed, rec.id, sample) for _, rec, sample in shard]
                requests = []
                for (_, rec, _), seed in zip(shard, seeds, strict=True):
                    text = prompts.get(rec.id)
                    if text is None:
                        text = prompts[rec.id] = prompt(rec)
                    requests.append(SampleRequest(prompt=text, seed=seed, n=1,
                                                  temperature=settings.temperature,
                                                  top_p=settings.top_p,
                                                  max_tokens=settings.max_tokens))
                completions = sampler.generate(requests)
                if len(completions) != len(requests):
                    raise RuntimeError(f"sampler returned {len(completions)} results for "
                                       f"{len(requests)} requests")
                proofs = [extract(c[0]) if c else "" for c in completions]
                if pending is not None:
                    previous, pending = pending, None
                    previous.result()  # surface verification errors before queueing more
                pending = pool.submit(verify_and_write, shard, proofs, seeds)
        except BaseException:
            # Keep what was already sampled when sampling fails or is interrupted: the shard in
            # verification is still written, so a resumed run does not redo it.
            if pending is not None:
                try:
                    pending.result()
                except Exception:
                    logger.exception("verifying the last sampled shard failed as well")
            raise
        if pending is not None:
            pending.result()
    result.seconds = time.monotonic() - start
    return result


def make_components(cfg: STPConfig, settings: RunSettings
                    ) -> tuple[Sampler, object, Callable[[Statement], str], Callable[[str], str]]:
    """The production sampler, verifier and prompt functions for `settings`."""
    from stp.lean.toolchain import checker_command
    from stp.model.prompts import extract_proof, prover_prompt
    from stp.model.sampling import make_sampler
    from stp.verify import make_verifier

    checker_command(cfg.lean)  # fail before the model loads when Lean is missing
    fmt = settings.prompt_format
    model_cfg = cfg.model
    sampler = make_sampler(settings.model, model_cfg, cfg.sampler)
    try:
        verifier = make_verifier(cfg)
    except BaseException:
        sampler.close()
        raise

    def prompt(rec: Statement) -> str:
        return prover_prompt(rec.statement, rec.header, fmt)

    return sampler, verifier, prompt, extract_proof


def run_from_config(cfg: STPConfig, settings: RunSettings, *, data_dir: str | None = None
                    ) -> RunResult:
    root = resolve_data_dir(cfg.run.data_dir, data_dir)
    statements = load_splits(settings.splits, root)
    sampler, verifier, prompt, extract = make_components(cfg, settings)
    try:
        return run_eval(settings, statements, sampler=sampler, verifier=verifier,
                        prompt=prompt, extract=extract)
    finally:
        verifier.close()  # type: ignore[attr-defined]
        sampler.close()
