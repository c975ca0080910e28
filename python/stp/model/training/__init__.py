"""Weighted supervised fine-tuning (Levanter) and its data pipeline.

`train_weighted` and `TrainResult` are imported lazily: importing this package does not start
JAX, so the CPU-only parts of the system can import the data helpers cheaply."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from stp.model.config import ModelConfig, TrainerConfig
    from stp.model.training.levanter_trainer import TrainResult, train_weighted

__all__ = ["TrainFn", "TrainResult", "train_weighted"]


class TrainFn(Protocol):
    """The seam every training stage calls through: `train_weighted`'s signature (tests pass
    scripted stand-ins with the same shape; their result has TrainResult's fields)."""

    def __call__(self, base_model: str, examples_path: str, out_dir: str,
                 trainer_cfg: TrainerConfig, model_cfg: ModelConfig, *,
                 learning_rate: float | None = None, min_steps: int | None = None,
                 epochs: float | None = None, max_steps: int | None = None) -> TrainResult: ...


def __getattr__(name: str) -> Any:
    if name in __all__:
        from stp.model.training import levanter_trainer

        return getattr(levanter_trainer, name)
    raise AttributeError(f"module 'stp.model.training' has no attribute {name!r}")
