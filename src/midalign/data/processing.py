"""Tokenization with prompt masking, and the collator that pads task and pair columns separately."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "IGNORE_INDEX",
    "PAIR_SIDES",
    "TargetTooLongError",
    "tokenize_task",
    "check_task_lengths",
    "tokenize_pair",
    "AlignmentCollator",
]

IGNORE_INDEX = -100


class TargetTooLongError(ValueError):
    """A task example does not fit in ``--block_size``."""


PAIR_SIDES = ("parallel_0", "parallel_1")


def tokenize_task(tokenizer, prefix: str, text: str, block_size: int | None) -> dict[str, list[int]]:
    """Causal-LM features of ``prefix + text`` with the prompt masked.

    The first ``len(tokenize(prefix))`` labels are ``IGNORE_INDEX`` (-100), as in the paper. When the tokenizer
    merges tokens across the prompt/target boundary (the prompt's tokens are then not a prefix of the joint
    tokenization), the sequence is the prompt's tokens followed by the target tokenized on its own, so the mask
    covers exactly the prompt (trl checks the same). ``block_size`` (None
    or 0: no limit) bounds the sequence; an example whose target would be cut raises :class:`TargetTooLongError`
    (it would train on a truncated or empty target otherwise).
    """
    ids = tokenizer(prefix + text, add_special_tokens=True)["input_ids"]
    prompt = tokenizer(prefix, add_special_tokens=True)["input_ids"] if prefix else []
    n_prompt = len(prompt)
    if ids[:n_prompt] != prompt:
        # The tokenizer merged tokens across the prompt/target boundary, so masking the first len(prompt) tokens of
        # the joint tokenization would shift the mask. Keep the prompt's own tokens and tokenize the target alone.
        ids = prompt + tokenizer(text, add_special_tokens=False)["input_ids"]
    if block_size and len(ids) > block_size:
        raise TargetTooLongError(
            f"prompt ({n_prompt} tokens) + target ({len(ids) - n_prompt} tokens) exceed --block_size {block_size}"
        )
    labels = [IGNORE_INDEX] * min(n_prompt, len(ids)) + ids[n_prompt:]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def check_task_lengths(rows, tokenizer, block_size: int | None) -> None:
    """Raise one error naming how many ``(where, row)`` task examples do not fit in ``block_size`` and the first's
    ``file:line``. Only rows longer than ``block_size - 2`` UTF-8 bytes are tokenized (a token spans at least one
    byte; at most two special tokens are added), so the check is cheap for usual block sizes."""
    if not block_size:
        return
    bad = []
    for where, row in rows:
        text = row["prefix"] + row["text"]
        if len(text.encode("utf-8")) + 2 <= block_size:
            continue
        try:
            tokenize_task(tokenizer, row["prefix"], row["text"], block_size)
        except TargetTooLongError as err:
            bad.append((where, str(err)))
    if bad:
        raise TargetTooLongError(
            f"{len(bad)} task example(s) do not fit in --block_size {block_size}; first {bad[0][0]}: {bad[0][1]}. "
            "Raise --block_size (0 = no limit) or shorten those examples: a cut target would be trained on as "
            "truncated or empty"
        )


def tokenize_pair(tokenizer, sentence_0: str, sentence_1: str, block_size: int | None) -> dict[str, list[int]]:
    """Features of a raw parallel pair (no template), keys ``input_ids_parallel_{0,1}`` and masks."""
    out: dict[str, list[int]] = {}
    for side, sentence in zip(PAIR_SIDES, (sentence_0, sentence_1)):
        ids = tokenizer(sentence, add_special_tokens=True)["input_ids"]
        if block_size:
            ids = ids[:block_size]
        out[f"input_ids_{side}"] = ids
        out[f"attention_mask_{side}"] = [1] * len(ids)
    return out


def _pad(seqs: list[list[int]], value: int, multiple: int | None) -> torch.Tensor:
    length = max(len(s) for s in seqs)
    if multiple:
        length = -(-length // multiple) * multiple
    return torch.tensor([s + [value] * (length - len(s)) for s in seqs], dtype=torch.long)


@dataclass
class AlignmentCollator:
    """Right-pads each column group (task; each pair side) to its own longest length, rounded up to
    ``pad_to_multiple_of``. Task labels pad with -100, masks with 0, ids with ``pad_token_id``.

    Output keys (when present in the features): ``input_ids, attention_mask, labels`` [B, T_task] and
    ``input_ids_parallel_{0,1}, attention_mask_parallel_{0,1}`` [B, T_side].
    """

    pad_token_id: int
    pad_to_multiple_of: int | None = 8

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        keys = set(features[0])
        for f in features[1:]:
            if set(f) != keys:
                raise ValueError(f"collator: rows of one batch carry different fields: {sorted(keys)} vs {sorted(f)}")
        pad_values = {"labels": IGNORE_INDEX}
        batch = {}
        for key in sorted(keys):
            value = pad_values.get(key, 0 if key.startswith("attention_mask") else self.pad_token_id)
            batch[key] = _pad([f[key] for f in features], value, self.pad_to_multiple_of)
        return batch
