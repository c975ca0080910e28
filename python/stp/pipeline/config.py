"""Stage-1 SFT and whole-pipeline settings (stp.pipeline); defaults are the original's recipe
(`RL/run_SFT.sh` with `levanter/config/sft.yaml`)."""

from __future__ import annotations

from typing import Literal

import msgspec

from stp.model.config import BASE_MODEL
from stp.ranges import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt

Stage = Literal["sft", "selfplay", "retrain", "eval", "report"]
ALL_STAGES: tuple[Stage, ...] = ("sft", "selfplay", "retrain", "eval", "report")


class SFTConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Stage 1: the base model fine-tuned on the SFT set; self-play round 0 starts from it."""

    base_model: str = BASE_MODEL
    # Training examples {prompt, target, weight}: a file (.jsonl, .jsonl.gz, .json), or a dataset
    # name of `python -m stp.data info` ("stp_sft" = the released kfdong/STP_Lean_SFT, split
    # train, the original's data; "stp_0320" = kfdong/STP_Lean_0320, the released model's data);
    # empty = data.sft (`python -m stp.extract sft` output) .
    data: str = "stp_sft"
    # The original: 115 steps x 2048 sequences, lr 1e-4, 20 linear warm-up steps, then constant.
    # steps = 0 trains `epochs` epochs instead (the released model: 1 epoch on STP_Lean_0320).
    steps: NonNegativeInt = 115
    epochs: PositiveFloat = 1.0
    batch_size: PositiveInt = 2048
    learning_rate: NonNegativeFloat = 1e-4
    warmup_steps: NonNegativeInt = 20


class PipelineConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Which stages `python -m stp.pipeline` runs, in this order; each is skipped when done."""

    stages: list[Stage] = msgspec.field(default_factory=lambda: list(ALL_STAGES))
    # Where the SFT, re-training and evaluation outputs go inside run.run_dir (self-play's
    # rounds live at the run directory's top level, as with `python -m stp.selfplay`).
    eval_dir: str = "eval"
