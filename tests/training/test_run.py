"""End-to-end runs of the paper-compatible entry point on a tiny model."""

import json
import os
import subprocess
import sys

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM

from midalign.training import SCHEDULES
from midalign.training.run import parse_args, run_training
from tests.conftest import ROOT

PAPER_FLAGS = [
    "--use_lora",
    "True",
    "--lora_config",
    str(ROOT / "config" / "lora_config.json"),
    "--per_device_train_batch_size",
    "4",
    "--per_device_eval_batch_size",
    "4",
    "--gradient_accumulation_steps",
    "2",
    "--learning_rate",
    "5e-4",
    "--weight_decay",
    "0.",
    "--warmup_ratio",
    "0.03",
    "--lr_scheduler_type",
    "inverse_sqrt",
    "--logging_steps",
    "1",
    "--block_size",
    "2048",
    "--do_train",
    "--seed",
    "1",
    "--ddp_timeout",
    "3600",
    "--disable_tqdm",
    "True",
    "--overwrite_output_dir",
    "--preprocessing_num_workers",
    "16",
    "--dataloader_num_workers",
    "0",
    "--save_strategy",
    "steps",
    "--save_steps",
    "2",
    "--save_total_limit",
    "2",
    "--report_to",
    "none",
]
ALIGN_FLAGS = [
    "--contrastive_data_mode",
    "2",
    "--additional_loss_layer",
    "2",
    "--contrastive_loss_temperature",
    "0.1",
    "--distance_function",
    "cosine",
    "--alternate_training",
]


def _run(argv):
    return run_training(*parse_args(argv))


def test_paper_alignment_command_writes_a_loadable_adapter(tmp_path, tiny_model_dir, data_files):
    out = tmp_path / "run"
    argv = [
        "--model_name_or_path",
        tiny_model_dir,
        "--train_file",
        data_files["both"],
        "--validation_file",
        data_files["both"],
        "--output_dir",
        str(out),
        "--num_train_epochs",
        "2",
        "--eval_strategy",
        "steps",
        "--eval_steps",
        "2",
        "--load_best_model_at_end",
        "True",
        "--metric_for_best_model",
        "eval_loss",
        "--patience",
        "5",
        *PAPER_FLAGS,
        *ALIGN_FLAGS,
    ]
    trainer = _run(argv)
    args = trainer.args
    assert (args.alignment_schedule, args.alignment_layer, args.alignment_temperature) == ("alternate", 2, 0.1)
    logs = trainer.state.log_history
    assert any("loss/align" in h for h in logs) and any("eval_loss/task" in h for h in logs)
    for path in (out, out / "adapter_model"):
        base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
        model = PeftModel.from_pretrained(base, str(path)).eval()
        ids = torch.tensor([[5, 6, 7, 8]])
        with torch.no_grad():
            torch.testing.assert_close(model(input_ids=ids).logits, trainer.model.eval()(input_ids=ids).logits)
    assert sorted(p.name for p in out.glob("checkpoint-*"))


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
def test_streaming_works_with_every_schedule(tmp_path, tiny_model_dir, data_files, schedule):
    file = data_files["pairs"] if schedule == "align_only" else data_files["both"]
    trainer = _run(
        [
            "--model_name_or_path",
            tiny_model_dir,
            "--train_file",
            file,
            "--output_dir",
            str(tmp_path),
            "--alignment_schedule",
            schedule,
            "--streaming",
            "--max_steps",
            "2",
            "--alignment_layer",
            "2",
            *PAPER_FLAGS,
        ]
    )
    assert trainer.state.global_step == 2
    from midalign.data import StreamingAlignmentDataset

    assert isinstance(trainer.train_dataset, StreamingAlignmentDataset)


def test_alignment_file_lets_task_rows_go_without_pairs(tmp_path, tiny_model_dir, data_files):
    trainer = _run(
        [
            "--model_name_or_path",
            tiny_model_dir,
            "--train_file",
            data_files["task"],
            "--alignment_file",
            data_files["pairs"],
            "--output_dir",
            str(tmp_path),
            "--max_steps",
            "2",
            *PAPER_FLAGS,
        ]
    )
    assert trainer.args.alignment_schedule == "alternate"
    assert any("loss/align" in h for h in trainer.state.log_history)


def test_baseline_flag_and_yaml_config(tmp_path, tiny_model_dir, data_files):
    cfg = tmp_path / "recipe.yaml"
    cfg.write_text(
        f"model_name_or_path: {tiny_model_dir}\nmax_steps: 3\nlearning_rate: 1.0e-3\n"
        "only_train_language_modeling: true\n"
    )
    trainer = _run(
        [
            "--config",
            str(cfg),
            "--train_file",
            data_files["task"],
            "--output_dir",
            str(tmp_path / "o"),
            "--max_steps",
            "1",
            *PAPER_FLAGS,
        ]
    )
    assert trainer.args.alignment_schedule == "task_only"
    assert trainer.args.max_steps == 1  # the flag wins over the YAML
    assert trainer.args.learning_rate == pytest.approx(5e-4)
    assert not any("loss/align" in h for h in trainer.state.log_history)


def test_metric_for_best_model_can_be_a_single_objective(tmp_path, tiny_model_dir, data_files):
    trainer = _run(
        [
            "--model_name_or_path",
            tiny_model_dir,
            "--train_file",
            data_files["both"],
            "--validation_file",
            data_files["both"],
            "--output_dir",
            str(tmp_path),
            "--max_steps",
            "4",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "2",
            "--load_best_model_at_end",
            "True",
            "--metric_for_best_model",
            "eval_loss/task",
            *PAPER_FLAGS,
            *ALIGN_FLAGS,
        ]
    )
    assert trainer.args.greater_is_better is False
    assert trainer.state.best_metric is not None


def test_existing_checkpoints_are_not_overwritten_by_accident(tmp_path, tiny_model_dir, data_files):
    (tmp_path / "checkpoint-7").mkdir()
    argv = [
        "--model_name_or_path",
        tiny_model_dir,
        "--train_file",
        data_files["task"],
        "--output_dir",
        str(tmp_path),
        "--max_steps",
        "1",
        "--only_train_language_modeling",
    ]
    with pytest.raises(FileExistsError, match="--overwrite_output_dir"):
        _run(argv)


@pytest.mark.parametrize(
    "extra,match",
    [
        (["--alternate_training", "--only_train_language_modeling"], "conflicting paper flags"),
        (["--alternate_training", "--alignment_schedule", "joint"], "conflicts with the paper flag"),
        (["--contrastive_loss_temperature", "0"], "must be > 0"),
        (["--additional_loss_layer", "9"], r"choose 1\.\.4"),
        (["--alignment_schedule", "alternate", "--contrastive_data_mode", "0"], "needs parallel pairs"),
        (["--patience", "3"], "--patience needs"),
    ],
)
def test_bad_flags_are_clear_errors(tmp_path, tiny_model_dir, data_files, extra, match):
    argv = [
        "--model_name_or_path",
        tiny_model_dir,
        "--train_file",
        data_files["both"],
        "--output_dir",
        str(tmp_path),
        "--max_steps",
        "1",
        "--report_to",
        "none",
        *extra,
    ]
    with pytest.raises(ValueError, match=match):
        _run(argv)


def test_script_runs_as_a_subprocess(tmp_path, tiny_model_dir, data_files):
    out = tmp_path / "o"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "run_clm_lora.py"),
            "--model_name_or_path",
            tiny_model_dir,
            "--train_file",
            data_files["both"],
            "--output_dir",
            str(out),
            "--max_steps",
            "2",
            *PAPER_FLAGS,
            *ALIGN_FLAGS,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "train_results.json").read_text())["epoch"] > 0
    assert (out / "adapter_model" / "adapter_model.safetensors").is_file()


def test_every_flag_of_the_paper_command_parses(tmp_path):
    """The paper README's train_with_alignment.sh flags, verbatim (minus --deepspeed, tested with DeepSpeed)."""
    argv = """--bf16 True --bf16_full_eval True --model_name_or_path meta-llama/Meta-Llama-3-8B-Instruct
    --train_file ./data_example/train_baseline.json --validation_file ./data_example/train_baseline.json
    --use_lora True --lora_config ./config/lora_config.json --torch_dtype bfloat16 --preprocessing_num_workers 16
    --dataloader_num_workers 1 --dataloader_pin_memory True --per_device_train_batch_size 32
    --per_device_eval_batch_size 32 --gradient_accumulation_steps 4 --num_train_epochs 10 --save_strategy steps
    --save_steps 200 --save_total_limit 2 --learning_rate 5e-4 --weight_decay 0. --warmup_ratio 0.03
    --lr_scheduler_type inverse_sqrt --logging_steps 10 --block_size 2048 --do_train --eval_strategy steps
    --eval_steps 200 --streaming --ddp_timeout 3600 --seed 1 --gradient_checkpointing True
    --load_best_model_at_end True --metric_for_best_model eval_loss --patience 5 --output_dir OUT
    --contrastive_data_mode 2 --additional_loss_layer 16 --contrastive_loss_temperature 0.1
    --distance_function cosine --alternate_training --disable_tqdm True --overwrite_output_dir""".split()
    argv[argv.index("OUT")] = str(tmp_path)
    model_args, data_args, args = parse_args(argv)
    assert args.alignment_schedule == "alternate" and args.alignment_layer == 16
    assert args.alignment_distance == "cosine" and args.patience == 5 and args.warmup_steps == pytest.approx(0.03)
    assert data_args.streaming and data_args.contrastive_data_mode == 2 and data_args.block_size == 2048
    assert model_args.use_lora and model_args.torch_dtype == "bfloat16"
    _, _, other = parse_args(
        [
            "--output_dir",
            str(tmp_path),
            "--contrastive_pooling_type",
            "bos",
            "--unidirectional_contrastive_loss",
            "--contrastive_loss_weight",
            "0.5",
            "--only_train_contrastive",
            "--load_lora_from",
            "x",
        ]
    )
    assert (
        other.alignment_pooling,
        other.alignment_detach_target,
        other.alignment_weight,
        other.alignment_schedule,
    ) == ("bos", True, 0.5, "align_only")


def test_training_is_the_default_even_with_an_eval_strategy(tmp_path, tiny_model_dir, data_files):
    """transformers turns --eval_strategy into do_eval=True; that must not turn the run into evaluation only."""
    trainer = _run(
        [
            "--model_name_or_path",
            tiny_model_dir,
            "--train_file",
            data_files["both"],
            "--validation_file",
            data_files["both"],
            "--output_dir",
            str(tmp_path),
            "--max_steps",
            "2",
            "--eval_strategy",
            "steps",
            "--eval_steps",
            "1",
            "--report_to",
            "none",
            "--alignment_layer",
            "2",
        ]
    )
    assert trainer.state.global_step == 2
    assert (tmp_path / "adapter_model" / "adapter_config.json").is_file()


def _script_argv(script: str, **env) -> list[str]:
    """The run_clm_lora.py flags a training script would launch with (``dry_run=1`` prints them, one per line)."""
    proc = subprocess.run(
        ["bash", f"scripts/{script}"],
        cwd=ROOT,
        env={**os.environ, "dry_run": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    words = proc.stdout.splitlines()
    assert words[:3] == ["python", "-m", "torch.distributed.run"]
    return words[words.index("scripts/run_clm_lora.py") + 1 :]


def test_training_scripts_launch_the_paper_commands(tmp_path):
    _, data_args, args = parse_args(_script_argv("train_baseline.sh", OUTDIR=str(tmp_path)))
    assert args.alignment_schedule == "task_only" and data_args.contrastive_data_mode == 0
    assert data_args.train_file == "./data_example/train_baseline.json"
    assert args.max_steps == 20 and args.per_device_train_batch_size == 8 and args.gradient_accumulation_steps == 2
    model_args, data_args, args = parse_args(_script_argv("train_with_alignment.sh", OUTDIR=str(tmp_path)))
    assert args.alignment_schedule == "alternate" and data_args.contrastive_data_mode == 2
    assert args.alignment_pooling == "mean_skip_first" and args.alignment_temperature == pytest.approx(0.1)
    assert args.alignment_layer is None and model_args.model_name_or_path is None
    # the paper's settings through the environment, as the scripts' header shows
    paper = {
        "OUTDIR": str(tmp_path),
        "model_path": "meta-llama/Meta-Llama-3-8B-Instruct",
        "train_bsz": "32",
        "gradient_accumulation_steps": "4",
        "max_steps": "-1",
        "loss_layer": "16",
        "pooling_type": "mean",
        "deepspeed_config": "./config/deepspeed_config.json",
        "bf16": "True",
        "extra_args": "--gradient_checkpointing True --streaming",
    }
    argv = _script_argv("train_with_alignment.sh", **paper)
    assert argv[argv.index("--deepspeed") + 1] == "./config/deepspeed_config.json"
    argv[argv.index("--deepspeed") : argv.index("--deepspeed") + 2] = []  # parsing it would initialise DeepSpeed
    model_args, data_args, args = parse_args(argv)
    assert model_args.model_name_or_path == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert (args.alignment_layer, args.alignment_pooling, args.max_steps) == (16, "mean", -1)
    assert args.per_device_train_batch_size == 32 and args.gradient_accumulation_steps == 4
    assert args.num_train_epochs == 10 and args.gradient_checkpointing and data_args.streaming and args.bf16


def test_training_scripts_protect_existing_checkpoints_unless_asked(tmp_path):
    _, _, args = parse_args(_script_argv("train_with_alignment.sh", OUTDIR=str(tmp_path)))
    assert not args.overwrite_output_dir and args.resume_from_checkpoint is None
    (tmp_path / "checkpoint-20").mkdir()
    with pytest.raises(FileExistsError, match="--overwrite_output_dir"):
        args.check_output_dir()  # what the launched run does first
    _, _, args = parse_args(_script_argv("train_baseline.sh", OUTDIR=str(tmp_path), overwrite_output_dir="1"))
    assert args.overwrite_output_dir
    _, _, args = parse_args(_script_argv("train_with_alignment.sh", OUTDIR=str(tmp_path), resume="1"))
    assert args.resume_from_checkpoint == "True" and not args.overwrite_output_dir
    args.check_output_dir()  # resuming over existing checkpoints is allowed


@pytest.mark.parametrize("order, warned", [("file", True), ("shuffle", False), ("streaming", True)])
def test_a_pair_language_never_drawn_is_named(tmp_path, tiny_model_dir, data_files, caplog, order, warned):
    """A pair file in language blocks (16 de, then 16 ja) and a run that draws only 16 task rows: in file order ja
    is never aligned, and the warning says so; shuffled (seed 0), both languages are drawn."""
    from tests.conftest import write_jsonl

    pairs = write_jsonl(
        tmp_path / "blocks.json",
        [{"text_parallel_0": f"en {i}", "text_parallel_1": f"{lang} {i}", "lang": lang}
         for lang in ("de", "ja") for i in range(16)],
    )  # fmt: skip
    argv = ["--model_name_or_path", tiny_model_dir, "--train_file", data_files["task"], "--alignment_file", pairs,
            "--output_dir", str(tmp_path / "run"), "--max_steps", "2", *PAPER_FLAGS]  # fmt: skip
    # --streaming reads the pairs in file order too (it has no shuffled order)
    argv += ["--streaming", "True"] if order == "streaming" else ["--alignment_pair_order", order]
    with caplog.at_level("INFO", logger="midalign"):
        _run(argv)
    messages = [r.getMessage() for r in caplog.records if "--alignment_file" in r.getMessage()]
    if warned:
        assert any("pairs of ja are never drawn" in m and "at most 16 of the file's 32 pairs: de 16" in m
                   for m in messages), messages  # fmt: skip
    else:
        assert not any("never drawn" in m for m in messages)
        assert any("per language" in m and "'de'" in m and "'ja'" in m for m in messages), messages
