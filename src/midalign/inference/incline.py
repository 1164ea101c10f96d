"""Training-free cross-lingual intervention at inference (INCLINE; Wang, Wu, Haddow & Birch, ACL 2025).

Per decoder layer ``l``, a linear map ``W_l`` is fit by least squares so that the pooled MLP output of a
target-language sentence, times ``W_l``, approximates the one of its English translation (parallel sentences, no
labels, no training). At test time the MLP output ``m`` of every layer at the prompt's last position becomes
``m + σ · m W_l`` during the prefill (the formula of the authors' released code; generated tokens are not touched).
``σ`` is chosen on a dev split. As in that code, the system is under-determined when there are fewer sentences than
hidden units; ``torch.linalg.lstsq`` (``gelsd``) then returns the minimum-norm solution.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import torch

from ..alignment import find_decoder, pool
from .engine import encode_batches

__all__ = ["mlp_modules", "pooled_mlp_outputs", "fit_incline", "incline"]


def mlp_modules(model) -> list[torch.nn.Module]:
    """The MLP block of every decoder layer, first to last."""
    decoder, layout = find_decoder(model)
    layers = getattr(decoder, layout.layers)
    missing = [i for i, layer in enumerate(layers) if not isinstance(getattr(layer, "mlp", None), torch.nn.Module)]
    if missing:
        raise NotImplementedError(f"decoder layers {missing} have no `.mlp` module; INCLINE hooks the MLP outputs")
    return [layer.mlp for layer in layers]


@torch.no_grad()
def pooled_mlp_outputs(
    model,
    tokenizer,
    sentences: Sequence[str],
    batch_size: int = 32,
    pooling: str = "mean_skip_first",
    max_length: int = 256,
) -> torch.Tensor:
    """``[L, N, H]`` float64: per layer, each sentence's MLP outputs pooled over its tokens (padding excluded).

    ``mean_skip_first`` (default) leaves out the first real token: in SmolLM2 and Gemma 3 it is an attention sink
    whose huge activations would dominate a plain mean (README: Pooling), and the maps are applied at a prompt's
    last position, never at the first. ``mean`` is the released INCLINE code's choice (on models without a sink)."""
    modules = mlp_modules(model)
    decoder, _ = find_decoder(model)
    device = next(model.parameters()).device
    captured: list[torch.Tensor] = []
    handles = [m.register_forward_hook(lambda mod, inp, out: captured.append(out)) for m in modules]
    was_training = model.training
    model.eval()
    chunks, order = [], []
    try:
        for idx, enc in encode_batches(tokenizer, sentences, batch_size, max_length, device):
            captured.clear()
            decoder(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"], use_cache=False)  # no LM head
            mask = enc["attention_mask"]
            chunks.append(torch.stack([pool(h.double(), mask, pooling) for h in captured]).cpu())
            order += idx
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    out = torch.empty_like(torch.cat(chunks, 1))
    out[:, torch.tensor(order)] = torch.cat(chunks, 1)
    return out


def fit_incline(
    model,
    tokenizer,
    sentences: Sequence[str],
    english: Sequence[str],
    batch_size: int = 32,
    pooling: str = "mean_skip_first",
):
    """``[L, H, H]`` maps, per layer the least-squares ``W`` with ``pooled(sentences) @ W ≈ pooled(english)``."""
    if len(sentences) != len(english) or not sentences:
        raise ValueError(f"need parallel sentences: {len(sentences)} vs {len(english)}")
    x = pooled_mlp_outputs(model, tokenizer, sentences, batch_size, pooling)
    y = pooled_mlp_outputs(model, tokenizer, english, batch_size, pooling)
    return torch.stack([torch.linalg.lstsq(x[i], y[i], driver="gelsd").solution for i in range(x.shape[0])]).float()


@contextmanager
def incline(model, matrices: torch.Tensor, sigma: float) -> Iterator[None]:
    """Within the block, every forward over more than one position (a prefill) shifts each layer's MLP output at
    the last position by ``σ · m W_l``. Batches must be left-padded (the last position is each prompt's last token),
    and the prompt must be run whole (no prefix cache)."""
    modules = mlp_modules(model)
    if matrices.shape[0] != len(modules):
        raise ValueError(f"{matrices.shape[0]} maps for a model with {len(modules)} decoder layers")

    def make_hook(w: torch.Tensor):
        def hook(mod, inp, out):
            if out.dim() != 3 or out.shape[1] < 2:
                return out
            out = out.clone()
            last = out[:, -1]
            out[:, -1] = last + sigma * (last.float() @ w.to(last.device)).to(last.dtype)
            return out

        return hook

    handles = [m.register_forward_hook(make_hook(matrices[i])) for i, m in enumerate(modules)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
