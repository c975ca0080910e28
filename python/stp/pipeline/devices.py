"""Sharing one accelerator between the torch/vLLM sampler and the JAX trainer in one process.

Self-play samples with vLLM (torch) and then trains with Levanter (JAX) in the same process, one
after the other. By default JAX pre-allocates 75 % of the GPU's memory when its backend starts,
which fails, or starves the next round's sampler, when torch still holds its CUDA context and
caching allocator. The training stages therefore call `prepare_for_training()` after closing the
sampler: JAX allocates on demand (`XLA_PYTHON_CLIENT_PREALLOCATE=false`, unless the user set it)
and torch's cached blocks are returned to the driver. Training stays in-process (no subprocess):
the settings are read when JAX's backend starts, which is the first training step of the run.
"""

from __future__ import annotations

import gc
import os
import sys

PREALLOCATE = "XLA_PYTHON_CLIENT_PREALLOCATE"


def prepare_for_training() -> None:
    """Free what the closed sampler left and keep JAX from grabbing the whole device."""
    os.environ.setdefault(PREALLOCATE, "false")
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()
