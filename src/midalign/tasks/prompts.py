"""Rendering prompts and targets into the paper's ``prefix`` / ``text`` training format with a chat template."""

from __future__ import annotations

__all__ = ["end_of_turn", "render_prefix", "render_example"]

_PROBE = "\u2063PROBE\u2063"


def end_of_turn(tokenizer) -> str:
    """What the chat template writes right after an assistant message (e.g. ``<|im_end|>``, ``<|eot_id|>``),
    without trailing line breaks: appended to targets so that the model learns to stop."""
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": _PROBE}], tokenize=False
    )
    return rendered.split(_PROBE, 1)[1].rstrip("\n")


def render_prefix(tokenizer, user: str, system: str | None = None) -> str:
    """The fully rendered prompt up to where the assistant's answer starts."""
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def render_example(tokenizer, user: str, target: str, system: str | None = None) -> dict[str, str]:
    """``{"prefix": rendered prompt, "text": target + end-of-turn}``."""
    return {"prefix": render_prefix(tokenizer, user, system), "text": target + end_of_turn(tokenizer)}
