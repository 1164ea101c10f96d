"""A classification task as one declaration: what commands and experiments need, registered once.

A :class:`LabelTask` says where its data is (languages = what is on disk), how to read a split into
:class:`Item` s, its label set and system prompt; everything else -- prompts, training rows, parallel pairs,
prediction by exact label scoring, metrics, the label profile an accuracy is read against -- is derived here, the
same for every task. An item's ``id`` names the same item in every language of a parallel task (SIB-200's
``index_id``), which is what representative subsets and leakage checks key on.

Adding a classification task over local CSV/TSV files with a fixed label set is one :func:`csv_label_task` call
registered with :func:`register_label_task` (NusaX-Senti below is 9 lines); a release with its own layout is one
``LabelTask(...)`` with its own ``load`` (``sib200_task()`` below). Every registered task then runs through the
generic commands ``midalign infer|eval|export|pairs --task NAME``, ``midalign export-lm-eval --task NAME`` and the
experiment protocol.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

__all__ = [
    "Item",
    "LabelTask",
    "LABEL_TASKS",
    "register_label_task",
    "get_label_task",
    "score_labels",
    "csv_label_task",
    "id_order",
]


@dataclass(frozen=True)
class Item:
    """One evaluation or training item: ``id`` is shared by its translations in a parallel task."""

    id: str
    text: str
    label: str
    lang: str


def score_labels(gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> dict:
    """Accuracy and macro-F1 (mean over ``labels``, default every label in gold or predictions, of per-label F1)."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold labels but {len(predicted)} predictions")
    if not gold:
        raise ValueError("no examples to score")
    labels = list(labels or sorted(set(gold) | set(predicted)))
    tp = Counter(g for g, p in zip(gold, predicted) if g == p)
    n_gold, n_pred = Counter(gold), Counter(predicted)
    f1s = [2 * tp[lab] / (n_gold[lab] + n_pred[lab]) if n_gold[lab] + n_pred[lab] else 0.0 for lab in labels]
    return {"accuracy": sum(tp.values()) / len(gold), "macro_f1": sum(f1s) / len(f1s), "n": len(gold),
            "per_label_f1": dict(zip(labels, f1s))}  # fmt: skip


@dataclass(frozen=True)
class LabelTask:
    """A task predicted by scoring a fixed label set after a prompt.

    Attributes:
        name: registry key (``--task``).
        description: one line.
        system_prompt: the instructions rendered before every input.
        resolve_data_dir: ``--data-dir or None -> folder`` (a clear error when neither it nor the task's
            environment variable names one).
        languages: ``data_dir -> [language codes present]``.
        load: ``(lang, split, data_dir) -> [Item]``.
        labels: ``data_dir -> [label strings]``.
        splits: the split names ``load`` accepts.
        pivot: the source language of transfer (and of parallel pairs).
        parallel: items with the same id are translations of each other across languages.
    """

    name: str
    description: str
    system_prompt: str
    resolve_data_dir: Callable[[str | None], str]
    languages: Callable[[str], list[str]]
    load: Callable[[str, str, str], list[Item]]
    labels: Callable[[str], list[str]]
    splits: tuple[str, ...] = ("train", "dev", "test")
    pivot: str = "eng_Latn"
    parallel: bool = True

    # ---- derived: the same for every label task --------------------------------------------------------------
    def prompt(self, tokenizer, item: Item) -> str:
        from ..inference.prompts import render_prefix

        return render_prefix(tokenizer, item.text, self.system_prompt)

    def task_rows(self, tokenizer, items: Sequence[Item]) -> list[dict]:
        """Training rows in the paper's format: ``{"prefix", "text": " <label><eos>", "id"}``."""
        from ..inference.prompts import render_example

        return [{**render_example(tokenizer, it.text, it.label, self.system_prompt), "id": it.id} for it in items]

    def pairs(self, langs: Sequence[str], split: str, data_dir: str, seed: int | None = 0,
              pivot: str | None = None) -> list[dict]:  # fmt: skip
        """``--alignment_file`` rows ``{"text_parallel_0": pivot sentence, "text_parallel_1": its translation,
        "lang", "id"}`` joined by id, for every language of ``langs`` but the pivot (default the task's), shuffled
        across languages with ``seed`` (None keeps the language blocks). Items without a pivot twin are left out."""
        if not self.parallel:
            raise ValueError(f"task {self.name} is not parallel: it has no translation pairs")
        pivot = pivot or self.pivot
        by_id = {it.id: it.text for it in self.load(pivot, split, data_dir)}
        rows = [{"text_parallel_0": by_id[it.id], "text_parallel_1": it.text, "lang": lang, "id": it.id}
                for lang in langs if lang != pivot for it in self.load(lang, split, data_dir)
                if it.id in by_id]  # fmt: skip
        if seed is not None:
            random.Random(seed).shuffle(rows)
        return rows

    def predict(self, model, tokenizer, items: Sequence[Item], labels: Sequence[str], output_path: str, *,
                batch_size: int = 16, provenance: dict | None = None, method: str = "exact") -> list[str]:  # fmt: skip
        """The predicted label per item by label scoring, through the resumable file ``output_path``.

        ``method``: ``"exact"`` (the summed log-likelihood of each label's tokens; the default) or
        ``"first_token"`` (argmax over the labels' first tokens only: one forward per prompt, cheaper, not exact
        when labels' later tokens matter; its agreement with exact scoring is measured in ``benchmarks/scoring.py``).
        """
        from ..inference.prompts import render_target
        from ..inference.scoring import run_scoring

        rows = [{"id": f"{it.lang}:{it.id}", "prompt": self.prompt(tokenizer, it), "gold": it.label}
                for it in items]  # fmt: skip
        targets = [render_target(tokenizer, label) for label in labels]
        out = run_scoring(model, tokenizer, rows, targets, output_path, batch_size=batch_size,
                          provenance=provenance, method=method)  # fmt: skip
        return [labels[r["prediction"]] for r in out]

    def score(self, gold: Sequence[str], predicted: Sequence[str], labels: Sequence[str] | None = None) -> dict:
        return score_labels(gold, predicted, labels)

    def export_lm_eval(self, tokenizer, data_dir: str, langs: Sequence[str], split: str, out_dir: str) -> list[str]:
        """lm-evaluation-harness tasks for ``langs``: per language a JSON-lines file (``prompt`` rendered as our
        commands render it, ``choices`` the rendered label targets, ``gold`` the label index, ``id``) and a YAML
        ``multiple_choice`` task over it (``target_delimiter: ""``: the choices carry their own leading space), plus
        a group YAML ``midalign_<task>`` over all of them. Written atomically; returns the task names."""
        from ..data.jsonl import write_jsonl, write_text
        from ..inference.prompts import render_target

        labels = self.labels(data_dir)
        choices = [render_target(tokenizer, lab) for lab in labels]
        items = {lang: self.load(lang, split, data_dir) for lang in langs}  # every input read before any write
        os.makedirs(out_dir, exist_ok=True)
        names = []
        for lang, rows in items.items():
            name = f"midalign_{self.name}_{lang}"
            data = os.path.abspath(os.path.join(out_dir, f"{name}.jsonl"))
            write_jsonl(data, [{"id": it.id, "prompt": self.prompt(tokenizer, it), "choices": choices,
                                "gold": labels.index(it.label)} for it in rows])  # fmt: skip
            yaml = (f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    {split}: {data}\n"
                    f"test_split: {split}\noutput_type: multiple_choice\ndoc_to_text: prompt\n"
                    "doc_to_choice: choices\ndoc_to_target: gold\ntarget_delimiter: ''\nmetric_list:\n"
                    "  - metric: acc\n  - metric: acc_norm\n")  # fmt: skip
            write_text(os.path.join(out_dir, f"{name}.yaml"), yaml)
            names.append(name)
        group = f"group: midalign_{self.name}\ntask:\n" + "".join(f"  - {n}\n" for n in names)
        write_text(os.path.join(out_dir, f"midalign_{self.name}.yaml"), group)
        return names


LABEL_TASKS: dict[str, LabelTask] = {}


def register_label_task(task: LabelTask) -> LabelTask:
    if task.name in LABEL_TASKS:
        raise ValueError(f"label task {task.name!r} is registered twice")
    LABEL_TASKS[task.name] = task
    return task


def get_label_task(name: str) -> LabelTask:
    try:
        return LABEL_TASKS[name]
    except KeyError:
        raise ValueError(f"--task {name!r}: choose one of {', '.join(sorted(LABEL_TASKS))}") from None


def sib200_task() -> LabelTask:
    from . import sib200

    def load(lang: str, split: str, data_dir: str) -> list[Item]:
        return sib200._items(sib200.load_sib200(lang, split, data_dir))

    return LabelTask(
        name="sib200",
        description="SIB-200 topic classification, 7 labels, 195 languages (parallel by index_id)",
        system_prompt=sib200.SYSTEM_PROMPT,
        resolve_data_dir=sib200.resolve_data_dir,
        languages=sib200.available_languages,
        load=load,
        labels=sib200.load_labels,
    )


register_label_task(sib200_task())


def id_order(ids) -> list[str]:
    """Item ids in a fixed order: numerically when every id is a number (SIB-200's ``index_id``), else as text."""
    ids = list(ids)
    if all(i.isdigit() for i in ids):
        return sorted(ids, key=int)
    return sorted(ids)


def csv_label_task(name: str, description: str, system_prompt: str, *, env: str, labels: Sequence[str],
                   pivot: str, files: dict[str, str] | None = None, columns: tuple[str, str, str] = ("id", "text",
                   "label"), delimiter: str = ",", parallel: bool = True) -> LabelTask:  # fmt: skip
    """A label task over a folder per language of CSV (or TSV: ``delimiter="\t"``) split files.

    Layout: ``<data-dir>/<language>/<files[split]>`` with a header naming ``columns`` = (id, text, label) among
    its fields. A folder holding every split file is a language. ``labels`` is the fixed label set; a row with
    another label, an empty id or text, or a repeated id is an error naming the file and line.
    """
    files = dict(files or {"train": "train.csv", "dev": "dev.csv", "test": "test.csv"})
    label_set = list(labels)

    def languages(data_dir: str) -> list[str]:
        if not os.path.isdir(data_dir):
            return []
        return sorted(d for d in os.listdir(data_dir)
                      if all(os.path.isfile(os.path.join(data_dir, d, f)) for f in files.values()))  # fmt: skip

    def resolve_data_dir(data_dir: str | None) -> str:
        path = data_dir or os.environ.get(env)
        if not path:
            raise FileNotFoundError(f"{name}: give --data-dir (a folder per language) or set ${env}")
        if not languages(path):
            raise FileNotFoundError(f"--data-dir {path}: no {name} language folders there (expected "
                                    f"<language>/{', '.join(files.values())})")  # fmt: skip
        return path

    def load(lang: str, split: str, data_dir: str) -> list[Item]:
        if split not in files:
            raise ValueError(f"--split {split!r}: choose one of {', '.join(files)}")
        present = languages(data_dir)
        if lang not in present:
            raise ValueError(f"{name} language {lang!r} is not in {data_dir}; there: {', '.join(present)}")
        path = os.path.join(data_dir, lang, files[split])
        return _read_label_rows(path, lang, columns, label_set, delimiter)

    return LabelTask(name=name, description=description, system_prompt=system_prompt,
                     resolve_data_dir=resolve_data_dir, languages=languages, load=load,
                     labels=lambda data_dir: list(label_set), splits=tuple(files), pivot=pivot,
                     parallel=parallel)  # fmt: skip


def _read_label_rows(path: str, lang: str, columns: tuple[str, str, str], labels: list[str],
                     delimiter: str) -> list[Item]:  # fmt: skip
    import csv

    id_col, text_col, label_col = columns
    items, seen = [], {}
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh, delimiter=delimiter)
            missing = [c for c in columns if c not in (reader.fieldnames or [])]
            if missing:
                raise ValueError(f"{path}:1: no column {', '.join(map(repr, missing))} in the header "
                                 f"{reader.fieldnames}; expected {list(columns)}")  # fmt: skip
            for row in reader:
                line = reader.line_num
                if None in row or any(row[c] is None for c in columns):
                    raise ValueError(f"{path}:{line}: {len(row)} fields; expected {len(reader.fieldnames)} "
                                     f"({', '.join(reader.fieldnames)})")  # fmt: skip
                idx, text, label = row[id_col].strip(), row[text_col], row[label_col].strip()
                if not idx or not text.strip():
                    raise ValueError(f"{path}:{line}: empty {id_col!r} or {text_col!r}")
                if label not in labels:
                    raise ValueError(f"{path}:{line}: {label_col} {label!r} is not one of {labels}")
                if idx in seen:
                    raise ValueError(f"{path}:{line}: {id_col} {idx!r} repeats line {seen[idx]}")
                seen[idx] = line
                items.append(Item(idx, text, label, lang))
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    except csv.Error as err:  # a NUL byte, an unterminated quote running past the field-size limit, ...
        raise ValueError(f"{path}:{reader.line_num}: not readable as CSV ({err})") from None
    if not items:
        raise ValueError(f"{path}: no rows")
    return items


# NusaX-Senti (Winata et al., EACL 2023; CC BY-SA 4.0): the release's datasets/sentiment folder, one folder per
# language (english, indonesian, javanese, ...), the same ids in every language. A task is this one call.
register_label_task(csv_label_task(
    "nusax", "NusaX-Senti sentiment, 3 labels, 10 Indonesian local languages + Indonesian and English (parallel)",
    "Classify the sentiment of the text. Answer with one of: negative, neutral, positive.",
    env="MIDALIGN_NUSAX_DIR",
    labels=("negative", "neutral", "positive"),
    pivot="english",
    files={"train": "train.csv", "dev": "valid.csv", "test": "test.csv"},
))  # fmt: skip


def language_script(lang: str) -> str:
    """The script part of a FLORES code (``jpn_Jpan`` -> ``Jpan``); the code itself when it has none."""
    return lang.split("_", 1)[1] if "_" in lang else lang
