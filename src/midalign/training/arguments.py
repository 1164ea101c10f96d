"""Argument dataclasses. Paper flag names are accepted as aliases (see README: "Paper flags")."""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from ..alignment import CENTERING, DIRECTIONS, DISTANCES, POOLING
from ..alignment.centering import check_finite_number
from ..data.datasets import PAIR_ORDERS
from .checkpoints import check_output_dir, resolve_resume
from .lm_loss import CHUNK_LOGITS
from .schedules import SCHEDULES, get_schedule

__all__ = ["ModelArguments", "DataArguments", "AlignmentTrainingArguments", "default_alignment_layer"]


def _has_accelerator() -> bool:
    import torch

    return (
        torch.cuda.is_available()
        or (hasattr(torch, "xpu") and torch.xpu.is_available())
        or (torch.backends.mps.is_available())
    )


def default_alignment_layer(num_layers: int) -> int:
    """The middle layer ``L // 2`` (16 of Llama-3-8B's 32: the paper's choice; 9 of Gemma 3 270M's 18)."""
    return max(1, num_layers // 2)


@dataclass
class ModelArguments:
    # ---- model ----
    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Hub id or local directory of a decoder-only causal LM. Default: the embedded SmolLM2-135M-"
            "Instruct checkpoint (prepared on first use by `midalign prepare-model`)."
        },
    )
    revision: str = field(default="main", metadata={"help": "Hub revision (branch, tag or commit) to load."})
    torch_dtype: str | None = field(
        default=None,
        metadata={"help": "Weights dtype.", "choices": ["auto", "float32", "bfloat16", "float16"]},
    )
    attn_implementation: str | None = field(
        default=None, metadata={"help": "Attention kernel: sdpa, eager, or flash_attention_2 (needs the flash extra)."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow model code from the hub (off by default)."})
    cache_dir: str | None = field(default=None, metadata={"help": "Where hub downloads are cached."})
    # ---- LoRA ----
    use_lora: bool = field(default=True, metadata={"help": "Train LoRA adapters (peft); False = full fine-tuning."})
    lora_config: str | None = field(
        default=None,
        metadata={
            "help": "JSON file with peft LoraConfig fields. Default: r=8, alpha=16, dropout 0.1 on "
            "q,k,v,o,gate,up,down projections (the paper's config/lora_config.json)."
        },
    )
    load_lora_from: str | None = field(
        default=None, metadata={"help": "Continue training an existing LoRA adapter (directory or hub id)."}
    )
    sparse_mask: str | None = field(
        default=None,
        metadata={
            "help": "Sparse fine-tuning (LT-SFT phase 2): train only the entries of this sparse difference "
            "(`midalign sparse diff` output); needs --use_lora False and --weight_decay 0."
        },
    )
    frozen_deltas: list[str] | None = field(
        default=None,
        metadata={
            "help": "Differences added to the base weights before training and kept frozen, in order: LoRA adapter "
            "directories (merged) or sparse differences (`midalign sparse diff` files). E.g. MAD-X's / LT-SFT's "
            "source-language component under a task being trained."
        },
    )
    freeze_embeddings: bool = field(
        default=False,
        metadata={
            "help": "Full or sparse fine-tuning (--use_lora False): keep the input embeddings and the LM head "
            "frozen (with a 262k vocabulary they are most of a small model's weights)."
        },
    )


@dataclass
class DataArguments:
    train_file: str | None = field(
        default=None, metadata={"help": "JSON-lines training file(s), comma-separated. Default: data_example."}
    )
    validation_file: str | None = field(default=None, metadata={"help": "JSON-lines validation file(s)."})
    alignment_file: str | None = field(
        default=None,
        metadata={
            "help": "JSON-lines file(s) of parallel pairs {text_parallel_0, text_parallel_1}, cycled "
            "independently of the task rows, so task rows need not carry pairs."
        },
    )
    alignment_pair_order: str = field(
        default="shuffle",
        metadata={
            "choices": list(PAIR_ORDERS),
            "help": "Order in which --alignment_file pairs are drawn: shuffle (once, with --seed; mixes languages of a "
            "file written in language blocks) or file order. Streaming reads the file in order.",
        },
    )
    validation_alignment_file: str | None = field(
        default=None, metadata={"help": "Pairs for evaluation when the validation rows carry none."}
    )
    contrastive_data_mode: int | None = field(
        default=None,
        metadata={
            "help": "What each row carries: 0 task {prefix,text}; 1 pairs {text_parallel_0,text_parallel_1}; "
            "2 both. Default: inferred from the schedule (2 if it needs pairs and no --alignment_file).",
            "choices": [0, 1, 2],
        },
    )
    block_size: int | None = field(
        default=2048,
        metadata={
            "help": "Longest sequence in tokens (0: no limit). A task example whose prompt + target exceeds it is "
            "an error naming its file:line (never trained on with a cut target); parallel sentences are cut."
        },
    )
    streaming: bool = field(
        default=False, metadata={"help": "Read the data files lazily on every pass instead of loading them."}
    )
    shuffle_buffer: int = field(default=1000, metadata={"help": "With --streaming: size of the shuffle buffer."})
    max_train_samples: int | None = field(default=None, metadata={"help": "Use only the first N training rows."})
    max_eval_samples: int | None = field(default=None, metadata={"help": "Use only the first N validation rows."})
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Accepted for paper compatibility; tokenization is lazy, per batch."}
    )
    overwrite_cache: bool = field(default=False, metadata={"help": "Accepted for paper compatibility (no cache)."})

    def __post_init__(self):
        if self.block_size is not None and self.block_size < 0:
            raise ValueError(f"--block_size {self.block_size}: give a positive number of tokens, or 0 for no limit")


@dataclass
class AlignmentTrainingArguments(TrainingArguments):
    """``TrainingArguments`` plus the alignment objective. Paper flags are aliases or mapped in ``__post_init__``."""

    # ---- schedule ----
    alignment_schedule: str | None = field(
        default=None,
        metadata={
            "help": "Which objective runs on which micro-batch: "
            + "; ".join(f"{s.name}: {s.help}" for s in SCHEDULES.values())
            + ". Default: alternate.",
            "choices": sorted(SCHEDULES),
        },
    )
    alternate_training: bool = field(default=False, metadata={"help": "Paper flag = --alignment_schedule alternate."})
    only_train_language_modeling: bool = field(
        default=False, metadata={"help": "Paper flag = --alignment_schedule task_only (the baseline)."}
    )
    only_train_contrastive: bool = field(
        default=False, metadata={"help": "Paper flag = --alignment_schedule align_only."}
    )
    # ---- alignment loss ----
    alignment_layer: int | None = field(
        default=None,
        metadata={
            "aliases": ["--additional_loss_layer"],
            "help": "Decoder layer k (1-based) whose output is aligned. Default: 16 for 32-layer models, "
            "else the middle layer.",
        },
    )
    alignment_temperature: float = field(
        default=0.1, metadata={"aliases": ["--contrastive_loss_temperature"], "help": "Softmax temperature τ > 0."}
    )
    alignment_distance: str = field(
        default="cosine",
        metadata={
            "aliases": ["--distance_function"],
            "choices": sorted(DISTANCES),
            "help": "Similarity: cosine, or l2 (negative squared euclidean distance).",
        },
    )
    alignment_weight: float = field(
        default=1.0, metadata={"aliases": ["--contrastive_loss_weight"], "help": "Weight of the alignment loss."}
    )
    alignment_direction: str = field(
        default="paper",
        metadata={
            "choices": list(DIRECTIONS),
            "help": "paper: each text_parallel_0 picks its partner among the text_parallel_1 (softmax over "
            "dim 0); symmetric: mean of both directions.",
        },
    )
    alignment_detach_target: bool = field(
        default=False,
        metadata={
            "aliases": ["--unidirectional_contrastive_loss"],
            "help": "Stop the gradient through the text_parallel_1 side.",
        },
    )
    alignment_pooling: str = field(
        default="mean",
        metadata={
            "aliases": ["--contrastive_pooling_type"],
            "choices": sorted(POOLING),
            "help": "mean over real tokens (the paper's, so paper flags reproduce the paper), mean_skip_first "
            "(without the first real token: an attention sink in SmolLM2 and Gemma 3; the default of our shell "
            "script, recipes, demo and benchmarks, measured better: README Pooling), or bos (first real token).",
        },
    )
    alignment_center: str = field(
        default="none",
        metadata={
            "choices": list(CENTERING),
            "help": "Re-centre the pooled representations before the similarity: none (the paper), batch (subtract "
            "each side's micro-batch mean), fixed (subtract each side's mean measured on the starting model over "
            "the alignment data), standardize (fixed mean and per-dimension std). See docs: Remedies.",
        },
    )
    alignment_diagnostics: bool = field(
        default=False,
        metadata={
            "help": "Also log grad/cos_task_align (cosine between the summed task and alignment gradients on the "
            "trainable weights over each logging window) and align/acc_base (in-batch retrieval accuracy of the model "
            "without its adapter on the same alignment batches: the reference for align/acc). Costs one no-grad "
            "alignment forward per alignment micro-batch; not under DeepSpeed."
        },
    )
    alignment_stats_samples: int = field(
        default=1024,
        metadata={"help": "With --alignment_center fixed/standardize: pairs used to measure the statistics."},
    )
    # ---- task loss ----
    lm_head_chunk: int = field(
        default=CHUNK_LOGITS,
        metadata={
            "help": "The task loss applies the LM head only at target tokens; when targets x vocabulary exceed "
            "this many logits it runs the head and cross-entropy in chunks of that size, recomputed in the backward "
            "pass, so memory stays flat (same loss and gradients). 0: one piece."
        },
    )
    share_task_prefix: bool = field(
        default=False,
        metadata={
            "help": "Run the tokens every row of a task micro-batch shares (the rendered system prompt) once, as a "
            "batch of one, and the rest of the batch after their key/value states: the same loss and gradients, "
            "less compute. Skipped while a dropout module is active (LoRA dropout > 0) and below 8 shared tokens."
        },
    )
    # ---- run control ----
    patience: int | None = field(
        default=None,
        metadata={"help": "Early stopping after N evaluations without improvement of --metric_for_best_model."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Allow training into an --output_dir that already holds checkpoints (otherwise an error, "
            "so that no earlier run is overwritten by accident; use --resume_from_checkpoint to continue)."
        },
    )
    warmup_ratio: float | None = field(
        default=None,
        metadata={"help": "Paper flag (removed from transformers 5): share of steps for warmup; sets --warmup_steps."},
    )
    ddp_find_unused_parameters: bool | None = field(
        default=False,
        metadata={
            "help": "DDP's unused-parameter search. Off by default: alignment micro-batches keep every "
            "trainable parameter in the graph (with a zero gradient), so the search is never needed."
        },
    )
    do_train: bool = field(
        default=True,
        metadata={
            "help": "Train (default; transformers' default is False). Evaluation only: --do_train False --do_eval."
        },
    )
    remove_unused_columns: bool = field(default=False, metadata={"help": "Must stay False: the collator needs all."})

    def __post_init__(self):
        if self.warmup_ratio is not None:
            if not 0 <= self.warmup_ratio < 1:
                raise ValueError(f"--warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
            if self.warmup_steps:
                raise ValueError("give --warmup_ratio or --warmup_steps, not both")
            self.warmup_steps = self.warmup_ratio  # transformers 5 reads a float < 1 as a ratio
        if not self.use_cpu and not _has_accelerator():
            # No accelerator: run on the CPU, which also makes torchrun use DDP over gloo and lets the paper's
            # `--bf16 True` mean CPU autocast instead of an error.
            self.use_cpu = True
        if self.use_cpu and self.fp16:
            raise ValueError(
                "--fp16 True on the CPU: transformers would train in float32 without a word (CPU autocast has no "
                "float16 path worth having). Use --bf16 True (bf16 matrix units; base weights in bfloat16 with LoRA), "
                "or drop --fp16."
            )
        if self.metric_for_best_model and self.greater_is_better is None:
            # transformers infers "greater is better" unless the name *ends* with "loss"; eval_loss/task is a loss.
            self.greater_is_better = "loss" not in self.metric_for_best_model
        super().__post_init__()
        paper = [
            name
            for name, on in [
                ("alternate", self.alternate_training),
                ("task_only", self.only_train_language_modeling),
                ("align_only", self.only_train_contrastive),
            ]
            if on
        ]
        if len(paper) > 1:
            raise ValueError(f"conflicting paper flags: they select schedules {paper}; give one")
        if paper and self.alignment_schedule not in (None, paper[0]):
            raise ValueError(
                f"--alignment_schedule {self.alignment_schedule} conflicts with the paper flag selecting {paper[0]}"
            )
        self.alignment_schedule = paper[0] if paper else (self.alignment_schedule or "alternate")
        get_schedule(self.alignment_schedule)
        for name in ("alignment_temperature", "alignment_weight", "learning_rate"):
            check_finite_number(name, float(getattr(self, name)))
        if self.alignment_stats_samples < 2:
            raise ValueError(f"--alignment_stats_samples must be >= 2, got {self.alignment_stats_samples}")
        if self.alignment_temperature <= 0:
            raise ValueError(f"--alignment_temperature must be > 0, got {self.alignment_temperature}")
        if self.lm_head_chunk < 0:
            raise ValueError(f"--lm_head_chunk must be >= 0 (0: no chunking), got {self.lm_head_chunk}")
        if self.alignment_layer is not None and self.alignment_layer < 1:
            raise ValueError(f"--alignment_layer is 1-based and must be >= 1, got {self.alignment_layer}")
        if self.patience is not None:
            if self.patience < 1:
                raise ValueError(f"--patience must be >= 1, got {self.patience}")
            if not (self.load_best_model_at_end and self.metric_for_best_model):
                raise ValueError(
                    "--patience needs --load_best_model_at_end True and --metric_for_best_model "
                    "(e.g. eval_loss, eval_loss/task or eval_align/acc) with an --eval_strategy"
                )

    @property
    def schedule(self):
        return get_schedule(self.alignment_schedule)

    def resolve_resume(self) -> str | None:
        """The checkpoint ``--resume_from_checkpoint`` names (:func:`midalign.training.checkpoints.resolve_resume`)."""
        return resolve_resume(self.resume_from_checkpoint, self.output_dir)

    def check_output_dir(self) -> None:
        """Refuse to train over an earlier run's checkpoints unless asked to
        (:func:`midalign.training.checkpoints.check_output_dir`)."""
        check_output_dir(self.output_dir, do_train=self.do_train, overwrite=self.overwrite_output_dir,
                         resume=self.resume_from_checkpoint)  # fmt: skip
