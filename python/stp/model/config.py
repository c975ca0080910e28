"""Model identity, prompt format, sampling and training settings (stp.model)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from stp.model.prompts import Format as PromptFormat
from stp.ranges import (
    BatchSize,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PositiveUnitFloat,
    Seed,
    UnitFloatBelowOne,
)

# The paper's starting checkpoint (docs/reference.md §1): the model Stage 1 fine-tunes, the
# default of `model.name`, and the re-training and expert-iteration base. Defined once here.
BASE_MODEL = "deepseek-ai/DeepSeek-Prover-V1.5-SFT"

# Where accelerator phases run (stp.model.phases): their own processes, the driver, or auto.
PhaseIsolation = Literal["auto", "process", "inline"]
# Sampling engines: "vllm" on GPUs/TPUs (production), "hf" (transformers on CPU) for tests and
# tiny runs; stp.model.sampling.make_sampler handles each.
SamplerBackend = Literal["vllm", "hf"]
# Weight dtypes of a checkpoint as loaded (`model.dtype`).
ModelDtype = Literal["bfloat16", "float16", "float32", "auto"]


class ModelConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Hugging Face id, local directory or gs:// path of the starting checkpoint.
    name: str = BASE_MODEL
    # Tokenizer to use; empty = the model's own.
    tokenizer: str = ""
    # "stp": byte-identical to the released STP model's formats; "clean": one consistent format.
    prompt_format: PromptFormat = "stp"
    # Prompts longer than this are left-truncated (the original used 1024).
    max_prompt_tokens: PositiveInt = 1024
    # Prompt + completion context of the sampler, as the original's engine: a completion gets
    # max_model_len - prompt tokens (capped by sampler.max_tokens). Raise it to give long prompts
    # room, at the cost of comparability with the paper.
    max_model_len: PositiveInt = 1024
    # "auto" (the checkpoint's own) is understood by the samplers only, not by training.
    dtype: ModelDtype = "bfloat16"
    # Accelerator phases (sampling, training, embedding) each in a process of their own that
    # owns the device and frees it by exiting ("process"), or one after the other in the
    # driver ("inline"); "auto" = process when the machine has a GPU/TPU (stp.model.phases).
    phase_isolation: PhaseIsolation = "auto"


class SamplerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "vllm" on GPUs/TPUs (production), "hf" (transformers on CPU) for tests and tiny runs.
    backend: SamplerBackend = "vllm"
    # 0 = greedy decoding.
    temperature: NonNegativeFloat = 1.0
    top_p: PositiveUnitFloat = 1.0
    max_tokens: PositiveInt = 1024
    # One engine per `tensor_parallel_size` accelerators; 0 engines = as many as fit.
    tensor_parallel_size: PositiveInt = 1
    num_engines: NonNegativeInt = 0
    # vLLM's share of the device; the rest holds the embedding backbone during the embedding
    # step (~14 GiB for a 7B model in bfloat16: 0.8 leaves 16 GiB of an 80 GiB GPU).
    gpu_memory_utilization: PositiveUnitFloat = 0.8
    # Prompts handed to an engine at once (generation is streamed shard by shard).
    shard_size: PositiveInt = 65_536
    # Embedding of statements for the re-weighting (mean of the last hidden layer).
    embed_max_tokens: PositiveInt = 512
    embed_batch_size: PositiveInt = 12


# The jmp policies Levanter training works with (free text used to fail only at training time).
MixedPrecision = Literal["p=f32,c=bfloat16", "p=f32,c=bf16", "p=f32,c=float16", "p=f32,c=f16",
                         "p=f32,c=f32", "p=f32", "p=bf16,c=bf16", "p=bfloat16,c=bfloat16"]


class TrainerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """The training settings every stage starts from. A pipeline stage trains with these values
    overlaid by its own `[<stage>.trainer]` table (`stp.config.stage_trainer`); the
    defaults here are the self-play rounds' (RL_step2_train.py), and `python -m stp.train` uses
    them as they are."""

    learning_rate: PositiveFloat = 5e-5
    # Warm-up steps = min(steps - 1, warmup_steps); constant learning rate afterwards.
    warmup_steps: NonNegativeInt = 5
    # Sequences per optimizer step.
    batch_size: BatchSize = 2048
    # Sequences per device per micro-step (gradient accumulation fills the batch).
    per_device_batch_size: BatchSize = 8
    epochs: PositiveFloat = 1.0
    # At least this many optimizer steps (0 = as many as the data gives, but never fewer than 1).
    min_steps: NonNegativeInt = 5
    # At most this many optimizer steps (0 = no cap; min_steps = max_steps fixes the count).
    max_steps: NonNegativeInt = 0
    # Longer examples keep the first token and the last max_seq_len - 1 tokens.
    max_seq_len: Annotated[int, Meta(ge=2, le=1_048_576)] = 2048
    # Pack several short examples into one sequence (no cross-attention between them).
    packing: bool = True
    weight_decay: NonNegativeFloat = 0.0
    beta1: UnitFloatBelowOne = 0.9
    beta2: UnitFloatBelowOne = 0.95
    epsilon: PositiveFloat = 1e-5
    # Gradient clipping norm (0 = no clipping).
    max_grad_norm: NonNegativeFloat = 1.0
    # Levanter mixed precision policy (jmp.get_policy): parameters / compute dtypes.
    mp: MixedPrecision = "p=f32,c=bfloat16"
    checkpoint_every_steps: PositiveInt = 50
    seed: Seed = 0


class TrainerOverlay(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, omit_defaults=True):
    """A stage's changes to `[trainer]` (`[sft.trainer]`, `[selfplay.trainer]`,
    `[retrain.trainer]`): a key left out (None) keeps the `[trainer]` value. Only the settings
    the original varied between its stages can be overlaid; the rest are `[trainer]`'s alone."""

    learning_rate: PositiveFloat | None = None
    warmup_steps: NonNegativeInt | None = None
    batch_size: PositiveInt | None = None
    epochs: PositiveFloat | None = None
    min_steps: NonNegativeInt | None = None
    max_steps: NonNegativeInt | None = None
