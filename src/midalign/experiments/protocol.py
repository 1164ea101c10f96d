"""One experiment protocol: a label task spec x arms x seeds x languages, trained through the Python API.

What varies between experiments is declared, not re-plumbed:

- an **arm** is a registered :class:`Arm` (what training runs: schedule, step multiple, centering, whether it uses
  pairs); adding one is a decorator-free table entry in :data:`ARMS`;
- a **unit** is one (arm, seed): :func:`train_unit` builds the argument dataclasses (``ModelArguments``,
  ``DataArguments``, ``AlignmentTrainingArguments``) and calls :func:`midalign.training.run.run_training` -- the
  same objects the README's Python API and ``midalign train`` use, so a typo'd setting fails at construction, not
  at run time;
- evaluation is the task spec's exact label scoring (:meth:`midalign.tasks.spec.LabelTask.predict`) on recorded
  subsets, per-item correctness keyed by item id (what the clustered bootstrap resamples), and held-out retrieval
  x -> pivot at the alignment layer, raw and centered.

Every unit writes ``result.json`` atomically when done (with its environment: dtype, CPU, versions, code commit, the
plan's hash and when it finished); a rerun skips finished units, so an interrupted grid resumes per unit.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..data.jsonl import write_json, write_jsonl
from ..vocabulary import flag
from .harness import validate_run

__all__ = [
    "Arm",
    "ARMS",
    "TrainSettings",
    "train_unit",
    "evaluate_labels",
    "retrieval",
    "seed_accuracy",
    "validate_unit_result",
]


@dataclass(frozen=True)
class Arm:
    """What one arm trains.

    Attributes:
        name: registry key.
        schedule: ``task_only``, ``alternate`` or ``align_only`` (:mod:`midalign.training.schedules`).
        step_factor: optimizer steps as a multiple of the settings' ``steps`` (``baseline_2x`` and the alignment arms
            take 2: as many optimizer steps as each other; the alignment arms then see as many task micro-batches as
            ``baseline``).
        centered: use the settings' remedy as ``--alignment_center`` (else the paper's loss, ``none``).
        evaluates_task: scored on the task (a control is scored by retrieval only).
    """

    name: str
    schedule: str
    step_factor: int
    centered: bool = False
    evaluates_task: bool = True

    @property
    def uses_pairs(self) -> bool:
        return self.schedule != "task_only"


ARMS: dict[str, Arm] = {
    a.name: a
    for a in (
        Arm("baseline", "task_only", 1),
        Arm("baseline_2x", "task_only", 2),
        Arm("alignment", "alternate", 2),
        Arm("alignment_center", "alternate", 2, centered=True),
        Arm("control_paper", "align_only", 1, evaluates_task=False),
        Arm("control_center", "align_only", 1, centered=True, evaluates_task=False),
    )
}


@dataclass(frozen=True)
class TrainSettings:
    """Hyper-parameters shared by every arm of an experiment (they go into its plan)."""

    steps: int = 44
    batch_size: int = 16
    gradient_accumulation: int = 1
    learning_rate: float = 1e-3
    warmup_ratio: float = 0.05
    layer: int | None = None
    pooling: str = "mean_skip_first"
    temperature: float = 0.1
    weight: float = 1.0
    remedy: str = "batch"
    lora_dropout: float = 0.1
    share_task_prefix: bool = False  # exact (same loss and gradients); takes effect with LoRA dropout 0
    # the schedule of the arms that align beside the task (ARMS' "alternate" arms): "alternate" is the paper's (one
    # dataloader; on alignment micro-batches the rows' task examples go unused, so the task rows an alignment arm
    # trains on differ from the baseline's); "joint" adds the alignment loss to every task micro-batch, so with the
    # same seed an alignment arm trains on exactly the task batches of baseline_2x
    alignment_schedule: str = "alternate"
    paper_weight: float = 1.0  # the paper's arm (`alignment`) keeps its own weight whatever the remedy's is

    def __post_init__(self):
        for name in ("steps", "batch_size", "gradient_accumulation"):
            if getattr(self, name) < 1:
                raise ValueError(f"{flag(name)} must be >= 1, got {getattr(self, name)}")
        if self.layer is not None and self.layer < 1:
            raise ValueError(f"--alignment-layer must be >= 1 (a decoder layer, 1-based), got {self.layer}")
        for name in ("learning_rate", "temperature", "weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{flag(name)} must be a positive number, got {value}")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"--lora-dropout must be in [0, 1), got {self.lora_dropout}")
        if self.alignment_schedule not in ("alternate", "joint"):
            raise ValueError(f"--alignment-schedule {self.alignment_schedule!r}: choose alternate or joint")


def train_unit(
    arm: Arm,
    seed: int,
    settings: TrainSettings,
    model_path: str,
    files: Mapping[str, str],
    out_dir: str,
    dtype: str,
) -> tuple[float, list[dict]]:
    """Train one (arm, seed) into ``out_dir`` through the Python API; returns (seconds, the objectives' log
    entries). A training that finished earlier with the same arguments is reused (a unit killed during its
    evaluation resumes there)."""
    from ..training.arguments import AlignmentTrainingArguments, DataArguments, ModelArguments
    from ..training.run import run_training

    steps = settings.steps * arm.step_factor
    schedule = settings.alignment_schedule if arm.schedule == "alternate" else arm.schedule
    weight = settings.weight if arm.centered or not arm.uses_pairs else settings.paper_weight
    from ..models.loading import DEFAULT_LORA_CONFIG

    lora_file = os.path.join(out_dir, "lora_config.json")
    write_json(lora_file, {**DEFAULT_LORA_CONFIG, "lora_dropout": settings.lora_dropout})
    model_args = dict(model_name_or_path=model_path, torch_dtype=None if dtype == "bfloat16" else dtype,
                      lora_config=lora_file)  # fmt: skip
    data_args = dict(train_file=files["pairs" if arm.schedule == "align_only" else "train"],
                     alignment_file=files["pairs"] if schedule in ("alternate", "joint") else None,
                     contrastive_data_mode=1 if arm.schedule == "align_only" else None)  # fmt: skip
    train_args = dict(output_dir=out_dir, overwrite_output_dir=True, max_steps=steps,
                      per_device_train_batch_size=settings.batch_size,
                      gradient_accumulation_steps=settings.gradient_accumulation,
                      learning_rate=settings.learning_rate, lr_scheduler_type="cosine",
                      warmup_ratio=settings.warmup_ratio, weight_decay=0.0, logging_steps=max(steps // 8, 1),
                      save_strategy="no", report_to="none", disable_tqdm=True, seed=seed,
                      alignment_schedule=schedule, alignment_pooling=settings.pooling,
                      alignment_temperature=settings.temperature, alignment_weight=weight,
                      alignment_center=settings.remedy if arm.centered else "none", alignment_layer=settings.layer,
                      share_task_prefix=settings.share_task_prefix, bf16=dtype == "bfloat16")  # fmt: skip
    record = {"model": model_args, "data": data_args, "training": train_args}
    record_path = os.path.join(out_dir, "midalign_unit_args.json")
    finished = os.path.join(out_dir, "train_results.json")
    if os.path.isfile(finished) and os.path.isfile(record_path):
        with open(record_path, encoding="utf-8") as fh:
            if json.load(fh) == json.loads(json.dumps(record)):
                with open(os.path.join(out_dir, "trainer_state.json"), encoding="utf-8") as fs:
                    history = json.load(fs)["log_history"]
                with open(finished, encoding="utf-8") as fr:
                    return json.load(fr)["train_runtime"], _objective_logs(history)
    t0 = time.time()
    trainer = run_training(ModelArguments(**model_args), DataArguments(**data_args),
                           AlignmentTrainingArguments(**train_args))  # fmt: skip
    write_json(record_path, record)
    return time.time() - t0, _objective_logs(trainer.state.log_history)


def _objective_logs(history: Sequence[dict]) -> list[dict]:
    return [h for h in history if "loss/task" in h or "loss/align" in h]


def write_training_files(task, tokenizer, data_dir: str, work_dir: str, aligned: Sequence[str], tag: str) -> dict:
    """The pivot language's training rows and pivot <-> ``aligned`` pairs (train split), written once per work
    dir; returns ``{"train", "pairs"}`` paths plus the ids and texts a leakage check needs."""
    items = task.load(task.pivot, "train", data_dir)
    rows = task.task_rows(tokenizer, items)
    train_file = os.path.join(work_dir, "data", f"train_{task.pivot}.jsonl")
    os.makedirs(os.path.dirname(train_file), exist_ok=True)
    write_jsonl(train_file, [{"prefix": r["prefix"], "text": r["text"]} for r in rows])
    pairs = task.pairs(list(aligned), "train", data_dir, seed=0)
    pair_file = os.path.join(work_dir, "data", f"pairs_train_{tag}.jsonl")
    write_jsonl(pair_file, [{k: p[k] for k in ("text_parallel_0", "text_parallel_1", "lang")} for p in pairs])
    return {
        "train": train_file,
        "pairs": pair_file,
        "train_ids": [it.id for it in items],
        "train_texts": [it.text for it in items],
        "pair_ids": sorted({p["id"] for p in pairs}),
        "pair_texts": [t for p in pairs for t in (p["text_parallel_0"], p["text_parallel_1"])],
    }


def evaluate_labels(model, tokenizer, task, data_dir: str, split: str, langs: Sequence[str], ids: Sequence[str],
                    out_dir: str, provenance: dict, batch_size: int = 16, method: str = "exact") -> dict:  # fmt: skip
    """Per language: ``{"correct": {item id: 0/1}, "accuracy", "macro_f1"}`` on the items ``ids`` of ``split``."""
    labels = task.labels(data_dir)
    wanted = set(ids)
    out = {}
    for lang in langs:
        items = [it for it in task.load(lang, split, data_dir) if it.id in wanted]
        if len(items) != len(wanted):
            raise ValueError(f"{task.name} {lang} {split}: {len(wanted) - len(items)} of the planned item ids missing")
        preds = task.predict(model, tokenizer, items, labels, os.path.join(out_dir, f"pred_{split}_{lang}.jsonl"),
                             batch_size=batch_size, provenance=provenance, method=method)  # fmt: skip
        scores = task.score([it.label for it in items], preds, labels)
        out[lang] = {"correct": {it.id: int(it.label == p) for it, p in zip(items, preds)},
                     "accuracy": scores["accuracy"], "macro_f1": scores["macro_f1"]}  # fmt: skip
    return out


def retrieval(model, tokenizer, task, data_dir: str, split: str, langs: Sequence[str], ids: Sequence[str],
              layer: int, pooling: str, batch_size: int = 16, cache: dict | None = None) -> dict:  # fmt: skip
    """acc@1 x -> pivot among the items ``ids`` of ``split`` at ``layer``: raw cosine, and with each side centered
    on its own mean (blind to a direction every sentence shares). ``cache``: a dict kept by the caller across calls
    with the same model, holding the pivot's embeddings (computed once)."""
    from ..analysis import retrieval_accuracy_at_1, sentence_embeddings

    wanted = list(ids)

    def embed(lang):
        by_id = {it.id: it.text for it in task.load(lang, split, data_dir)}
        missing = [i for i in wanted if i not in by_id]
        if missing:
            raise ValueError(f"{task.name} {lang} {split}: no items {missing[:5]} (retrieval needs parallel items)")
        texts = [by_id[i] for i in wanted]
        return sentence_embeddings(model, tokenizer, texts, [layer], pooling=pooling, batch_size=batch_size)[layer]

    key = (split, tuple(wanted), layer, pooling)
    cache = {} if cache is None else cache
    if key not in cache:
        cache[key] = embed(task.pivot)
    pivot = cache[key]
    out = {}
    for lang in langs:
        x = embed(lang)
        out[lang] = {"raw": retrieval_accuracy_at_1(x, pivot),
                     "centered": retrieval_accuracy_at_1(x - x.mean(0), pivot - pivot.mean(0))}  # fmt: skip
    return out


def seed_accuracy(result: Mapping, langs: Sequence[str]) -> float:
    """One unit's accuracy averaged over ``langs`` (each language's own accuracy, so every language weighs the
    same): the per-seed value a seed-level t-interval is taken over."""
    return statistics.fmean(result["eval"][x]["accuracy"] for x in langs)


def validate_unit_result(result: Mapping, where: str, arms: Mapping[str, Arm] = ARMS) -> None:
    """Refuse a finished unit's record that is not one (unknown arm, non-integer seed, missing fields, a
    non-finite number), naming ``where`` (file and unit): a reused or resumed result is checked before it counts
    (:func:`midalign.experiments.harness.validate_run`, keyed on ``arm``)."""

    def needed(arm: str) -> tuple[str, ...]:
        return ("env", "finished", "retrieval", "plan_sha") + (("eval",) if arms[arm].evaluates_task else ())

    validate_run(dict(result) if isinstance(result, Mapping) else result, where, list(arms), needed, key="arm")
