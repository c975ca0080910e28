"""Self-play round and final re-training settings; defaults are the paper's (reference §4, §9)."""

from __future__ import annotations

import msgspec


class SelfPlayConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    rounds: int = 12
    # The paper's baselines as settings of the same loop: conjecturing = false is expert iteration
    # (prove the dataset statements only; `RL/run_RL_expert_iter.sh`), train = false is repeated
    # sampling (the model never changes; `RL/run_RL_sampling.sh`).
    conjecturing: bool = True
    train: bool = True
    samples_first_round: int = 64
    samples_per_statement: int = 32
    # 0 = every dataset statement each round.
    statements_per_round: int = 0
    # Seeds: solved statements whose best rate exceeds this.
    seed_threshold: float = 0.35
    # A conjecture is rewarded when 0 < this-round rate < conjecture_threshold.
    conjecture_threshold: float = 0.25
    no_lemma_probability: float = 0.5
    # At most this fraction of N pairs per lemma per round.
    lemma_cap_fraction: float = 0.1
    min_conjecture_samples: int = 3
    max_conjecture_samples: int = 8
    # Solved statements are re-checked with this probability (always if best rate < seed_threshold).
    recheck_probability: float = 0.05
    # Unused-lemma conjectures kept: at most max(factor * I, floor).
    no_lemma_factor: int = 20
    no_lemma_floor: int = 4096
    elegance_drop_fraction: float = 0.2
    matching_cap: float = 4.0
    # Prover examples come from statements with window rate <= this.
    prover_rate_max: float = 0.5
    window_rounds: int = 3
    length_penalty: float = 0.001
    time_penalty: float = 0.01
    learning_rate: float = 5e-5
    # Cap on optimizer steps per round (0 = none; the paper's count is max(len // batch, 5)).
    max_train_steps: int = 0
    # Replay fraction of SFT examples mixed into each round's update (0 = the original).
    sft_replay_fraction: float = 0.0


class RetrainConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    base_model: str = "deepseek-ai/DeepSeek-Prover-V1.5-SFT"
    max_proofs_per_statement: int = 16
    include_conjectures: bool = True
    conjecture_rate_max: float = 0.25
    length_penalty: float = 0.001
    learning_rate: float = 1e-4
    min_steps: int = 10
    epochs: float = 1.0
    # Cap on optimizer steps (0 = none; tests and smoke runs).
    max_steps: int = 0
    # Self-play run directories whose rounds are merged (empty = run.run_dir).
    merge_from: list[str] = msgspec.field(default_factory=list)
