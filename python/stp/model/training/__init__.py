"""Weighted supervised fine-tuning (Levanter) and its data pipeline.

`train_weighted` and `TrainResult` are imported lazily: importing this package does not start
JAX, so the CPU-only parts of the system can import the data helpers cheaply."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stp.model.training.levanter_trainer import TrainResult, train_weighted

__all__ = ["TrainResult", "train_weighted"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from stp.model.training import levanter_trainer

        return getattr(levanter_trainer, name)
    raise AttributeError(f"module 'stp.model.training' has no attribute {name!r}")
