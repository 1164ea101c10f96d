"""Composition of fine-tuned components: weighted sums of LoRA adapters (task arithmetic, negation, language + task
adapters) and composable sparse fine-tuning (sparse differences added to the base weights)."""

from .deltas import add_deltas, freeze_embeddings
from .lora import combine_adapters, read_adapter
from .sparse import SparseDiff, apply_sparse_diffs, restrict_training, sparse_diff

__all__ = [
    "SparseDiff",
    "add_deltas",
    "apply_sparse_diffs",
    "freeze_embeddings",
    "combine_adapters",
    "read_adapter",
    "restrict_training",
    "sparse_diff",
]
