"""Named-entity recognition answered as JSON (the paper's third task, Universal NER).

The model answers ``{"Results": [{"TypeName": "LOC|PER|ORG", "Text": "..."}]}``. Parsing is robust: plain JSON,
JSON inside a code fence, JSON followed or preceded by text, or nothing usable (counted, never an exception).
Scores: entity-level precision / recall / F1 per type and micro-averaged over all types, matching
(type, text) pairs as multisets (text compared after whitespace normalisation, case-sensitive), plus the share of
outputs that are valid JSON of the expected shape.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter

__all__ = [
    "UNER_HUB_ID",
    "UNER_CONFIGS",
    "ENTITY_TYPES",
    "SYSTEM_PROMPT",
    "read_conll",
    "load_uner",
    "entities_from_bio",
    "gold_json",
    "parse_entities",
    "score_entities",
]

UNER_HUB_ID = "universalner/universal_ner"
# the paper's languages -> Universal NER treebank configurations
UNER_CONFIGS = {
    "en": "en_ewt",
    "da": "da_ddt",
    "hr": "hr_set",
    "pt": "pt_bosque",
    "sk": "sk_snk",
    "sr": "sr_set",
    "sv": "sv_talbanken",
    "zh": "zh_gsdsimp",
}
ENTITY_TYPES = ("LOC", "PER", "ORG")
SYSTEM_PROMPT = (
    "Extract the named entities from the sentence: locations (LOC), persons (PER) and organizations (ORG). Answer "
    'only with JSON of the form {"Results": [{"TypeName": "LOC", "Text": "Paris"}]}; use an empty list if there '
    "are none."
)


def read_conll(path: str) -> list[dict]:
    """Sentences from a CoNLL-style file: one token per line with its IOB2 tag (2 columns ``token tag``, or UNER's
    ``id token tag ...``), blank lines between sentences, ``#`` comments. -> [{"tokens", "tags"}]."""
    sents, toks, tags = [], [], []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.rstrip("\n")
            if line.startswith("#"):
                continue
            if not line.strip():
                if toks:
                    sents.append({"tokens": toks, "tags": tags})
                    toks, tags = [], []
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            if len(cols) < 2:
                raise ValueError(f"{path}:{lineno}: expected 'token<TAB>tag' or 'id<TAB>token<TAB>tag'")
            token, tag = (cols[1], cols[2]) if len(cols) >= 3 and cols[0].isdigit() else (cols[0], cols[1])
            if not re.fullmatch(r"O|[BI]-[A-Za-z]+", tag):
                raise ValueError(f"{path}:{lineno}: tag {tag!r} is not IOB2 (O, B-X, I-X)")
            toks.append(token)
            tags.append(tag)
    if toks:
        sents.append({"tokens": toks, "tags": tags})
    return sents


def load_uner(lang: str, split: str, data_dir: str | None = None, revision: str | None = None) -> list[dict]:
    """Sentences of one language: local ``<data_dir>/<config>-ud-<split>.iob2`` (UNER release names) or
    ``<data_dir>/<lang>.<split>.conll``; otherwise the hub dataset."""
    if lang not in UNER_CONFIGS:
        raise ValueError(f"unknown NER language {lang!r}; valid: {', '.join(UNER_CONFIGS)}")
    cfg = UNER_CONFIGS[lang]
    if data_dir is not None:
        for name in (f"{cfg}-ud-{split}.iob2", f"{lang}.{split}.conll", f"{lang}_{split}.conll"):
            path = os.path.join(data_dir, name)
            if os.path.isfile(path):
                return read_conll(path)
        raise FileNotFoundError(f"--data-dir {data_dir}: no {cfg}-ud-{split}.iob2 or {lang}.{split}.conll")
    from datasets import load_dataset

    ds = load_dataset(UNER_HUB_ID, cfg, split=split, revision=revision)
    names = ds.features["ner_tags"].feature.names
    return [{"tokens": r["tokens"], "tags": [names[t] for t in r["ner_tags"]]} for r in ds]


def entities_from_bio(tokens: list[str], tags: list[str], joiner: str = " ") -> list[tuple[str, str]]:
    """[(type, text)] in order (seqeval's chunking: an I- tag without a matching open entity starts a new one)."""
    from seqeval.metrics.sequence_labeling import get_entities

    return [(kind, joiner.join(tokens[start : end + 1])) for kind, start, end in get_entities(list(tags))]


def gold_json(entities: list[tuple[str, str]]) -> str:
    return json.dumps({"Results": [{"TypeName": t, "Text": x} for t, x in entities]}, ensure_ascii=False)


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL | re.IGNORECASE)


_DECODER = json.JSONDecoder()
MAX_OBJECT_STARTS = 64  # '{' positions tried in text around the JSON: bounds the work on adversarial output


def _loads(text: str):
    """The whole of ``text`` as JSON, or None; never raises (deep nesting included)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _decode(text: str, start: int = 0):
    """The JSON value at ``text[start:]`` (trailing text allowed) or None; never raises (deep nesting included)."""
    try:
        return _DECODER.raw_decode(text, start)[0]
    except (ValueError, RecursionError):
        return None


def _embedded_entities(text: str) -> list[tuple[str, str]] | None:
    """Entities of the first JSON object, among those starting at the first :data:`MAX_OBJECT_STARTS` ``{``, that
    has the answer's shape."""
    start = text.find("{")
    for _ in range(MAX_OBJECT_STARTS):
        if start == -1:
            return None
        ents = _entities(_decode(text, start))
        if ents is not None:
            return ents
        start = text.find("{", start + 1)
    return None


def _entities(obj) -> list[tuple[str, str]] | None:
    if not isinstance(obj, dict) or not isinstance(obj.get("Results"), list):
        return None
    out = []
    for item in obj["Results"]:
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("TypeName"), str)
            or not isinstance(item.get("Text"), str)
        ):
            return None
        out.append((item["TypeName"].strip().upper(), " ".join(item["Text"].split())))
    return out


def parse_entities(text: str) -> tuple[list[tuple[str, str]], str]:
    """-> (entities, status); status: ``valid`` (the whole output is the JSON), ``fenced`` (inside a code fence),
    ``embedded`` (found within other text) or ``invalid`` (nothing usable; no entities)."""
    ents = _entities(_loads(text.strip()))
    if ents is not None:
        return ents, "valid"
    fence = _FENCE.search(text)
    if fence:
        ents = _entities(_loads(fence.group(1).strip()))
        if ents is not None:
            return ents, "fenced"
    ents = _embedded_entities(text)
    return (ents, "embedded") if ents is not None else ([], "invalid")


def _prf(tp: int, fp: int, fn: int) -> dict:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "tp": tp, "fp": fp, "fn": fn}


def score_entities(golds: list[list[tuple[str, str]]], predictions: list[str]) -> dict:
    if len(golds) != len(predictions):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} sentences")
    counts: dict[str, Counter] = {}
    statuses = Counter()
    for gold, text in zip(golds, predictions):
        pred, status = parse_entities(text)
        statuses[status] += 1
        g = Counter((t, " ".join(x.split())) for t, x in gold)
        q = Counter(pred)
        for typ in {t for t, _ in g} | {t for t, _ in q}:
            c = counts.setdefault(typ, Counter())
            gt = Counter({k: v for k, v in g.items() if k[0] == typ})
            pt = Counter({k: v for k, v in q.items() if k[0] == typ})
            tp = sum((gt & pt).values())
            c["tp"] += tp
            c["fp"] += sum(pt.values()) - tp
            c["fn"] += sum(gt.values()) - tp
    per_type = {t: _prf(c["tp"], c["fp"], c["fn"]) for t, c in sorted(counts.items())}
    total = Counter()
    for c in counts.values():
        total.update(c)
    n = len(predictions)
    return {
        "micro": _prf(total["tp"], total["fp"], total["fn"]),
        "per_type": per_type,
        "n": n,
        "valid_json_share": (n - statuses["invalid"]) / n if n else 0.0,
        "strict_json_share": statuses["valid"] / n if n else 0.0,
        "parse_status": dict(statuses),
    }
