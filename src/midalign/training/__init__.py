"""Training: argument dataclasses, schedules and the AlignmentTrainer."""

from .arguments import AlignmentTrainingArguments, DataArguments, ModelArguments, default_alignment_layer
from .schedules import SCHEDULES, Objectives, Schedule, get_schedule
from .trainer import AlignmentTrainer, causal_lm_loss, supervised_positions, task_loss

__all__ = [
    "SCHEDULES",
    "AlignmentTrainer",
    "AlignmentTrainingArguments",
    "DataArguments",
    "ModelArguments",
    "Objectives",
    "Schedule",
    "causal_lm_loss",
    "supervised_positions",
    "task_loss",
    "default_alignment_layer",
    "get_schedule",
]
