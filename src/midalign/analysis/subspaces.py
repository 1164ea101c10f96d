"""Affine language subspaces (Chang, Tu & Bergen 2022, "The Geometry of Multilingual Language Model
Representations"): per language and layer, the mean μ_A and covariance S of token representations, the top-k
eigenvectors V_A explaining a share of the variance, projections, and the perplexity ratio.

Projections of a representation x of language A:
  own:      V_A V_Aᵀ (x − μ_A) + μ_A
  other:    V_B V_Bᵀ (x − μ_B) + μ_B
  shifted:  V_B V_Bᵀ (x − μ_A) + μ_A      (B's subspace moved to A's mean)
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from ..alignment import find_decoder
from ..inference.engine import encode_batches

__all__ = ["RunningMoments", "Subspace", "fit_subspace", "project", "replace_layer_output", "perplexity"]


class RunningMoments:
    """Streaming mean and covariance of vectors (float64 sums): memory O(H²), whatever the number of tokens."""

    def __init__(self, dim: int):
        self.n = 0
        self.sum = torch.zeros(dim, dtype=torch.float64)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64)

    def update(self, x: torch.Tensor) -> None:
        """x: [N, H]."""
        x = x.detach().to(torch.float64).cpu()
        self.n += x.shape[0]
        self.sum += x.sum(0)
        self.outer += x.T @ x

    @property
    def mean(self) -> torch.Tensor:
        return self.sum / max(self.n, 1)

    @property
    def covariance(self) -> torch.Tensor:
        """Population covariance (1/N), as in the paper's S."""
        mu = self.mean
        return self.outer / max(self.n, 1) - torch.outer(mu, mu)


@dataclass
class Subspace:
    mean: torch.Tensor  # [H]
    basis: torch.Tensor  # [H, k], orthonormal columns
    eigenvalues: torch.Tensor  # [H], descending

    @property
    def k(self) -> int:
        return self.basis.shape[1]


def fit_subspace(moments: RunningMoments, share: float = 0.9) -> Subspace:
    """Smallest k whose top eigenvalues explain at least ``share`` of the total variance."""
    if not 0 < share <= 1:
        raise ValueError(f"variance share must be in (0, 1], got {share}")
    evals, evecs = torch.linalg.eigh(moments.covariance)
    evals, evecs = evals.flip(0).clamp(min=0), evecs.flip(1)
    total = evals.sum()
    cum = torch.cumsum(evals, 0) / total if total > 0 else torch.ones_like(evals)
    k = int(torch.searchsorted(cum, torch.tensor(share, dtype=cum.dtype) - 1e-12).item()) + 1
    k = min(k, evals.numel())
    return Subspace(mean=moments.mean, basis=evecs[:, :k], eigenvalues=evals)


def project(x: torch.Tensor, subspace: Subspace, center: torch.Tensor | None = None) -> torch.Tensor:
    """``V Vᵀ (x − c) + c`` with ``c = center`` (default: the subspace's own mean). x: [..., H]."""
    c = subspace.mean if center is None else center
    v = subspace.basis.to(x.dtype)
    c = c.to(x.dtype)
    return ((x - c) @ v) @ v.T + c


@contextlib.contextmanager
def replace_layer_output(model, layer: int, fn, skip_first: bool = True) -> Iterator[None]:
    """Within the context, the output of decoder layer ``layer`` (1-based; 0 = embeddings) is replaced by
    ``fn(hidden)``. With ``skip_first`` the first position keeps its original state (attention-sink activations
    are not part of the statistics either)."""
    decoder, layout = find_decoder(model)

    def apply(h: torch.Tensor) -> torch.Tensor:
        new = fn(h)
        if skip_first:
            new = torch.cat([h[:, :1], new[:, 1:]], dim=1)
        return new

    if layer == 0:
        module = decoder.get_input_embeddings()
    else:
        module = getattr(decoder, layout.layers)[layer - 1]

    def hook(mod, args, output):
        if isinstance(output, tuple):
            return (apply(output[0]), *output[1:])
        return apply(output)

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def perplexity(model, tokenizer, sentences: Sequence[str], batch_size: int = 16, max_length: int = 256) -> float:
    """Token-level perplexity of the model on raw sentences (tokenizer's special tokens included)."""
    total, count = 0.0, 0
    device = next(model.parameters()).device
    for _, enc in encode_batches(tokenizer, sentences, batch_size, max_length, device):
        logits = model(**enc).logits[:, :-1].float()
        labels = enc["input_ids"][:, 1:].masked_fill(enc["attention_mask"][:, 1:] == 0, -100)
        loss = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100, reduction="sum"
        )
        total += loss.item()
        count += int(labels.ne(-100).sum())
    return math.exp(total / max(count, 1))
