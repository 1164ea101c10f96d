"""MASSIVE slot filling: annotation parsing, gold targets and the prompt.

MASSIVE marks slots inline: ``wake me up at [time : nine am] on [date : friday]``. The target the model learns is
``time: nine am; date: friday`` (slots in order of appearance), or ``None`` when the utterance has no slot.
"""

from __future__ import annotations

import re

__all__ = ["SLOT_PATTERN", "parse_annotation", "gold_target", "slot_prompt", "NO_SLOTS"]

SLOT_PATTERN = re.compile(r"\[\s*([^\[\]:]+?)\s*:\s*([^\[\]]*?)\s*\]")
NO_SLOTS = "None"


def parse_annotation(annot_utt: str) -> tuple[str, list[tuple[str, str]]]:
    """``annot_utt`` -> (plain utterance, [(label, value), ...]) in order of appearance."""
    slots = [(m.group(1).strip(), m.group(2).strip()) for m in SLOT_PATTERN.finditer(annot_utt)]
    utt = SLOT_PATTERN.sub(lambda m: m.group(2).strip(), annot_utt)
    if "[" in utt or "]" in utt:
        raise ValueError(f"malformed MASSIVE annotation (unbalanced brackets): {annot_utt!r}")
    return utt, slots


def gold_target(annot_utt: str) -> str:
    """``label: value; label: value`` or ``None``."""
    _, slots = parse_annotation(annot_utt)
    return "; ".join(f"{label}: {value}" for label, value in slots) if slots else NO_SLOTS


def slot_prompt(utt: str) -> str:
    """The user message asking for the slots of one utterance."""
    return (
        "Extract the slots from the following voice-assistant command. Answer with 'label: value' pairs separated "
        f"by '; ', or 'None' if there are no slots.\nCommand: {utt}"
    )
