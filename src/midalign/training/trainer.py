"""``AlignmentTrainer``: a ``transformers.Trainer`` that mixes the task loss with the middle-layer alignment loss
according to a named schedule, logs each objective under its own name, and saves adapters at the paper's paths."""

from __future__ import annotations

import logging
import math
import os
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn
from transformers import EarlyStoppingCallback, Trainer

from ..alignment import alignment_loss, call_through, find_decoder, layer_output, pool, retrieval_accuracy
from ..alignment.centering import STATS_FILE, PooledStats, center, needs_stats, stats_from_pooled
from ..data import IGNORE_INDEX
from .arguments import AlignmentTrainingArguments, default_alignment_layer
from .callbacks import (
    PLAN_KEY,
    MicroBatchPlan,
    PaperAdapterLayout,
    ScheduleClock,
    _EpochSetter,
    _FiniteGradients,
    _StatsWriter,
)
from .checkpoints import CompletionMarker
from .hf_contract import bound_argument
from .lm_loss import (
    CHUNK_LOGITS,
    _accepts_logits_to_keep,  # noqa: F401  (importable from here, as before the split)
    causal_lm_loss,
    supervised_positions,
    task_loss,
)

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


def _as_rows_dataset(data, tokenizer, name: str, schedule=None):
    """A list of row dicts or a ``datasets.Dataset`` of raw rows -> a tokenizing dataset; anything already
    tokenized (rows with ``input_ids``) or ``None`` is returned as is. ``schedule`` (the run's :class:`Schedule`):
    every row (not the first only) must carry the fields it trains on -- the task's if it uses the task, the pair's
    if it uses the alignment loss -- or a ValueError names the row and the schedule its fields would fit."""
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
    from .schedules import SCHEDULES

    if schedule is not None:
        task, pairs = schedule.uses_task, schedule.uses_align
    else:
        task, pairs = all(k in first for k in TASK_FIELDS), all(k in first for k in PAIR_FIELDS)
    if not (task or pairs):
        raise ValueError(f"{name}: rows need {list(TASK_FIELDS)} and/or {list(PAIR_FIELDS)}; got {sorted(first)}")
    fields = (TASK_FIELDS if task else ()) + (PAIR_FIELDS if pairs else ())
    rows = []
    for i, r in enumerate(data):
        missing = [k for k in fields if not isinstance(r, dict) or k not in r]
        if missing and schedule is not None and isinstance(r, dict):
            has_task, has_pairs = all(k in r for k in TASK_FIELDS), all(k in r for k in PAIR_FIELDS)
            fits = [s for s, sch in SCHEDULES.items() if has_task >= sch.uses_task and has_pairs >= sch.uses_align]
            uses = " and ".join(w for w, u in (("the task", task), ("the alignment loss", pairs)) if u)
            raise ValueError(
                f"{name}[{i}]: missing {missing}; alignment_schedule={schedule.name!r} trains {uses}, so every row "
                f"needs {list(fields)}"
                + (f" (rows like this one fit alignment_schedule={' or '.join(map(repr, fits))})" if fits else "")
            )
        rows.append(_validate(dict(r) if isinstance(r, dict) else r, fields, f"{name}[{i}]"))
    return AlignmentDataset(rows, Featurizer(tokenizer, None, task=task, pairs=pairs))


def _one_pair_repeated(inputs) -> bool:
    """Every row of the batch is the same pair (the same token ids on both sides, padding ignored)."""
    for side in ("0", "1"):
        ids, mask = inputs[f"input_ids_parallel_{side}"], inputs[f"attention_mask_parallel_{side}"]
        ids = ids.masked_fill(mask == 0, 0)
        if not (torch.equal(mask, mask[:1].expand_as(mask)) and torch.equal(ids, ids[:1].expand_as(ids))):
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
        if args is None:
            args = AlignmentTrainingArguments(output_dir="midalign_output")
        if args.alignment_layer is None and model is not None:
            from ..alignment import num_decoder_layers

            args.alignment_layer = default_alignment_layer(num_decoder_layers(model))
        tok = processing_class
        if pad_token_id is None and tok is not None:
            pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        schedule = getattr(args, "schedule", None)  # every row checked against it, before any step
        train_dataset = _as_rows_dataset(train_dataset, tok, "train_dataset", schedule)
        eval_dataset = _as_rows_dataset(eval_dataset, tok, "eval_dataset", schedule)
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
        self.add_callback(CompletionMarker())  # last: the marker says every on_save writer before it has finished
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
            share_prefix=self.args.share_task_prefix,
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
        elif value >= 0.98 * chance and a.alignment_center != "none":
            logger.warning(
                "alignment loss at the first batch is %.3f with --alignment_center %s, chance ln %d = %.3f: even "
                "re-centred, the loss starts at or above chance. Run `midalign analyze anisotropy` on your pairs "
                "(another layer, pooling or --alignment_center may see them; a larger batch steadies 'batch').",
                value, a.alignment_center, p0.shape[0], chance,
            )  # fmt: skip
        elif value >= 0.98 * chance:
            with torch.no_grad():
                cen = alignment_loss(center(p0, "batch"), center(p1, "batch"), temperature=a.alignment_temperature,
                                     distance=a.alignment_distance, direction=a.alignment_direction).item()  # fmt: skip
            logger.warning(
                "alignment loss at the first batch is %.3f, chance ln %d = %.3f: the loss starts at chance, so the "
                "objective cannot tell the pairs apart at initialization (centered on the batch it would be %.3f). Run "
                "`midalign analyze "
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
        prefix = bound_argument(Trainer.evaluation_loop, args, kwargs, "metric_key_prefix", "eval")
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
    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        # transformers reads every sub-directory holding adapter weights as one more adapter; our paper-layout copy
        # (<checkpoint>/adapter_model/) is the same adapter, so load the top-level one into the active adapter.
        model = model if model is not None else self.model
        top = os.path.join(resume_from_checkpoint, "adapter_model.safetensors")
        if hasattr(model, "peft_config") and hasattr(model, "load_adapter") and os.path.isfile(top):
            model.load_adapter(resume_from_checkpoint, model.active_adapters[0], is_trainable=True)
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)
