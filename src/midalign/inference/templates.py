"""Prompt strings for generation: the tokenizer's chat template, or the paper's training format.

``--no-default-template`` (paper): the paper trained Llama-3 on prompts rendered without the BOS token in the string
and with a line break after each end-of-turn token. Generalised to any chat template: drop a leading BOS string
when the tokenizer adds BOS itself, and make sure every end-of-turn marker (what the template writes after a
message, e.g. ``<|eot_id|>``, ``<|im_end|>``) is followed by ``\\n``. Such prompts are tokenized with the
tokenizer's own special tokens (as in training); default-template prompts already carry them and are tokenized
without adding any.
"""

from __future__ import annotations

from .prompts import end_of_turn, render_prefix

__all__ = ["build_prompt", "paper_format"]


def _adds_bos(tokenizer) -> bool:
    ids = tokenizer("x", add_special_tokens=True)["input_ids"]
    return tokenizer.bos_token_id is not None and bool(ids) and ids[0] == tokenizer.bos_token_id


def paper_format(tokenizer, rendered: str) -> str:
    bos = tokenizer.bos_token
    # Only a BOS the tokenizer would add again is dropped (Llama-3's <|begin_of_text|>); ChatML models such as
    # SmolLM2 call <|im_start|> their BOS, but it is part of the template and the tokenizer never adds it.
    if bos and rendered.startswith(bos) and _adds_bos(tokenizer):
        rendered = rendered[len(bos) :]
    eot = end_of_turn(tokenizer)
    if eot:
        parts = rendered.split(eot)
        rendered = parts[0] + "".join(eot + ("" if p.startswith("\n") else "\n") + p for p in parts[1:])
    return rendered


def build_prompt(tokenizer, user: str, system: str | None = None, default_template: bool = True) -> str:
    rendered = render_prefix(tokenizer, user, system)
    return rendered if default_template else paper_format(tokenizer, rendered)
