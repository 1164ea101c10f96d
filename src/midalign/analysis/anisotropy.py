"""Can the alignment loss see the pairs? Anisotropy of pooled layer outputs, before training.

For pooled representations of parallel sentences ``p0[i] <-> p1[i]`` at each layer (pure functions over [N, H]):

* ``pair_cos`` / ``unrelated_cos``: mean cosine of translation pairs and of non-pairs (``i != j``). When both are
  ~0.99 every sentence points the same way and the cosine InfoNCE is blind.
* the same after subtracting each side's mean (``centered_*``): what the sentences share removed.
* ``top1_share`` / ``top5_share``: mean share of each vector's norm held by the 1 / 5 dimensions with the largest
  mean magnitude (massive activations).
* ``infonce_init``: the paper's loss at this layer on consecutive batches of ``batch_size`` pairs with temperature
  ``temperature``, averaged over batches, against chance ``ln B``; ``infonce_init_centered`` the same with each
  batch side centered (``--alignment_center batch``), ``infonce_init_standardized`` with each side z-scored per
  dimension over all N (``--alignment_center standardize``). Batch centering can be *worse* than chance when one
  massive dimension varies with sentence length (SmolLM2 with ``mean`` pooling): the centered vectors then point
  along that one dimension, with signs that do not follow the pairs.
* ``retrieval_raw`` / ``retrieval_centered``: acc@1 of each ``p0`` picking its ``p1`` among all N.
* ``verdict``: one line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..alignment import alignment_loss, center
from .retrieval import retrieval_accuracy_at_1

__all__ = ["anisotropy_stats", "anisotropy_by_layer", "verdict", "CHANCE_MARGIN"]

CHANCE_MARGIN = 0.02  # an initial loss within 2% of ln B counts as "at chance"


def _mean_cos(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    sim = F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).T
    n = sim.shape[0]
    pair = sim.diagonal().mean().item()
    unrelated = ((sim.sum() - sim.diagonal().sum()) / (n * n - n)).item() if n > 1 else float("nan")
    return pair, unrelated


def _top_share(p: torch.Tensor, k: int) -> float:
    dims = p.abs().mean(0).topk(min(k, p.shape[1])).indices
    return (p[:, dims].norm(dim=1) / p.norm(dim=1).clamp(min=1e-12)).mean().item()


def _batched_loss(p0, p1, batch_size: int, temperature: float, mode: str) -> float:
    """Mean paper loss over consecutive batches; ``mode``: none, batch (centered per batch) or standardize (each side
    z-scored per dimension with statistics of all N, as ``--alignment_center standardize`` does)."""
    if mode == "standardize":
        p0 = (p0 - p0.mean(0)) / p0.std(0).clamp(min=1e-6)
        p1 = (p1 - p1.mean(0)) / p1.std(0).clamp(min=1e-6)
    losses = []
    for s in range(0, p0.shape[0] - batch_size + 1, batch_size):
        a, b = p0[s : s + batch_size], p1[s : s + batch_size]
        if mode == "batch":
            a, b = center(a, "batch"), center(b, "batch")
        losses.append(alignment_loss(a, b, temperature=temperature).item())
    return sum(losses) / len(losses) if losses else float("nan")


def verdict(row: dict) -> str:
    """One line on whether the paper's loss can see the pairs at this layer."""
    chance = math.log(row["batch_size"])
    if row["infonce_init"] >= (1 - CHANCE_MARGIN) * chance:
        msg = (f"the loss starts at chance ({row['infonce_init']:.3f} vs ln {row['batch_size']} = {chance:.3f}): "
               "at initialization the objective cannot tell the pairs apart")  # fmt: skip
        options = [(row["infonce_init_centered"], "batch"), (row.get("infonce_init_standardized", math.inf),
                   "standardize")]  # fmt: skip
        best, name = min(options)
        if best < (1 - CHANCE_MARGIN) * chance:
            msg += f"; with --alignment_center {name} it can ({best:.3f})"
        else:
            msg += "; neither batch centering nor standardizing helps at this layer"
        return msg
    return f"the loss sees the pairs ({row['infonce_init']:.3f} < ln {row['batch_size']} = {chance:.3f})"


def anisotropy_stats(p0: torch.Tensor, p1: torch.Tensor, *, batch_size: int = 8, temperature: float = 0.1) -> dict:
    """The statistics above for one layer; ``p0``, ``p1``: [N, H], row i parallel, N >= 2."""
    if p0.shape != p1.shape or p0.dim() != 2 or p0.shape[0] < 2:
        raise ValueError(f"need two [N, H] batches with N >= 2, got {tuple(p0.shape)} and {tuple(p1.shape)}")
    if batch_size < 2:
        raise ValueError(f"--batch-size must be >= 2 (in-batch negatives), got {batch_size}")
    p0, p1 = p0.double(), p1.double()
    c0, c1 = p0 - p0.mean(0), p1 - p1.mean(0)
    pair, unrelated = _mean_cos(p0, p1)
    cpair, cunrelated = _mean_cos(c0, c1)
    b = min(batch_size, p0.shape[0])
    row = {
        "n": p0.shape[0],
        "batch_size": b,
        "temperature": temperature,
        "pair_cos": pair,
        "unrelated_cos": unrelated,
        "centered_pair_cos": cpair,
        "centered_unrelated_cos": cunrelated,
        "mean_norm": p0.norm(dim=1).mean().item(),
        "top1_share": _top_share(p0, 1),
        "top5_share": _top_share(p0, 5),
        "infonce_init": _batched_loss(p0.float(), p1.float(), b, temperature, "none"),
        "infonce_init_centered": _batched_loss(p0.float(), p1.float(), b, temperature, "batch"),
        "infonce_init_standardized": _batched_loss(p0.float(), p1.float(), b, temperature, "standardize"),
        "chance": math.log(b),
        "retrieval_raw": retrieval_accuracy_at_1(p0, p1),
        "retrieval_centered": retrieval_accuracy_at_1(c0, c1),
    }
    row["verdict"] = verdict(row)
    return row


def anisotropy_by_layer(
    model,
    tokenizer,
    src: Sequence[str],
    tgt: Sequence[str],
    *,
    layers: Sequence[int] | None = None,
    pooling: str = "mean",
    batch_size: int = 8,
    temperature: float = 0.1,
    embed_batch_size: int = 32,
) -> list[dict]:
    """:func:`anisotropy_stats` at every layer in ``layers`` (default 1..L) for parallel sentence lists."""
    from .embeddings import sentence_embeddings

    if len(src) != len(tgt):
        raise ValueError(f"parallel lists differ in length: {len(src)} vs {len(tgt)}")
    e0 = sentence_embeddings(model, tokenizer, src, layers, pooling=pooling, batch_size=embed_batch_size)
    e1 = sentence_embeddings(model, tokenizer, tgt, layers, pooling=pooling, batch_size=embed_batch_size)
    keep = [k for k in sorted(e0) if k >= 1]
    return [{"layer": k, "pooling": pooling, **anisotropy_stats(e0[k], e1[k], batch_size=batch_size,
                                                                temperature=temperature)} for k in keep]  # fmt: skip
