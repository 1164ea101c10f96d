"""``AlignmentTrainer``: a ``transformers.Trainer`` that mixes the task loss with the middle-layer alignment loss
according to a named schedule, logs each objective under its own name, and saves adapters at the paper's paths."""

from __future__ import annotations

import logging
import math
import os
from collections import defaultdict
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint
from transformers import EarlyStoppingCallback, Trainer, TrainerCallback
from transformers.trainer_callback import ExportableState
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..alignment import alignment_loss, call_through, find_decoder, layer_output, pool, retrieval_accuracy
from ..alignment.centering import STATS_FILE, PooledStats, center, needs_stats, stats_from_pooled
from ..data import IGNORE_INDEX
from .schedules import Objectives

__all__ = [
    "AlignmentTrainer",
    "MicroBatchPlan",
    "PLAN_KEY",
    "PaperAdapterLayout",
    "ScheduleClock",
    "CHUNK_LOGITS",
    "causal_lm_loss",
    "supervised_positions",
    "task_loss",
]

logger = logging.getLogger("midalign")


def supervised_positions(labels: torch.Tensor) -> torch.Tensor:
    """Positions whose logits some loss term needs: t such that any row has ``labels[:, t + 1] != -100``.

    Args:
        labels: shape [B, T]. Returns: shape [K], int64, increasing; K <= T - 1 (the prompt and padding columns of
        every row drop out, which for prompts of ~100 tokens and targets of ~10 leaves a tenth of the LM head's work).
    """
    return labels[:, 1:].ne(IGNORE_INDEX).any(dim=0).nonzero().squeeze(-1)


def causal_lm_loss(
    logits: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed next-token cross-entropy and the number of target tokens.

    Args:
        logits: shape [B, T, V], or [B, K, V] at ``positions`` (shape [K], as :func:`supervised_positions` gives).
        labels: shape [B, T], ``-100`` where no loss is taken (prompt, padding).
    Returns:
        (sum of token losses, number of target tokens), both scalars; position t predicts ``labels[t + 1]``.
    """
    if positions is None:
        logits, targets = logits[:, :-1], labels[:, 1:]
    else:
        targets = labels[:, positions.to(labels.device) + 1]
    flat_logits = logits.float().reshape(-1, logits.shape[-1])
    flat_targets = targets.reshape(-1).to(flat_logits.device)
    total = F.cross_entropy(flat_logits, flat_targets, ignore_index=IGNORE_INDEX, reduction="sum")
    return total, flat_targets.ne(IGNORE_INDEX).sum()


def _accepts_logits_to_keep(model: nn.Module) -> bool:
    import inspect

    from ..alignment.capture import _unwrap

    return "logits_to_keep" in inspect.signature(_unwrap(model).forward).parameters


# Logits per chunk of the LM head (float32: 256 MiB): at Gemma 3's vocabulary (262,144) that is 256 target tokens,
# more than a MASSIVE or xSID micro-batch of 8 has, so those run in one piece; whole-text causal-LM batches chunk.
CHUNK_LOGITS = 2**26

# Element-wise transformations HF causal LMs apply to the LM head's output, as (attribute of the model or its
# config, function). The chunked path applies them itself and checks the result against the model's own logits
# on the first chunk; a model doing anything else is refused with the way out (``--lm_head_chunk 0``).
_LOGIT_TRANSFORMS = (
    ("final_logit_softcapping", lambda x, cap: torch.tanh(x / cap) * cap),  # Gemma 2 / 3
    ("logit_scale", lambda x, scale: x * scale),  # Cohere
    ("logits_scaling", lambda x, scale: x / scale),  # Granite
)


def _logit_transform(causal_lm: nn.Module):
    steps = []
    for name, fn in _LOGIT_TRANSFORMS:
        value = getattr(causal_lm, name, None)
        if value is None:
            value = getattr(getattr(causal_lm, "config", None), name, None)
        if value is not None:
            steps.append((fn, value))

    def transform(logits: torch.Tensor) -> torch.Tensor:
        for fn, value in steps:
            logits = fn(logits, value)
        return logits

    return transform


def _chunk_loss(head: nn.Module, transform, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    logits = transform(head(hidden)).float()
    return F.cross_entropy(logits, targets, reduction="sum")


def task_loss(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor,
    *,
    supervised_only: bool = True,
    chunk_logits: int | None = CHUNK_LOGITS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed token loss, target tokens) of a causal LM on a batch, shapes [B, T] in.

    With ``supervised_only`` the LM head runs only where a loss is taken: the decoder keeps the columns of
    :func:`supervised_positions` (``logits_to_keep`` with an index tensor), and a pre-hook on the LM head gathers
    each row's own target positions from them, so the head sees [N, H] for the batch's N target tokens and prompt or
    padding positions never materialise [V]-sized logits; columns after the last such position are not run at all
    (causal attention: they cannot change the loss). The model still applies its own head, tied weights and
    final-logit soft-capping. When N x V exceeds ``chunk_logits`` the head and cross-entropy run in chunks of rows,
    each recomputed in the backward pass (activation checkpointing), so peak memory stays flat in N and the
    vocabulary (``chunk_logits`` 0 or None: one piece). Same loss and gradients as over all positions (tested on
    every tiny architecture, chunked and not); a model whose forward lacks ``logits_to_keep`` or has no output
    embeddings computes every position.
    """
    from ..alignment.capture import _unwrap

    causal_lm = _unwrap(model)
    head = causal_lm.get_output_embeddings() if hasattr(causal_lm, "get_output_embeddings") else None
    if not (supervised_only and head is not None and _accepts_logits_to_keep(model)):
        return causal_lm_loss(model(input_ids=input_ids, attention_mask=attention_mask).logits, labels)
    positions = supervised_positions(labels)
    # Causal attention: no position after the last one whose logits are needed can change the loss, so the batch is
    # cut there (the last target token itself, e.g. EOS, and the padding after it are never run).
    end = int(positions[-1]) + 1 if positions.numel() else 1
    input_ids, attention_mask = input_ids[:, :end], attention_mask[:, :end]
    targets = labels[:, positions + 1]
    keep = targets.ne(IGNORE_INDEX)
    flat_targets = targets[keep]
    n = flat_targets.numel()
    vocab = getattr(head, "out_features", None) or head.weight.shape[0]
    rows = max(chunk_logits // max(vocab, 1), 1) if chunk_logits else max(n, 1)
    chunked = n > rows
    stash: dict[str, torch.Tensor] = {}

    def gather(module, args):
        hidden = args[0][keep.to(args[0].device)]  # [B, K, H] -> [N, H], each row's own targets
        if chunked:
            stash["hidden"] = hidden
            hidden = hidden[:rows]  # the model's own head (and logit transform) runs on the first chunk
        return (hidden, *args[1:])

    handle = head.register_forward_pre_hook(gather)
    try:
        logits = model(input_ids=input_ids, attention_mask=attention_mask, logits_to_keep=positions).logits
    finally:
        handle.remove()
    expected = rows if chunked else n
    if logits.dim() != 2 or logits.shape[0] != expected:
        raise RuntimeError(
            f"{type(causal_lm).__name__} reshaped its LM head's output ({tuple(logits.shape)}, expected "
            f"[{expected}, V]); call task_loss(..., supervised_only=False) for this model"
        )
    flat_targets = flat_targets.to(logits.device)
    total = F.cross_entropy(logits.float(), flat_targets[:expected], reduction="sum")
    if chunked:
        hidden, transform = stash.pop("hidden"), _logit_transform(causal_lm)
        with torch.no_grad():
            ours = transform(head(hidden[:rows])).float()
        if not torch.allclose(ours, logits.float(), rtol=1e-4, atol=1e-4):
            raise NotImplementedError(
                f"{type(causal_lm).__name__} transforms its LM head's output in a way the chunked task loss does not "
                f"know (known: {', '.join(name for name, _ in _LOGIT_TRANSFORMS)}); train with --lm_head_chunk 0 "
                "(logits in one piece) or add the transform to midalign.training.trainer._LOGIT_TRANSFORMS"
            )
        for start in range(rows, n, rows):
            total = total + checkpoint(
                _chunk_loss,
                head,
                transform,
                hidden[start : start + rows],
                flat_targets[start : start + rows],
                use_reentrant=False,
            )
    return total, torch.as_tensor(n, device=total.device)


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


def _as_rows_dataset(data, tokenizer, name: str):
    """A list of row dicts or a ``datasets.Dataset`` of raw rows -> a tokenizing dataset; anything already
    tokenized (rows with ``input_ids``) or ``None`` is returned as is."""
    if data is None:
        return None
    first = None
    if isinstance(data, list):
        first = data[0] if data else None
    elif type(data).__module__.startswith("datasets") and hasattr(data, "column_names"):
        first = data[0] if len(data) else None
    else:
        return data
    if first is None:
        raise ValueError(f"{name} is empty")
    if not isinstance(first, dict) or "input_ids" in first:
        return data
    if tokenizer is None:
        raise ValueError(f"{name} holds raw text rows: pass processing_class=tokenizer to tokenize them")
    from ..data.datasets import AlignmentDataset, Featurizer
    from ..data.jsonl import PAIR_FIELDS, TASK_FIELDS, _validate

    task = all(k in first for k in TASK_FIELDS)
    pairs = all(k in first for k in PAIR_FIELDS)
    if not (task or pairs):
        raise ValueError(f"{name}: rows need {list(TASK_FIELDS)} and/or {list(PAIR_FIELDS)}; got {sorted(first)}")
    fields = (TASK_FIELDS if task else ()) + (PAIR_FIELDS if pairs else ())
    rows = [_validate(dict(r), fields, f"{name}[{i}]") for i, r in enumerate(data)]
    return AlignmentDataset(rows, Featurizer(tokenizer, None, task=task, pairs=pairs))


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


def _one_pair_repeated(inputs) -> bool:
    """Every row of the batch is the same pair (the same token ids on both sides)."""
    for side in ("0", "1"):
        ids, mask = inputs[f"input_ids_parallel_{side}"], inputs[f"attention_mask_parallel_{side}"]
        if not (
            bool(mask.eq(mask[:1]).all())
            and bool(ids.masked_fill(mask == 0, 0).eq(ids[:1].masked_fill(mask[:1] == 0, 0)).all())
        ):
            return False
    return True


class AlignmentTrainer(Trainer):
    """Trains with ``args.schedule`` (see ``midalign.training.schedules``).

    Gradient of one optimizer step with G micro-batches, of which G_t run the task and G_a the alignment loss:
    ``(G_t / G) * (sum of task token losses / task tokens) + (1 / G) * sum of alignment losses``. With
    ``task_only`` this is exactly transformers' token-normalised loss; with ``alternate`` each objective gets half
    the weight, as in the paper; token counts are summed across processes like transformers does.
    """

    loss_is_scaled_for_ga = True

    def __init__(
        self,
        model=None,
        args=None,
        data_collator=None,
        train_dataset=None,
        eval_dataset=None,
        processing_class=None,
        *more,
        pad_token_id: int | None = None,
        **kwargs,
    ):
        """As ``transformers.Trainer``, with defaults for what alignment needs: ``args`` default to
        ``AlignmentTrainingArguments(output_dir="midalign_output")``; an unset ``alignment_layer`` becomes the
        model's middle layer; ``train_dataset`` / ``eval_dataset`` may be a list of row dicts or a
        ``datasets.Dataset`` in the paper's format (``prefix``, ``text``, ``text_parallel_0``, ``text_parallel_1``;
        tokenized with ``processing_class``); the default collator pads with the tokenizer's pad (else eos) token."""
        from .arguments import AlignmentTrainingArguments, default_alignment_layer

        if args is None:
            args = AlignmentTrainingArguments(output_dir="midalign_output")
        if args.alignment_layer is None and model is not None:
            from ..alignment import num_decoder_layers

            args.alignment_layer = default_alignment_layer(num_decoder_layers(model))
        tok = processing_class
        if pad_token_id is None and tok is not None:
            pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        train_dataset = _as_rows_dataset(train_dataset, tok, "train_dataset")
        eval_dataset = _as_rows_dataset(eval_dataset, tok, "eval_dataset")
        if data_collator is None:
            if pad_token_id is None:
                raise ValueError(
                    "AlignmentTrainer needs a pad token id to batch: pass processing_class=tokenizer (with a pad or "
                    "eos token), pad_token_id=..., or a data_collator"
                )
            from ..data import AlignmentCollator

            data_collator = AlignmentCollator(pad_token_id)
        super().__init__(model, args, data_collator, train_dataset, eval_dataset, processing_class, *more, **kwargs)
        self.schedule = self.args.schedule
        self.pad_token_id = pad_token_id if pad_token_id is not None else 0
        self._metrics: dict[str, dict[str, list[float]]] = {"train": defaultdict(list), "eval": defaultdict(list)}
        self.skipped_alignment_batches = 0  # alignment micro-batches with < 2 pairs (see compute_loss)
        self.clock = ScheduleClock(self.args.alignment_schedule)
        self.add_callback(self.clock)
        self.add_callback(PaperAdapterLayout())
        self._objective_sum = 0.0  # combined objective since the last log, for the "loss" entry
        self._steps_since_log = 0
        self._unreached: dict[int, list[nn.Parameter]] = {}
        self._grad_sums: dict[str, torch.Tensor] = {}  # --alignment_diagnostics, per logging window
        self._verdict_done = False  # the first-batch "loss at chance?" line is logged once
        self._same_pair_repeated = False  # the first alignment batch is one pair repeated (no negatives)
        self.alignment_stats: PooledStats | None = None  # --alignment_center fixed/standardize (see train)
        self.add_callback(_StatsWriter(self))
        self.add_callback(_FiniteGradients())
        if self.train_dataset is not None:
            self.add_callback(_EpochSetter(self.train_dataset))
        if self.args.patience:
            self.add_callback(EarlyStoppingCallback(early_stopping_patience=self.args.patience))

    # ---- schedule ----
    def _alignment_layer(self) -> int:
        return int(self.args.alignment_layer)

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        """The optimizer step's micro-batches, each carrying its :class:`MicroBatchPlan`, and the step's number of
        task target tokens (all processes), which transformers passes to ``compute_loss`` as
        ``num_items_in_batch``. Counted here rather than by transformers because only the micro-batches that run
        the task count (alignment micro-batches may carry labels too), and transformers counts only for models
        whose forward takes loss kwargs."""
        batches = []
        for _ in range(num_batches):
            try:
                batches.append(next(epoch_iterator))
            except StopIteration:
                break
        start = self.clock.micro_batches
        plan = [self.schedule.plan(start + i, self.state.global_step) for i in range(len(batches))]
        self.clock.micro_batches += len(batches)
        n = max(len(batches), 1)
        n_task = sum(p.task for p in plan)
        for batch, objectives in zip(batches, plan):
            batch[PLAN_KEY] = MicroBatchPlan(objectives, n_task / n, 1.0 / n)
        tokens = None
        if n_task:
            tokens = sum(b["labels"][:, 1:].ne(IGNORE_INDEX).sum() for b, p in zip(batches, plan) if p.task)
            tokens = torch.as_tensor(tokens, device=device)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                tokens = self.accelerator.gather(tokens.reshape(1)).sum()
        self._steps_since_log += 1
        return batches, tokens

    # ---- losses ----
    def _task_loss(self, model, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        return task_loss(
            model,
            inputs["input_ids"],
            inputs["attention_mask"],
            inputs["labels"],
            chunk_logits=self.args.lm_head_chunk,
        )

    def _align_forward(self, model, inputs) -> tuple[torch.Tensor, torch.Tensor]:
        """Pooled layer-k representations of both sides: each side padded to its own length (no positions spent on
        the other side's padding), both computed inside one call of the (possibly DDP-wrapped) model, since DDP
        allows one forward per backward."""
        ids0, m0 = inputs["input_ids_parallel_0"], inputs["attention_mask_parallel_0"]
        ids1, m1 = inputs["input_ids_parallel_1"], inputs["attention_mask_parallel_1"]
        layer = self._alignment_layer()

        def both(inner):
            return layer_output(inner, ids0, m0, layer), layer_output(inner, ids1, m1, layer)

        h0, h1 = call_through(model, both, input_ids=ids0, attention_mask=m0)
        return pool(h0, m0, self.args.alignment_pooling), pool(h1, m1, self.args.alignment_pooling)

    def _centered(self, p0, p1):
        mode = self.args.alignment_center
        return center(p0, mode, 0, self.alignment_stats), center(p1, mode, 1, self.alignment_stats)

    def _first_alignment_verdict(self, loss: torch.Tensor, p0, p1) -> None:
        """Once, at the first training alignment micro-batch: does the loss start at chance (ln B)?"""
        self._verdict_done = True
        a = self.args
        chance = math.log(p0.shape[0])
        value = loss.item() / a.alignment_weight if a.alignment_weight else float("nan")
        if self._same_pair_repeated:
            logger.warning(
                "the first alignment batch holds %d copies of one pair: the contrastive loss has no negatives, so "
                "it is constant (%.3f) with zero gradient and alignment learns nothing. Give --alignment_file (or "
                "the pairs of --train_file) at least two different pairs.",
                p0.shape[0], value,
            )  # fmt: skip
        elif value >= 0.98 * chance:
            with torch.no_grad():
                cen = alignment_loss(center(p0, "batch"), center(p1, "batch"), temperature=a.alignment_temperature,
                                     distance=a.alignment_distance, direction=a.alignment_direction).item()  # fmt: skip
            logger.warning(
                "alignment loss at the first batch is %.3f, chance ln %d = %.3f: the loss starts at chance, so the "
                "objective cannot see the pairs (centered on the batch it would be %.3f). Run `midalign analyze "
                "anisotropy` and consider --alignment_center batch, fixed or standardize.",
                value, p0.shape[0], chance, cen,
            )  # fmt: skip
        else:
            logger.info("alignment loss at the first batch %.3f < chance ln %d = %.3f", value, p0.shape[0], chance)

    def _align_loss(self, p0, p1, mode: str) -> torch.Tensor:
        a = self.args
        p0, p1 = self._centered(p0, p1)
        loss = alignment_loss(
            p0,
            p1,
            temperature=a.alignment_temperature,
            distance=a.alignment_distance,
            direction=a.alignment_direction,
            detach_target=a.alignment_detach_target,
            weight=a.alignment_weight,
        )
        if mode == "train" and not self._verdict_done:
            self._first_alignment_verdict(loss.detach(), p0.detach(), p1.detach())
        # kept as tensors: read (one device sync) when logging, not on every micro-batch
        self._metrics[mode]["loss/align"].append(loss.detach())
        with torch.no_grad():
            self._metrics[mode]["align/acc"].append(retrieval_accuracy(p0, p1, distance=a.alignment_distance))
        return loss

    @torch.no_grad()
    def _base_accuracy(self, inputs) -> None:
        """align/acc_base: in-batch accuracy of the model without its adapter on this alignment batch."""
        model = self.model
        if not hasattr(model, "disable_adapter"):
            return
        with model.disable_adapter():
            p0, p1 = self._centered(*self._align_forward(model, inputs))
        self._metrics["train"]["align/acc_base"].append(
            retrieval_accuracy(p0, p1, distance=self.args.alignment_distance)
        )

    def training_step(self, model, inputs, num_items_in_batch=None):
        """With --alignment_diagnostics: the gradient each micro-batch adds, summed per objective over the logging
        window (task-only and alignment-only micro-batches; a joint micro-batch cannot be split)."""
        if not self.args.alignment_diagnostics or self.is_deepspeed_enabled:
            return super().training_step(model, inputs, num_items_in_batch)
        plan = inputs.get(PLAN_KEY)
        params = [p for p in self.model.parameters() if p.requires_grad]
        before = [p.grad.detach().clone() if p.grad is not None else None for p in params]
        loss = super().training_step(model, inputs, num_items_in_batch)
        if isinstance(plan, MicroBatchPlan) and plan.objectives.task != plan.objectives.align:
            key = "task" if plan.objectives.task else "align"
            flat = torch.cat([
                ((p.grad.detach() if p.grad is not None else torch.zeros_like(p)) - (b if b is not None else 0))
                .float().reshape(-1)
                for p, b in zip(params, before)
            ])  # fmt: skip
            sums = self._grad_sums
            sums[key] = flat if key not in sums else sums[key] + flat
        return loss

    def _zero_for_unreached(self, model) -> torch.Tensor:
        """0 * (sum of trainable parameters that an alignment-only forward does not reach), so that every
        trainable parameter gets a (zero) gradient: DDP and DeepSpeed then see the same parameter set on every
        micro-batch and neither error out nor desynchronise."""
        layer = self._alignment_layer()
        if layer not in self._unreached:
            decoder, layout = find_decoder(model)
            reached = {
                id(p)
                for name, mod in decoder.named_children()
                if name not in (layout.layers, layout.norm)
                for p in mod.parameters()
            }
            reached |= {id(p) for lay in getattr(decoder, layout.layers)[:layer] for p in lay.parameters()}
            self._unreached[layer] = [p for p in model.parameters() if p.requires_grad and id(p) not in reached]
        params = self._unreached[layer]
        if not params:
            return torch.zeros(())
        return 0.0 * sum(p.sum() for p in params)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not model.training:
            loss = self._eval_loss(model, inputs)
            return (loss, None) if return_outputs else loss
        step = inputs.pop(PLAN_KEY, None)
        if not isinstance(step, MicroBatchPlan):
            raise RuntimeError(
                "AlignmentTrainer.compute_loss got a training micro-batch without its schedule plan: batches must come "
                "from AlignmentTrainer.get_batch_samples (a custom training loop has to call it, and pass its token "
                "count as num_items_in_batch)"
            )
        objectives = step.objectives
        if objectives.task and num_items_in_batch is None:
            raise RuntimeError("a task micro-batch needs the step's task-token count (num_items_in_batch)")
        world = self.args.world_size if self.args.average_tokens_across_devices and self.args.world_size > 1 else 1
        loss = torch.zeros((), device=self.args.device)
        report = 0.0
        if objectives.task and objectives.align:
            (total, n_tok), (p0, p1) = self._joint_forward(model, inputs)
        else:
            if objectives.task:
                total, n_tok = self._task_loss(model, inputs)
            if objectives.align:
                p0, p1 = self._align_forward(model, inputs)
        if objectives.task:
            self._metrics["train"]["loss/task"].append((total / n_tok.clamp(min=1)).detach())
            tokens = torch.as_tensor(num_items_in_batch, device=total.device)
            task = total / tokens.clamp(min=1) * step.task_scale
            loss = loss + task * world
            report = report + task.detach() * world  # per-rank share of the global token mean; averaged at log
        if objectives.align and p0.shape[0] < 2:
            # In-batch negatives need >= 2 pairs; a short last batch of an epoch (or of a shard) has fewer. It is
            # skipped, counted in "align/skipped", and contributes a zero that keeps every parameter in the graph.
            if not self._verdict_done and not self.skipped_alignment_batches:
                logger.warning(
                    "an alignment batch of one pair has no negatives and is skipped (counted in align/skipped); "
                    "with --per_device_train_batch_size 1 every alignment batch is, and alignment learns nothing: "
                    "use a batch of at least 2 pairs per device."
                )
            self._metrics["train"]["align/skipped"].append(1.0)
            self.skipped_alignment_batches += 1
            loss = loss + 0.0 * (p0.sum() + p1.sum())
            if not objectives.task:
                loss = loss + self._zero_for_unreached(model).to(loss.device)
        elif objectives.align:
            self._metrics["train"]["align/skipped"].append(0.0)
            if self.args.alignment_diagnostics:
                self._base_accuracy(inputs)
            if not self._verdict_done:
                self._same_pair_repeated = _one_pair_repeated(inputs)
            align = self._align_loss(p0, p1, "train") * step.align_scale
            loss = loss + align
            report = report + align.detach()
            if not objectives.task:
                loss = loss + self._zero_for_unreached(model).to(loss.device)
        self._objective_sum += report
        if not torch.isfinite(loss.detach()).item():
            which = "+".join(n for n, on in (("task", objectives.task), ("alignment", objectives.align)) if on)
            raise FloatingPointError(
                f"non-finite {which} loss ({loss.item()}) at optimizer step {self.state.global_step + 1}: training "
                "stopped before the weights take it (nothing is saved from this step). Check --learning_rate, "
                "--alignment_temperature and the model's dtype (pooling and similarities run in float32)."
            )
        return (loss, None) if return_outputs else loss

    def _joint_forward(self, model, inputs):
        """Task loss and pooled pairs from one call of the (possibly DDP-wrapped) model."""

        def both(inner):
            return self._task_loss(inner, inputs), self._align_forward(inner, inputs)

        return call_through(model, both, input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])

    def _eval_loss(self, model, inputs) -> torch.Tensor:
        """Evaluation: every objective the schedule trains and the batch has data for, mixed with the schedule's
        shares (``task_share`` · task mean + ``align_share`` · weighted alignment loss), which is what the logged
        training ``loss`` averages to over a run: ``eval_loss`` and ``loss`` are the same quantity."""
        loss = torch.zeros((), device=self.args.device)
        if self.schedule.uses_task and "labels" in inputs:
            total, n_tok = self._task_loss(model, inputs)
            task = total / n_tok.clamp(min=1)
            self._metrics["eval"]["loss/task"].append(task.detach())
            loss = loss + self.schedule.task_share * task
        if self.schedule.uses_align and "input_ids_parallel_0" in inputs:
            p0, p1 = self._align_forward(model, inputs)
            if p0.shape[0] >= 2:
                loss = loss + self.schedule.align_share * self._align_loss(p0, p1, "eval")
        return loss

    def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
        inputs = self._prepare_inputs(inputs)
        with torch.no_grad(), self.compute_loss_context_manager():
            loss = self._eval_loss(model, inputs)
        return loss.detach(), None, None

    # ---- logging ----
    def _flush(self, mode: str) -> dict[str, float]:
        """Mean of each metric over the micro-batches where it ran, summed across processes."""
        keys = sorted(self._metrics[mode])
        if not keys:
            return {}
        stats = torch.tensor(
            [[float(sum(self._metrics[mode][k])), len(self._metrics[mode][k])] for k in keys],
            dtype=torch.float64,
            device=self.args.device,
        )
        if self.args.world_size > 1:
            stats = self.accelerator.reduce(stats, reduction="sum")
        self._metrics[mode].clear()
        return {k: s / c for k, (s, c) in zip(keys, stats.tolist()) if c}

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._steps_since_log:
            combined = torch.as_tensor(self._objective_sum).to(self.args.device, torch.float64)
            if self.args.world_size > 1:
                combined = self.accelerator.reduce(combined, reduction="mean")
            logs["loss"] = combined.item() / self._steps_since_log
            self._objective_sum, self._steps_since_log = 0.0, 0
            logs.update(self._flush("train"))
            sums = self._grad_sums
            if "task" in sums and "align" in sums:
                logs["grad/cos_task_align"] = F.cosine_similarity(sums["task"], sums["align"], dim=0).item()
            sums.clear()
        super().log(logs, start_time)

    def evaluation_loop(self, *args, **kwargs):
        output = super().evaluation_loop(*args, **kwargs)
        prefix = kwargs.get("metric_key_prefix", args[4] if len(args) > 4 else "eval")
        output.metrics.update({f"{prefix}_{k}": v for k, v in self._flush("eval").items()})
        return output

    # ---- alignment statistics (--alignment_center fixed / standardize) ----
    def train(self, resume_from_checkpoint=None, *args, **kwargs):
        if needs_stats(self.args.alignment_center) and self.schedule.uses_align and self.alignment_stats is None:
            saved = os.path.join(resume_from_checkpoint, STATS_FILE) if isinstance(resume_from_checkpoint, str) else ""
            if saved and os.path.isfile(saved):
                self.alignment_stats = PooledStats.load(saved)  # measured at the start of the resumed run
                logger.info("alignment statistics loaded from %s", saved)
            else:
                self.alignment_stats = self.measure_alignment_stats()
            if self.args.should_save:
                os.makedirs(self.args.output_dir, exist_ok=True)
                self.alignment_stats.save(os.path.join(self.args.output_dir, STATS_FILE))
        return super().train(resume_from_checkpoint, *args, **kwargs)

    @torch.no_grad()
    def measure_alignment_stats(self, dataset=None) -> PooledStats:
        """Per-side mean/std of the pooled layer-k outputs of the first ``--alignment_stats_samples`` pairs of the
        training data, on the model as it is now (the start of training: a fresh LoRA adapter is the base model).
        Every process reads the same rows in the same order, so every rank gets the same statistics."""
        dataset = self.train_dataset if dataset is None else dataset
        limit, size = self.args.alignment_stats_samples, self.args.per_device_train_batch_size
        model = self.model
        was_training = model.training
        model.eval()
        p0s, p1s, batch = [], [], []

        def flush():
            inputs = self._prepare_inputs(self.data_collator(batch))
            p0, p1 = self._align_forward(model, inputs)
            p0s.append(p0.float().cpu())
            p1s.append(p1.float().cpu())
            batch.clear()

        rows = (dataset[i] for i in range(len(dataset))) if hasattr(dataset, "__getitem__") else iter(dataset)
        n = 0
        for row in rows:
            if "input_ids_parallel_0" not in row:
                raise ValueError("--alignment_center needs parallel pairs in the training data (or --alignment_file)")
            batch.append(row)
            n += 1
            if len(batch) == size:
                flush()
            if n >= limit:
                break
        if batch:
            flush()
        if was_training:
            model.train()
        stats = stats_from_pooled(torch.cat(p0s), torch.cat(p1s))
        logger.info(
            "alignment statistics (%s) over %d pairs at layer %d: |mean| %.1f / %.1f, median std %.3g / %.3g",
            self.args.alignment_center,
            stats.count,
            self._alignment_layer(),
            stats.mean[0].norm().item(),
            stats.mean[1].norm().item(),
            stats.std[0].median().item(),
            stats.std[1].median().item(),
        )
        return stats

    # ---- checkpoints ----
    def _save_checkpoint(self, model, trial):
        """transformers' save, then a completion marker written last (fsync'd): resume skips a checkpoint without
        it (a save torn by a kill), see ``AlignmentTrainingArguments.resolve_resume``."""
        super()._save_checkpoint(model, trial)
        if self.args.should_save:
            from .arguments import COMPLETE

            path = os.path.join(self._get_output_dir(trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
            tmp = os.path.join(path, COMPLETE + ".tmp")
            with open(tmp, "w") as fh:
                fh.write(f'{{"global_step": {self.state.global_step}}}\n')
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, os.path.join(path, COMPLETE))

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        # transformers reads every sub-directory holding adapter weights as one more adapter; our paper-layout copy
        # (<checkpoint>/adapter_model/) is the same adapter, so load the top-level one into the active adapter.
        model = model if model is not None else self.model
        top = os.path.join(resume_from_checkpoint, "adapter_model.safetensors")
        if hasattr(model, "peft_config") and hasattr(model, "load_adapter") and os.path.isfile(top):
            model.load_adapter(resume_from_checkpoint, model.active_adapters[0], is_trainable=True)
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)
