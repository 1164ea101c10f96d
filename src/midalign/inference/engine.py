"""Batched, resumable greedy generation over a base model plus zero or more adapters.

Prompts are sorted by length so that each batch needs little padding (left padding); results are restored to input
order. Output is JSON lines ``{"id", "index", "prompt", "prediction", ...}``, appended one whole batch at a time
(flushed and fsynced), so an interrupted run loses at most the batch in flight. Re-running the same command skips
the rows already written (a torn last line is dropped) and, when all are done, rewrites the file in input order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence

import torch
from tqdm.auto import tqdm

__all__ = ["length_sorted_batches", "greedy_decode", "generate_batch", "read_done", "run_generation"]


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first; ties keep input order)."""
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def greedy_decode(
    model, input_ids: torch.Tensor, attention_mask: torch.Tensor, max_new_tokens: int, eos_ids: set[int]
) -> list[list[int]]:
    """Greedy decoding with a KV cache that drops each sequence from the batch as soon as it emits an end token,
    so the remaining steps only compute the unfinished ones. Left padding expected.

    Args:
        input_ids, attention_mask: shape [B, T].
    Returns:
        B lists of generated token ids (each ends with its end token unless ``max_new_tokens`` was reached).
    """
    from transformers import DynamicCache

    config = getattr(model, "config", None)
    cache = DynamicCache(config=config) if config is not None else DynamicCache()
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=input_ids,
        attention_mask=attention_mask,
        position_ids=position_ids,
        past_key_values=cache,
        use_cache=True,
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


@torch.no_grad()
def generate_batch(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 128,
    add_special_tokens: bool = False,
    eos_token_id: int | list[int] | None = None,
    use_hf_generate: bool = False,
    **generate_kwargs,
) -> tuple[list[str], int]:
    """Greedy continuations of ``prompts`` (one batch, left padded). Returns (texts, generated token count).

    By default :func:`greedy_decode` (finished sequences leave the batch); ``use_hf_generate=True`` or any extra
    ``generate_kwargs`` use ``model.generate`` instead.
    """
    tokenizer.padding_side = "left"
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True, add_special_tokens=add_special_tokens)
    enc = {k: v.to(next(model.parameters()).device) for k, v in enc.items()}
    if eos_token_id is None:
        eos_token_id = [t for t in (tokenizer.eos_token_id,) if t is not None]
    eos = {eos_token_id} if isinstance(eos_token_id, int) else set(eos_token_id)
    if use_hf_generate or generate_kwargs:
        kwargs = {
            "do_sample": False,
            "num_beams": 1,
            "max_new_tokens": max_new_tokens,
            "eos_token_id": sorted(eos),
            "pad_token_id": tokenizer.pad_token_id,
            **generate_kwargs,
        }
        new = model.generate(**enc, **kwargs)[:, enc["input_ids"].shape[1] :].tolist()
    else:
        new = greedy_decode(model, enc["input_ids"], enc["attention_mask"], max_new_tokens, eos)
    trimmed = []
    for row in new:
        cut = next((j + 1 for j, t in enumerate(row) if t in eos), len(row))
        trimmed.append(row[:cut])
    n_tokens = sum(len(r) for r in trimmed)
    return tokenizer.batch_decode(trimmed, skip_special_tokens=True), n_tokens


def read_done(path: str) -> dict[str, dict]:
    """Rows already written to ``path`` by id. Rows of a batch that was not written whole (a run killed while
    writing) are dropped from the file, so that the resumed run re-forms exactly the same batches."""
    if not os.path.exists(path):
        return {}
    with open(path, "rb") as fh:
        data = fh.read()
    lines = data.split(b"\n")
    if lines and lines[-1].strip():  # torn last line
        lines = lines[:-1]
    rows = []
    for lineno, line in enumerate(lines, 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                raise ValueError(f"{path}:{lineno}: not a JSON line; remove the file to start over") from None
    counts: dict[int, int] = {}
    for r in rows:
        if "_batch" in r:
            counts[r["_batch"]] = counts.get(r["_batch"], 0) + 1
    keep = [r for r in rows if "_batch" not in r or counts[r["_batch"]] == r["_batch_len"]]
    if len(keep) != len(rows) or not data.endswith(b"\n") and data:
        with open(path, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in keep)
    return {str(r["id"]): r for r in keep}


def run_generation(
    model,
    tokenizer,
    rows: Iterable[dict],
    output_path: str,
    *,
    batch_size: int = 16,
    max_new_tokens: int = 128,
    add_special_tokens: bool = False,
    progress: bool = True,
    **generate_kwargs,
) -> list[dict]:
    """Generate for every ``row`` (needs ``id`` and ``prompt``; other fields are copied to the output).

    Returns the output rows in input order; ``output_path`` holds them in input order at the end.
    """
    rows = [dict(r, index=i) for i, r in enumerate(rows)]
    ids = [str(r["id"]) for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError("row ids must be unique")
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    done = read_done(output_path)
    unknown = set(done) - set(ids)
    if unknown:
        raise ValueError(
            f"{output_path} holds rows of another run (ids {sorted(unknown)[:5]}...); "
            "choose another --output-path or remove the file"
        )
    todo = [r for r in rows if str(r["id"]) not in done]
    lengths = [len(tokenizer(r["prompt"], add_special_tokens=add_special_tokens)["input_ids"]) for r in todo]
    batches = length_sorted_batches(lengths, batch_size)
    next_batch = max((r.get("_batch", -1) for r in done.values()), default=-1) + 1
    with (
        open(output_path, "a", encoding="utf-8") as fh,
        tqdm(total=len(rows), initial=len(rows) - len(todo), desc="generating", disable=not progress) as bar,
    ):
        for b, batch in enumerate(batches, start=next_batch):
            items = [todo[i] for i in batch]
            texts, _ = generate_batch(
                model,
                tokenizer,
                [r["prompt"] for r in items],
                max_new_tokens=max_new_tokens,
                add_special_tokens=add_special_tokens,
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
            bar.update(len(items))
    ordered = [{k: v for k, v in done[i].items() if k not in ("_batch", "_batch_len")} for i in ids]
    tmp = output_path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in ordered)
    os.replace(tmp, output_path)
    return ordered
