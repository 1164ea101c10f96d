"""The training entry point behind ``scripts/run_clm_lora.py`` and ``midalign train``."""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path

import transformers
from transformers import HfArgumentParser, set_seed

from ..alignment import num_decoder_layers
from ..data import AlignmentCollator, ContrastiveDataMode, build_dataset
from ..models import apply_lora, load_model, load_tokenizer
from .arguments import AlignmentTrainingArguments, DataArguments, ModelArguments, default_alignment_layer
from .trainer import AlignmentTrainer

__all__ = ["parse_args", "example_data_dir", "resolve_data_mode", "build_trainer", "run_training", "main"]

logger = logging.getLogger("midalign")


def example_data_dir() -> Path:
    """``data_example/`` of the working directory, else of the source checkout."""
    here = Path.cwd() / "data_example"
    return here if here.is_dir() else Path(__file__).resolve().parents[3] / "data_example"


def parse_args(argv: list[str] | None = None):
    """Parse flags; ``--config recipe.yaml`` supplies defaults that explicit flags override."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # allow_abbrev=False: a typo'd paper flag (--additional_loss_lay) is an error, never a silent prefix match
    parser = HfArgumentParser((ModelArguments, DataArguments, AlignmentTrainingArguments), allow_abbrev=False)
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise SystemExit("--config needs a YAML file")
        import yaml

        path = argv[i + 1]
        with open(path) as fh:
            defaults = yaml.safe_load(fh) or {}
        if not isinstance(defaults, dict):
            raise SystemExit(f"--config {path}: expected a mapping of flag names to values")
        # keys may be field names or any flag spelling, paper aliases included (additional_loss_layer, ...)
        names = {opt.lstrip("-"): a.dest for a in parser._actions for opt in a.option_strings}
        unknown = sorted(k for k in defaults if k not in names)
        if unknown:
            raise SystemExit(f"--config {path}: unknown keys {unknown}")
        defaults = {names[k]: v for k, v in defaults.items()}
        parser.set_defaults(**defaults)
        argv = argv[:i] + argv[i + 2 :]
        # HfArgumentParser marks fields without defaults as required; YAML may provide them.
        for action in parser._actions:
            if action.dest in defaults:
                action.required = False
    return parser.parse_args_into_dataclasses(args=argv)


def resolve_data_mode(data_args: DataArguments, training_args: AlignmentTrainingArguments) -> ContrastiveDataMode:
    schedule = training_args.schedule
    mode = data_args.contrastive_data_mode
    if mode is None:
        if not schedule.uses_task:
            mode = ContrastiveDataMode.PAIRS
        elif schedule.uses_align and not data_args.alignment_file:
            mode = ContrastiveDataMode.TASK_AND_PAIRS
        else:
            mode = ContrastiveDataMode.TASK
    mode = ContrastiveDataMode(mode)
    has_pairs = mode.has_pairs or bool(data_args.alignment_file)
    if schedule.uses_align and not has_pairs:
        raise ValueError(
            f"--alignment_schedule {schedule.name} needs parallel pairs: use --contrastive_data_mode 2 with rows "
            "carrying text_parallel_0/text_parallel_1, or give --alignment_file"
        )
    if schedule.uses_task and not mode.has_task:
        raise ValueError(
            f"--alignment_schedule {schedule.name} trains the task, but --contrastive_data_mode 1 rows "
            "carry only pairs; use mode 0 or 2"
        )
    return mode


def _default_files(data_args: DataArguments, mode: ContrastiveDataMode) -> None:
    if data_args.train_file is None:
        name = "train_baseline.json" if mode == ContrastiveDataMode.TASK else "train_baseline_with_alignment.json"
        data_args.train_file = str(example_data_dir() / name)
        logger.info("no --train_file: using %s", data_args.train_file)


def _warn_unseen_pair_languages(dataset, training_args: AlignmentTrainingArguments) -> None:
    """A warning naming the ``--alignment_file`` languages (its rows' optional ``lang``) that this run never draws:
    with few steps and a pair file in language blocks, some languages are never aligned."""
    if not hasattr(dataset, "pair_languages"):
        return
    if training_args.max_steps > 0:
        draws = (
            training_args.max_steps
            * training_args.per_device_train_batch_size
            * training_args.gradient_accumulation_steps
            * max(training_args.world_size, 1)
        )
    else:
        draws = int(math.ceil(training_args.num_train_epochs * len(dataset)))
    in_file, drawn = dataset.pair_languages(draws)
    unseen = [lang for lang in in_file if lang not in drawn]
    if unseen:
        logger.warning(
            "--alignment_file: pairs of %s are never drawn in this run (it reaches at most %d of the file's %d "
            "pairs: %s); shuffle them (--alignment_pair_order shuffle) or train longer",
            ", ".join(unseen),
            sum(drawn.values()),
            sum(in_file.values()),
            ", ".join(f"{k} {v}" for k, v in drawn.items()),
        )
    elif in_file:
        logger.info("--alignment_file pairs this run can draw, per language: %s", drawn)


def build_trainer(
    model, tokenizer, data_args: DataArguments, training_args: AlignmentTrainingArguments, mode=None
) -> AlignmentTrainer:
    """The datasets (training and, with ``--validation_file``, evaluation) and the :class:`AlignmentTrainer` for a
    ready model: the one way a training run is assembled (``run_training``, hence the CLI, the paper script, the demo
    and ``bench xsid|methods``; ``bench transfer`` with its in-memory model)."""
    mode = resolve_data_mode(data_args, training_args) if mode is None else mode
    n_layers = num_decoder_layers(model)
    if training_args.alignment_layer is None:
        training_args.alignment_layer = default_alignment_layer(n_layers)
    common = dict(alignment_file=None, streaming=data_args.streaming, seed=training_args.seed)
    train_dataset = eval_dataset = None
    if training_args.do_train:
        train_dataset = build_dataset(
            data_args.train_file,
            tokenizer,
            mode,
            data_args.block_size,
            **{**common, "alignment_file": data_args.alignment_file},
            shuffle_buffer=data_args.shuffle_buffer,
            pair_order=data_args.alignment_pair_order,
            max_samples=data_args.max_train_samples,
        )
        _warn_unseen_pair_languages(train_dataset, training_args)
    if data_args.validation_file:
        eval_dataset = build_dataset(
            data_args.validation_file,
            tokenizer,
            mode,
            data_args.block_size,
            **{**common, "alignment_file": data_args.validation_alignment_file or data_args.alignment_file},
            max_samples=data_args.max_eval_samples,
        )
    elif training_args.do_eval or training_args.eval_strategy != "no":
        raise ValueError("evaluation was requested (--do_eval or --eval_strategy) but no --validation_file was given")

    logger.info(
        "schedule=%s layer=%d/%d pooling=%s distance=%s temperature=%g data_mode=%d",
        training_args.alignment_schedule,
        training_args.alignment_layer,
        n_layers,
        training_args.alignment_pooling,
        training_args.alignment_distance,
        training_args.alignment_temperature,
        int(mode),
    )
    trainer = AlignmentTrainer(
        model=model,
        args=training_args,
        train_dataset=train_dataset,
        eval_dataset=eval_dataset,
        data_collator=AlignmentCollator(tokenizer.pad_token_id),
        processing_class=tokenizer,
        pad_token_id=tokenizer.pad_token_id,
    )
    return trainer


def run_training(model_args: ModelArguments, data_args: DataArguments, training_args: AlignmentTrainingArguments):
    """Train (and/or evaluate) as the arguments say. Returns the trainer. Configures no logging (the command-line
    entry point :func:`main` does)."""
    training_args.check_output_dir()
    resume = training_args.resolve_resume() if training_args.do_train else None
    set_seed(training_args.seed)

    mode = resolve_data_mode(data_args, training_args)
    _default_files(data_args, mode)
    tokenizer = load_tokenizer(
        model_args.model_name_or_path,
        revision=model_args.revision,
        trust_remote_code=model_args.trust_remote_code,
        cache_dir=model_args.cache_dir,
    )
    if tokenizer.pad_token_id is None:
        raise ValueError(
            f"the tokenizer of {model_args.model_name_or_path} has neither a pad nor an eos token: batches cannot be "
            "padded. Add one to its tokenizer_config.json (pad_token or eos_token) or pick another tokenizer."
        )
    torch_dtype = model_args.torch_dtype
    if training_args.bf16 and training_args.device.type == "cpu":
        from ..models.hardware import warn_if_slow_bf16

        warn_if_slow_bf16("bfloat16", "--bf16 True")
    frozen_base = model_args.use_lora or bool(model_args.load_lora_from)
    if training_args.bf16 and torch_dtype is None and frozen_base and not model_args.sparse_mask:
        # --bf16 True with a frozen base: the base weights are stored in bfloat16 so that the matmuls really run on
        # the bf16 units (autocast over float32 weights pays a cast per call and loses most of the gain on a CPU);
        # the LoRA weights, their gradients and the optimizer state stay float32 (peft keeps adapters in float32).
        torch_dtype = "bfloat16"
        logger.info("--bf16: base weights in bfloat16, LoRA weights and optimizer state in float32, autocast on")
    model = load_model(
        model_args.model_name_or_path,
        torch_dtype=torch_dtype,
        revision=model_args.revision,
        trust_remote_code=model_args.trust_remote_code,
        attn_implementation=model_args.attn_implementation,
        cache_dir=model_args.cache_dir,
    )
    if model_args.frozen_deltas:
        from ..compose import add_deltas

        model = add_deltas(model, model_args.frozen_deltas)
    n_layers = num_decoder_layers(model)
    if training_args.alignment_layer is None:
        training_args.alignment_layer = default_alignment_layer(n_layers)
    if not 1 <= training_args.alignment_layer <= n_layers:
        raise ValueError(
            f"--alignment_layer {training_args.alignment_layer}: this model has {n_layers} decoder "
            f"layers; choose 1..{n_layers}"
        )
    if model_args.sparse_mask:
        from ..compose.sparse import SparseDiff, restrict_training

        if model_args.use_lora or model_args.load_lora_from:
            raise ValueError("--sparse_mask trains the model's own weights: add --use_lora False")
        if training_args.weight_decay:
            raise ValueError(
                f"--sparse_mask with --weight_decay {training_args.weight_decay}: decoupled weight decay would move "
                "the entries outside the mask; use --weight_decay 0"
            )
        restrict_training(model, SparseDiff.load(model_args.sparse_mask))
    elif model_args.use_lora or model_args.load_lora_from:
        model = apply_lora(model, model_args.lora_config, model_args.load_lora_from)
        if training_args.gradient_checkpointing:
            model.enable_input_require_grads()
        model.print_trainable_parameters()
    if model_args.freeze_embeddings:
        if model_args.use_lora or model_args.load_lora_from:
            raise ValueError("--freeze_embeddings is for full or sparse fine-tuning: add --use_lora False")
        from ..compose import freeze_embeddings

        freeze_embeddings(model)

    trainer = build_trainer(model, tokenizer, data_args, training_args, mode)
    with _output_lock(training_args):
        _train_and_evaluate(trainer, training_args, resume)
    return trainer


def _output_lock(training_args):
    """An exclusive lock on ``--output_dir`` for the run (the main process takes it; the others rely on it)."""
    import contextlib
    import os

    from ..locking import exclusive

    main_process = int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0")) or 0) == 0
    if not training_args.do_train or not main_process:
        return contextlib.nullcontext()
    return exclusive(training_args.output_dir, directory=True, what="--output_dir")


def _train_and_evaluate(trainer, training_args, resume) -> None:
    if training_args.do_train:
        result = trainer.train(resume_from_checkpoint=resume)
        if trainer.skipped_alignment_batches:
            logger.warning(
                "%d alignment micro-batch(es) had fewer than 2 pairs (a short last batch) and were skipped",
                trainer.skipped_alignment_batches,
            )
        trainer.save_model()
        trainer.log_metrics("train", result.metrics)
        trainer.save_metrics("train", result.metrics)
        trainer.save_state()
    if training_args.do_eval and trainer.eval_dataset is not None:
        metrics = trainer.evaluate()
        trainer.log_metrics("eval", metrics)
        trainer.save_metrics("eval", metrics)


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    transformers.utils.logging.set_verbosity_warning()
    model_args, data_args, training_args = parse_args(argv)
    run_training(model_args, data_args, training_args)


if __name__ == "__main__":
    main()
