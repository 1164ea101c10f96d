"""Named schedules: which objectives run on a micro-batch. Adding one is a function and a line in SCHEDULES."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["Objectives", "Schedule", "SCHEDULES", "get_schedule"]


class Objectives(NamedTuple):
    task: bool
    align: bool


TASK, ALIGN, BOTH = Objectives(True, False), Objectives(False, True), Objectives(True, True)


@dataclass(frozen=True)
class Schedule:
    """``plan(micro_batch, step)`` -> objectives for the ``micro_batch``-th micro-batch of the run (0-based, counted
    across epochs and resumes) that belongs to optimizer step ``step`` (0-based)."""

    name: str
    plan: Callable[[int, int], Objectives]
    help: str
    uses_task: bool  # declared, not guessed by sampling the plan (a long period would fool a sample)
    uses_align: bool
    # each objective's weight in the logged training ``loss`` over a run (share of micro-batches or steps that run
    # it); the evaluation loss mixes its terms with the same weights, so ``eval_loss`` and ``loss`` compare
    task_share: float
    align_share: float


SCHEDULES: dict[str, Schedule] = {
    s.name: s
    for s in [
        Schedule(
            "task_only",
            lambda i, s: TASK,
            "task loss only: the baseline (--only_train_language_modeling)",
            True,
            False,
            1,
            0,
        ),
        Schedule("align_only", lambda i, s: ALIGN, "alignment loss only (--only_train_contrastive)", False, True, 0, 1),
        Schedule(
            "alternate",
            lambda i, s: TASK if i % 2 == 0 else ALIGN,
            "the paper's: micro-batches alternate task / alignment, task first, both accumulating into the same "
            "optimizer update (--alternate_training)",
            True,
            True,
            0.5,
            0.5,
        ),
        Schedule(
            "alternate_steps",
            lambda i, s: TASK if s % 2 == 0 else ALIGN,
            "whole optimizer steps alternate: task steps, then alignment steps, task first",
            True,
            True,
            0.5,
            0.5,
        ),
        Schedule("joint", lambda i, s: BOTH, "task + weight * alignment on every micro-batch", True, True, 1, 1),
    ]
}


def get_schedule(name: str) -> Schedule:
    try:
        return SCHEDULES[name]
    except KeyError:
        raise ValueError(f"unknown --alignment_schedule {name!r}; choose one of {sorted(SCHEDULES)}") from None
