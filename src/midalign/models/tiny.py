"""Tiny random decoder LMs built from config (for tests and CPU experiments)."""

from __future__ import annotations

import torch

__all__ = ["TINY_CONFIGS", "REAL_SHAPES", "tiny_model", "random_model"]

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
    "gemma": {},
    "phi3": {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2},
    "olmo2": {"pad_token_id": 0, "bos_token_id": 1, "eos_token_id": 2},
    "gpt_neox": {"bos_token_id": 1, "eos_token_id": 2},
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


# Full-size shapes of the embedded models (random weights), for benchmarks that must not depend on a download.
REAL_SHAPES: dict[str, dict] = {
    "smollm2": dict(
        model_type="llama",
        vocab_size=49152,
        hidden_size=576,
        intermediate_size=1536,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        tie_word_embeddings=True,
    ),
    "gemma3": dict(
        model_type="gemma3_text",
        vocab_size=262144,
        hidden_size=640,
        intermediate_size=2048,
        num_hidden_layers=18,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=256,
        query_pre_attn_scalar=256,
        sliding_window=512,
        tie_word_embeddings=True,
    ),
}


def random_model(shape: str, *, seed: int = 0, **overrides):
    """A randomly initialised model of one of :data:`REAL_SHAPES` (SmolLM2-135M, Gemma 3 270M), in eval mode."""
    from transformers import AutoConfig, AutoModelForCausalLM

    if shape not in REAL_SHAPES:
        raise ValueError(f"no shape {shape!r}; known: {sorted(REAL_SHAPES)}")
    spec = {**REAL_SHAPES[shape], **overrides}
    config = AutoConfig.for_model(spec.pop("model_type"), **spec)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config).eval()
