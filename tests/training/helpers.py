"""Shared builders for trainer tests: a tiny LoRA Llama and a trainer that records what it did."""

from __future__ import annotations

import copy

import torch
from transformers import TrainerCallback

from midalign.data import AlignmentCollator, ContrastiveDataMode, build_dataset
from midalign.models import DEFAULT_LORA_CONFIG, apply_lora, tiny_model
from midalign.training import AlignmentTrainer, AlignmentTrainingArguments
from midalign.training.trainer import PLAN_KEY

LAYER = 2


class RecordingTrainer(AlignmentTrainer):
    """Stashes every micro-batch with its planned objectives and optimizer step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.record: list[tuple[int, object, dict]] = []

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batches, n = super().get_batch_samples(epoch_iterator, num_batches, device)
        self.record += [
            (self.state.global_step, b[PLAN_KEY].objectives, {k: v for k, v in b.items() if k != PLAN_KEY})
            for b in batches
        ]
        return batches, n


class GradCapture(TrainerCallback):
    def __init__(self):
        self.grads: list[dict[str, torch.Tensor]] = []

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads.append(
            {
                n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p))
                for n, p in model.named_parameters()
                if p.requires_grad
            }
        )


def lora_model(tokenizer, seed=0):
    model = tiny_model("llama", vocab_size=len(tokenizer), seed=seed)
    torch.manual_seed(seed)
    model = apply_lora(model, {**DEFAULT_LORA_CONFIG, "lora_dropout": 0.0, "init_lora_weights": False})
    return model


def make_trainer(
    tmp_path, tokenizer, data_file, schedule, *, ga=4, bs=2, lr=0.0, max_steps=1, mode=2, model=None, **kwargs
):
    args = AlignmentTrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=bs,
        gradient_accumulation_steps=ga,
        learning_rate=lr,
        max_steps=max_steps,
        alignment_schedule=schedule,
        alignment_layer=LAYER,
        max_grad_norm=0.0,
        report_to="none",
        disable_tqdm=True,
        seed=0,
        lr_scheduler_type="constant",
        use_cpu=True,
        **kwargs,
    )
    ds = build_dataset(data_file, tokenizer, ContrastiveDataMode(mode), 64)
    model = model if model is not None else lora_model(tokenizer)
    initial = copy.deepcopy(model)
    capture = GradCapture()
    trainer = RecordingTrainer(
        model=model,
        args=args,
        train_dataset=ds,
        data_collator=AlignmentCollator(tokenizer.pad_token_id),
        pad_token_id=tokenizer.pad_token_id,
        callbacks=[capture],
    )
    return trainer, initial, capture


def run_argv(model_dir, train_file, out, *extra) -> list[str]:
    """`midalign train` flags of a small end-to-end run on ``train_file`` (alignment layer 2, seed 0)."""
    return [
        "--model_name_or_path", model_dir, "--train_file", train_file, "--output_dir", str(out),
        "--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--logging_steps", "1",
        "--report_to", "none", "--disable_tqdm", "True", "--seed", "0", "--alignment_layer", "2", *extra,
    ]  # fmt: skip


def paper_run_argv(model_dir, data_files, out, *extra) -> list[str]:
    """:func:`run_argv` on the task+pairs file with the paper's alternate flags."""
    return run_argv(model_dir, data_files["both"], out, "--alternate_training", "--contrastive_data_mode", "2", *extra)


def adapter_weights(path) -> dict:
    """The tensors of ``<path>/adapter_model.safetensors``."""
    import os

    from safetensors.torch import load_file

    return load_file(os.path.join(path, "adapter_model.safetensors"))
