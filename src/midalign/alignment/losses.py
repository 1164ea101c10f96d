"""Contrastive alignment loss between pooled parallel sentences (pure functions over tensors)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["DISTANCES", "DIRECTIONS", "similarity_matrix", "alignment_loss", "retrieval_accuracy"]


def _cosine(p0: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
    # sim[a, b] = cos(p0[b], p1[a])
    return F.normalize(p1, dim=-1) @ F.normalize(p0, dim=-1).T


def _neg_sq_l2(p0: torch.Tensor, p1: torch.Tensor) -> torch.Tensor:
    # sim[a, b] = -||p0[b] - p1[a]||^2
    return -torch.cdist(p1, p0, p=2).pow(2)


DISTANCES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"cosine": _cosine, "l2": _neg_sq_l2}
DIRECTIONS = ("paper", "symmetric")


def _check_pair(p0: torch.Tensor, p1: torch.Tensor) -> None:
    if p0.dim() != 2 or p0.shape != p1.shape:
        raise ValueError(
            f"alignment loss needs two pooled batches of the same shape [B, H]; got {tuple(p0.shape)} and "
            f"{tuple(p1.shape)}"
        )
    if p0.shape[0] < 2:
        raise ValueError(
            "alignment loss needs at least 2 pairs per batch (in-batch negatives); got B=1. "
            "Increase --per_device_train_batch_size."
        )


def similarity_matrix(
    p0: torch.Tensor, p1: torch.Tensor, *, temperature: float = 0.1, distance: str = "cosine"
) -> torch.Tensor:
    """Logits of the alignment loss, ``logits[a, b] = sim(p0[b], p1[a]) / temperature``.

    Args:
        p0: pooled sentence representations of the ``text_parallel_0`` side, shape [B, H].
        p1: those of the ``text_parallel_1`` side, shape [B, H].
    Returns:
        shape [B, B], float32. Column ``b`` scores every ``p1`` candidate for ``p0[b]``.
    """
    _check_pair(p0, p1)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    try:
        sim = DISTANCES[distance]
    except KeyError:
        raise ValueError(f"unknown distance {distance!r}; choose one of {sorted(DISTANCES)}") from None
    return sim(p0.float(), p1.float()) / temperature


def alignment_loss(
    p0: torch.Tensor,
    p1: torch.Tensor,
    *,
    temperature: float = 0.1,
    distance: str = "cosine",
    direction: str = "paper",
    detach_target: bool = False,
    weight: float = 1.0,
) -> torch.Tensor:
    """InfoNCE over in-batch negatives between two pooled batches of parallel sentences.

    With ``logits = similarity_matrix(p0, p1)`` (shape [B, B], ``logits[a, b] = sim(p0[b], p1[a]) / τ``):

    * ``direction="paper"`` (Liu & Niehues 2025): ``-weight * mean_b log_softmax(logits, dim=0)[b, b]`` — each
      ``p0`` sentence must pick its partner among the in-batch ``p1`` sentences.
    * ``direction="symmetric"``: the mean of the paper term and the reverse one (``log_softmax(dim=1)``).

    Args:
        p0: pooled ``text_parallel_0`` representations, shape [B, H] with B >= 2. Computed in float32.
        p1: pooled ``text_parallel_1`` representations, shape [B, H].
        temperature: τ > 0.
        distance: ``"cosine"`` or ``"l2"`` (similarity = negative squared euclidean distance).
        detach_target: stop the gradient through ``p1`` (the paper's ``--unidirectional_contrastive_loss``).
        weight: multiplies the loss (the paper's ``--contrastive_loss_weight``).

    Returns:
        A scalar tensor.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"unknown direction {direction!r}; choose one of {list(DIRECTIONS)}")
    if detach_target:
        p1 = p1.detach()
    logits = similarity_matrix(p0, p1, temperature=temperature, distance=distance)
    idx = torch.arange(logits.shape[0], device=logits.device)
    loss = -F.log_softmax(logits, dim=0)[idx, idx].mean()
    if direction == "symmetric":
        loss = 0.5 * (loss - F.log_softmax(logits, dim=1)[idx, idx].mean())
    return weight * loss


@torch.no_grad()
def retrieval_accuracy(p0: torch.Tensor, p1: torch.Tensor, *, distance: str = "cosine") -> torch.Tensor:
    """Share of ``p0`` rows whose most similar ``p1`` row is their partner (the paper's direction). Scalar."""
    logits = similarity_matrix(p0, p1, temperature=1.0, distance=distance)
    idx = torch.arange(logits.shape[0], device=logits.device)
    return (logits.argmax(dim=0) == idx).float().mean()
