"""Evaluation subsets that represent their split: seeded samples, never a file prefix.

Release files are often sorted (SIB-200's ``test.tsv`` is sorted by topic: its first 68 rows hold 2 of the 7
topics), so a prefix measures something other than the page says. A subset here is a seeded sample -- stratified by
label for classification (proportional allocation, largest remainders), a plain random sample otherwise -- of item
ids, the same ids in every language of a parallel set, and it is recorded (ids, seed, sizes, label counts) in the
results file. :func:`check_representative` refuses a subset that misses a label of the split, or whose majority class
exceeds half of it while the split's does not.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Hashable, Mapping, Sequence

__all__ = ["sample_ids", "label_profile", "check_representative", "describe_subset"]


def sample_ids(
    ids: Sequence[Hashable],
    size: int | None,
    seed: int,
    labels: Mapping[Hashable, str] | None = None,
) -> list:
    """A seeded sample of ``size`` of ``ids`` (all of them, in file order, when ``size`` is None or covers them).

    With ``labels`` (``{id: label}``) the sample is stratified: each label gets ``size * share`` ids (largest
    remainders break the rounding, ties by label name), drawn at random within the label. The result keeps the
    order of ``ids`` so that output files read like the release.
    """
    ids = list(ids)
    if len(set(ids)) != len(ids):
        raise ValueError("sample: item ids must be unique")
    if size is None or size >= len(ids):
        return ids
    if size < 1:
        raise ValueError(f"sample size must be >= 1 (or None for all), got {size}")
    rng = random.Random(seed)
    if labels is None:
        chosen = set(rng.sample(ids, size))
    else:
        missing = [i for i in ids if i not in labels]
        if missing:
            raise ValueError(f"stratified sample: no label for ids {missing[:5]}")
        by_label: dict[str, list] = {}
        for i in ids:
            by_label.setdefault(labels[i], []).append(i)
        quota = {lab: size * len(members) / len(ids) for lab, members in by_label.items()}
        take = {lab: int(q) for lab, q in quota.items()}
        rest = size - sum(take.values())
        for lab in sorted(quota, key=lambda lab: (-(quota[lab] - take[lab]), lab))[:rest]:
            take[lab] += 1
        chosen = set()
        for lab in sorted(by_label):
            chosen.update(rng.sample(by_label[lab], take[lab]))
    return [i for i in ids if i in chosen]


def label_profile(labels: Sequence[str], label_set: Sequence[str] | None = None) -> dict:
    """Label counts of an evaluated set with what an accuracy must be read against.

    Returns:
        ``{"n", "counts" (every label of label_set, 0 included), "majority_label", "majority_accuracy"
        (answering the majority label always), "chance" (1 / number of labels)}``.
    """
    if not labels:
        raise ValueError("label profile: no labels")
    label_set = list(label_set) if label_set is not None else sorted(set(labels))
    counts = Counter(labels)
    unknown = sorted(set(counts) - set(label_set))
    if unknown:
        raise ValueError(f"label profile: labels {unknown} are not in the label set {label_set}")
    majority = max(label_set, key=lambda lab: (counts[lab], -label_set.index(lab)))
    return {
        "n": len(labels),
        "counts": {lab: counts[lab] for lab in label_set},
        "majority_label": majority,
        "majority_accuracy": counts[majority] / len(labels),
        "chance": 1 / len(label_set),
    }


def check_representative(subset: Sequence[str], split: Sequence[str], where: str) -> None:
    """Refuse a subset (its labels) that is not representative of its split (the split's labels): a label of the
    split is missing, or the majority class exceeds 50% of the subset while it does not exceed 50% of the split."""
    have, full = Counter(subset), Counter(split)
    missing = sorted(set(full) - set(have))
    if missing:
        raise ValueError(
            f"{where}: the evaluated subset ({len(subset)} items) has no item of labels {missing}; use a larger, "
            "stratified subset (or the whole split)"
        )
    top, top_n = have.most_common(1)[0]
    if top_n / len(subset) > 0.5 and full.most_common(1)[0][1] / len(split) <= 0.5:
        raise ValueError(
            f"{where}: {top!r} is {top_n} of the {len(subset)} evaluated items (> 50%) but not half of the split; "
            "the subset is not representative"
        )


def describe_subset(ids: Sequence, of: int, seed: int, method: str, labels: Sequence[str] | None = None,
                    label_set: Sequence[str] | None = None) -> dict:  # fmt: skip
    """The record of a subset that goes into a results file: ids, seed, how it was drawn, sizes, label profile."""
    out = {"ids": list(ids), "size": len(ids), "of": of, "seed": seed, "method": method}
    if labels is not None:
        out["labels"] = label_profile(list(labels), label_set)
    return out
