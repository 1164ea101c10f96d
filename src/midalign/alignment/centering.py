"""Re-centering pooled representations before the alignment loss (remedies for anisotropy).

Middle-layer outputs of the models we run are nearly parallel for any two sentences (Gemma 3 layer 9: cosine 0.996
for translation pairs, 0.992 for unrelated ones; one dimension holds most of the norm), so the paper's cosine
InfoNCE starts at chance (``ln B``) and its gradient mostly removes the shared direction. Subtracting a mean before
the cosine exposes what differs between sentences. With ``p`` a pooled batch [B, H] of one side (``p0`` or ``p1``):

* ``none`` (the paper): ``p``.
* ``batch``: ``p - mean_b p[b]`` -- each side centred on its own micro-batch mean (gradient flows through the mean).
  The statistic is per micro-batch and per process: under gradient accumulation each micro-batch uses its own mean,
  under DDP each rank its own local batch (the in-batch negatives are local too).
* ``fixed``: ``p - mu_side`` with ``mu_side`` measured once, on the model at the start of training, over the
  alignment data (``AlignmentTrainer.measure_alignment_stats``); a constant, so identical on every rank and micro-batch.
* ``standardize``: ``(p - mu_side) / sigma_side`` with the per-dimension standard deviation measured with the mean:
  dimensions with massive activations stop dominating the cosine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

__all__ = ["CENTERING", "PooledStats", "center", "needs_stats", "stats_from_pooled"]

CENTERING = ("none", "batch", "fixed", "standardize")
STATS_FILE = "alignment_stats.safetensors"


def needs_stats(mode: str) -> bool:
    """True for the modes whose statistics are measured before training."""
    return mode in ("fixed", "standardize")


@dataclass
class PooledStats:
    """Per-side mean and standard deviation of pooled representations, each [2, H] (row 0: ``text_parallel_0``)."""

    mean: torch.Tensor
    std: torch.Tensor
    count: int

    def save(self, path: str) -> None:
        from safetensors.torch import save_file

        tensors = {"mean": self.mean.contiguous(), "std": self.std.contiguous()}
        save_file(tensors, path, metadata={"count": str(self.count)})

    @classmethod
    def load(cls, path: str) -> PooledStats:
        from safetensors import safe_open

        with safe_open(path, "pt") as fh:
            count = int(fh.metadata().get("count", 0))
            return cls(fh.get_tensor("mean"), fh.get_tensor("std"), count)


def stats_from_pooled(p0: torch.Tensor, p1: torch.Tensor, eps: float = 1e-6) -> PooledStats:
    """Statistics of two pooled sides, each [N, H] (N >= 2), in float64 for the sums."""
    if p0.dim() != 2 or p0.shape != p1.shape or p0.shape[0] < 2:
        raise ValueError(f"stats need two [N, H] sides with N >= 2; got {tuple(p0.shape)} and {tuple(p1.shape)}")
    both = torch.stack([p0.double(), p1.double()])  # [2, N, H]
    mean = both.mean(dim=1)
    std = both.std(dim=1).clamp(min=eps)
    if not (torch.isfinite(mean).all() and torch.isfinite(std).all()):
        raise FloatingPointError("alignment statistics are not finite: the model's pooled outputs hold NaN or inf")
    return PooledStats(mean.float(), std.float(), int(p0.shape[0]))


def center(p: torch.Tensor, mode: str, side: int = 0, stats: PooledStats | None = None) -> torch.Tensor:
    """``p`` [B, H] re-centred by ``mode`` (see the module docstring); ``side`` 0 or 1 picks the statistics row."""
    if mode == "none":
        return p
    if mode == "batch":
        return p - p.mean(dim=0, keepdim=True)
    if mode not in CENTERING:
        raise ValueError(f"unknown centering {mode!r}; choose one of {list(CENTERING)}")
    if stats is None:
        raise ValueError(f"centering {mode!r} needs statistics measured before training (PooledStats)")
    if stats.mean.shape[-1] != p.shape[-1]:
        raise ValueError(f"statistics are for hidden size {stats.mean.shape[-1]}, representations have {p.shape[-1]}")
    mu = stats.mean[side].to(p.device, p.dtype)
    if mode == "fixed":
        return p - mu
    return (p - mu) / stats.std[side].to(p.device, p.dtype)


def check_finite_number(name: str, value: float) -> None:
    """Refuse NaN/inf for a numeric flag (``--name``)."""
    if not math.isfinite(value):
        raise ValueError(f"--{name} must be a finite number, got {value}")
