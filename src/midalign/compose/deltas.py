"""Add stored differences (LoRA adapters or sparse differences) to a model's weights, in order."""

from __future__ import annotations

import os

__all__ = ["add_deltas", "freeze_embeddings"]


def add_deltas(model, paths: list[str] | None):
    """``model`` with each difference in ``paths`` added to its weights: a LoRA adapter directory (merged with
    peft, so its ``ΔW = s·BA`` lands in the weights) or a sparse-difference file (:class:`SparseDiff`). Returns the
    plain model (the adapters' wrappers are unloaded)."""
    from .sparse import SparseDiff, apply_sparse_diffs

    for path in paths or []:
        if os.path.isdir(path):
            if not os.path.isfile(os.path.join(path, "adapter_config.json")):
                raise FileNotFoundError(f"{path}: a directory without adapter_config.json (not a LoRA adapter)")
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, path).merge_and_unload()
        elif os.path.isfile(path):
            apply_sparse_diffs(model, [SparseDiff.load(path)])
        else:
            raise FileNotFoundError(f"{path}: no such adapter directory or sparse-difference file")
    return model


def freeze_embeddings(model) -> None:
    """Input embeddings and LM head (the same tensor when tied) stop training."""
    for module in (model.get_input_embeddings(), model.get_output_embeddings()):
        if module is not None:
            module.weight.requires_grad_(False)
