"""Exact log-likelihood of a fixed set of continuations (label strings) after each prompt, computed cheaply.

Classification by label scoring: the prediction is the label whose tokens the model finds most likely after the
prompt, ``argmax_k sum_j log p(c_kj | prompt, c_k<j)`` -- the same quantity the task loss trains (the training target
is ``label + end-of-turn``). Cost: one forward over each prompt (its key/value states computed once, then repeated for
the K labels) plus one forward over the K short continuations; the LM head runs only at the prompt's last position
and at the continuation tokens. Results are written incrementally to a resumable JSON-lines file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from ..data.processing import tokenize_task
from .engine import (
    PrefixCache,
    _check_resume,
    _logits_to_keep_kwargs,
    _new_cache,
    _pad,
    length_sorted_batches,
    read_done,
    sliding_window,
    write_in_input_order,
)

__all__ = ["SCORING_METHODS", "continuation_ids", "score_continuations", "score_token_ids", "run_scoring"]


def continuation_ids(tokenizer, prefix: str, continuations: Sequence[str]) -> tuple[list[int], list[list[int]]]:
    """The prompt's token ids and each continuation's, exactly as training tokenizes ``prefix + text`` (the prompt's
    tokens are always a prefix of the joint sequence: see :func:`midalign.data.processing.tokenize_task`)."""
    prompt = tokenizer(prefix, add_special_tokens=True)["input_ids"]
    conts = []
    for text in continuations:
        ids = tokenize_task(tokenizer, prefix, text, None)["input_ids"]
        if ids[: len(prompt)] != prompt or len(ids) == len(prompt):
            raise ValueError(f"continuation {text!r} adds no tokens after the prompt")
        conts.append(ids[len(prompt) :])
    return prompt, conts


SCORING_METHODS = ("exact", "first_token")
# False: the LM head runs at every (padded) continuation position, as before the real-position gather; kept only so
# that benchmarks/scoring.py can measure both in one run.
HEAD_AT_REAL_POSITIONS = True


def _real_position_logits(model, keep: torch.Tensor, **inputs) -> torch.Tensor:
    """Logits [N, V] of the ``keep`` ([B, T] bool) positions only: a pre-hook on the LM head gathers those rows of
    the decoder's output, so padded positions never reach the head (at Gemma 3's 262k vocabulary the head is most of
    a continuation pass). The model still applies its own head, tied weights and logit soft-capping. A model whose
    head reshapes its output, or that has no output embeddings, computes every position and is gathered after."""
    from ..alignment.capture import _unwrap

    causal_lm = _unwrap(model)
    head = causal_lm.get_output_embeddings() if hasattr(causal_lm, "get_output_embeddings") else None
    n = int(keep.sum())
    if head is not None and HEAD_AT_REAL_POSITIONS:

        def gather(module, args):
            hidden = args[0]
            return (hidden[keep.to(hidden.device)] if hidden.dim() == 3 else hidden, *args[1:])

        handle = head.register_forward_pre_hook(gather)
        try:
            logits = model(**inputs).logits
        finally:
            handle.remove()
        if logits.dim() == 2 and logits.shape[0] == n:
            return logits
    return model(**inputs).logits[keep.to(inputs["input_ids"].device)]


@torch.no_grad()
def _score_batch(model, pad_id: int, prompts: list[list[int]], conts: list[list[list[int]]], shared=None,
                 method: str = "exact", greedy: bool = False):  # fmt: skip
    """Sum of continuation log-probs, [B, K]. Prompts laid out ``shared prefix | left padding | own tokens`` (the
    prefix's key/value states from ``shared``, a :class:`PrefixCache`, when the batch shares one), continuations
    right-padded after them; positions from the attention mask, so padding changes nothing. The LM head runs at the
    prompt's last position and at the continuations' real (unpadded) positions only. ``method="first_token"``: the
    first token's log-prob only (no continuation pass). ``greedy``: also return [B, K] bools, True where every
    token of the continuation is the argmax at its position (lm-eval's ``is_greedy``)."""
    device = next(model.parameters()).device
    b, k = len(prompts), len(conts[0])
    past, cache = shared.lookup(prompts) if shared is not None else (0, None)
    cache = cache if cache is not None else _new_cache(model)
    ids, mask = _pad(prompts, past, pad_id, device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    out = model(input_ids=ids[:, past:], attention_mask=mask, position_ids=pos[:, past:], past_key_values=cache,
                use_cache=True, **_logits_to_keep_kwargs(model))  # fmt: skip
    first = F.log_softmax(out.logits[:, -1].float(), dim=-1)  # [B, V]: predicts each continuation's first token
    flat = [c for row in conts for c in row]  # row-major: (prompt r, label j) -> r * K + j
    clen = max(len(c) for c in flat) if method == "exact" else 1
    cids = torch.full((b * k, clen), pad_id, dtype=torch.long)
    cmask = torch.zeros((b * k, clen), dtype=torch.long)
    for r, c in enumerate(flat):
        cids[r, : min(len(c), clen)] = torch.tensor(c[:clen])
        cmask[r, : min(len(c), clen)] = 1
    cids, cmask = cids.to(device), cmask.to(device)
    scores = first.repeat_interleave(k, dim=0).gather(1, cids[:, :1]).squeeze(1)  # [B*K]
    is_greedy = first.argmax(-1).repeat_interleave(k, dim=0).eq(cids[:, 0])  # [B*K]
    if clen > 1:
        cache.batch_repeat_interleave(k)
        full_mask = torch.cat([mask.repeat_interleave(k, dim=0), cmask], dim=1)
        cpos = pos[:, -1:].repeat_interleave(k, dim=0) + 1 + torch.arange(clen, device=device)
        keep = cmask[:, 1:].bool()  # [B*K, clen-1]: position j predicts token j+1 where that token is real
        logits = _real_position_logits(model, keep, input_ids=cids[:, :-1], attention_mask=full_mask[:, :-1],
                                       position_ids=cpos[:, :-1], past_key_values=cache, use_cache=True)  # fmt: skip
        logp = F.log_softmax(logits.float(), dim=-1).gather(1, cids[:, 1:][keep][:, None]).squeeze(1)  # [N]
        rows = torch.arange(b * k, device=device)[:, None].expand_as(keep)[keep]
        scores = scores.index_add(0, rows, logp)
        if greedy:
            miss = logits.argmax(-1).ne(cids[:, 1:][keep]).long()
            is_greedy = is_greedy & torch.zeros(b * k, dtype=torch.long, device=device).index_add(0, rows, miss).eq(0)
    if greedy:
        return scores.view(b, k).cpu(), is_greedy.view(b, k).cpu()
    return scores.view(b, k).cpu()


def score_continuations(
    model,
    tokenizer,
    prefixes: Sequence[str],
    continuations: Sequence[str],
    *,
    batch_size: int = 8,
    prefix_cache: bool | PrefixCache = True,
    method: str = "exact",
    return_greedy: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Log-likelihood of each continuation after each prefix, float32 [N, K], in the order of ``prefixes``.

    ``prefix_cache``: compute the prompt prefix shared by all prefixes (a system prompt) once, see
    :class:`midalign.inference.engine.PrefixCache`; pass one (primed by the caller over all its prompts) to reuse it
    across calls. ``method``: ``"exact"`` (every token of each continuation) or ``"first_token"`` (its first token
    only: no continuation pass; an approximation, never the default). ``return_greedy``: also a bool [N, K], True
    where greedy decoding would produce the continuation token by token."""
    if not continuations:
        raise ValueError("no continuations to score")
    encoded = [continuation_ids(tokenizer, p, continuations) for p in prefixes]
    return score_token_ids(model, _pad_id(tokenizer), encoded, batch_size=batch_size, prefix_cache=prefix_cache,
                           method=method, return_greedy=return_greedy)  # fmt: skip


def _pad_id(tokenizer) -> int:
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad_id is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token: set tokenizer.pad_token")
    return pad_id


def score_token_ids(
    model,
    pad_id: int,
    encoded: Sequence[tuple[list[int], list[list[int]]]],
    *,
    batch_size: int = 8,
    prefix_cache: bool | PrefixCache = True,
    method: str = "exact",
    return_greedy: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """:func:`score_continuations` on token ids: ``encoded[i]`` = (prompt ids, [continuation ids] * K_i). Rows
    may have different continuations (and different K: rows are batched with rows of the same K). Returns [N, K]
    when every K is equal, else a list of [K_i] tensors (and the greedy flags alike)."""
    if method not in SCORING_METHODS:
        raise ValueError(f"scoring method {method!r}: choose one of {', '.join(SCORING_METHODS)}")
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    if any(not cs or any(not c for c in cs) for _, cs in encoded):
        raise ValueError("every row needs at least one non-empty continuation")
    window = sliding_window(model)
    longest = max((len(p) + max(len(c) for c in cs) for p, cs in encoded), default=0)
    own = prefix_cache is True  # a cache of this call's own, primed here; a caller's cache is primed by the caller
    shared = prefix_cache if isinstance(prefix_cache, PrefixCache) else PrefixCache(model) if own else None
    if window is not None and longest > window:
        batch_size, shared = 1, None  # padding would take window slots from the prompt's own tokens
    if shared is not None and own:
        shared.prime([p for p, _ in encoded])
    was_training = model.training
    model.eval()
    out: list = [None] * len(encoded)
    greedy: list = [None] * len(encoded)
    by_k: dict[int, list[int]] = {}
    for i, (_, cs) in enumerate(encoded):
        by_k.setdefault(len(cs), []).append(i)
    for members in by_k.values():
        for batch in length_sorted_batches([len(encoded[i][0]) for i in members], batch_size):
            idx = [members[j] for j in batch]
            got = _score_batch(model, pad_id, [encoded[i][0] for i in idx], [encoded[i][1] for i in idx], shared,
                               method, return_greedy)  # fmt: skip
            scores, flags = got if return_greedy else (got, None)
            for r, i in enumerate(idx):
                out[i] = scores[r]
                greedy[i] = flags[r] if flags is not None else None
    if was_training:
        model.train()
    if len(by_k) <= 1:
        k = next(iter(by_k), 0)
        out_t = torch.stack(out) if out else torch.empty(0, k)
        greedy_t = torch.stack(greedy) if return_greedy and greedy else torch.zeros(0, k, dtype=torch.bool)
        return (out_t, greedy_t) if return_greedy else out_t
    return (out, greedy) if return_greedy else out


def run_scoring(
    model,
    tokenizer,
    rows: Sequence[dict],
    continuations: Sequence[str],
    output_path: str,
    *,
    batch_size: int = 8,
    provenance: dict | None = None,
    progress: bool = False,
    method: str = "exact",
) -> list[dict]:
    """Score every row (``id``, ``prompt``; other fields copied) and write ``{..., "scores": [K floats],
    "prediction": index of the best}`` lines to ``output_path``, appended batch by batch (fsync'd): a killed run
    resumes where it stopped; a file from another run (other prompts, provenance or ``method``) is refused. Single
    process."""
    from ..locking import exclusive

    ids = [str(r["id"]) for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("row ids must be unique")
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    with exclusive(output_path, directory=False, what="output file"):
        return _run_scoring(
            model, tokenizer, rows, ids, continuations, output_path, batch_size, provenance, progress, method
        )


def _run_scoring(model, tokenizer, rows, ids, continuations, output_path, batch_size, provenance, progress, method):
    done = read_done(output_path)
    unknown = set(done) - set(ids)
    if unknown:
        raise ValueError(f"{output_path} holds rows of another run (ids {sorted(unknown)[:5]}...); remove it")
    _check_resume(
        output_path,
        done,
        list(rows),
        {**(provenance or {}), "continuations": list(continuations)}
        | ({"scoring": method} if method != "exact" else {}),
    )
    todo = [r for r in rows if str(r["id"]) not in done]
    next_batch = max((r.get("_batch", -1) for r in done.values()), default=-1) + 1
    order = length_sorted_batches([len(r["prompt"]) for r in todo], batch_size)
    shared = PrefixCache(model)
    if todo:  # once for the run: the prefix every prompt shares, whatever each batch shares beyond it
        shared.prime([tokenizer(r["prompt"], add_special_tokens=True)["input_ids"] for r in todo])
    with open(output_path, "a", encoding="utf-8") as fh:
        for b, batch in enumerate(tqdm(order, disable=not progress), start=next_batch):
            items = [todo[i] for i in batch]
            scores = score_continuations(model, tokenizer, [r["prompt"] for r in items], continuations,
                                         batch_size=batch_size, prefix_cache=shared, method=method)  # fmt: skip
            lines = []
            for r, s in zip(items, scores.tolist()):
                out = {**r, "scores": s, "prediction": max(range(len(s)), key=s.__getitem__), "_batch": b,
                       "_batch_len": len(items)}  # fmt: skip
                done[str(r["id"])] = out
                lines.append(json.dumps(out, ensure_ascii=False) + "\n")
            fh.write("".join(lines))
            fh.flush()
            os.fsync(fh.fileno())
    return write_in_input_order(output_path, done, ids)
