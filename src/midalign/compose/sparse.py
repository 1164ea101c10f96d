"""Composable sparse fine-tuning (Ansell et al., ACL 2022, "LT-SFT"): a fine-tuning kept as a sparse difference
from the base weights, so that differences learned separately (a language's, a task's) are composed by addition.

Recipe (lottery-ticket style):
1. fine-tune all weights (``midalign train --use_lora False ...``) and keep the ``k`` largest changes:
   :func:`sparse_diff` (``--density`` or ``--k``, ranked globally over the compared tensors);
2. restart from the base weights and train only those entries: :func:`restrict_training` (``midalign train
   --use_lora False --sparse_mask diff.safetensors --weight_decay 0``), then take the trained entries with
   :func:`sparse_diff` ``(mask=...)``;
3. compose: :func:`apply_sparse_diffs` adds ``Σ w_i · diff_i`` to a model (e.g. the target language's difference plus
   the task's, trained in the source language — the MAD-X recipe with sparse differences instead of adapters).

Differences are stored as safetensors (``<name>::indices`` flat int64 positions, ``<name>::values``; in the
metadata the shapes of its tensors and the identity of the model it was made for: the signature of every tensor's
name and shape, see :func:`model_signature`); never pickle. A difference or mask is refused on a model of another
signature -- another architecture or size, whose entries would land in the wrong places or fall outside.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

import torch

__all__ = [
    "SparseDiff",
    "SparseMismatchError",
    "sparse_diff",
    "apply_sparse_diffs",
    "restrict_training",
    "model_signature",
]


class SparseMismatchError(ValueError, KeyError):
    """A sparse difference or mask used on a model it was not made for (a ValueError for the command line's one-line
    error; a KeyError too, as a missing tensor always was)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def model_signature(state: dict[str, torch.Tensor]) -> str:
    """A model's identity for sparse differences: a hash of every tensor's name and shape (not its dtype or values:
    the same model in bf16, or with another difference applied, has the same signature)."""
    items = sorted((name, list(t.shape)) for name, t in state.items())
    return hashlib.sha256(json.dumps(items).encode()).hexdigest()[:16]


@dataclass
class SparseDiff:
    entries: dict[str, tuple[torch.Tensor, torch.Tensor]]  # tensor name -> (flat indices int64, values)
    shapes: dict[str, list[int]] = field(default_factory=dict)
    model: str | None = None  # model_signature of the model it was made for (None: a file from before it was kept)
    source: str = ""  # where it was loaded from, for messages

    def check_fits(self, state: dict[str, torch.Tensor], what: str = "this model") -> None:
        """Refuse ``state`` (a state dict) unless this difference was made for a model of its signature and every
        entry's tensor exists there with the shape recorded and holds the indices."""
        label = f"sparse difference {self.source}" if self.source else "sparse difference"
        if self.model is not None and self.model != model_signature(state):
            raise SparseMismatchError(
                f"{label} was made for another model (signature {self.model}; {what} has {model_signature(state)}: "
                "other tensor names or shapes); use it only with the base model it was computed from"
            )
        for name, (idx, _) in self.entries.items():
            if name not in state:
                raise SparseMismatchError(
                    f"{label}: tensor {name!r} is not a parameter of {what} (made for another architecture?)"
                )
            shape = list(state[name].shape)
            if self.shapes.get(name, shape) != shape:
                raise SparseMismatchError(
                    f"{label}: tensor {name!r} has shape {self.shapes[name]} there, {shape} in {what}"
                )
            if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= state[name].numel()):
                raise SparseMismatchError(
                    f"{label}: tensor {name!r} indices reach {int(idx.max())}, beyond its {state[name].numel()} entries"
                )

    def __len__(self) -> int:
        return sum(i.numel() for i, _ in self.entries.values())

    def save(self, path: str) -> None:
        from safetensors.torch import save_file

        tensors = {}
        for name, (idx, val) in self.entries.items():
            tensors[f"{name}::indices"] = idx.contiguous()
            tensors[f"{name}::values"] = val.contiguous()
        meta = {"format": "midalign-sparse-diff", "shapes": json.dumps(self.shapes)}
        if self.model is not None:
            meta["model_signature"] = self.model
        save_file(tensors, path, metadata=meta)

    @classmethod
    def load(cls, path: str) -> SparseDiff:
        from safetensors import safe_open

        with safe_open(path, framework="pt") as fh:
            meta = fh.metadata() or {}
            if meta.get("format") != "midalign-sparse-diff":
                raise ValueError(f"{path}: not a sparse difference written by midalign (metadata format missing)")
            names = sorted({k.rsplit("::", 1)[0] for k in fh.keys()})
            entries = {n: (fh.get_tensor(f"{n}::indices"), fh.get_tensor(f"{n}::values")) for n in names}
        return cls(entries, json.loads(meta.get("shapes", "{}")), meta.get("model_signature"), str(path))


def _comparable(base: dict, tuned: dict, names) -> list[str]:
    keys = names if names is not None else sorted(set(base) & set(tuned))
    out, seen = [], set()
    for k in keys:
        if k not in base or k not in tuned:
            raise KeyError(f"tensor {k!r} is missing from one of the two state dicts")
        if base[k].shape != tuned[k].shape:
            raise ValueError(f"tensor {k!r}: shapes differ ({tuple(base[k].shape)} vs {tuple(tuned[k].shape)})")
        ptr = tuned[k].data_ptr()
        if base[k].is_floating_point() and ptr not in seen:  # tied weights (embeddings / LM head) count once
            seen.add(ptr)
            out.append(k)
    return out


@torch.no_grad()
def sparse_diff(
    base: dict[str, torch.Tensor],
    tuned: dict[str, torch.Tensor],
    *,
    k: int | None = None,
    density: float | None = None,
    mask: SparseDiff | None = None,
    names: list[str] | None = None,
) -> SparseDiff:
    """The ``k`` largest changes ``tuned - base`` (by magnitude, over all compared tensors together; ``density`` =
    share of their entries), or the changes at ``mask``'s entries. State dicts: ``model.state_dict()``."""
    if mask is not None:
        if k is not None or density is not None:
            raise ValueError("give either mask or k/density")
        mask.check_fits(base, "the base model")
        mask.check_fits(tuned, "the tuned model")
        entries = {}
        for name, (idx, _) in mask.entries.items():
            d = (tuned[name].float() - base[name].float()).flatten()
            entries[name] = (idx.clone(), d[idx].to(tuned[name].dtype))
        return SparseDiff(entries, dict(mask.shapes), model_signature(base))
    keys = _comparable(base, tuned, names)
    total = sum(base[n].numel() for n in keys)
    if (k is None) == (density is None):
        raise ValueError("give exactly one of k or density")
    if density is not None:
        if not 0 < density <= 1:
            raise ValueError(f"density {density}: must be in (0, 1]")
        k = max(1, round(density * total))
    if not 0 < k <= total:
        raise ValueError(f"k={k}: must be in 1..{total} (entries of the compared tensors)")
    deltas = [(tuned[n].float() - base[n].float()).flatten() for n in keys]
    threshold = torch.topk(torch.cat([d.abs() for d in deltas]), k, sorted=True).values[-1]
    # entries above the threshold, then ties at it in (name, position) order until k
    entries, budget = {}, k - sum(int((d.abs() > threshold).sum()) for d in deltas)
    for name, d in zip(keys, deltas):
        chosen = (d.abs() > threshold).nonzero().squeeze(1)
        if budget > 0:
            ties = (d.abs() == threshold).nonzero().squeeze(1)[:budget]
            budget -= ties.numel()
            chosen = torch.cat([chosen, ties]).sort().values
        if chosen.numel():
            entries[name] = (chosen.to(torch.int64), d[chosen].to(tuned[name].dtype))
    return SparseDiff(entries, {n: list(base[n].shape) for n in entries}, model_signature(base))


@torch.no_grad()
def apply_sparse_diffs(model, diffs: list[SparseDiff], weights: list[float] | None = None):
    """Add ``Σ w_i · diff_i`` to ``model``'s parameters and buffers in place; returns the model."""
    weights = [1.0] * len(diffs) if weights is None else weights
    if len(weights) != len(diffs):
        raise ValueError(f"{len(diffs)} differences but {len(weights)} weights")
    state = model.state_dict(keep_vars=True)
    for diff in diffs:  # every one checked before any is added
        diff.check_fits(state)
    for diff, w in zip(diffs, weights):
        for name, (idx, val) in diff.entries.items():
            t = state[name]
            t.data.view(-1).index_add_(0, idx.to(t.device), (w * val.to(t.device, torch.float32)).to(t.dtype))
    return model


def restrict_training(model, mask: SparseDiff) -> list:
    """Train only ``mask``'s entries: tensors it does not name are frozen, and the gradients of the others are
    zeroed outside its entries (a hook per tensor). With Adam(W) and ``weight_decay=0`` the other entries then never
    move. Returns the hook handles."""
    state = model.state_dict(keep_vars=True)  # every name, tied aliases included
    mask.check_fits(state)
    params = {id(p): p for p in model.parameters()}
    keeps: dict[int, torch.Tensor] = {}
    for name, (idx, _) in mask.entries.items():
        t = state.get(name)
        if t is None or id(t) not in params:
            raise KeyError(f"mask entry {name!r} is not a parameter of this model")
        keep = keeps.setdefault(id(t), torch.zeros(t.numel(), dtype=t.dtype, device=t.device))
        keep[idx.to(t.device)] = 1
    handles = []
    for pid, p in params.items():
        if pid not in keeps:
            p.requires_grad_(False)
            continue
        p.requires_grad_(True)
        handles.append(p.register_hook(lambda g, keep=keeps[pid].view_as(p): g * keep))
    return handles
