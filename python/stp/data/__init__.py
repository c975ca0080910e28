"""stp.data: the statement datasets, the STP-released training sets and normalisation.

    load_dataset(name, data_dir=None, split=None) -> list[Statement]
    load_examples(name, data_dir=None, split="train") -> list[TrainingExample]
    list_datasets() -> list[DatasetInfo]
    stp.data.lemmas.load_lemma_dict(path) -> dict[str, str]

Exports are resolved lazily: `stp.config` imports `stp.data.config` while `stp.cli` is still
initialising, so this package must not import `stp.cli` at import time.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "DatasetMissingError": "stp.data.download",
    "DownloadError": "stp.data.download",
    "DatasetFormatError": "stp.data.loaders",
    "load_dataset": "stp.data.loaders",
    "load_examples": "stp.data.loaders",
    "Defect": "stp.data.normalize",
    "DefectReport": "stp.data.normalize",
    "Statement": "stp.data.records",
    "TrainingExample": "stp.data.records",
    "statement_key": "stp.data.records",
    "DatasetInfo": "stp.data.registry",
    "get_dataset_info": "stp.data.registry",
    "list_datasets": "stp.data.registry",
    "load_lemma_dict": "stp.data.lemmas",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'stp.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
