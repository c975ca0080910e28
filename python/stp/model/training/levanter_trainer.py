"""Weighted supervised fine-tuning with Levanter, exported as a Hugging Face checkpoint.

`train_weighted` is the one entry point (stage 1 SFT, every self-play update, the final
re-training). Layout of `out_dir` (local path or gs://):

    settings.json     what this run trains (base, data digest, steps, lr, ...); a rerun with
                      other settings is refused instead of silently mixing two runs
    cache/            tokenised examples (reused by reruns)
    checkpoints/stp/  Levanter trainer checkpoints (model + optimizer + step), for resuming
    metrics.jsonl     one `train_step` line per step (loss, learning rate, tokens)
    hf/               the exported Hugging Face checkpoint (weights + tokenizer)
    train_result.json written last: its presence means the run is finished

Resuming is Levanter's: the trainer state is restored from the newest checkpoint, and the data
loader restarts at that step of the same deterministic plan, so an interrupted run continues
where it stopped and a finished one returns its result without touching anything.

Scaling is Levanter/JAX's too: the batch is sharded over all devices of all hosts (FSDP on the
`embed` axis), `per_device_batch_size` rows per device per micro-step with gradient accumulation
filling the step; multi-host runs start one process per host (Levanter initialises
`jax.distributed` from the TPU or Slurm environment, or from JAX's coordinator settings).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from stp import hub, storage
from stp.errors import FULL_DISK_ERRNOS, ConfigError
from stp.metrics import MetricsWriter, Progress, train_losses
from stp.model.config import ModelConfig, TrainerConfig
from stp.model.location import is_hub_id, local_path
from stp.model.training import schedule
from stp.model.training.data import (
    TokenizedExamples,
    load_examples,
    load_or_tokenize,
    token_cache_path,
)
from stp.model.training.packing import StepPlan, build_row, plan_steps

logger = logging.getLogger(__name__)

RUN_ID = "stp"
RESULT_FILE = "train_result.json"
SETTINGS_FILE = "settings.json"
HF_DIR = "hf"


class TrainResult(msgspec.Struct, kw_only=True):
    hf_path: str
    steps: int
    # Loss of each optimizer step (Σ wᵢ Σ CE / Σ wᵢ|targetᵢ|), across resumes.
    losses: list[float]
    # Target tokens supervised over the whole run (EOS included).
    tokens: int
    # Non-padding tokens processed (prompt + target) over the whole run.
    tokens_processed: int
    examples: int
    truncated_examples: int
    learning_rate: float
    warmup_steps: int
    rows_per_step: int
    seq_len: int
    # Seconds spent in the training loop of the last invocation, and the step it started at.
    seconds: float
    resumed_from_step: int = 0


class TrainingSettingsMismatch(ConfigError):
    """out_dir already holds a run with different settings (one line from every command that
    trains: an `STPError`, so no caller translates it)."""


def train_weighted(base_model: str, examples_path: str, out_dir: str,
                   trainer_cfg: TrainerConfig, model_cfg: ModelConfig, *,
                   learning_rate: float | None = None, min_steps: int | None = None,
                   epochs: float | None = None, max_steps: int | None = None) -> TrainResult:
    """Fine-tune `base_model` (HF id, local dir or gs://) on weighted examples; return the
    Hugging Face export. Resumable and idempotent in `out_dir` (see the module docstring).

    `learning_rate`, `min_steps`, `epochs` override the trainer config (self-play rounds and the
    final re-training use their own); `max_steps` caps the step count (tests, benchmarks).
    With `model.phase_isolation` on, the training runs in a phase process that owns the
    accelerator and has exited (memory released) when this returns (stp.model.phases).

    A full disk is an OSError naming `out_dir` whichever library hit it (tensorstore inside a
    Levanter checkpoint, the Rust tokenizer in the HF export), so every caller (stp.train, the
    self-play train stage, the re-training) ends in one line saying what to free."""
    from stp.model.phases import in_phase_process, isolated, run_isolated

    if isolated(model_cfg.phase_isolation) and not in_phase_process():
        return run_isolated(train_weighted, base_model, examples_path, out_dir, trainer_cfg,
                            model_cfg, learning_rate=learning_rate, min_steps=min_steps,
                            epochs=epochs, max_steps=max_steps)
    try:
        return _train_weighted(base_model, examples_path, out_dir, trainer_cfg, model_cfg,
                               learning_rate=learning_rate, min_steps=min_steps, epochs=epochs,
                               max_steps=max_steps)
    except Exception as err:
        os_error = storage.as_os_error(err, out_dir)
        if os_error is None or os_error is err or os_error.errno not in FULL_DISK_ERRNOS:
            raise
        raise os_error from None


def _train_weighted(base_model: str, examples_path: str, out_dir: str,
                    trainer_cfg: TrainerConfig, model_cfg: ModelConfig, *,
                    learning_rate: float | None, min_steps: int | None,
                    epochs: float | None, max_steps: int | None) -> TrainResult:
    from stp.model.location import check_model

    check_model(base_model, "base model")  # a damaged checkpoint: one line naming the file
    base_model = _resolve_model_path(base_model)
    lr = trainer_cfg.learning_rate if learning_rate is None else learning_rate
    n_min = trainer_cfg.min_steps if min_steps is None else min_steps
    n_epochs = trainer_cfg.epochs if epochs is None else epochs
    if max_steps is None and trainer_cfg.max_steps > 0:
        max_steps = trainer_cfg.max_steps
    tokenizer_name = _resolve_model_path(model_cfg.tokenizer) if model_cfg.tokenizer else base_model
    # Everything that determines the result; a rerun must agree on all of it.
    settings = {
        "base_model": base_model, "tokenizer": tokenizer_name,
        "examples_digest": _digest(examples_path), "learning_rate": lr, "epochs": n_epochs,
        "min_steps": n_min, "max_steps": max_steps, "warmup_steps": trainer_cfg.warmup_steps,
        "batch_size": trainer_cfg.batch_size, "max_seq_len": trainer_cfg.max_seq_len,
        "packing": trainer_cfg.packing, "seed": trainer_cfg.seed, "mp": trainer_cfg.mp,
        "optimizer": [trainer_cfg.weight_decay, trainer_cfg.beta1, trainer_cfg.beta2,
                      trainer_cfg.epsilon, trainer_cfg.max_grad_norm],
        "dtype": model_cfg.dtype}
    _check_settings(out_dir, settings, record=False)
    result_path = storage.join(out_dir, RESULT_FILE)
    if storage.exists(result_path):
        done = storage.read_json(result_path, type=TrainResult)
        if storage.exists(storage.join(done.hf_path, "config.json")):
            logger.info("%s is already trained; returning its export %s", out_dir, done.hf_path)
            return done

    cache_dir = storage.join(out_dir, "cache")
    examples = None
    if not storage.exists(token_cache_path(examples_path, tokenizer_name,
                                           trainer_cfg.max_seq_len, cache_dir)):
        examples = load_examples(examples_path)  # fail on bad data before loading any model
    _check_settings(out_dir, settings, record=True)

    import jax
    from levanter.compat.hf_checkpoints import load_tokenizer

    tokenizer = load_tokenizer(tokenizer_name)
    toks = load_or_tokenize(examples_path, tokenizer, tokenizer_name, trainer_cfg.max_seq_len,
                            cache_dir, examples)
    steps = schedule.num_train_steps(len(toks), n_epochs, trainer_cfg.batch_size, n_min)
    if max_steps is not None:
        steps = min(steps, max_steps)
    warmup = schedule.warmup_steps(steps, trainer_cfg.warmup_steps)

    lev_cfg = _initialize(_levanter_config(trainer_cfg, out_dir))
    micro = lev_cfg.microbatch_size or lev_cfg.data_axis_size
    plan = plan_steps(toks, steps=steps, batch_size=trainer_cfg.batch_size,
                      max_seq_len=trainer_cfg.max_seq_len, packing=trainer_cfg.packing,
                      row_multiple=micro, seed=trainer_cfg.seed)
    lev_cfg = dataclasses.replace(lev_cfg, train_batch_size=plan.rows_per_step,
                                  num_train_steps=steps)

    converter = _converter(base_model, tokenizer)
    model_config = converter.default_config
    optimizer = _optimizer(trainer_cfg, lr, warmup).build(steps)
    micro_steps = max(1, plan.rows_per_step // micro)
    dataset = packed_rows(toks, plan, pad_id=_pad_id(tokenizer), micro_steps=micro_steps)
    metrics = MetricsWriter(storage.join(out_dir, "metrics.jsonl"))
    is_main = jax.process_index() == 0

    from levanter.trainer import Trainer

    with InterruptGuard() as interrupt, \
            Trainer(lev_cfg, optimizer, weighted_loss, add_default_hooks=False) as trainer:
        key = jax.random.PRNGKey(trainer_cfg.seed)

        def load_base():
            return converter.load_pretrained(model_config.model_type, ref=base_model,
                                             config=model_config,
                                             axis_mapping=trainer.parameter_axis_mapping,
                                             dtype=trainer.mp.param_dtype)

        set_aside_torn_checkpoints(storage.join(out_dir, "checkpoints"))
        state = trainer.initial_state(key, model_init=load_base)
        start = int(state.step)
        if start:
            logger.info("resuming %s at step %d of %d", out_dir, start, steps)
            if is_main:
                # Steps >= start logged before the kill are redone; readers keep the later record.
                metrics.log("train_resume", from_step=start, steps=steps)
        checkpointer = lev_cfg.checkpointer.create(trainer.run_id)
        trainer.add_hook(checkpointer.on_step, every=1)
        # Ctrl-C while a checkpoint is being written was swallowed below us (training ran to
        # the end, exit 0); the guard remembers it and raises at the next step boundary.
        trainer.add_hook(lambda info: interrupt.check(checkpointer), every=1)

        def log_step(info) -> None:
            s = int(info.step)  # 0-based index of the step just completed
            if is_main:
                metrics.log("train_step", step=s, loss=float(info.loss),
                            learning_rate=schedule.learning_rate_at(
                                s, learning_rate=lr, steps=steps, warmup=trainer_cfg.warmup_steps),
                            target_tokens=int(_target_tokens(toks, plan.step_examples[s])),
                            tokens=int(toks.lengths[plan.step_examples[s]].sum()),
                            seconds=float(info.step_duration))

        trainer.add_hook(log_step, every=1)
        began = time.monotonic()
        if start < steps:
            # Steps done / total, rate and ETA on a terminal, `progress` events in metrics.jsonl.
            bar = Progress(steps, "train", done=start, unit="steps",
                           enabled=None if is_main else False, metrics=metrics if is_main else None)
            trainer.add_hook(lambda info: bar.update(min(int(info.step) + 1, steps)), every=1)
            loader = trainer.data_loader(dataset).iter_from_step(start)
            with bar:
                info = trainer.train(state, loader)
            state = info.state
        seconds = time.monotonic() - began
        checkpointer.wait_until_finished()
        interrupt.check(checkpointer)
        metrics.close()
        hf_path = storage.join(out_dir, HF_DIR)
        _export(converter, state.model, hf_path, model_cfg.dtype)

    losses = _losses(out_dir, steps)
    all_ids = np.concatenate(plan.step_examples)
    result = TrainResult(
        hf_path=hf_path, steps=steps, losses=losses,
        tokens=int(_target_tokens(toks, all_ids)), tokens_processed=int(toks.lengths[all_ids].sum()),
        examples=len(toks), truncated_examples=toks.truncated, learning_rate=lr,
        warmup_steps=warmup, rows_per_step=plan.rows_per_step, seq_len=plan.seq_len,
        seconds=seconds, resumed_from_step=start)
    if is_main:
        storage.write_json(result_path, result)
    return result


# --------------------------------------------------------------------------------------------
# Loss and data


def weighted_loss(model, batch, *, key=None):
    """Σ over tokens of weight × next-token cross-entropy; the weights already hold wᵢ / D."""
    import haliax as hax
    import jax.numpy as jnp
    from levanter.layers.attention import AttentionMask
    from levanter.models.loss import maybe_fused_next_token_loss

    mask = AttentionMask.causal().with_segment_ids(batch.segment_ids)
    act = model.activations(batch.tokens, mask, key=key, pos_ids=batch.pos_ids)
    aux = 0.0
    if isinstance(act, tuple):
        act, aux = act
    per_token = maybe_fused_next_token_loss(
        model.Pos, model.Embed, model.Vocab, act, model.get_lm_head(), batch.tokens,
        loss_mask=None, reduction=None, dtype=jnp.float32,
        block_size=model.config.cross_entropy_block_size)
    loss = hax.sum(per_token * batch.weights).scalar() + aux
    return loss, {}


def _packed_batch_cls():
    import equinox as eqx
    import haliax as hax

    class PackedBatch(eqx.Module):
        tokens: hax.NamedArray
        weights: hax.NamedArray
        segment_ids: hax.NamedArray
        pos_ids: hax.NamedArray

    return PackedBatch


_PACKED_BATCH = None


def packed_batch_type():
    """The batch module (defined lazily so importing this file does not import JAX)."""
    global _PACKED_BATCH
    if _PACKED_BATCH is None:
        _PACKED_BATCH = _packed_batch_cls()
    return _PACKED_BATCH


def make_row(toks: TokenizedExamples, plan: StepPlan, index: int, pad_id: int,
             micro_steps: int):
    """Row `index` of the plan as a PackedBatch of numpy-backed named arrays."""
    import haliax as hax

    step = index // plan.rows_per_step
    denom = plan.denominators[step]
    scale = micro_steps / denom if denom > 0 else 0.0
    tokens, weights, segs, pos = build_row(toks, plan.rows[index], plan.seq_len, pad_id, scale)
    Pos = hax.Axis("position", plan.seq_len)
    return packed_batch_type()(hax.named(tokens, Pos), hax.named(weights, Pos),
                               hax.named(segs, Pos), hax.named(pos, Pos))


_PACKED_ROWS = None


def packed_rows(toks: TokenizedExamples, plan: StepPlan, *, pad_id: int, micro_steps: int):
    """The plan's rows as a Levanter dataset, built on demand (nothing materialised up front).
    The class is made on first use so that importing this module does not import JAX."""
    global _PACKED_ROWS
    if _PACKED_ROWS is None:
        from levanter.data import AsyncDataset

        class PackedRows(AsyncDataset):
            def __init__(self, toks, plan, pad_id, micro_steps) -> None:
                super().__init__()
                self.toks, self.plan, self.pad_id, self.micro_steps = (toks, plan, pad_id,
                                                                       micro_steps)

            async def async_len(self) -> int:
                return len(self.plan.rows)

            async def final_length_is_known(self) -> bool:
                return True

            def is_finite(self) -> bool:
                return True

            async def current_len(self) -> int:
                return len(self.plan.rows)

            async def get_batch(self, indices: Sequence[int]):
                return [make_row(self.toks, self.plan, i, self.pad_id, self.micro_steps)
                        for i in indices]

        _PACKED_ROWS = PackedRows
    return _PACKED_ROWS(toks, plan, pad_id, micro_steps)


def set_aside_torn_checkpoints(checkpoints: str) -> list[str]:
    """Checkpoints of `checkpoints/<RUN_ID>/` whose `metadata.json` does not parse, with their
    `metadata.json` renamed to `metadata.json.torn`; returns their directories.

    Levanter writes a checkpoint's `metadata.json` last, when every array is committed, but not
    atomically: a kill during that write leaves an empty or cut file, and Levanter's discovery
    of the newest checkpoint then ends the resume in a JSONDecodeError. Such a checkpoint is
    incomplete by Levanter's own rule (no metadata, no checkpoint); without its metadata file it
    is not a checkpoint to Levanter, which resumes from the newest complete one (or the base
    model). The file is kept beside it, not deleted."""
    import datetime
    import json

    run_dir = storage.join(checkpoints, RUN_ID)
    try:
        names = ["", *storage.listdir(run_dir)]  # Levanter also looks at run_dir itself
    except FileNotFoundError:
        return []
    torn = []
    for name in names:
        directory = storage.join(run_dir, name) if name else run_dir
        meta = storage.join(directory, "metadata.json")
        if not storage.exists(meta):
            continue
        data = storage.read_bytes(meta)
        try:
            record = json.loads(data)
            datetime.datetime.fromisoformat(record["timestamp"])
            int(record["step"])
        except (ValueError, KeyError, TypeError):
            storage.write_bytes(meta + ".torn", data)
            storage.remove(meta)
            logger.warning("checkpoint %s was cut while its metadata was written; resuming from "
                           "the newest complete one", directory)
            torn.append(directory)
    return torn


# --------------------------------------------------------------------------------------------
# Configuration, export, bookkeeping


def _levanter_config(cfg: TrainerConfig, out_dir: str):
    import jmp
    from levanter.checkpoint import CheckpointerConfig
    from levanter.distributed import RayConfig
    from levanter.tracker import NoopConfig
    from levanter.trainer import TrainerConfig as LevanterTrainerConfig

    # Levanter insists on a local log directory; a gs:// run keeps its logs in the temp dir.
    log_dir = (Path(tempfile.gettempdir()) / "stp-levanter-logs" if storage.is_gcs(out_dir)
               else Path(out_dir) / "logs")
    return LevanterTrainerConfig(
        seed=cfg.seed, mp=jmp.get_policy(cfg.mp), tracker=NoopConfig(), id=RUN_ID,
        log_dir=log_dir, train_batch_size=-1, per_device_parallelism=cfg.per_device_batch_size,
        checkpointer=CheckpointerConfig(
            base_path=storage.join(out_dir, "checkpoints"),
            save_interval=timedelta(minutes=30),
            keep=[dict(every=max(1, cfg.checkpoint_every_steps))]),
        ray=RayConfig(auto_start_cluster=False), require_accelerator=False,
        log_jaxprs=False, log_xla_hlo=False, shutdown_at_exit=False)


# Hugging Face `model_type` -> Levanter config class (module, name). DeepSeek-Prover-V1.5 is a
# Llama; the others are the decoder families Levanter converts.
_ARCHITECTURES = {
    "llama": ("levanter.models.llama", "LlamaConfig"),
    "mistral": ("levanter.models.mistral", "MistralConfig"),
    "qwen2": ("levanter.models.qwen", "QwenConfig"),
    "qwen3": ("levanter.models.qwen", "Qwen3Config"),
    "gemma": ("levanter.models.gemma", "GemmaConfig"),
    "olmo2": ("levanter.models.olmo", "Olmo2Config"),
}


def _converter(base_model: str, tokenizer):
    """A converter for `base_model` built without Levanter's `from_hf`, which instantiates
    every registered architecture's default Hub checkpoint (a download) to find the class."""
    import importlib

    from levanter.compat.hf_checkpoints import HFCheckpointConverter, _patch_hf_hub_download
    from transformers import AutoConfig

    with _patch_hf_hub_download():
        hf_config = AutoConfig.from_pretrained(base_model)
    entry = _ARCHITECTURES.get(hf_config.model_type)
    if entry is None:
        raise ValueError(f"{base_model}: model_type {hf_config.model_type!r} is not supported for "
                         f"training (supported: {sorted(_ARCHITECTURES)})")
    lev_cls = getattr(importlib.import_module(entry[0]), entry[1])
    return HFCheckpointConverter(lev_cls, reference_checkpoint=base_model,
                                 HfConfigClass=type(hf_config), tokenizer=tokenizer)


_DISTRIBUTED_STARTED = False


def _initialize(lev_cfg):
    """Levanter's start-up (jax.distributed on multi-host clusters, JAX flags, mesh sizes, run id)
    without letting it take over the process's logging, and with jax.distributed started only
    once per process (self-play trains many times in one driver)."""
    import logging

    from levanter.distributed import DistributedConfig

    global _DISTRIBUTED_STARTED
    if _DISTRIBUTED_STARTED:
        lev_cfg = dataclasses.replace(
            lev_cfg, distributed=DistributedConfig(initialize_jax_distributed=False))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        lev_cfg.initialize()
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
    _DISTRIBUTED_STARTED = True
    return lev_cfg


def _optimizer(cfg: TrainerConfig, lr: float, warmup: int):
    """Levanter's Adam with our schedule (Levanter reads `warmup=1` as "100% of the run", so the
    warm-up is given as an explicit optax schedule instead of its fraction-or-steps field)."""
    from levanter.optim import AdamConfig

    @dataclasses.dataclass(frozen=True)
    class _Adam(AdamConfig):
        def lr_scheduler(self, num_train_steps, override_lr=None):
            return schedule.optax_schedule(learning_rate=override_lr or self.learning_rate,
                                           steps=num_train_steps, warmup=warmup)

    return _Adam(learning_rate=lr, weight_decay=cfg.weight_decay, beta1=cfg.beta1,
                 beta2=cfg.beta2, epsilon=cfg.epsilon, max_grad_norm=cfg.max_grad_norm or None,
                 warmup=0.0, min_lr_ratio=1.0, lr_schedule="constant")


class InterruptGuard:
    """Remembers a SIGINT so a library that catches KeyboardInterrupt cannot swallow it.

    The handler records the interrupt and raises KeyboardInterrupt as Python's default does;
    `check` (a step hook, and once after training) raises it again once the checkpoint in flight
    is finished, so Ctrl-C always ends the command with exit 130 and a checkpoint to resume
    from. Only the main thread can install signal handlers; elsewhere the guard does nothing.
    """

    def __init__(self) -> None:
        self.interrupted = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.interrupted = True
        signal.default_int_handler(signum, frame)

    def check(self, checkpointer: Any = None) -> None:
        if self.interrupted:
            if checkpointer is not None:
                with contextlib.suppress(Exception):
                    checkpointer.wait_until_finished()
            raise KeyboardInterrupt

    def __enter__(self) -> InterruptGuard:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, kind: Any, value: Any, tb: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
            self._previous = None
        if self.interrupted and kind is None:
            raise KeyboardInterrupt


def _export(converter, model, hf_path: str, dtype: str) -> None:
    """Write the HF checkpoint; locally via a temporary directory renamed into place."""
    import jax.numpy as jnp

    jdtype = {"bfloat16": jnp.bfloat16, "float16": jnp.float16, "float32": jnp.float32}.get(dtype)
    if jdtype is None:
        raise ValueError(f"model.dtype must be bfloat16, float16 or float32, got {dtype!r}")
    # Record the weights' dtype (loaders default to float32 without it), and drop the
    # encoder-decoder generation keys Levanter adds: transformers would turn
    # `begin_suppress_tokens` into a ban on EOS/BOS/PAD as the first sampled token.
    converter = converter.with_config_overrides(
        {"torch_dtype": dtype, "begin_suppress_tokens": None, "decoder_start_token_id": None})
    if storage.is_gcs(hf_path):
        converter.save_pretrained(model, hf_path, save_tokenizer=True, dtype=jdtype)
        return
    tmp = hf_path + ".tmp"
    if os.path.exists(tmp):
        storage.remove_tree(tmp)
    try:
        converter.save_pretrained(model, tmp, save_tokenizer=True, dtype=jdtype)
    except BaseException:
        # A full disk or a kill mid-export leaves no half-written weights behind; the rerun
        # resumes from the last checkpoint and exports again.
        storage.remove_tree(tmp)
        raise
    if os.path.exists(hf_path):
        storage.remove_tree(hf_path)
    os.replace(tmp, hf_path)


def _resolve_model_path(name: str) -> str:
    """Local checkpoints as absolute paths (Levanter and transformers take a relative name for a
    Hub id and go to the network); a local name must exist. Hub ids and gs:// pass. The rule is
    `stp.model.location`'s, shared with the sampler."""
    if storage.is_gcs(name):
        return name
    if is_hub_id(name):  # the local snapshot at the commit pinned in stp.hub
        return hub.model_snapshot(name)
    local = local_path(name)
    if not os.path.isfile(os.path.join(local, "config.json")) and \
            not os.path.isfile(os.path.join(local, "tokenizer_config.json")):
        raise FileNotFoundError(f"model checkpoint not found: {name} (no config.json there)")
    return local


def _check_settings(out_dir: str, settings: dict, *, record: bool) -> None:
    """Refuse to continue a run made with other settings; `record` writes them for new runs."""
    path = storage.join(out_dir, SETTINGS_FILE)
    if storage.exists(path):
        old = storage.read_json(path)
        if old != settings:
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != settings.get(k))
            raise TrainingSettingsMismatch(
                f"{out_dir} holds a training run with different settings ({', '.join(diff)}); "
                "use a new output directory or delete the old one")
        return
    if record:
        storage.write_json(path, settings)


def _digest(path: str) -> str:
    return hashlib.sha256(storage.read_bytes(path)).hexdigest()[:16]


def _pad_id(tokenizer) -> int:
    for tid in (tokenizer.pad_token_id, tokenizer.eos_token_id, 0):
        if tid is not None:
            return int(tid)
    return 0


def _target_tokens(toks: TokenizedExamples, ids: np.ndarray) -> int:
    return int(toks.n_target[ids].sum())


def _losses(out_dir: str, steps: int) -> list[float]:
    path = storage.join(out_dir, "metrics.jsonl")
    by_step = train_losses(path) if storage.exists(path) else {}
    missing = [s for s in range(steps) if s not in by_step]
    if missing:
        logger.warning("no recorded loss for steps %s of %s", missing, out_dir)
    return [by_step[s] for s in range(steps) if s in by_step]
