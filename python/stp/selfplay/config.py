"""Self-play round and final re-training settings; defaults are the paper's (docs/reference.md §4, §9)."""

from __future__ import annotations

from typing import Literal

import msgspec

from stp.model.config import BASE_MODEL, TrainerOverlay
from stp.ranges import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    PositiveUnitFloat,
    UnitFloat,
    UnitFloatBelowOne,
)

# The original's wall clock per self-play proof (RL_step1_generate.py: 200 s, with
# `set_option maxHeartbeats 0`), used by `check_budget = "original"`.
ORIGINAL_PROOF_TIMEOUT_S = 200.0


class SelfPlayConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    rounds: PositiveInt = 12
    # The paper's baselines as settings of the same loop: conjecturing = false is expert iteration
    # (prove the dataset statements only; `RL/run_RL_expert_iter.sh`), train = false is repeated
    # sampling (the model never changes; `RL/run_RL_sampling.sh`).
    conjecturing: bool = True
    train: bool = True
    # How each round's model is trained. "continue": the previous round's model on this round's
    # window (self-play, RL_step2_train.py). "restart": the round-0 model (the SFT model) again,
    # on the final re-training's selection (`retrain.max_proofs_per_statement`,
    # `retrain.length_penalty`) of the correct dataset proofs of every round so far, with the
    # `[selfplay.trainer]` settings: the expert-iteration baseline (run_RL_expert_iter.sh calling
    # RL_step3_final_model.py without synthetic examples).
    round_training: Literal["continue", "restart"] = "continue"
    samples_first_round: PositiveInt = 64
    samples_per_statement: PositiveInt = 32
    # 0 = every dataset statement each round.
    statements_per_round: NonNegativeInt = 0
    # Seeds: solved statements whose best rate exceeds this.
    seed_threshold: UnitFloat = 0.35
    # A conjecture is rewarded when 0 < this-round rate < conjecture_threshold.
    conjecture_threshold: UnitFloat = 0.25
    no_lemma_probability: UnitFloat = 0.5
    # At most this fraction of N pairs per lemma per round.
    lemma_cap_fraction: PositiveUnitFloat = 0.1
    # A conjecture is kept with between min and max samples (min <= max).
    min_conjecture_samples: PositiveInt = 3
    max_conjecture_samples: PositiveInt = 8
    # Solved statements are re-checked with this probability (always if best rate < seed_threshold).
    recheck_probability: UnitFloat = 0.05
    # Unused-lemma conjectures kept: at most max(factor * I, floor).
    no_lemma_factor: NonNegativeInt = 20
    no_lemma_floor: NonNegativeInt = 4096
    elegance_drop_fraction: UnitFloatBelowOne = 0.2
    matching_cap: PositiveFloat = 4.0
    # Prover examples come from statements with window rate <= this.
    prover_rate_max: UnitFloat = 0.5
    window_rounds: PositiveInt = 3
    length_penalty: NonNegativeFloat = 0.001
    time_penalty: NonNegativeFloat = 0.01
    # Each round's changes to [trainer] (empty: the round update is [trainer] itself, 1 epoch at
    # lr 5e-5, at least 5 steps, RL_step2_train.py); max_steps caps a round's steps (0 = none).
    trainer: TrainerOverlay = msgspec.field(default_factory=TrainerOverlay)
    # The model round 0 starts from. Empty: the run's Stage-1 model when pipeline.stages has
    # "sft" (`python -m stp.selfplay` refuses to start without it), else model.name.
    initial_model: str = ""
    # How a self-play proof is judged. "original": the original's budget (no heartbeat limit,
    # 200 s wall clock per proof; RL_step1_generate.py with `set_option maxHeartbeats 0`) under
    # lean.profile, so the reward differs from the original's rule only by the soundness checks;
    # "config": lean.max_heartbeats and verifier.timeout_s as configured.
    check_budget: Literal["original", "config"] = "original"
    # Replay fraction of SFT examples mixed into each round's update (0 = the original).
    sft_replay_fraction: UnitFloatBelowOne = 0.0

    def __post_init__(self) -> None:
        # Checked at load (msgspec reports it with the section), not deep inside a round.
        if self.min_conjecture_samples > self.max_conjecture_samples:
            raise ValueError(
                f"min_conjecture_samples ({self.min_conjecture_samples}) must not exceed "
                f"max_conjecture_samples ({self.max_conjecture_samples})")


class RetrainConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    base_model: str = BASE_MODEL
    max_proofs_per_statement: PositiveInt = 16
    include_conjectures: bool = True
    conjecture_rate_max: UnitFloat = 0.25
    length_penalty: NonNegativeFloat = 0.001
    # The final re-training's changes to [trainer] (RL_step3_final_model.py): lr 1e-4, at least
    # 10 steps, 1 epoch; max_steps caps the steps (0 = none; tests and smoke runs).
    trainer: TrainerOverlay = msgspec.field(
        default_factory=lambda: TrainerOverlay(learning_rate=1e-4, min_steps=10))
    # Self-play run directories whose rounds are merged (empty = run.run_dir).
    merge_from: list[str] = msgspec.field(default_factory=list)
