"""Tiny random decoder LMs built from config (for tests and CPU experiments)."""

from __future__ import annotations

import torch

__all__ = ["TINY_CONFIGS", "tiny_model"]

_COMMON = dict(
    hidden_size=32,
    intermediate_size=64,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=8,
    max_position_embeddings=256,
)
# model_type -> extra config kwargs
TINY_CONFIGS: dict[str, dict] = {
    "llama": {},
    "qwen2": {},
    "qwen3": {},
    "mistral": {"sliding_window": None},
    "gemma2": {"query_pre_attn_scalar": 8, "sliding_window": 16},
    "gemma3_text": {"query_pre_attn_scalar": 8, "sliding_window": 16, "sliding_window_pattern": 2},
}


def tiny_model(model_type: str = "llama", *, vocab_size: int = 512, num_layers: int = 4, seed: int = 0, **kwargs):
    """A randomly initialised ``AutoModelForCausalLM`` of ``model_type`` with a few layers, in eval mode."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if model_type not in TINY_CONFIGS:
        raise ValueError(f"no tiny config for {model_type!r}; known: {sorted(TINY_CONFIGS)}")
    config = AutoConfig.for_model(
        model_type,
        vocab_size=vocab_size,
        num_hidden_layers=num_layers,
        **{**_COMMON, **TINY_CONFIGS[model_type], **kwargs},
    )
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config).eval()
