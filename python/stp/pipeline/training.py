"""One story for training settings: `[trainer]` is what every stage starts from, and each stage
that trains changes it only through its own overlay (`[sft.trainer]`, `[selfplay.trainer]`,
`[retrain.trainer]`). `stage_trainer` is the one place the two are combined; every stage trains
with its result and nothing else (`train_kwargs` turns it into `train_weighted`'s arguments).

A setting that would have no effect is a configuration error naming the key
(`check_training_settings`, run by `stp.config.load_config`):

- a `[trainer]` key that every stage's overlay replaces (the old configs set
  `trainer.learning_rate` next to three stage learning rates, and it was used nowhere);
- an overlay's `epochs` where that stage's step count is fixed (min_steps = max_steps > 0);
- a `[selfplay.trainer]` key when `selfplay.train = false` (repeated sampling never trains).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import msgspec

from stp.model.config import TrainerConfig, TrainerOverlay

if TYPE_CHECKING:
    from stp.config import STPConfig

TrainingStage = Literal["sft", "selfplay", "retrain"]
TRAINING_STAGES: tuple[TrainingStage, ...] = ("sft", "selfplay", "retrain")


def stage_overlay(cfg: STPConfig, stage: TrainingStage) -> TrainerOverlay:
    section: Any = getattr(cfg, stage)
    overlay: TrainerOverlay = section.trainer
    return overlay


def stage_trainer(cfg: STPConfig, stage: TrainingStage) -> TrainerConfig:
    """`[trainer]` with `stage`'s overlay applied: the settings `stage` trains with."""
    changes = {k: v for k, v in msgspec.structs.asdict(stage_overlay(cfg, stage)).items()
               if v is not None}
    return msgspec.structs.replace(cfg.trainer, **changes)


def train_kwargs(trainer: TrainerConfig) -> dict[str, Any]:
    """The step-count and learning-rate arguments of `train_weighted` for resolved settings."""
    out: dict[str, Any] = {"learning_rate": trainer.learning_rate,
                           "min_steps": trainer.min_steps, "epochs": trainer.epochs}
    if trainer.max_steps > 0:
        out["max_steps"] = trainer.max_steps
    return out


def _fixed_steps(trainer: TrainerConfig) -> bool:
    return trainer.max_steps > 0 and trainer.min_steps >= trainer.max_steps


def check_training_settings(cfg: STPConfig, tree: dict[str, Any]) -> str:
    """The first training key in the raw config `tree` (file, `extends` chain and overrides)
    that would have no effect, as a message naming it; empty when there is none."""
    base = tree.get("trainer")
    overlays = {stage: stage_overlay(cfg, stage) for stage in TRAINING_STAGES}
    if isinstance(base, dict):
        for key in TrainerOverlay.__struct_fields__:
            if key in base and all(getattr(o, key) is not None for o in overlays.values()):
                return (f"`trainer.{key}` has no effect: sft.trainer, selfplay.trainer and "
                        f"retrain.trainer all set {key}; set it in the stage it is meant for")
    for stage in TRAINING_STAGES:
        section = tree.get(stage)
        raw = section.get("trainer") if isinstance(section, dict) else None
        if not isinstance(raw, dict):
            continue
        if stage == "selfplay" and not cfg.selfplay.train and raw:
            key = next(iter(raw))
            return (f"`selfplay.trainer.{key}` has no effect: selfplay.train = false (repeated "
                    "sampling never trains)")
        if "epochs" in raw and _fixed_steps(stage_trainer(cfg, stage)):
            t = stage_trainer(cfg, stage)
            return (f"`{stage}.trainer.epochs` has no effect: min_steps = {t.min_steps} and "
                    f"max_steps = {t.max_steps} fix the step count (set both to 0 to train "
                    "by epochs)")
    return ""
