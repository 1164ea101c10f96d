"""Nothing of the evaluation is trained on, in any language.

Parallel data makes leakage easy to miss: a test sentence's translation *is* the test sentence, so a German test
item leaks when its English twin is a training row, or when its French twin is in the alignment pairs. Before any
training an experiment calls :func:`find_leaks` with its evaluation items (every language), its task-training texts
and its pair texts; an evaluation item leaks when its id, or the normalized text of its rendering in *any* language,
occurs in either, or when it is a near-duplicate of one source text: the two share most of their character
8-grams (overlap coefficient >= :data:`NEAR_DUPLICATE` of the smaller set, texts of at least :data:`MIN_SHINGLES`
8-grams). That catches a copy that differs by punctuation or a word, or sits inside a longer training text, in
alphabetic scripts; in Han and Hangul text, where 8 characters span several words, a changed word or two already
hides a copy (shorter n-grams there made the check quadratic on common n-grams), and no script's check catches a
re-translation (another wording of the same sentence). In a parallel set an item is dropped in every language when
one rendering leaks, so the alphabetic renderings (English is always evaluated) cover for the dense ones. The
default is to drop leaked items from evaluation (all languages at once) and record how many; keeping them is a flag,
and then every table carries the count.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["normalize_text", "find_leaks", "near_duplicates", "NEAR_DUPLICATE", "SHINGLE", "MIN_SHINGLES"]

_SPACE = re.compile(r"\s+")
SHINGLE = 8  # characters per shingle (about a word and a half in alphabetic scripts, several words in Han/Hangul)
NEAR_DUPLICATE = 0.75  # overlap coefficient of shingle sets from which two texts count as the same sentence
MIN_SHINGLES = 10  # a text with fewer shingles is compared exactly only (a short phrase is not a sentence)


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed and stripped: what "the same sentence" means for a leakage check."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def _shingles(text: str) -> set[str]:
    t = normalize_text(text)
    return {t[i : i + SHINGLE] for i in range(max(len(t) - SHINGLE + 1, 0))}


def near_duplicates(items: Sequence[str], texts: Iterable[str], threshold: float = NEAR_DUPLICATE) -> list[bool]:
    """Per item: does one of ``texts`` share at least ``threshold`` of the smaller of the two shingle sets with it?"""
    index: dict[str, list[int]] = {}
    sizes = []
    for j, text in enumerate(texts):
        sh = _shingles(text)
        sizes.append(len(sh))
        for g in sh:
            index.setdefault(g, []).append(j)
    out = []
    for item in items:
        sh = _shingles(item)
        if len(sh) < MIN_SHINGLES:
            out.append(False)
            continue
        shared: dict[int, int] = {}
        for g in sh:
            for j in index.get(g, ()):
                shared[j] = shared.get(j, 0) + 1
        out.append(any(n >= threshold * min(len(sh), sizes[j]) and sizes[j] >= MIN_SHINGLES
                       for j, n in shared.items()))  # fmt: skip
    return out


def find_leaks(
    eval_items: Mapping[str, Sequence[tuple[str, str]]],
    sources: Mapping[str, tuple[Iterable[str], Iterable[str]]],
) -> dict:
    """Evaluation items that also occur in a training source, by id or by normalized text in any language.

    Args:
        eval_items: ``{lang: [(item id, text)]}``; an id names the same item in every language (a parallel set) or
            is unique to its language.
        sources: ``{source name (e.g. "task rows", "alignment pairs"): (item ids in it, texts in it)}``; ids may be
            empty where the source has none (pairs built from another split carry their ids, hand-made rows may not).
    Returns:
        ``{"leaked_ids": sorted ids, "by_source": {name: {"by_id": n, "by_text": n, "by_near_text": n, "ids": [...]}},
        "n_items": n, "near_duplicate": its settings}``, counts over distinct item ids (one parallel sentence counted
        once however many languages leak it; ``by_near_text`` counts only those not already equal by text).
    """
    by_source = {}
    leaked: set[str] = set()
    all_ids = {str(i) for items in eval_items.values() for i, _ in items}
    flat = [(str(i), t) for items in eval_items.values() for i, t in items]
    for name, (ids, texts) in sources.items():
        texts = [t for t in texts if t]
        id_set = {str(i) for i in ids}
        text_set = {normalize_text(t) for t in texts}
        by_id = all_ids & id_set
        by_text = {i for i, t in flat if normalize_text(t) in text_set}
        near = {i for (i, _), hit in zip(flat, near_duplicates([t for _, t in flat], texts)) if hit} - by_text
        hit = by_id | by_text | near
        by_source[name] = {"by_id": len(by_id), "by_text": len(by_text), "by_near_text": len(near), "ids": sorted(hit)}
        leaked |= hit
    return {"leaked_ids": sorted(leaked), "by_source": by_source, "n_items": len(all_ids),
            "near_duplicate": {"shingle": SHINGLE, "threshold": NEAR_DUPLICATE,
                               "min_shingles": MIN_SHINGLES}}  # fmt: skip
