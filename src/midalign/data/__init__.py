"""Data: JSON-lines readers with validation, tokenization with prompt masking, datasets and the collator."""

from .datasets import AlignmentDataset, Featurizer, StreamingAlignmentDataset, build_dataset
from .jsonl import (
    PAIR_FIELDS,
    TASK_FIELDS,
    ContrastiveDataMode,
    DataFormatError,
    count_rows,
    iter_rows,
    read_rows,
    split_files,
)
from .processing import (
    IGNORE_INDEX,
    PAIR_SIDES,
    AlignmentCollator,
    TargetTooLongError,
    check_task_lengths,
    tokenize_pair,
    tokenize_task,
)

__all__ = [
    "IGNORE_INDEX",
    "TargetTooLongError",
    "check_task_lengths",
    "PAIR_FIELDS",
    "PAIR_SIDES",
    "TASK_FIELDS",
    "AlignmentCollator",
    "AlignmentDataset",
    "ContrastiveDataMode",
    "DataFormatError",
    "Featurizer",
    "StreamingAlignmentDataset",
    "build_dataset",
    "count_rows",
    "iter_rows",
    "read_rows",
    "split_files",
    "tokenize_pair",
    "tokenize_task",
]
