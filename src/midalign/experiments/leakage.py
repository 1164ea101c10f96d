"""Nothing of the evaluation is trained on, in any language.

Parallel data makes leakage easy to miss: a test sentence's translation *is* the test sentence, so a German test
item leaks when its English twin is a training row, or when its French twin is in the alignment pairs. Before any
training an experiment calls :func:`find_leaks` with its evaluation items (every language), its task-training texts
and its pair texts; an evaluation item leaks when its id, or the normalized text of its rendering in *any* language,
occurs in either. The default is to drop leaked items from evaluation (all languages at once) and record how many;
keeping them is a flag, and then every table carries the count.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["normalize_text", "find_leaks"]

_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """NFKC, case-folded, whitespace collapsed and stripped: what "the same sentence" means for a leakage check."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


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
        ``{"leaked_ids": sorted ids, "by_source": {name: {"by_id": n, "by_text": n, "ids": [...]}}, "n_items": n}``,
        counts over distinct item ids (one parallel sentence counted once however many languages leak it).
    """
    by_source = {}
    leaked: set[str] = set()
    all_ids = {str(i) for items in eval_items.values() for i, _ in items}
    for name, (ids, texts) in sources.items():
        id_set = {str(i) for i in ids}
        text_set = {normalize_text(t) for t in texts if t}
        by_id = all_ids & id_set
        by_text = {str(i) for items in eval_items.values() for i, t in items if normalize_text(t) in text_set}
        hit = by_id | by_text
        by_source[name] = {"by_id": len(by_id), "by_text": len(by_text), "ids": sorted(hit)}
        leaked |= hit
    return {"leaked_ids": sorted(leaked), "by_source": by_source, "n_items": len(all_ids)}
