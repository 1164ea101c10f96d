"""Models: the embedded default checkpoint, loading helpers and tiny random models for tests."""

from .default import (
    DEFAULT_MODEL_NAME,
    EMBEDDED_MODELS,
    GEMMA3_MODEL_NAME,
    default_cache_dir,
    default_model_path,
    embedded_model,
    model_path,
    prepare_default_model,
    prepare_model,
    prepared_model_path,
)
from .loading import (
    DEFAULT_LORA_CONFIG,
    apply_lora,
    load_lora_config,
    load_model,
    load_model_with_adapters,
    load_tokenizer,
    resolve_model_path,
)
from .tiny import REAL_SHAPES, TINY_CONFIGS, random_model, tiny_model

__all__ = [
    "DEFAULT_LORA_CONFIG",
    "DEFAULT_MODEL_NAME",
    "EMBEDDED_MODELS",
    "GEMMA3_MODEL_NAME",
    "embedded_model",
    "model_path",
    "prepare_model",
    "prepared_model_path",
    "REAL_SHAPES",
    "TINY_CONFIGS",
    "apply_lora",
    "default_cache_dir",
    "default_model_path",
    "load_lora_config",
    "load_model",
    "load_model_with_adapters",
    "load_tokenizer",
    "prepare_default_model",
    "resolve_model_path",
    "random_model",
    "tiny_model",
]
