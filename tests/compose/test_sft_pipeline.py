"""The LT-SFT recipe end to end on a tiny model: full fine-tuning, keep the largest changes, retrain only them from
the base weights (``--sparse_mask``), extract the trained entries, apply them to the base."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from midalign.cli import main as cli_main
from midalign.compose.sparse import SparseDiff
from midalign.training.run import parse_args, run_training


def _train(model_dir, data, out, *extra):
    argv = ["--model_name_or_path", model_dir, "--train_file", data, "--output_dir", str(out), "--max_steps", "2"]
    argv += ["--per_device_train_batch_size", "4", "--learning_rate", "1e-2", "--report_to", "none"]
    argv += ["--save_strategy", "no", "--use_lora", "False", "--contrastive_data_mode", "0"]
    argv += ["--only_train_language_modeling", *extra]
    return run_training(*parse_args(argv))


def _weights(path):
    model = AutoModelForCausalLM.from_pretrained(path)
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_lt_sft_recipe(tmp_path, tiny_model_dir, data_files):
    _train(tiny_model_dir, data_files["task"], tmp_path / "full")
    mask = tmp_path / "mask.safetensors"
    cli_main(
        ["sft", "diff", "--base", tiny_model_dir, "--tuned", str(tmp_path / "full"), "--k", "50", "--output", str(mask)]
    )
    assert len(SparseDiff.load(str(mask))) == 50
    _train(tiny_model_dir, data_files["task"], tmp_path / "sparse", "--sparse_mask", str(mask), "--weight_decay", "0")
    base, sparse = _weights(tiny_model_dir), _weights(str(tmp_path / "sparse"))
    allowed = {(n, int(i)) for n, (idx, _) in SparseDiff.load(str(mask)).entries.items() for i in idx}
    moved = {(k, int(i)) for k in base for i in (sparse[k] != base[k]).view(-1).nonzero()}
    assert moved and moved <= allowed  # only masked entries moved (some may get no gradient from this data)
    diff = tmp_path / "diff.safetensors"
    cli_main(["sft", "diff", "--base", tiny_model_dir, "--tuned", str(tmp_path / "sparse"), "--mask", str(mask),
              "--output", str(diff)])  # fmt: skip
    cli_main(["sft", "apply", "--base", tiny_model_dir, "--diff", str(diff), "--output", str(tmp_path / "applied")])
    applied = _weights(str(tmp_path / "applied"))
    for k in base:
        torch.testing.assert_close(applied[k], sparse[k], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="--use_lora False"):
        _train(tiny_model_dir, data_files["task"], tmp_path / "x", "--sparse_mask", str(mask), "--use_lora", "True")
    with pytest.raises(ValueError, match="--weight_decay 0"):
        _train(tiny_model_dir, data_files["task"], tmp_path / "x", "--sparse_mask", str(mask), "--weight_decay", "0.1")
