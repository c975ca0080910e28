"""stp.data: the statement datasets, the STP-released training sets and normalisation.

    load_dataset(name, data_dir=None, split=None) -> list[Statement]
    load_examples(name, data_dir=None, split="train") -> list[TrainingExample]
    list_datasets() -> list[DatasetInfo]
    stp.data.lemmas.load_lemma_dict(path) -> dict[str, str]
"""

from __future__ import annotations

from stp.data.download import DatasetMissingError, DownloadError
from stp.data.lemmas import load_lemma_dict
from stp.data.loaders import DatasetFormatError, load_dataset, load_examples
from stp.data.normalize import Defect, DefectReport
from stp.data.records import Statement, TrainingExample, statement_key
from stp.data.registry import DatasetInfo, get_dataset_info, list_datasets

__all__ = [
    "DatasetFormatError",
    "DatasetInfo",
    "DatasetMissingError",
    "Defect",
    "DefectReport",
    "DownloadError",
    "Statement",
    "TrainingExample",
    "get_dataset_info",
    "list_datasets",
    "load_dataset",
    "load_examples",
    "load_lemma_dict",
    "statement_key",
]
