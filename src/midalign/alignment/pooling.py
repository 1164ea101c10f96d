"""Sentence pooling over token representations."""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["POOLING", "pool"]


def _mean(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)  # [B, T, 1]
    counts = mask.sum(dim=1).clamp(min=1.0)  # [B, 1]; an all-padding row pools to zeros, not NaN
    return (hidden * mask).sum(dim=1) / counts


def _mean_skip_first(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    # Many LLMs park massive activations on the first position (an attention sink): in SmolLM2 its norm is ~100x
    # that of other tokens and a plain mean is dominated by it, so every sentence pools to nearly the same
    # direction (cosine ~0.999). Dropping the first real token removes that shared component.
    mask = attention_mask.clone()
    first = attention_mask.to(torch.long).argmax(dim=1)
    rows = torch.arange(mask.shape[0], device=mask.device)
    keep_first = attention_mask.sum(dim=1) <= 1  # a one-token sentence keeps its only token
    mask[rows, first] = torch.where(keep_first, mask[rows, first], torch.zeros_like(mask[rows, first]))
    return _mean(hidden, mask)


def _bos(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    # The first *real* token, so that left padding (used in generation) pools the same token as right padding.
    first = attention_mask.to(torch.long).argmax(dim=1)  # [B]
    return hidden[torch.arange(hidden.shape[0], device=hidden.device), first]


POOLING: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mean": _mean,
    "mean_skip_first": _mean_skip_first,
    "bos": _bos,
}


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None = None, mode: str = "mean") -> torch.Tensor:
    """Pool token states into one vector per sentence.

    Args:
        hidden: token representations, shape [B, T, H].
        attention_mask: 1 for real tokens, 0 for padding, shape [B, T]. ``None`` means no padding.
        mode: ``"mean"`` averages the real tokens (the paper); ``"mean_skip_first"`` averages the real tokens after
            the first one (robust to attention-sink activations); ``"bos"`` takes the first real token.

    Returns:
        Pooled representations, shape [B, H], in float32 (float64 stays float64) whatever the dtype of
        ``hidden``: middle-layer activations reach ~1e4-8e4 (Gemma 3), so a bf16 sum loses the small components
        that tell sentences apart and an fp16 sum overflows (max 65504). The cast is differentiable.
    """
    if hidden.dim() != 3:
        raise ValueError(f"pool: hidden must have shape [B, T, H], got {tuple(hidden.shape)}")
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
    if attention_mask.shape != hidden.shape[:2]:
        raise ValueError(
            f"pool: attention_mask shape {tuple(attention_mask.shape)} does not match hidden [B, T] = "
            f"{tuple(hidden.shape[:2])}"
        )
    try:
        fn = POOLING[mode]
    except KeyError:
        raise ValueError(f"pool: unknown mode {mode!r}; choose one of {sorted(POOLING)}") from None
    return fn(hidden.to(torch.promote_types(hidden.dtype, torch.float32)), attention_mask)
