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
        [
            "sparse",
            "diff",
            "--model",
            tiny_model_dir,
            "--tuned",
            str(tmp_path / "full"),
            "--k",
            "50",
            "--output",
            str(mask),
        ]
    )
    assert len(SparseDiff.load(str(mask))) == 50
    _train(tiny_model_dir, data_files["task"], tmp_path / "sparse", "--sparse_mask", str(mask), "--weight_decay", "0")
    base, sparse = _weights(tiny_model_dir), _weights(str(tmp_path / "sparse"))
    allowed = {(n, int(i)) for n, (idx, _) in SparseDiff.load(str(mask)).entries.items() for i in idx}
    moved = {(k, int(i)) for k in base for i in (sparse[k] != base[k]).view(-1).nonzero()}
    assert moved and moved <= allowed  # only masked entries moved (some may get no gradient from this data)
    diff = tmp_path / "diff.safetensors"
    cli_main(["sparse", "diff", "--model", tiny_model_dir, "--tuned", str(tmp_path / "sparse"), "--mask", str(mask),
              "--output", str(diff)])  # fmt: skip
    cli_main(["sparse", "apply", "--model", tiny_model_dir, "--diff", str(diff), "--output", str(tmp_path / "applied")])
    applied = _weights(str(tmp_path / "applied"))
    for k in base:
        torch.testing.assert_close(applied[k], sparse[k], rtol=0, atol=1e-6)
    with pytest.raises(ValueError, match="--use_lora False"):
        _train(tiny_model_dir, data_files["task"], tmp_path / "x", "--sparse_mask", str(mask), "--use_lora", "True")
    with pytest.raises(ValueError, match="--weight_decay 0"):
        _train(tiny_model_dir, data_files["task"], tmp_path / "x", "--sparse_mask", str(mask), "--weight_decay", "0.1")


def test_freeze_embeddings_and_frozen_deltas(tmp_path, tiny_model_dir, data_files):
    """--freeze_embeddings keeps embeddings and LM head; --frozen_deltas adds a sparse difference (or a LoRA adapter)
    to the base before training and does not train it: the result is base + delta + what training changed."""
    base = _weights(tiny_model_dir)
    trainer = _train(tiny_model_dir, data_files["task"], tmp_path / "full", "--freeze_embeddings", "True")
    tuned = {k: v.detach() for k, v in trainer.model.state_dict().items()}
    for k in base:
        if "embed" in k or "lm_head" in k:
            assert torch.equal(tuned[k], base[k]), k
    assert any(not torch.equal(tuned[k], base[k]) for k in base)
    # a sparse difference under a LoRA run: the merged model starts from base + delta, and the LoRA is all that trains
    name = "model.layers.0.mlp.down_proj.weight"
    delta = SparseDiff({name: (torch.tensor([0, 5]), torch.tensor([0.5, -0.25]))}, {name: list(base[name].shape)})
    delta.save(str(tmp_path / "d.safetensors"))
    argv = ["--model_name_or_path", tiny_model_dir, "--train_file", data_files["task"], "--output_dir",
            str(tmp_path / "lora"), "--max_steps", "1", "--report_to", "none", "--save_strategy", "no",
            "--only_train_language_modeling", "--frozen_deltas", str(tmp_path / "d.safetensors")]  # fmt: skip
    trainer = run_training(*parse_args(argv))
    inner = trainer.model.get_base_model()
    expected = base[name].clone().view(-1)
    expected[0] += 0.5
    expected[5] -= 0.25
    torch.testing.assert_close(inner.model.layers[0].mlp.down_proj.base_layer.weight.view(-1), expected)
    with pytest.raises(ValueError, match="--freeze_embeddings is for full or sparse"):
        _train(tiny_model_dir, data_files["task"], tmp_path / "x", "--freeze_embeddings", "True", "--use_lora", "True")
    with pytest.raises(FileNotFoundError, match="no such adapter directory or sparse-difference file"):
        _train(tiny_model_dir, data_files["task"], tmp_path / "x", "--frozen_deltas", str(tmp_path / "missing"))
