"""MASSIVE slot filling (FitzGerald et al. 2022): data, prompts, gold targets, prediction parsing and slot F1.

MASSIVE marks slots inline: ``wake me up at [time : nine am] on [date : friday]``. The model answers
``time: nine am; date: friday`` (slots in order of appearance), or ``None`` when there is no slot.

Scoring rebuilds word-level BIO tags: gold from ``annot_utt``; predictions by locating each predicted value in the
utterance. Words are whitespace tokens, except for ja-JP, zh-CN and zh-TW, which are split into characters with runs
of Latin letters and digits kept whole. **Repeated spans**: predicted slots are placed left to right, each on the
leftmost occurrence of its value (case-insensitive, whole words) that does not overlap an earlier placed slot;
a value that cannot be placed counts as ``unmatched`` and tags nothing.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

__all__ = [
    "SYSTEM_PROMPT",
    "NO_SLOTS",
    "MASSIVE_LOCALES",
    "CHAR_LOCALES",
    "HUB_ID",
    "HUB_REVISION",
    "SLOT_PATTERN",
    "resolve_locale",
    "load_massive",
    "parse_annotation",
    "gold_target",
    "slot_prompt",
    "words",
    "gold_bio",
    "parse_prediction",
    "prediction_bio",
    "SlotScores",
    "bio_scores",
    "score_slots",
]

HUB_ID = "AmazonScience/massive"
# The hub repository's loading script is refused by datasets>=4; its parquet conversion loads without code.
HUB_REVISION = "refs/convert/parquet"
NO_SLOTS = "None"
# The paper's system prompt (scripts/run_inference_massive.py of the paper's repository).
SYSTEM_PROMPT = (
    "Given a command from the user, a voice assistant will extract entities essential for carry out the command.\n"
    "For example, for a command about playing a specific song, the name of the song mentioned by the user would be "
    'an entity, falling under the type of "song name".\n'
    "Your task is to extract the entities as words from the command if they fall under a predefined list of entity "
    "types."
)
MASSIVE_LOCALES = (
    "af-ZA am-ET ar-SA az-AZ bn-BD ca-ES cy-GB da-DK de-DE el-GR en-US es-ES fa-IR fi-FI fr-FR he-IL hi-IN hu-HU "
    "hy-AM id-ID is-IS it-IT ja-JP jv-ID ka-GE km-KH kn-IN ko-KR lv-LV ml-IN mn-MN ms-MY my-MM nb-NO nl-NL pl-PL "
    "pt-PT ro-RO ru-RU sl-SL sq-AL sv-SE sw-KE ta-IN te-IN th-TH tl-PH tr-TR ur-PK vi-VN zh-CN zh-TW"
).split()
CHAR_LOCALES = {"ja-JP", "zh-CN", "zh-TW"}
_SHORT = {loc.split("-")[0]: loc for loc in MASSIVE_LOCALES if loc != "zh-TW"}
_SHORT.update({"zh": "zh-CN", "zh-tw": "zh-TW", "tw": "zh-TW", "zh-cn": "zh-CN"})
_PARTITIONS = {"train": "train", "dev": "validation", "validation": "validation", "test": "test"}
SLOT_PATTERN = re.compile(r"\[\s*([^\[\]:]+?)\s*:\s*([^\[\]]*?)\s*\]")


def resolve_locale(code: str) -> str:
    """``en`` / ``en-US`` / ``EN_us`` -> ``en-US``; ``zh`` -> ``zh-CN``, ``zh-tw`` -> ``zh-TW``."""
    key = code.strip().replace("_", "-")
    for loc in MASSIVE_LOCALES:
        if key.lower() == loc.lower():
            return loc
    if key.lower() in _SHORT:
        return _SHORT[key.lower()]
    raise ValueError(
        f"--lang {code!r} is not a MASSIVE language; valid: {', '.join(sorted(_SHORT))} "
        f"or a locale ({', '.join(MASSIVE_LOCALES)})"
    )


def _partition(partition: str) -> str:
    try:
        return _PARTITIONS[partition]
    except KeyError:
        raise ValueError(f"--partition {partition!r}: choose train, validation (dev) or test") from None


def load_massive(lang: str, partition: str, data_dir: str | None = None, revision: str = HUB_REVISION) -> list[dict]:
    """Rows (``id, locale, utt, annot_utt, ...``) of one locale and partition, in the dataset's order.

    ``data_dir``: the official release (``<dir>/<locale>.jsonl`` or ``<dir>/data/<locale>.jsonl``, with a
    ``partition`` field train/dev/test). Otherwise the hub dataset at ``revision``.
    """
    locale, split = resolve_locale(lang), _partition(partition)
    if data_dir is not None:
        for path in (os.path.join(data_dir, f"{locale}.jsonl"), os.path.join(data_dir, "data", f"{locale}.jsonl")):
            if os.path.isfile(path):
                break
        else:
            raise FileNotFoundError(f"--data-dir {data_dir}: no {locale}.jsonl (MASSIVE release layout)")
        from ..data.jsonl import json_lines

        rows = []
        for where, row in json_lines(path):
            for key in ("utt", "annot_utt", "partition"):
                if not isinstance(row.get(key), str):
                    raise ValueError(f"{where}: missing or non-string field {key!r}")
            if _PARTITIONS.get(row["partition"]) == split:
                rows.append(row)
        return rows
    from datasets import load_dataset

    ds = load_dataset(HUB_ID, locale, split=split, revision=revision)
    return [dict(r) for r in ds]


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
    """The user message: the utterance itself (the instructions are in :data:`SYSTEM_PROMPT`)."""
    return utt


_CHAR_TOKEN = re.compile(r"[A-Za-z0-9\u00C0-\u024F]+|\S")


def words(text: str, locale: str) -> list[str]:
    """Word tokens: whitespace-separated, or characters (Latin runs whole) for ja-JP / zh-CN / zh-TW."""
    if locale in CHAR_LOCALES:
        return _CHAR_TOKEN.findall(text)
    return text.split()


def gold_bio(annot_utt: str, locale: str) -> tuple[list[str], list[str]]:
    """(words of the utterance, BIO tags) from the inline annotation."""
    toks, tags, pos = [], [], 0
    for m in SLOT_PATTERN.finditer(annot_utt):
        plain = words(annot_utt[pos : m.start()], locale)
        toks += plain
        tags += ["O"] * len(plain)
        span = words(m.group(2), locale)
        toks += span
        tags += [f"B-{m.group(1).strip()}"] + [f"I-{m.group(1).strip()}"] * (len(span) - 1) if span else []
        pos = m.end()
    rest = words(annot_utt[pos:], locale)
    return toks + rest, tags + ["O"] * len(rest)


def parse_prediction(text: str) -> tuple[list[tuple[str, str]], int]:
    """``label: value; ...`` -> ([(label, value)], number of parts that are not ``label: value``).

    ``None`` (any case, optional full stop) means no slots. Only the first line is read.
    """
    text = text.strip().split("\n")[0].strip()
    if not text or re.fullmatch(r"none\.?", text, flags=re.IGNORECASE):
        return [], 0
    slots, bad = [], 0
    for part in text.split(";"):
        part = part.strip()
        if not part:
            continue
        label, sep, value = part.partition(":")
        if not sep or not label.strip() or not value.strip():
            bad += 1
            continue
        slots.append((label.strip().replace(" ", "_"), value.strip()))
    return slots, bad


def prediction_bio(utt_words: list[str], slots: list[tuple[str, str]], locale: str) -> tuple[list[str], int]:
    """BIO tags over ``utt_words`` for predicted slots (placement rule in the module docstring), and the number of
    slots that could not be placed."""
    tags = ["O"] * len(utt_words)
    low = [w.lower() for w in utt_words]
    unmatched = 0
    for label, value in slots:
        span = [w.lower() for w in words(value, locale)]
        n = len(span)
        for i in range(len(low) - n + 1) if n else []:
            if low[i : i + n] == span and all(t == "O" for t in tags[i : i + n]):
                tags[i : i + n] = [f"B-{label}"] + [f"I-{label}"] * (n - 1)
                break
        else:
            unmatched += 1
    return tags, unmatched


@dataclass
class SlotScores:
    slot_f1: float
    slot_precision: float
    slot_recall: float
    exact_match: float
    n: int
    unparseable_predictions: int
    unparseable_parts: int
    unmatched_slots: int
    per_language: dict = field(default_factory=dict)
    intent_accuracy: float | None = None

    def to_dict(self) -> dict:
        out = dict(self.__dict__)
        if out["intent_accuracy"] is None:
            del out["intent_accuracy"]
        return out


def bio_scores(y_true: list[list[str]], y_pred: list[list[str]]) -> tuple[float, float, float]:
    """(micro F1, precision, recall) of BIO tag sequences at span level (seqeval); 0 where undefined."""
    from seqeval.metrics import f1_score, precision_score, recall_score

    kw = dict(average="micro", zero_division=0)
    return (
        float(f1_score(y_true, y_pred, **kw)),
        float(precision_score(y_true, y_pred, **kw)),
        float(recall_score(y_true, y_pred, **kw)),
    )


def score_slots(golds: list[dict], predictions: list[str]) -> SlotScores:
    """Slot micro-F1 (seqeval, over BIO words), exact match of the slot set, and parse statistics.

    ``golds``: MASSIVE rows (``annot_utt``, ``locale``); ``predictions``: model outputs, same order.
    """
    if len(golds) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} examples")
    if not golds:
        raise ValueError("no examples to score (empty input): slot F1 over zero examples is undefined")
    y_true, y_pred = [], []
    exact = unparseable = bad_parts = unmatched = 0
    for row, text in zip(golds, predictions):
        locale = row.get("locale", "en-US")
        toks, tags = gold_bio(row["annot_utt"], locale)
        slots, bad = parse_prediction(text)
        bad_parts += bad
        unparseable += bool(bad and not slots)
        pred_tags, miss = prediction_bio(toks, slots, locale)
        unmatched += miss
        y_true.append(tags)
        y_pred.append(pred_tags)
        gold_set = sorted((lab, " ".join(words(v, locale)).lower()) for lab, v in parse_annotation(row["annot_utt"])[1])
        pred_set = sorted((lab, " ".join(words(v, locale)).lower()) for lab, v in slots)
        exact += gold_set == pred_set and not bad
    n = len(golds)
    f1, precision, recall = bio_scores(y_true, y_pred)
    return SlotScores(
        slot_f1=f1,
        slot_precision=precision,
        slot_recall=recall,
        exact_match=exact / n,
        n=n,
        unparseable_predictions=unparseable,
        unparseable_parts=bad_parts,
        unmatched_slots=unmatched,
    )
