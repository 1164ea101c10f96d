"""Sentence embeddings per layer for any HF decoder (plus adapters), batched, reusing the library's capture code."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from ..alignment import all_layer_outputs, layer_output, num_decoder_layers, pool
from ..inference.engine import encode_batches

__all__ = ["sentence_embeddings"]


@torch.no_grad()
def sentence_embeddings(
    model,
    tokenizer,
    sentences: Sequence[str],
    layers: Sequence[int] | None = None,
    *,
    pooling: str = "mean",
    batch_size: int = 32,
    max_length: int = 256,
    progress: bool = False,
) -> dict[int, torch.Tensor]:
    """Pooled representations of raw sentences (no template) at the given layers.

    ``layers`` uses the library's convention: 0 = embeddings, k = output of decoder layer k (un-normalised).
    ``None`` = every layer 0..L in one forward pass per batch. A single layer k >= 1 runs only layers 1..k.

    Returns:
        {layer: float32 tensor of shape [N, H]} on the CPU.
    """
    n_layers = num_decoder_layers(model)
    layers = list(range(n_layers + 1)) if layers is None else list(layers)
    bad = [k for k in layers if not 0 <= k <= n_layers]
    if bad:
        raise ValueError(f"layers {bad} out of range 0..{n_layers}")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: dict[int, list[torch.Tensor]] = {k: [] for k in layers}
    order: list[int] = []
    batches = list(encode_batches(tokenizer, sentences, batch_size, max_length, device))
    for idx, enc in tqdm(batches, desc="embedding", disable=not progress):
        order += idx
        mask = enc["attention_mask"]
        if len(layers) == 1 and layers[0] >= 1:
            states = {layers[0]: layer_output(model, enc["input_ids"], mask, layers[0])}
        else:
            hs = all_layer_outputs(model, enc["input_ids"], mask)
            states = {k: hs[k] for k in layers}
        for k in layers:
            out[k].append(pool(states[k], mask, pooling).float().cpu())
    if was_training:
        model.train()
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    return {k: torch.cat(v)[inverse] for k, v in out.items()}
