"""Launched by tests/training/test_distributed.py under torchrun (2 CPU processes, gloo).

For every schedule: train a tiny LoRA Llama a few steps, then write this rank's trainable weights and logs."""

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file
from transformers import AutoTokenizer

from midalign.data import AlignmentCollator, ContrastiveDataMode, build_dataset
from midalign.models import DEFAULT_LORA_CONFIG, apply_lora, tiny_model
from midalign.training import SCHEDULES, AlignmentTrainer, AlignmentTrainingArguments


def main(data_file: str, out: str, extra: list[str]) -> None:
    tokenizer = AutoTokenizer.from_pretrained(Path(__file__).parents[1] / "assets" / "tokenizer")
    deepspeed = extra[0] if extra else None
    for schedule in sorted(SCHEDULES):
        args = AlignmentTrainingArguments(
            output_dir=f"{out}/{schedule}",
            per_device_train_batch_size=2,
            gradient_accumulation_steps=3,
            learning_rate=1e-2,
            max_steps=3,
            alignment_schedule=schedule,
            alignment_layer=2,
            report_to="none",
            disable_tqdm=True,
            seed=0,
            logging_steps=1,
            save_strategy="no",
            deepspeed=deepspeed,
            # Unused-parameter search off: the trainer itself must keep every trainable parameter in the graph.
            ddp_find_unused_parameters=False,
        )
        assert args.world_size == 2
        model = apply_lora(tiny_model("llama", vocab_size=len(tokenizer)), {**DEFAULT_LORA_CONFIG, "lora_dropout": 0.0})
        mode = ContrastiveDataMode.PAIRS if schedule == "align_only" else ContrastiveDataMode.TASK_AND_PAIRS
        trainer = AlignmentTrainer(
            model=model,
            args=args,
            train_dataset=build_dataset(data_file, tokenizer, mode, 64),
            data_collator=AlignmentCollator(tokenizer.pad_token_id),
            pad_token_id=tokenizer.pad_token_id,
        )
        trainer.train()
        wrapped = type(trainer.model_wrapped).__name__
        assert wrapped in ("DistributedDataParallel", "DeepSpeedEngine"), wrapped
        rank = dist.get_rank()
        weights = {
            n: p.detach().float().contiguous().clone() for n, p in trainer.model.named_parameters() if p.requires_grad
        }
        save_file(weights, f"{out}/{schedule}-rank{rank}.safetensors")
        if rank == 0:
            Path(f"{out}/{schedule}-logs.json").write_text(json.dumps(trainer.state.log_history))
        dist.barrier()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1], sys.argv[2], sys.argv[3:])
