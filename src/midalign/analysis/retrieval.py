"""Cross-lingual retrieval over pooled sentence embeddings (pure functions)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["cosine_matrix", "retrieval_accuracy_at_1", "mexa_alignment_score"]


def cosine_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``sim[i, j] = cos(a[i], b[j])``; a: [N, H], b: [M, H] -> [N, M]."""
    return F.normalize(a.float(), dim=-1) @ F.normalize(b.float(), dim=-1).T


def retrieval_accuracy_at_1(src: torch.Tensor, tgt: torch.Tensor) -> float:
    """Share of rows i of ``src`` whose nearest ``tgt`` row (cosine) is row i. Both [N, H], row i parallel."""
    if src.shape != tgt.shape:
        raise ValueError(f"parallel embeddings must have the same shape, got {tuple(src.shape)} and {tuple(tgt.shape)}")
    sim = cosine_matrix(src, tgt)
    return (sim.argmax(dim=1) == torch.arange(len(src))).float().mean().item()


def mexa_alignment_score(src: torch.Tensor, tgt: torch.Tensor) -> float:
    """MEXA's strict score: share of pairs i whose similarity ``sim[i, i]`` is the maximum of both its row and its
    column (ties count as failures)."""
    sim = cosine_matrix(src, tgt)
    diag = sim.diagonal()
    off = sim.clone()
    off.fill_diagonal_(float("-inf"))
    strict = (diag > off.max(dim=1).values) & (diag > off.max(dim=0).values)
    return strict.float().mean().item()
