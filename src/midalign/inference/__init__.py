"""Batched, resumable generation over a base model and adapters."""

from .engine import PrefixCache, common_prefix_length, generate_batch, length_sorted_batches, read_done, run_generation
from .templates import build_prompt, paper_format

__all__ = [
    "PrefixCache",
    "build_prompt",
    "common_prefix_length",
    "generate_batch",
    "length_sorted_batches",
    "paper_format",
    "read_done",
    "run_generation",
]
