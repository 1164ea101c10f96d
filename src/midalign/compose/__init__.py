"""Composition of fine-tuned components: weighted sums of LoRA adapters (task arithmetic, negation,
language + task adapters)."""

from .lora import combine_adapters, read_adapter

__all__ = ["combine_adapters", "read_adapter"]
