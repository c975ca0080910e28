"""Model identity, prompt format, sampling and training settings (stp.model)."""

from __future__ import annotations

import msgspec


class ModelConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Hugging Face id, local directory or gs:// path of the starting checkpoint.
    name: str = "deepseek-ai/DeepSeek-Prover-V1.5-SFT"
    # Tokenizer to use; empty = the model's own.
    tokenizer: str = ""
    # "stp": byte-identical to the released STP model's formats; "clean": one consistent format.
    prompt_format: str = "stp"
    # Prompts longer than this are left-truncated (the original used 1024).
    max_prompt_tokens: int = 1024
    # Prompt + completion context of the sampler, as the original's engine: a completion gets
    # max_model_len - prompt tokens (capped by sampler.max_tokens). Raise it to give long prompts
    # room, at the cost of comparability with the paper.
    max_model_len: int = 1024
    dtype: str = "bfloat16"


class SamplerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # "vllm" on GPUs/TPUs (production), "hf" (transformers on CPU) for tests and tiny runs.
    backend: str = "vllm"
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 1024
    # One engine per `tensor_parallel_size` accelerators; 0 engines = as many as fit.
    tensor_parallel_size: int = 1
    num_engines: int = 0
    gpu_memory_utilization: float = 0.85
    # Prompts handed to an engine at once (generation is streamed shard by shard).
    shard_size: int = 65_536
    # Embedding of statements for the re-weighting (mean of the last hidden layer).
    embed_max_tokens: int = 512
    embed_batch_size: int = 12


class TrainerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    learning_rate: float = 5e-5
    # Warm-up steps = min(steps - 1, warmup_steps); constant learning rate afterwards.
    warmup_steps: int = 5
    # Sequences per optimizer step.
    batch_size: int = 2048
    # Sequences per device per micro-step (gradient accumulation fills the batch).
    per_device_batch_size: int = 8
    epochs: float = 1.0
    min_steps: int = 5
    # Longer examples keep the first token and the last max_seq_len - 1 tokens.
    max_seq_len: int = 2048
    # Pack several short examples into one sequence (no cross-attention between them).
    packing: bool = True
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.95
    epsilon: float = 1e-5
    max_grad_norm: float = 1.0
    # Levanter mixed precision policy.
    mp: str = "p=f32,c=bfloat16"
    checkpoint_every_steps: int = 50
    seed: int = 0
