"""What :class:`~midalign.training.trainer.AlignmentTrainer` needs of ``transformers.Trainer``, in one place.

The trainer overrides documented hooks (``compute_loss``, ``training_step``, ``prediction_step``, ``log``,
``get_batch_samples``, ``train``) and writes its completion marker from an ``on_save`` callback. Three members it uses
are private to transformers: ``_prepare_inputs`` (the device/dtype move of a batch it builds itself, to measure
alignment statistics and in ``prediction_step``), ``_load_from_checkpoint`` (a resumed LoRA checkpoint holds the
paper-layout copy ``adapter_model/`` beside the top-level adapter, which transformers would read as a second
adapter), and ``evaluation_loop`` (where the objectives' eval means are added to the metrics under the loop's
prefix). :data:`TRAINER_CONTRACT` lists the parameters each must have;
``tests/training/test_transformers_contract.py`` fails, naming the member, when a transformers release changes one.
"""

from __future__ import annotations

import inspect

__all__ = ["TRAINER_CONTRACT", "contract_violations", "bound_argument"]

# member -> the parameters (in order, after self) the trainer relies on; "private" members are transformers' own
TRAINER_CONTRACT: dict[str, tuple[tuple[str, ...], bool]] = {
    "_prepare_inputs": (("inputs",), True),
    "_load_from_checkpoint": (("resume_from_checkpoint", "model"), True),
    "evaluation_loop": (
        ("dataloader", "description", "prediction_loss_only", "ignore_keys", "metric_key_prefix"),
        True,
    ),
    "compute_loss": (("model", "inputs", "return_outputs", "num_items_in_batch"), False),
    "training_step": (("model", "inputs", "num_items_in_batch"), False),
    "prediction_step": (("model", "inputs", "prediction_loss_only", "ignore_keys"), False),
    "get_batch_samples": (("epoch_iterator", "num_batches", "device"), False),
    "log": (("logs", "start_time"), False),
    "train": (("resume_from_checkpoint",), False),
    "compute_loss_context_manager": ((), False),
}


def contract_violations(trainer_cls=None) -> list[str]:
    """The members of ``trainer_cls`` (default ``transformers.Trainer``) that are missing or whose leading
    parameters differ from :data:`TRAINER_CONTRACT`, one line each; empty when the trainer can rely on them."""
    if trainer_cls is None:
        from transformers import Trainer as trainer_cls
    problems = []
    for name, (params, private) in TRAINER_CONTRACT.items():
        member = getattr(trainer_cls, name, None)
        kind = "private member" if private else "hook"
        if member is None:
            problems.append(f"transformers.Trainer.{name} ({kind}) is gone")
            continue
        got = tuple(p for p in inspect.signature(member).parameters if p != "self")[: len(params)]
        if got != params:
            problems.append(f"transformers.Trainer.{name} ({kind}) takes {got}, AlignmentTrainer expects {params}")
    return problems


def bound_argument(method, args: tuple, kwargs: dict, name: str, default):
    """The value ``name`` takes in a call ``method(self, *args, **kwargs)`` however it was passed (by position or by
    keyword), else ``default``."""
    bound = inspect.signature(method).bind_partial(None, *args, **kwargs)
    return bound.arguments.get(name, default)
