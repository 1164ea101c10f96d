"""SIB-200 topic classification (Adelani et al., EACL 2024): 7 topics, 195 languages, parallel by ``index_id``.

Release layout (``--data-dir``): ``<flores_code>/{train,dev,test}.tsv`` with the header ``index_id<TAB>category<TAB>
text`` and ``<flores_code>/labels.txt``. Any folder holding the three files is a language. Prediction scores the 7
label strings after the prompt (:mod:`midalign.inference.scoring`, exact and cheap); metrics are accuracy and
macro-F1 over the labels.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

__all__ = [
    "SYSTEM_PROMPT",
    "SPLITS",
    "SibExample",
    "resolve_data_dir",
    "available_languages",
    "load_labels",
    "load_sib200",
    "task_rows",
    "parallel_pairs",
    "predict",
    "score_sib",
]

SYSTEM_PROMPT = (
    "Classify the topic of the sentence. Answer with one of: science/technology, travel, politics, sports, health, "
    "entertainment, geography."
)
SPLITS = ("train", "dev", "test")
ENV = "MIDALIGN_SIB200_DIR"
HEADER = ["index_id", "category", "text"]


@dataclass(frozen=True)
class SibExample:
    index_id: int
    category: str
    text: str
    lang: str


def resolve_data_dir(data_dir: str | None) -> str:
    """``--data-dir``, else ``$MIDALIGN_SIB200_DIR``; a clear error when neither names a SIB-200 folder."""
    path = data_dir or os.environ.get(ENV)
    if not path:
        raise FileNotFoundError(f"SIB-200: give --data-dir (the release's data/annotated folder) or set ${ENV}")
    if not os.path.isdir(path) or not available_languages(path):
        raise FileNotFoundError(
            f"--data-dir {path}: no SIB-200 language folders there (expected <lang>/train.tsv, dev.tsv, test.tsv)"
        )
    return path


def available_languages(data_dir: str) -> list[str]:
    """Every sub-folder holding all three split files, sorted."""
    if not os.path.isdir(data_dir):
        return []
    return sorted(
        d for d in os.listdir(data_dir) if all(os.path.isfile(os.path.join(data_dir, d, f"{s}.tsv")) for s in SPLITS)
    )


def _check_lang(lang: str, data_dir: str) -> None:
    langs = available_languages(data_dir)
    if lang not in langs:
        shown = ", ".join(langs[:20]) + (f", ... ({len(langs)} in all)" if len(langs) > 20 else "")
        raise ValueError(f"SIB-200 language {lang!r} is not in {data_dir}; there: {shown}")


def load_labels(data_dir: str, lang: str = "eng_Latn") -> list[str]:
    """The label set, from ``<lang>/labels.txt`` (the same 7 in every language folder)."""
    path = os.path.join(data_dir, lang, "labels.txt")
    if not os.path.isfile(path):
        langs = available_languages(data_dir)
        path = next((os.path.join(data_dir, x, "labels.txt") for x in langs
                     if os.path.isfile(os.path.join(data_dir, x, "labels.txt"))), path)  # fmt: skip
    with open(path, encoding="utf-8") as fh:
        labels = [line.strip() for line in fh if line.strip()]
    if len(set(labels)) != len(labels) or len(labels) < 2:
        raise ValueError(f"{path}: expected distinct labels, one per line; got {labels}")
    return labels


def load_sib200(lang: str, split: str, data_dir: str | None = None) -> list[SibExample]:
    """The rows of ``<lang>/<split>.tsv``; a malformed line is an error naming its file:line."""
    data_dir = resolve_data_dir(data_dir)
    if split not in SPLITS:
        raise ValueError(f"--split {split!r}: choose one of {', '.join(SPLITS)}")
    _check_lang(lang, data_dir)
    labels = set(load_labels(data_dir, lang))
    path = os.path.join(data_dir, lang, f"{split}.tsv")
    out = []
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.reader(fh, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader, None)
            if header != HEADER:
                raise ValueError(f"{path}:1: header {header}, expected {HEADER}")
            for row in reader:
                line = reader.line_num
                if len(row) != 3:
                    raise ValueError(f"{path}:{line}: {len(row)} tab-separated fields, expected 3 ({HEADER})")
                idx, cat, text = row
                if not idx.isdigit():
                    raise ValueError(f"{path}:{line}: index_id {idx!r} is not a number")
                if cat not in labels:
                    raise ValueError(f"{path}:{line}: category {cat!r} is not one of {sorted(labels)}")
                out.append(SibExample(int(idx), cat, text, lang))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    return out


def task_rows(tokenizer, examples: list[SibExample]) -> list[dict]:
    """Training rows in the paper's format: ``{"prefix": rendered prompt, "text": " <label><eos>"}`` (the task
    spec's rows, :meth:`midalign.tasks.spec.LabelTask.task_rows`, without the item id)."""
    rows = _spec().task_rows(tokenizer, _items(examples))
    return [{"prefix": r["prefix"], "text": r["text"]} for r in rows]


def parallel_pairs(langs: list[str], split: str, data_dir: str, pivot: str = "eng_Latn",
                   seed: int | None = 0) -> list[dict]:  # fmt: skip
    """``--alignment_file`` rows ``{"text_parallel_0": pivot sentence, "text_parallel_1": the same sentence in
    lang, "lang"}`` joined by ``index_id``, for every language of ``langs`` but the pivot, shuffled across languages
    with ``seed`` (so batches mix languages; None keeps the language blocks). Sentences without a pivot twin are
    left out. The task spec's pairs (:meth:`midalign.tasks.spec.LabelTask.pairs`) without the item id."""
    rows = _spec().pairs(langs, split, data_dir, seed, pivot=pivot)
    return [{k: r[k] for k in ("text_parallel_0", "text_parallel_1", "lang")} for r in rows]


def predict(model, tokenizer, examples: list[SibExample], labels: list[str], output_path: str, *,
            batch_size: int = 8, provenance: dict | None = None, method: str = "exact") -> list[str]:  # fmt: skip
    """Predicted label per example by label scoring (``method``: ``exact`` or ``first_token``, see
    :func:`midalign.inference.scoring.score_continuations`), through the resumable file ``output_path``: the task
    spec's :meth:`midalign.tasks.spec.LabelTask.predict`."""
    return _spec().predict(model, tokenizer, _items(examples), labels, output_path, batch_size=batch_size,
                           provenance=provenance, method=method)  # fmt: skip


def score_sib(gold: list[str], predicted: list[str], labels: list[str] | None = None) -> dict:
    """Accuracy and macro-F1 (mean over ``labels``, default every label in gold or predictions, of per-label F1):
    :func:`midalign.tasks.spec.score_labels`."""
    from .spec import score_labels

    return score_labels(gold, predicted, labels)


def _spec():
    from .spec import get_label_task

    return get_label_task("sib200")


def _items(examples: list[SibExample]) -> list:
    from .spec import Item

    return [Item(str(e.index_id), e.text, e.category, e.lang) for e in examples]
