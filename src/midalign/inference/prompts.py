"""Rendering prompts and targets into the paper's ``prefix`` / ``text`` training format.

Models with a chat template (SmolLM2, Llama-3-Instruct, Qwen2.5-Instruct) get it, with the task's instructions as
the system message. Base models without one (Gemma 3 270M) get the plain format::

    <instructions>

    Input: <user message>
    Output: <target><eos>

The target starts with a space after ``Output:`` (so the prompt's tokens are a prefix of the full sequence's) and
ends with the tokenizer's end-of-sequence token, which stops generation.
"""

from __future__ import annotations

__all__ = ["has_chat_template", "end_of_turn", "render_prefix", "render_target", "render_example"]

_PROBE = "\u2063PROBE\u2063"
PLAIN_INPUT, PLAIN_OUTPUT = "Input: ", "Output:"


def has_chat_template(tokenizer) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def end_of_turn(tokenizer) -> str:
    """What the chat template writes right after an assistant message (e.g. ``<|im_end|>``, ``<|eot_id|>``),
    without trailing line breaks: appended to targets so that the model learns to stop. Without a chat template:
    the end-of-sequence token."""
    if not has_chat_template(tokenizer):
        return tokenizer.eos_token or ""
    rendered = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": _PROBE}], tokenize=False
    )
    return rendered.split(_PROBE, 1)[1].rstrip("\n")


def render_prefix(tokenizer, user: str, system: str | None = None) -> str:
    """The fully rendered prompt up to where the assistant's answer starts."""
    if not has_chat_template(tokenizer):
        return (f"{system}\n\n" if system else "") + f"{PLAIN_INPUT}{user}\n{PLAIN_OUTPUT}"
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def render_target(tokenizer, target: str) -> str:
    """``target`` + end-of-turn (with a leading space in the plain format)."""
    return ("" if has_chat_template(tokenizer) else " ") + target + end_of_turn(tokenizer)


def render_example(tokenizer, user: str, target: str, system: str | None = None) -> dict[str, str]:
    """``{"prefix": rendered prompt, "text": target + end-of-turn}``."""
    return {"prefix": render_prefix(tokenizer, user, system), "text": render_target(tokenizer, target)}
