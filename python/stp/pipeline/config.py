"""Stage-1 SFT and whole-pipeline settings (stp.pipeline); defaults are the original's recipe
(`RL/run_SFT.sh` with `levanter/config/sft.yaml`)."""

from __future__ import annotations

from typing import Literal

import msgspec

from stp.model.config import BASE_MODEL, TrainerOverlay
from stp.ranges import PositiveInt

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
    # Stage 1's changes to [trainer] (RL/run_SFT.sh, sft.yaml): 115 steps x 2048 sequences, lr
    # 1e-4, 20 linear warm-up steps, then constant. min_steps = max_steps = 0 trains `epochs`
    # epochs instead (the released model: 1 epoch on STP_Lean_0320).
    trainer: TrainerOverlay = msgspec.field(default_factory=lambda: TrainerOverlay(
        learning_rate=1e-4, warmup_steps=20, batch_size=2048, min_steps=115, max_steps=115))


class PipelineConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Which stages `python -m stp.pipeline` runs, in this order; each is skipped when done."""

    stages: list[Stage] = msgspec.field(default_factory=lambda: list(ALL_STAGES))
    # Where the SFT, re-training and evaluation outputs go inside run.run_dir (self-play's
    # rounds live at the run directory's top level, as with `python -m stp.selfplay`).
    eval_dir: str = "eval"
    # Alternation: blocks of `selfplay.rounds` self-play rounds, each followed by a final
    # re-training from `retrain.base_model` on every block so far; the next block's self-play
    # starts from that re-trained model. Block 0 lives at the run directory's top level (its
    # rounds and `retrain/`), block b > 0 in `block-<b>/`. The paper's final version (65.0 %
    # miniF2F-test, 51.3B generated tokens) alternated; the earlier one (61.1 %, 19.8B) ran one
    # block; docs/selfplay.md#alternation has the numbers behind the value 2.
    blocks: PositiveInt = 2
