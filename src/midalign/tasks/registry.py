"""The task registry: what every task offers behind one interface, so commands and experiments look tasks up by
name instead of importing ``load_massive`` / ``load_xsid`` / ... one by one. Adding a task = its module + one
:func:`register` call here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

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
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(sorted(TASKS))}") from None


def _sib200() -> Task:
    from . import sib200

    return Task(
        name="sib200",
        kind="labels",
        languages=sib200.available_languages,
        load=sib200.load_sib200,
        score=lambda examples, preds: sib200.score_sib([e.category for e in examples], preds),
        description="SIB-200 topic classification, 7 labels, 195 languages (parallel)",
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


for _make in (_sib200, _xsid):
    register(_make())
