"""Checkpoint policy: which checkpoint a run resumes from, and which output directories a new run may not touch.

transformers names checkpoints ``checkpoint-<step>`` (``PREFIX_CHECKPOINT_DIR``) and finds the newest with
``get_last_checkpoint``; midalign adds one thing it lacks, a completion marker. A kill during a save leaves a
``checkpoint-N`` that looks like a checkpoint and is not; :class:`CompletionMarker` (a ``TrainerCallback`` at
``on_save``, which transformers calls right after a checkpoint is written) writes ``COMPLETE`` last, fsync'd, and
:func:`resolve_resume` takes the newest checkpoint that has it, skipping torn ones with a warning naming them.
"""

from __future__ import annotations

import glob
import logging
import os
import re

from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

__all__ = [
    "COMPLETE",
    "FINISHED_FILES",
    "CompletionMarker",
    "checkpoint_complete",
    "check_output_dir",
    "list_checkpoints",
    "resolve_resume",
]

logger = logging.getLogger("midalign")

COMPLETE = "midalign_checkpoint_complete.json"  # written last into each checkpoint
FINISHED_FILES = ("adapter_model.safetensors", "model.safetensors", "trainer_state.json", "train_results.json")
_STEP = re.compile(rf"^{re.escape(PREFIX_CHECKPOINT_DIR)}-(\d+)$")


def list_checkpoints(directory: str) -> list[str]:
    """``checkpoint-N`` sub-directories (transformers' naming), newest (largest N) first."""
    if not os.path.isdir(directory):
        return []
    found = [(int(m.group(1)), os.path.join(directory, name)) for name in os.listdir(directory)
             if (m := _STEP.match(name)) and os.path.isdir(os.path.join(directory, name))]  # fmt: skip
    return [p for _, p in sorted(found, reverse=True)]


def checkpoint_complete(path: str, strict: bool = False) -> bool:
    """Has ``trainer_state.json`` and weights; with ``strict`` (the run writes completion markers) its marker too."""
    has_weights = any(
        os.path.isfile(os.path.join(path, f)) and os.path.getsize(os.path.join(path, f)) > 0
        for f in ("adapter_model.safetensors", "model.safetensors", "pytorch_model.bin")
    ) or bool(glob.glob(os.path.join(path, "model-*.safetensors")))
    ok = os.path.isfile(os.path.join(path, "trainer_state.json")) and has_weights
    return ok and (not strict or os.path.isfile(os.path.join(path, COMPLETE)))


def _truthy(value) -> bool | None:
    """True / False for the spellings of a boolean flag value, None for anything else (a path)."""
    if value is None or value is False:
        return False
    if value is True:
        return True
    low = str(value).lower()
    return True if low in ("true", "yes", "1") else False if low in ("", "false", "no", "0") else None


def resolve_resume(value, output_dir: str | None) -> str | None:
    """``--resume_from_checkpoint``: ``True`` (any spelling) or the output directory itself -> its newest *complete*
    checkpoint (a torn one is skipped with a warning naming it); a checkpoint directory as is; None when not asked.
    A clear error when there is nothing to resume from."""
    flag = _truthy(value)
    if flag is False:
        return None
    where = output_dir if flag else value
    if not where or not os.path.isdir(where):
        raise FileNotFoundError(f"--resume_from_checkpoint {where}: no such directory")
    checkpoints = list_checkpoints(where)
    if not checkpoints and os.path.isfile(os.path.join(where, "trainer_state.json")):
        if not checkpoint_complete(where):
            raise FileNotFoundError(f"--resume_from_checkpoint {where}: an incomplete checkpoint (torn save)")
        return where  # a checkpoint directory given as such
    strict = any(os.path.isfile(os.path.join(c, COMPLETE)) for c in checkpoints)  # this run writes markers
    last = get_last_checkpoint(where)
    if last and checkpoint_complete(last, strict=strict):
        return last
    for path in checkpoints:  # newest first
        if checkpoint_complete(path, strict=strict):
            return path
        logger.warning("skipping %s: an incomplete checkpoint (a save was interrupted); resuming from an earlier one",
                       path)  # fmt: skip
    raise FileNotFoundError(
        f"--resume_from_checkpoint {value}: {where} holds no checkpoint-* directory that is complete "
        "(trainer_state.json, weights, completion marker); start without --resume_from_checkpoint"
    )


def check_output_dir(output_dir: str | None, *, do_train: bool, overwrite: bool, resume) -> None:
    """Refuse to train over an earlier run's checkpoints or finished results unless asked to."""
    if not do_train or overwrite or _truthy(resume) is not False:
        return
    if list_checkpoints(output_dir or ""):
        raise FileExistsError(
            f"--output_dir {output_dir} already holds checkpoints. Pass --resume_from_checkpoint True to continue that "
            "run, --overwrite_output_dir to train over it, or choose another --output_dir."
        )
    finished = [f for f in FINISHED_FILES if os.path.isfile(os.path.join(output_dir or "", f))]
    if finished:
        raise FileExistsError(
            f"--output_dir {output_dir} holds a finished run ({', '.join(finished)}); pass --overwrite_output_dir to "
            "replace it, or choose another --output_dir."
        )


class CompletionMarker(TrainerCallback):
    """Writes ``COMPLETE`` (fsync'd, by rename) into each checkpoint once transformers has saved it."""

    def on_save(self, args, state, control, **kwargs):
        if args.should_save:
            path = os.path.join(args.output_dir, f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}")
            if os.path.isdir(path):
                tmp = os.path.join(path, COMPLETE + ".tmp")
                with open(tmp, "w") as fh:
                    fh.write(f'{{"global_step": {state.global_step}}}\n')
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, os.path.join(path, COMPLETE))
        return control
