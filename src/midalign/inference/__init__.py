"""Batched, resumable generation over a base model and adapters."""

from .engine import generate_batch, length_sorted_batches, read_done, run_generation
from .templates import build_prompt, paper_format

__all__ = ["build_prompt", "generate_batch", "length_sorted_batches", "paper_format", "read_done", "run_generation"]
