"""Composition of fine-tuned components: weighted sums of LoRA adapters (task arithmetic, negation, language + task
adapters) and composable sparse fine-tuning (sparse differences added to the base weights)."""

from .lora import combine_adapters, read_adapter
from .sparse import SparseDiff, apply_sparse_diffs, restrict_training, sparse_diff

__all__ = ["SparseDiff", "apply_sparse_diffs", "combine_adapters", "read_adapter", "restrict_training", "sparse_diff"]
