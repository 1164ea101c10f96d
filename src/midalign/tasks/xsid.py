"""xSID slot filling (van der Goot et al., NAACL 2021; github.com/mainlp/xsid, CC BY-SA 4.0): reading the conll
release, gold answers, prediction placement and slot F1.

The release (folder ``data/xSID-0.7``) holds ``<lang>.valid.conll`` and ``<lang>.test.conll``; every non-English
sentence is a human translation of an English one (``x.valid`` translates ``en.valid``, ``x.test`` ``en.test``).
A block is ``# id = ...`` (non-English), ``# text-en = ...`` (the English original; ``no`` gives only
``# id = <english index>/<variant>``), ``# text = ...``, ``# intent = ...``, optional ``# dialect = ...`` and
``# text-de: ...`` / ``# text-it: ...``, then rows ``index<TAB>token<TAB>intent<TAB>BIO``; English carries
``# slots: start:end:label,...`` instead of ids. ja and zh are pre-tokenised (tokens may split a word of the text).

The task is generative, with MASSIVE's answer format (:mod:`midalign.tasks.massive`): ``label: value; label: value``
or ``None``; with intents asked for, ``intent: <intent>`` comes first. Slot values are the surface text of the
token span in ``# text`` (so ``表示`` for the tokens ``表`` ``示``, ``今天`` in ``今天会下雨吗？``).

Scoring places each predicted value on the sentence's tokens: left to right, on the leftmost span of tokens not
yet tagged whose surface text equals the value up to case and whitespace (so it works for pre-tokenised CJK text
and for space-separated words alike); a value that cannot be placed tags nothing and is counted as ``unmatched``.
Slot F1 is seqeval's micro F1 over the BIO tags (span level), as for MASSIVE.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from .massive import NO_SLOTS, SlotScores, bio_scores, parse_prediction

__all__ = [
    "XSID_LANGUAGES",
    "available_languages",
    "XSID_DIR_ENV",
    "INTENT_LABEL",
    "SYSTEM_PROMPT",
    "XsidSentence",
    "read_conll",
    "load_xsid",
    "resolve_data_dir",
    "gold_target",
    "prediction_tags",
    "score_xsid",
    "sentence_span_counts",
]

XSID_LANGUAGES = (
    "en de da it ar sr kk zh ja de-st de-ba de-muc gsw nap no".split()
)  # 9 languages + 6 dialects/regional languages
XSID_DIR_ENV = "MIDALIGN_XSID_DIR"
INTENT_LABEL = "intent"
_PARTITIONS = {"valid": "valid", "validation": "valid", "dev": "valid", "test": "test"}
NO_DEFAULT_DIALECT = "B"  # Norwegian: one rendering per sentence is Bokmål ("B"); the rest are spoken dialects
# Short on purpose: every training and inference token of it costs a forward pass through the model.
SYSTEM_PROMPT = "Extract the slots of the command as 'type: value' pairs separated by ';' (or None)."
_ID = re.compile(r"^(\d+)(?:/\S+)?$")


@dataclass
class XsidSentence:
    """One xSID sentence. ``offsets[i]`` is token i's (start, end) in ``text``; ``where`` is ``file:line``."""

    id: str
    lang: str
    text: str
    intent: str
    tokens: list[str]
    tags: list[str]
    offsets: list[tuple[int, int]]
    where: str
    text_en: str | None = None
    dialect: str | None = None
    meta: dict = field(default_factory=dict)

    def span_text(self, i: int, j: int) -> str:
        """Surface text of tokens i..j-1."""
        return self.text[self.offsets[i][0] : self.offsets[j - 1][1]]

    def slots(self) -> list[tuple[str, str]]:
        """Gold (label, value) pairs in order of appearance."""
        out, i = [], 0
        while i < len(self.tags):
            if self.tags[i].startswith("B-"):
                label, j = self.tags[i][2:], i + 1
                while j < len(self.tags) and self.tags[j] == f"I-{label}":
                    j += 1
                out.append((label, self.span_text(i, j)))
                i = j
            else:
                i += 1
        return out


def _offsets(text: str, tokens: list[str]) -> tuple[str, list[tuple[int, int]]]:
    """Character spans of ``tokens`` in ``text`` (in order, only whitespace between them). When the tokens do not
    spell the text (2 sentences of xSID 0.7 test, typos in one or the other: de-muc "gleichn"/"glaichn", nap
    "tutt ' 'e"/"tutt' 'e"), the text is rebuilt from the tokens joined by spaces."""
    spans, pos = [], 0
    for tok in tokens:
        i = text.find(tok, pos)
        if i < 0 or text[pos:i].strip():
            rebuilt = " ".join(tokens)
            return _offsets(rebuilt, tokens) if rebuilt != text else (text, [])
        spans.append((i, i + len(tok)))
        pos = i + len(tok)
    return text, spans


def _check_bio(tags: list[str], where: str) -> None:
    for k, tag in enumerate(tags):
        if tag == "O":
            continue
        prefix, sep, label = tag.partition("-")
        if prefix not in ("B", "I") or not sep or not label:
            raise ValueError(f"{where}: tag {tag!r} is not O, B-<label> or I-<label>")
        if prefix == "I" and (k == 0 or tags[k - 1] not in (f"B-{label}", f"I-{label}")):
            # the release has no such cases; a broken file would otherwise score silently wrong
            raise ValueError(f"{where}: {tag} does not continue a {label} span")


def read_conll(path: str, lang: str) -> list[XsidSentence]:
    """All sentences of one xSID conll file, validated; errors name ``path:line``."""
    sentences: list[XsidSentence] = []
    meta: dict[str, str] = {}
    rows: list[tuple[int, list[str]]] = []
    start = 1

    def flush(end_line: int) -> None:
        nonlocal meta, rows
        if not meta and not rows:
            return
        where = f"{path}:{start}"
        if "text" not in meta:
            raise ValueError(f"{where}: sentence block without '# text = ...'")
        if not rows:
            raise ValueError(f"{where}: sentence block without token rows")
        tokens, tags = [], []
        for k, (line_no, parts) in enumerate(rows, start=1):
            if len(parts) != 4:
                raise ValueError(
                    f"{path}:{line_no}: expected 4 tab-separated columns (index, token, intent, BIO tag), "
                    f"got {len(parts)}"
                )
            if parts[0] != str(k):
                raise ValueError(f"{path}:{line_no}: token index {parts[0]!r}, expected {k}")
            tokens.append(parts[1])
            tags.append(parts[3])
        _check_bio(tags, where)
        text, offsets = _offsets(meta["text"], tokens)
        if not offsets:
            raise ValueError(f"{where}: the tokens do not spell the sentence's text")
        if text != meta["text"]:  # the tokens (which carry the labels) win; the release's text is kept in meta
            meta["text-original"] = meta["text"]
        sentences.append(
            XsidSentence(
                id=meta.get("id", str(len(sentences) + 1)),
                lang=lang,
                text=text,
                intent=meta.get("intent", rows[0][1][2]),
                tokens=tokens,
                tags=tags,
                offsets=offsets,
                where=where,
                text_en=meta.get("text-en"),
                dialect=meta.get("dialect"),
                meta={k: v for k, v in meta.items() if k not in ("id", "text", "text-en", "intent", "dialect")},
            )
        )
        meta, rows = {}, []

    with open(path, encoding="utf-8") as fh:
        for line_no, raw in enumerate(fh, start=1):
            line = raw.rstrip("\n").rstrip("\r")
            if not line.strip():
                flush(line_no)
                start = line_no + 1
                continue
            if line.startswith("#"):
                if rows:
                    raise ValueError(f"{path}:{line_no}: comment line inside a sentence's token rows")
                body = line[1:].strip()
                m = re.match(r"([\w-]+)\s*(?:=|:)\s?(.*)$", body)
                if not m:
                    raise ValueError(f"{path}:{line_no}: comment is not '# key = value': {line!r}")
                meta[m.group(1)] = m.group(2).strip()
            else:
                rows.append((line_no, line.split("\t")))
        flush(line_no + 1 if sentences or meta else 1)
    return sentences


def resolve_data_dir(data_dir: str | None) -> str:
    """``--data-dir``, else ``$MIDALIGN_XSID_DIR``; a clear error when neither is a directory."""
    path = data_dir or os.environ.get(XSID_DIR_ENV)
    if not path:
        raise FileNotFoundError(
            f"no xSID data: pass --data-dir (or set ${XSID_DIR_ENV}) to a copy of the release, e.g. "
            "`git clone https://github.com/mainlp/xsid` then --data-dir xsid/data/xSID-0.7"
        )
    if not os.path.isdir(path):
        raise FileNotFoundError(f"--data-dir {path}: no such directory (the xSID release folder data/xSID-0.7)")
    return path


def available_languages(data_dir: str) -> list[str]:
    """Languages with a ``<lang>.test.conll`` or ``<lang>.valid.conll`` file in ``data_dir`` (a fuller release than
    0.7 brings its languages with it), sorted."""
    if not os.path.isdir(data_dir):
        return []
    return sorted({f.split(".", 1)[0] for f in os.listdir(data_dir) if f.endswith((".test.conll", ".valid.conll"))})


def _check_lang(lang: str, root: str | None = None) -> str:
    known = set(XSID_LANGUAGES) | set(available_languages(root) if root else ())
    if lang not in known:
        there = f" (files in {root}: {', '.join(available_languages(root))})" if root else ""
        raise ValueError(f"--lang {lang!r} is not an xSID language; valid: {', '.join(XSID_LANGUAGES)}{there}")
    return lang


def load_xsid(
    lang: str, partition: str, data_dir: str | None = None, *, dialect: str | None = NO_DEFAULT_DIALECT
) -> list[XsidSentence]:
    """Sentences of ``<data_dir>/<lang>.<partition>.conll`` in file order.

    ``partition``: ``valid`` (``dev``/``validation``) or ``test``. Norwegian (``no``) renders each sentence in
    several dialects; ``dialect`` keeps one (default ``B``, Bokmål: one per sentence, aligned with English) or all
    (``None``). Its English originals come from ``en.<partition>`` through the id (``<english index>/<variant>``).
    """
    try:
        split = _PARTITIONS[partition]
    except KeyError:
        raise ValueError(f"--partition {partition!r}: choose valid (dev) or test") from None
    root = resolve_data_dir(data_dir)
    _check_lang(lang, root)
    path = os.path.join(root, f"{lang}.{split}.conll")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--data-dir {root}: no {lang}.{split}.conll (xSID release layout)")
    sentences = read_conll(path, lang)
    if lang == "no":
        if dialect is not None:
            sentences = [s for s in sentences if s.dialect == dialect]
        english = None
        for s in sentences:
            m = _ID.match(s.id)
            if s.text_en is None and m:
                english = english or load_xsid("en", split, root)
                k = int(m.group(1)) - 1
                if not 0 <= k < len(english):
                    raise ValueError(f"{s.where}: id {s.id} points past the {len(english)} English sentences")
                s.text_en = english[k].text
    return sentences


def gold_target(sentence: XsidSentence, intent: bool = False) -> str:
    """``label: value; ...`` (``None`` without slots), preceded by ``intent: <intent>`` when asked."""
    pairs = ([(INTENT_LABEL, sentence.intent)] if intent else []) + sentence.slots()
    return "; ".join(f"{label}: {value}" for label, value in pairs) if pairs else NO_SLOTS


def _norm(s: str) -> str:
    return "".join(s.split()).casefold()


def prediction_tags(sentence: XsidSentence, slots: list[tuple[str, str]]) -> tuple[list[str], int]:
    """BIO tags over the sentence's tokens for predicted slots (rule in the module docstring) and how many
    could not be placed."""
    n = len(sentence.tokens)
    tags = ["O"] * n
    unmatched = 0
    for label, value in slots:
        target = _norm(value)
        placed = False
        for i in range(n) if target else ():
            if tags[i] != "O":
                continue
            for j in range(i + 1, n + 1):
                if tags[j - 1] != "O":
                    break
                surface = _norm(sentence.span_text(i, j))
                if surface == target:
                    tags[i:j] = [f"B-{label}"] + [f"I-{label}"] * (j - i - 1)
                    placed = True
                    break
                if not target.startswith(surface):
                    break
            if placed:
                break
        unmatched += not placed
    return tags, unmatched


def score_xsid(sentences: list[XsidSentence], predictions: list[str]) -> SlotScores:
    """Slot micro-F1 (span level, seqeval), exact match of the slot set, parse statistics and, when any prediction
    carries ``intent: ...``, intent accuracy (a prediction without an intent counts as wrong)."""
    if len(sentences) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(sentences)} sentences")
    if not sentences:
        raise ValueError("no sentences to score (empty input)")
    y_true, y_pred = [], []
    exact = unparseable = bad_parts = unmatched = 0
    intents_asked = intent_right = 0
    for sent, text in zip(sentences, predictions):
        pairs, bad = parse_prediction(text)
        predicted_intents = [v for lab, v in pairs if lab == INTENT_LABEL]
        slots = [(lab, v) for lab, v in pairs if lab != INTENT_LABEL]
        if predicted_intents:
            intents_asked += 1
            intent_right += predicted_intents[0].strip() == sent.intent
        bad_parts += bad
        unparseable += bool(bad and not pairs)
        tags, miss = prediction_tags(sent, slots)
        unmatched += miss
        y_true.append(sent.tags)
        y_pred.append(tags)
        gold_set = sorted((lab, _norm(v)) for lab, v in sent.slots())
        exact += gold_set == sorted((lab, _norm(v)) for lab, v in slots) and not bad
    f1, precision, recall = bio_scores(y_true, y_pred)
    return SlotScores(
        slot_f1=f1,
        slot_precision=precision,
        slot_recall=recall,
        exact_match=exact / len(sentences),
        n=len(sentences),
        unparseable_predictions=unparseable,
        unparseable_parts=bad_parts,
        unmatched_slots=unmatched,
        intent_accuracy=intent_right / len(sentences) if intents_asked else None,
    )


def sentence_span_counts(sentences: list[XsidSentence], predictions: list[str]) -> list[list[int]]:
    """Per sentence ``[correct spans, predicted spans, gold spans]`` (seqeval's span extraction, as
    :func:`score_xsid`): summed over any subset of sentences they give that subset's micro-F1 ``2c / (p + g)``, so
    intervals can resample sentences."""
    from seqeval.metrics.sequence_labeling import get_entities

    if len(sentences) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(sentences)} sentences")
    out = []
    for sent, text in zip(sentences, predictions):
        pairs, _ = parse_prediction(text)
        tags, _ = prediction_tags(sent, [(lab, v) for lab, v in pairs if lab != INTENT_LABEL])
        gold, pred = set(get_entities(list(sent.tags))), set(get_entities(list(tags)))
        out.append([len(gold & pred), len(pred), len(gold)])
    return out
