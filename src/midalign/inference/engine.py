"""Batched, resumable greedy generation over a base model plus zero or more adapters.

Two things make it faster than generating over the prompts in input order:

* prompts are sorted by length so that each batch needs little padding (left padding); results are restored to
  input order;
* a :class:`PrefixCache` computes the key/value states of the prompt prefix shared by every prompt of a batch (the
  chat template and the task's system prompt: 88 of 98-154 tokens for MASSIVE prompts with SmolLM2) once, and every
  batch starts from copies of them, so prefill only runs over each prompt's own tokens.

Output is JSON lines ``{"id", "index", "prompt", "prediction", ...}``, appended one whole batch at a time (flushed and
fsynced), so an interrupted run loses at most the batch in flight. Re-running the same command skips the rows already
written (a torn last line is dropped) and, when all are done, rewrites the file in input order.
"""

from __future__ import annotations

import copy
import inspect
import json
import os
from collections.abc import Iterable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from .store import (  # the resumable output store and the distributed setup (kept importable from here)
    _check_resume,
    _distributed,
    _fold_parts,
    init_distributed_from_env,
    part_path,
    provenance_path,
    read_done,
    write_in_input_order,
)

__all__ = [
    "PrefixCache",
    "common_prefix_length",
    "length_sorted_batches",
    "greedy_decode",
    "generate_batch",
    "read_done",
    "provenance_path",
    "run_generation",
    "init_distributed_from_env",
    "part_path",
    "write_in_input_order",
]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first; ties keep input order)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def encode_batches(tokenizer, sentences: Sequence[str], batch_size: int, max_length: int, device) -> Iterator:
    """``(indices, batch)``: padded batches of raw sentences (the tokenizer's own special tokens) on ``device``,
    grouped by length (longest first, :func:`midalign.inference.length_sorted_batches`) so that little padding is
    computed; ``indices`` are the batch's positions in ``sentences``."""
    for idx in length_sorted_batches([len(s) for s in sentences], batch_size):
        enc = tokenizer(
            [sentences[i] for i in idx], return_tensors="pt", padding=True, truncation=True, max_length=max_length
        )
        yield idx, enc.to(device)


def common_prefix_length(seqs: Sequence[Sequence[int]]) -> int:
    """Length of the longest token prefix shared by all ``seqs``, at most ``min(len) - 1`` so that every sequence
    keeps at least one token of its own (the one whose logits give the first generated token)."""
    if not seqs:
        return 0
    first, limit = seqs[0], min(len(s) for s in seqs) - 1
    n = 0
    while n < limit and all(s[n] == first[n] for s in seqs):
        n += 1
    return n


def _new_cache(model):
    from transformers import DynamicCache

    config = getattr(model, "config", None)
    return DynamicCache(config=config) if config is not None else DynamicCache()


def _logits_to_keep_kwargs(model) -> dict:
    """``logits_to_keep=1`` where the model's forward takes it: prefill then skips the [B, T, vocab] logits."""
    inner = model.get_base_model() if hasattr(model, "get_base_model") else model
    return {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(inner.forward).parameters else {}


def sliding_window(model) -> int | None:
    """The attention window of a model whose layers (some or all) attend to a sliding window, else None."""
    config = getattr(model, "config", None)
    window = getattr(config, "sliding_window", None)
    if not window or getattr(config, "use_sliding_window", True) is False:
        return None
    layer_types = getattr(config, "layer_types", None)
    if layer_types is not None and "sliding_attention" not in layer_types:
        return None
    return int(window)


class PrefixCache:
    """Key/value states of shared prompt prefixes, computed once (batch of one) and reused by every batch whose
    prompts all start with them.

    :meth:`lookup` returns, for a batch of token id lists, the prefix length ``P`` and a fresh cache holding the
    states of those ``P`` tokens for every row (or ``(0, None)`` when the batch shares fewer than ``min_tokens``). A
    stored prefix is reused when the batch's common prefix starts with it and is less than ``min_tokens`` longer;
    otherwise the batch's own common prefix is computed and stored (at most ``max_entries``, oldest dropped).
    :meth:`prime` stores the prefix common to a whole run up front, so that batches whose prompts happen to share a
    few more tokens still reuse it.

    The cached rows hold exactly what the uncached forward computes for those positions (same tokens, same
    positions 0..P-1, causal attention never looks ahead); only the floating-point summation order differs
    (matrix shapes change), which greedy decoding does not notice in practice (128/128 identical outputs in
    ``benchmarks/inference.py``; tests compare against the uncached run).

    Batches are laid out ``prefix | left padding | own tokens``, so the padding sits inside the sequence: with a
    sliding-window model that would change which tokens fall in the window, hence :func:`generate_batch` skips the
    cache for batches longer than the window (prompt + new tokens).
    """

    def __init__(self, model, min_tokens: int = 16, max_entries: int = 4):
        self.model = model
        self.min_tokens = min_tokens
        self.max_entries = max_entries
        self._entries: dict[tuple[int, ...], object] = {}

    def _compute(self, prefix: tuple[int, ...]):
        cache = _new_cache(self.model)
        device = next(self.model.parameters()).device
        with torch.no_grad():
            self.model(
                input_ids=torch.tensor([prefix], device=device),
                past_key_values=cache,
                use_cache=True,
                **_logits_to_keep_kwargs(self.model),
            )
        if len(self._entries) >= self.max_entries:
            self._entries.pop(next(iter(self._entries)))
        self._entries[prefix] = cache
        return cache

    def prime(self, seqs: Sequence[Sequence[int]]) -> int:
        """Compute and store the prefix common to all ``seqs`` (if long enough); returns its length."""
        n = common_prefix_length(seqs)
        if n >= self.min_tokens and tuple(seqs[0][:n]) not in self._entries:
            self._compute(tuple(seqs[0][:n]))
        return n if n >= self.min_tokens else 0

    def lookup(self, seqs: Sequence[Sequence[int]]):
        """(P, cache with the first P positions of every row of ``seqs``), or (0, None)."""
        n = common_prefix_length(seqs)
        if n < self.min_tokens:
            return 0, None
        head = seqs[0]
        known = [k for k in self._entries if n - self.min_tokens < len(k) <= n and tuple(head[: len(k)]) == k]
        if known:
            key = max(known, key=len)
            stored = self._entries[key]
        else:
            key = tuple(head[:n])
            stored = self._compute(key)
        cache = copy.deepcopy(stored)
        cache.batch_repeat_interleave(len(seqs))
        return len(key), cache


def _pad(seqs: Sequence[Sequence[int]], prefix_len: int, pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """[B, T] ids and mask laid out as ``prefix | left padding | own tokens`` (plain left padding when
    ``prefix_len`` is 0)."""
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        own = len(s) - prefix_len
        ids[r, :prefix_len] = torch.tensor(s[:prefix_len], dtype=torch.long)
        mask[r, :prefix_len] = 1
        ids[r, width - own :] = torch.tensor(s[prefix_len:], dtype=torch.long)
        mask[r, width - own :] = 1
    return ids.to(device), mask.to(device)


@torch.no_grad()
def greedy_decode(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    max_new_tokens: int,
    eos_ids: set[int],
    past_key_values=None,
) -> list[list[int]]:
    """Greedy decoding with a KV cache that drops each sequence from the batch as soon as it emits an end token,
    so the remaining steps only compute the unfinished ones. Left padding expected.

    Args:
        input_ids, attention_mask: shape [B, T].
        past_key_values: optional cache already holding the first ``P`` positions (e.g. from :class:`PrefixCache`);
            only ``input_ids[:, P:]`` are then run.
    Returns:
        B lists of generated token ids (each ends with its end token unless ``max_new_tokens`` was reached).
    """
    cache = past_key_values if past_key_values is not None else _new_cache(model)
    past = cache.get_seq_length()
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=input_ids[:, past:],
        attention_mask=attention_mask,
        position_ids=position_ids[:, past:],
        past_key_values=cache,
        use_cache=True,
        **_logits_to_keep_kwargs(model),
    )
    generated: list[list[int]] = [[] for _ in range(input_ids.shape[0])]
    rows = torch.arange(input_ids.shape[0])
    mask, pos = attention_mask, position_ids[:, -1:]
    eos = torch.tensor(sorted(eos_ids), dtype=torch.long, device=input_ids.device)
    for step in range(max_new_tokens):
        token = out.logits[:, -1].argmax(-1)
        for row, t in zip(rows.tolist(), token.tolist()):
            generated[row].append(t)
        keep = ~torch.isin(token, eos)
        if step == max_new_tokens - 1 or not keep.any():
            break
        if not keep.all():
            idx = keep.nonzero().squeeze(1)
            cache.batch_select_indices(idx)
            rows, token, mask, pos = rows[idx.cpu()], token[idx], mask[idx], pos[idx]
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
        pos = pos + 1
        out = model(
            input_ids=token[:, None], attention_mask=mask, position_ids=pos, past_key_values=cache, use_cache=True
        )
    return generated


def stop_token_ids(model, tokenizer) -> list[int]:
    """The union of the tokenizer's eos and the model's ``generation_config.eos_token_id`` (an int or a list: e.g.
    Gemma 3 instruction models end a turn with ``<end_of_turn>``, which is not the tokenizer's eos)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    config = getattr(model, "generation_config", None)
    extra = getattr(config, "eos_token_id", None) if config is not None else None
    if isinstance(extra, int):
        ids.add(extra)
    elif extra is not None:
        ids |= {int(t) for t in extra}
    return sorted(ids)


@torch.no_grad()
def generate_batch(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 128,
    add_special_tokens: bool = False,
    eos_token_id: int | list[int] | None = None,
    prefix_cache: PrefixCache | bool = True,
    use_hf_generate: bool = True,
    token_ids: Sequence[Sequence[int]] | None = None,
    **generate_kwargs,
) -> tuple[list[str], int]:
    """Greedy continuations of ``prompts`` (one batch, left padded). Returns (texts, generated token count).

    Args:
        prefix_cache: a :class:`PrefixCache` shared across batches, ``True`` for one used by this batch only, or
            ``False`` to run prefill over every prompt token. Not used when a sliding-window model's window is
            shorter than the longest prompt plus ``max_new_tokens``.
        use_hf_generate: ``model.generate`` (default); ``False`` runs :func:`greedy_decode`, where finished
            sequences leave the batch (extra ``generate_kwargs`` need ``model.generate``).
        token_ids: the prompts already tokenized (as with ``add_special_tokens``), to skip tokenizing them again.
    """
    if token_ids is None:
        token_ids = [tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"] for p in prompts]
    ids = list(token_ids)
    if eos_token_id is None:
        eos_token_id = stop_token_ids(model, tokenizer)
    eos = {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id)
    if not eos and tokenizer.pad_token_id is None:
        raise ValueError(
            "the tokenizer has neither an eos nor a pad token and the model's generation_config names no eos: set "
            "tokenizer.eos_token (or pad_token) to the token that ends an answer"
        )
    if prefix_cache is True:
        prefix_cache = PrefixCache(model)
    window = sliding_window(model)
    if window is not None and max(len(s) for s in ids) + max_new_tokens > window:
        prefix_cache = False  # padding inside the window would change what the window covers
    prefix_len, cache = prefix_cache.lookup(ids) if prefix_cache else (0, None)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos)
    input_ids, mask = _pad(ids, prefix_len, pad_id, next(model.parameters()).device)
    if use_hf_generate or generate_kwargs:
        kwargs = {
            "do_sample": False,
            "num_beams": 1,
            "max_new_tokens": max_new_tokens,
            "eos_token_id": sorted(eos),
            "pad_token_id": pad_id,
            **generate_kwargs,
        }
        if cache is not None:
            kwargs["past_key_values"] = cache
        new = model.generate(input_ids=input_ids, attention_mask=mask, **kwargs)[:, input_ids.shape[1] :].tolist()
    else:
        new = greedy_decode(model, input_ids, mask, max_new_tokens, eos, past_key_values=cache)
    trimmed = []
    for row in new:
        cut = next((j + 1 for j, t in enumerate(row) if t in eos), len(row))
        trimmed.append(row[:cut])
    n_tokens = sum(len(r) for r in trimmed)
    return tokenizer.batch_decode(trimmed, skip_special_tokens=True), n_tokens


def run_generation(
    model,
    tokenizer,
    rows: Iterable[dict],
    output_path: str,
    *,
    batch_size: int = 16,
    max_new_tokens: int = 128,
    add_special_tokens: bool = False,
    prefix_cache: bool = True,
    progress: bool = True,
    provenance: dict | None = None,
    backend=None,
    **generate_kwargs,
) -> list[dict]:
    """Generate for every ``row`` (needs ``id`` and ``prompt``; other fields are copied to the output).

    ``backend``: another decoder, a callable from a batch's prompt token ids to its texts (e.g.
    :class:`~midalign.inference.vllm_engine.VllmWorker`'s ``generate``); ``model`` is then unused and may be None.

    ``prefix_cache``: reuse the key/value states of the prompt prefix shared by the rows (see :class:`PrefixCache`).
    ``provenance``: what produces the rows (model, adapters with content hashes, generation settings), stored
    beside the output as ``<output_path>.run.json``. Resuming a file is refused when a stored row's prompt differs
    from this run's, or when the stored provenance (or its absence) differs from ``provenance``.
    Returns the output rows in input order; ``output_path`` holds them in input order at the end.

    Under ``torch.distributed`` with N > 1 processes (e.g. ``torchrun --nproc_per_node N``), the length-sorted
    batches are dealt round-robin (batch i to rank i mod N: every batch holds the rows it would hold in a
    single-process run, so the outputs are the same); each rank appends its rows to its own resumable
    ``<output_path>.part-<rank>-of-<N>``; rank 0 merges them into ``output_path`` in input order. Parts left by a
    killed run (with any N) are folded into the output at the next start.
    """
    rows = [dict(r, index=i) for i, r in enumerate(rows)]
    ids = [str(r["id"]) for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("row ids must be unique")
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    dist, rank, world = _distributed()
    error = None
    if rank == 0:  # the only writer of output_path and its provenance
        try:
            _fold_parts(output_path)
            done = read_done(output_path)
            unknown = set(done) - set(ids)
            if unknown:
                raise ValueError(
                    f"{output_path} holds rows of another run (ids {sorted(unknown)[:5]}...); "
                    "choose another --output-path or remove the file"
                )
            _check_resume(output_path, done, rows, provenance)
        except ValueError as err:
            error = str(err)
    if dist is not None:  # every rank raises the same error, none waits forever at a barrier
        shared_error = [error]
        dist.broadcast_object_list(shared_error, src=0)
        error = shared_error[0]
    if error:
        raise ValueError(error)
    done = read_done(output_path) if rank else done
    todo = [r for r in rows if str(r["id"]) not in done]
    token_ids = [tokenizer(r["prompt"], add_special_tokens=add_special_tokens)["input_ids"] for r in todo]
    batches = length_sorted_batches([len(t) for t in token_ids], batch_size)
    shared = PrefixCache(model) if prefix_cache and backend is None else None
    if shared is not None and todo:
        shared.prime(token_ids)  # every rank primes with all prompts: the same prefix as a single process
    target = output_path if dist is None else part_path(output_path, rank, world)
    next_batch = max((r.get("_batch", -1) for r in done.values()), default=-1) + 1 if dist is None else 0
    mine = [(b, batch) for b, batch in enumerate(batches, start=next_batch) if (b - next_batch) % world == rank]
    with (
        open(target, "a", encoding="utf-8") as fh,
        tqdm(total=len(rows), initial=len(rows) - len(todo), desc="generating", disable=not progress or rank) as bar,
    ):
        for b, batch in mine:
            items = [todo[i] for i in batch]
            if backend is not None:
                texts = backend([token_ids[i] for i in batch])
            else:
                texts, _ = generate_batch(
                    model,
                    tokenizer,
                    [r["prompt"] for r in items],
                    token_ids=[token_ids[i] for i in batch],
                    max_new_tokens=max_new_tokens,
                    add_special_tokens=add_special_tokens,
                    prefix_cache=shared if shared is not None else False,
                    **generate_kwargs,
                )
            lines = []
            for r, text in zip(items, texts):
                out = {**r, "prediction": text, "_batch": b, "_batch_len": len(items)}
                done[str(r["id"])] = out
                lines.append(json.dumps(out, ensure_ascii=False) + "\n")
            fh.write("".join(lines))
            fh.flush()
            os.fsync(fh.fileno())
            bar.update(len(items) * world)
    if dist is not None:
        dist.barrier()
        if rank == 0:
            _fold_parts(output_path)
            done = read_done(output_path)
    if rank == 0:
        ordered = write_in_input_order(output_path, done, ids)
    if dist is not None:
        dist.barrier()
        if rank:
            done = read_done(output_path)
            ordered = [done[i] for i in ids]
    return ordered
