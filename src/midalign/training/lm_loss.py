"""The task loss kernel: next-token cross-entropy on the supervised positions only, the LM head run on the target
tokens alone (and in recomputed chunks when their logits would be large)."""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from ..data import IGNORE_INDEX

logger = logging.getLogger("midalign")

__all__ = ["CHUNK_LOGITS", "causal_lm_loss", "supervised_positions", "shared_prefix_length", "task_loss"]

# Below this many shared tokens the batch-of-one prefix pass costs more than it saves.
MIN_SHARED_PREFIX = 8


def supervised_positions(labels: torch.Tensor) -> torch.Tensor:
    """Positions whose logits some loss term needs: t such that any row has ``labels[:, t + 1] != -100``.

    Args:
        labels: shape [B, T]. Returns: shape [K], int64, increasing; K <= T - 1 (the prompt and padding columns of
        every row drop out, which for prompts of ~100 tokens and targets of ~10 leaves a tenth of the LM head's work).
    """
    return labels[:, 1:].ne(IGNORE_INDEX).any(dim=0).nonzero().squeeze(-1)


def shared_prefix_length(input_ids: torch.Tensor, attention_mask: torch.Tensor, positions: torch.Tensor) -> int:
    """Leading columns every row shares (same token, unmasked), stopping before the first column whose logits are
    needed (``positions``, see :func:`supervised_positions`): the rendered system prompt of a task batch.

    Args:
        input_ids, attention_mask: shape [B, T]. Returns: the number of shared columns p (0 for a batch of one).
    """
    if input_ids.shape[0] < 2 or not positions.numel():
        return 0
    same = input_ids.eq(input_ids[:1]).all(dim=0) & attention_mask.bool().all(dim=0)
    limit = int(positions[0])  # the column predicting the first target must run in the batched pass
    differs = (~same[:limit]).nonzero()
    return int(differs[0]) if differs.numel() else limit


def _has_active_dropout(model: nn.Module) -> bool:
    return model.training and any(isinstance(m, nn.Dropout) and m.p > 0 for m in model.modules())


def _prefix_cache(model: nn.Module, prefix_ids: torch.Tensor, batch: int):
    """Key/value states of ``prefix_ids`` ([1, p]) computed once, with gradients, then repeated for ``batch`` rows:
    the backward pass sums the rows' gradients into the one computation (exact for a deterministic forward)."""
    out = model(input_ids=prefix_ids, attention_mask=torch.ones_like(prefix_ids), use_cache=True, logits_to_keep=1)
    cache = out.past_key_values
    cache.batch_repeat_interleave(batch)
    return cache


def causal_lm_loss(
    logits: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross-entropy and the number of target tokens.

    Args:
        logits: shape [B, T, V], or [B, K, V] at ``positions`` (shape [K], as :func:`supervised_positions` gives).
        labels: shape [B, T], ``-100`` where no loss is taken (prompt, padding).
    Returns:
        (sum of token losses, number of target tokens), both scalars; position t predicts ``labels[t + 1]``.
    """
    if positions is None:
        logits, targets = logits[:, :-1], labels[:, 1:]
    else:
        targets = labels[:, positions.to(labels.device) + 1]
    flat_logits = logits.float().reshape(-1, logits.shape[-1])
    flat_targets = targets.reshape(-1).to(flat_logits.device)
    total = F.cross_entropy(flat_logits, flat_targets, ignore_index=IGNORE_INDEX, reduction="sum")
    return total, flat_targets.ne(IGNORE_INDEX).sum()


def _accepts_logits_to_keep(model: nn.Module) -> bool:
    import inspect

    from ..alignment.capture import _unwrap

    return "logits_to_keep" in inspect.signature(_unwrap(model).forward).parameters


# Logits per chunk of the LM head (float32: 256 MiB): at Gemma 3's vocabulary (262,144) that is 256 target tokens,
# more than a MASSIVE or xSID micro-batch of 8 has, so those run in one piece; whole-text causal-LM batches chunk.
CHUNK_LOGITS = 2**26

# Element-wise transformations HF causal LMs apply to the LM head's output, as (attribute of the model or its
# config, function). The chunked path applies them itself and checks the result against the model's own logits
# on the first chunk; a model doing anything else is refused with the way out (``--lm_head_chunk 0``).
_LOGIT_TRANSFORMS = (
    ("final_logit_softcapping", lambda x, cap: torch.tanh(x / cap) * cap),  # Gemma 2 / 3
    ("logit_scale", lambda x, scale: x * scale),  # Cohere
    ("logits_scaling", lambda x, scale: x / scale),  # Granite
)


def _logit_transform(causal_lm: nn.Module):
    steps = []
    for name, fn in _LOGIT_TRANSFORMS:
        value = getattr(causal_lm, name, None)
        if value is None:
            value = getattr(getattr(causal_lm, "config", None), name, None)
        if value is not None:
            steps.append((fn, value))

    def transform(logits: torch.Tensor) -> torch.Tensor:
        for fn, value in steps:
            logits = fn(logits, value)
        return logits

    return transform


def _chunk_loss(head: nn.Module, transform, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = transform(head(hidden)).float()
    return F.cross_entropy(logits, targets, reduction="sum")


def task_loss(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    *,
    supervised_only: bool = True,
    chunk_logits: int | None = CHUNK_LOGITS,
    share_prefix: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed token loss, target tokens) of a causal LM on a batch, shapes [B, T] in.

    With ``supervised_only`` the LM head runs only where a loss is taken: the decoder keeps the columns of
    :func:`supervised_positions` (``logits_to_keep`` with an index tensor), and a pre-hook on the LM head gathers
    each row's own target positions from them, so the head sees [N, H] for the batch's N target tokens and prompt or
    padding positions never materialise [V]-sized logits; columns after the last such position are not run at all
    (causal attention: they cannot change the loss). The model still applies its own head, tied weights and
    final-logit soft-capping. When N x V exceeds ``chunk_logits`` the head and cross-entropy run in chunks of rows,
    each recomputed in the backward pass (activation checkpointing), so peak memory stays flat in N and the
    vocabulary (``chunk_logits`` 0 or None: one piece). Same loss and gradients as over all positions (tested on
    every tiny architecture, chunked and not); a model whose forward lacks ``logits_to_keep`` or has no output
    embeddings computes every position.

    ``share_prefix``: the leading tokens every row shares (:func:`shared_prefix_length`, e.g. a task's system
    prompt, about a third of a SIB-200 row) run once as a batch of one, their key/value states repeated for the
    rows, the rest of the batch after them: the same loss and gradients (to float rounding), less compute. Skipped
    (the plain path) when fewer than ``MIN_SHARED_PREFIX`` tokens are shared, or while a dropout module is active
    (one dropout mask for every row's prefix would not be the same distribution).
    """
    from ..alignment.capture import _unwrap

    causal_lm = _unwrap(model)
    head = causal_lm.get_output_embeddings() if hasattr(causal_lm, "get_output_embeddings") else None
    if not (supervised_only and head is not None and _accepts_logits_to_keep(model)):
        return causal_lm_loss(model(input_ids=input_ids, attention_mask=attention_mask).logits, labels)
    positions = supervised_positions(labels)
    # Causal attention: no position after the last one whose logits are needed can change the loss, so the batch is
    # cut there (the last target token itself, e.g. EOS, and the padding after it are never run).
    end = int(positions[-1]) + 1 if positions.numel() else 1
    input_ids, attention_mask = input_ids[:, :end], attention_mask[:, :end]
    targets = labels[:, positions + 1]
    extra: dict = {}
    shared = shared_prefix_length(input_ids, attention_mask, positions) if share_prefix else 0
    if shared >= MIN_SHARED_PREFIX and not _has_active_dropout(model):
        extra["past_key_values"] = _prefix_cache(model, input_ids[:1, :shared], input_ids.shape[0])
        extra["position_ids"] = torch.arange(shared, end, device=input_ids.device).expand(input_ids.shape[0], -1)
        input_ids = input_ids[:, shared:]
        positions = positions - shared
    keep = targets.ne(IGNORE_INDEX)
    flat_targets = targets[keep]
    n = flat_targets.numel()
    vocab = getattr(head, "out_features", None) or head.weight.shape[0]
    rows = max(chunk_logits // max(vocab, 1), 1) if chunk_logits else max(n, 1)
    chunked = n > rows
    stash: dict[str, torch.Tensor] = {}

    def gather(module, args):
        hidden = args[0][keep.to(args[0].device)]  # [B, K, H] -> [N, H], each row's own targets
        if chunked:
            stash["hidden"] = hidden
            hidden = hidden[:rows]  # the model's own head (and logit transform) runs on the first chunk
        return (hidden, *args[1:])

    handle = head.register_forward_pre_hook(gather)
    try:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=positions, **extra).logits
    finally:
        handle.remove()
    expected = rows if chunked else n
    if logits.dim() != 2 or logits.shape[0] != expected:
        raise RuntimeError(
            f"{type(causal_lm).__name__} reshaped its LM head's output ({tuple(logits.shape)}, expected "
            f"[{expected}, V]); call task_loss(..., supervised_only=False) for this model"
        )
    flat_targets = flat_targets.to(logits.device)
    total = F.cross_entropy(logits.float(), flat_targets[:expected], reduction="sum")
    if chunked:
        hidden, transform = stash.pop("hidden"), _logit_transform(causal_lm)
        with torch.no_grad():
            ours = transform(head(hidden[:rows])).float()
        if not torch.allclose(ours, logits.float(), rtol=1e-4, atol=1e-4):
            raise NotImplementedError(
                f"{type(causal_lm).__name__} transforms its LM head's output in a way the chunked task loss does not "
                f"know (known: {', '.join(name for name, _ in _LOGIT_TRANSFORMS)}); train with --lm_head_chunk 0 "
                "(logits in one piece) or add the transform to midalign.training.trainer._LOGIT_TRANSFORMS"
            )
        for start in range(rows, n, rows):
            total = total + checkpoint(
                _chunk_loss,
                head,
                transform,
                hidden[start : start + rows],
                flat_targets[start : start + rows],
                use_reentrant=False,
            )
    return total, torch.as_tensor(n, device=total.device)
