"""The trainer's callbacks: epoch setting for pair cycling, the schedule clock (checkpointed), the paper's adapter
layout, the finite-gradient guard and the alignment-statistics writer."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..alignment.centering import STATS_FILE
from .schedules import Objectives

logger = logging.getLogger("midalign")

__all__ = ["PLAN_KEY", "MicroBatchPlan", "PaperAdapterLayout", "ScheduleClock"]


class _EpochSetter(TrainerCallback):
    """Tells datasets with ``set_epoch`` (pair cycling, streaming shuffle) which epoch starts."""

    def __init__(self, dataset):
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(int(state.epoch or 0))


class ScheduleClock(TrainerCallback, ExportableState):
    """The schedule's clock: micro-batches consumed since the run began.

    Saved by transformers inside each checkpoint's ``trainer_state.json`` (``stateful_callbacks``), in the same
    write as the global step, so a checkpoint never has one without the other; restored at the start of a resumed
    run. A checkpoint made under another schedule is refused; one without the clock (older midalign) gets
    ``global_step x gradient_accumulation_steps`` (exact unless an epoch ended inside an accumulation window), with
    a warning.
    """

    def __init__(self, schedule: str, micro_batches: int = 0):
        self.schedule, self.micro_batches = schedule, int(micro_batches)

    def state(self) -> dict:
        return {"args": {"schedule": self.schedule}, "attributes": {"micro_batches": self.micro_batches}}

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.global_step:
            self.micro_batches = 0
            return
        saved = (state.stateful_callbacks or {}).get(type(self).__name__)
        if isinstance(saved, list):
            saved = saved[-1] if saved else None
        if not saved:
            self.micro_batches = state.global_step * args.gradient_accumulation_steps
            state.stateful_callbacks[type(self).__name__] = self.state()  # transformers updates it at each save
            logger.warning(
                "the checkpoint carries no schedule clock; resuming the %s schedule at micro-batch %d "
                "(global step x gradient accumulation)",
                self.schedule,
                self.micro_batches,
            )
            return
        if saved["args"]["schedule"] != self.schedule:
            raise ValueError(
                f"the checkpoint was trained with --alignment_schedule {saved['args']['schedule']}, this run asks "
                f"for {self.schedule}: resume with the same schedule, or start a new run (another --output_dir)"
            )
        self.micro_batches = int(saved["attributes"]["micro_batches"])


PLAN_KEY = "midalign_plan"


@dataclass(frozen=True)
class MicroBatchPlan:
    """What one training micro-batch runs and with which weights, attached to the batch (under :data:`PLAN_KEY`) by
    :meth:`AlignmentTrainer.get_batch_samples` and read by :meth:`AlignmentTrainer.compute_loss`, so the two cannot
    disagree about which micro-batch is which. ``task_scale`` = G_t / G, ``align_scale`` = 1 / G for an optimizer
    step of G micro-batches of which G_t run the task; the step's task-token count travels as transformers'
    ``num_items_in_batch``."""

    objectives: Objectives
    task_scale: float
    align_scale: float


class PaperAdapterLayout(TrainerCallback):
    """Also writes the adapter at the paper's paths: ``checkpoint-N/adapter_model/`` at every save and
    ``output_dir/adapter_model/`` when training ends (process 0 only; models without a peft adapter are skipped)."""

    def _write(self, model, directory: str) -> None:
        if model is not None and hasattr(model, "peft_config"):
            model.save_pretrained(os.path.join(directory, "adapter_model"))

    def on_save(self, args, state, control, model=None, **kwargs):
        if state.is_world_process_zero:
            self._write(model, os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"))

    def on_train_end(self, args, state, control, model=None, **kwargs):
        if state.is_world_process_zero:
            self._write(model, args.output_dir)


class _FiniteGradients(TrainerCallback):
    """Stops the run before an optimizer step whose gradient holds NaN or inf (the loss itself was finite)."""

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        if model is None:
            return
        bad = [n for n, p in model.named_parameters() if p.grad is not None and not torch.isfinite(p.grad).all()]
        if bad:
            raise FloatingPointError(
                f"non-finite gradient at optimizer step {state.global_step + 1} in {len(bad)} tensor(s), first "
                f"{bad[0]}: training stopped before the weights take it"
            )


class _StatsWriter(TrainerCallback):
    """Writes the alignment statistics into every checkpoint, so a resumed run centres with the same constants."""

    def __init__(self, trainer):
        self.trainer = trainer

    def on_save(self, args, state, control, **kwargs):
        stats = self.trainer.alignment_stats
        if stats is not None and state.is_world_process_zero:
            path = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            os.makedirs(path, exist_ok=True)
            stats.save(os.path.join(path, STATS_FILE))
