"""The task registry: what every task offers behind one interface, so commands and experiments look tasks up by
name instead of importing ``load_massive`` / ``load_xsid`` / ... one by one. Label tasks come from
:mod:`midalign.tasks.spec` (registering a ``LabelTask`` there registers it here); a generation task = its module +
one :func:`register` call here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

from .spec import LABEL_TASKS

__all__ = ["Task", "TASKS", "register", "get_task"]


@dataclass(frozen=True)
class Task:
    """A task's entry points.

    Attributes:
        name: registry key (``--task`` value).
        kind: ``"labels"`` (prediction by scoring a fixed label set) or ``"generation"`` (free text, parsed).
        languages: ``data_dir -> [language codes present]``.
        load: ``(lang, split, data_dir) -> [examples]``.
        score: ``(examples, predictions) -> metrics``; per-item scoring is the task's, aggregation too (micro F1
            needs the corpus).
        description: one line.
    """

    name: str
    kind: str
    languages: Callable[[str], list[str]]
    load: Callable
    score: Callable
    description: str


TASKS: dict[str, Task] = {}


def register(task: Task) -> Task:
    if task.name in TASKS:
        raise ValueError(f"task {task.name!r} is registered twice")
    if task.kind not in ("labels", "generation"):
        raise ValueError(f"task {task.name!r}: kind must be 'labels' or 'generation', got {task.kind!r}")
    TASKS[task.name] = task
    return task


def get_task(name: str) -> Task:
    if name not in TASKS and name in LABEL_TASKS:  # a label task registered after this module was imported
        register(_label(LABEL_TASKS[name]))
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}") from None


def _label(spec) -> Task:
    """A label task of :mod:`midalign.tasks.spec` (SIB-200, NusaX-Senti, ...) behind the shared interface."""

    def load(lang, split, data_dir=None):
        return spec.load(lang, split, spec.resolve_data_dir(data_dir))

    return Task(
        name=spec.name,
        kind="labels",
        languages=spec.languages,
        load=load,
        score=lambda examples, preds: spec.score([e.label for e in examples], preds),
        description=spec.description,
    )


def _xsid() -> Task:
    from . import xsid

    return Task(
        name="xsid",
        kind="generation",
        languages=xsid.available_languages,
        load=xsid.load_xsid,
        score=xsid.score_xsid,
        description="xSID slot filling (and intents), 15+ languages",
    )


def _files_present(data_dir: str | None, names: dict[str, list[str]]) -> list[str]:
    """The languages of ``names`` (language -> candidate file names) with a file in ``data_dir``."""
    import os

    if data_dir is None:
        return sorted(names)
    found = []
    for lang, candidates in names.items():
        if any(os.path.isfile(os.path.join(data_dir, c)) or os.path.isfile(os.path.join(data_dir, "data", c))
               for c in candidates):  # fmt: skip
            found.append(lang)
    return sorted(found)


def _massive() -> Task:
    from . import massive

    def languages(data_dir):
        return _files_present(data_dir, {loc: [f"{loc}.jsonl"] for loc in massive.MASSIVE_LOCALES})

    return Task(
        name="massive",
        kind="generation",
        languages=languages,
        load=massive.load_massive,
        score=lambda examples, preds: asdict(massive.score_slots(examples, preds)),
        description="MASSIVE slot filling, 51 locales (the paper's task)",
    )


def _ner() -> Task:
    from . import ner

    def languages(data_dir):
        return _files_present(
            data_dir,
            {x: [f"{c}-ud-test.iob2", f"{x}.test.conll", f"{x}_test.conll"] for x, c in ner.UNER_CONFIGS.items()},
        )

    def score(examples, preds):
        golds = [ner.entities_from_bio(e["tokens"], e["tags"]) for e in examples]
        return ner.score_entities(golds, preds)

    return Task(
        name="ner",
        kind="generation",
        languages=languages,
        load=ner.load_uner,
        score=score,
        description="Universal NER as JSON entities (LOC, PER, ORG), the paper's 8 languages",
    )


def _wmt23() -> Task:
    from . import translation

    def languages(data_dir):
        return sorted(f"{x}-en" for x in translation.LANG_NAMES if x != "en") + sorted(
            f"en-{x}" for x in translation.LANG_NAMES if x != "en"
        )

    def load(lang, split="test", data_dir=None):
        if split != "test":
            raise ValueError(f"WMT23 has a test split only, not {split!r}")
        source, target = lang.split("-", 1)
        src, ref, _ = translation.load_pairs(source, target)
        return [{"source": a, "reference": b, "target": translation.resolve_lang(target)} for a, b in zip(src, ref)]

    def score(examples, preds):
        return translation.score_translation(preds, [e["reference"] for e in examples], examples[0]["target"])

    return Task(
        name="wmt23",
        kind="generation",
        languages=languages,
        load=load,
        score=score,
        description="WMT23 translation (BLEU; COMET in its own environment), language pairs src-tgt",
    )


for _spec in LABEL_TASKS.values():
    register(_label(_spec))
for _make in (_xsid, _massive, _ner, _wmt23):
    register(_make())
