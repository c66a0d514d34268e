"""Data: sources, splits, preprocessing, prediction records, class balancing, augmentation.

Importing this package is light: torch is imported only inside `augment_batch`.
"""

from ladder.data.augment import augment_batch
from ladder.data.balance import class_weights, oversample_indices
from ladder.data.dataset import Dataset, Splits
from ladder.data.preprocess import (
    ImagePreprocessor,
    Preprocessor,
    TabularPreprocessor,
    fit_preprocessor,
    preprocessor_from_json,
)
from ladder.data.records import read_records, records_where
from ladder.data.sources import list_builtin_datasets, load_dataset
from ladder.data.splits import describe_data, fingerprint, split_dataset

__all__ = [
    "Dataset",
    "ImagePreprocessor",
    "Preprocessor",
    "Splits",
    "TabularPreprocessor",
    "augment_batch",
    "class_weights",
    "describe_data",
    "fingerprint",
    "fit_preprocessor",
    "list_builtin_datasets",
    "load_dataset",
    "oversample_indices",
    "preprocessor_from_json",
    "read_records",
    "records_where",
    "split_dataset",
]
