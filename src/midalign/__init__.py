"""midalign: middle-layer representation alignment for cross-lingual transfer in fine-tuned LLMs
(Liu & Niehues, ACL 2025), and tools around it."""

from .alignment import alignment_loss, call_through, layer_output, num_decoder_layers, pool, retrieval_accuracy
from .data import AlignmentCollator, ContrastiveDataMode, DataFormatError, build_dataset
from .training import (
    SCHEDULES,
    AlignmentTrainer,
    AlignmentTrainingArguments,
    DataArguments,
    ModelArguments,
    default_alignment_layer,
)

__version__ = "0.1.0"

__all__ = [
    "SCHEDULES",
    "AlignmentCollator",
    "AlignmentTrainer",
    "AlignmentTrainingArguments",
    "ContrastiveDataMode",
    "DataArguments",
    "DataFormatError",
    "ModelArguments",
    "alignment_loss",
    "build_dataset",
    "call_through",
    "default_alignment_layer",
    "layer_output",
    "num_decoder_layers",
    "pool",
    "retrieval_accuracy",
]
