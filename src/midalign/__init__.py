"""midalign: middle-layer representation alignment for cross-lingual transfer in fine-tuned LLMs
(Liu & Niehues, ACL 2025), and tools around it.

The public names below are imported on first use (PEP 562), so ``import midalign`` -- and so ``midalign --help`` --
does not load torch and transformers until something needs them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "SCHEDULES": ".training",
    "AlignmentCollator": ".data",
    "AlignmentTrainer": ".training",
    "AlignmentTrainingArguments": ".training",
    "ContrastiveDataMode": ".data",
    "DataArguments": ".training",
    "DataFormatError": ".data",
    "ModelArguments": ".training",
    "alignment_loss": ".alignment",
    "build_dataset": ".data",
    "call_through": ".alignment",
    "default_alignment_layer": ".training",
    "layer_output": ".alignment",
    "num_decoder_layers": ".alignment",
    "pool": ".alignment",
    "retrieval_accuracy": ".alignment",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'midalign' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
