"""Every architecture of the capture table trains by default: the paper's alternate schedule with the default LoRA
targets, through the real entry point, on a tiny random model of that type saved with the test tokenizer."""

import logging

import pytest
import torch

from midalign.alignment import DECODER_LAYOUTS
from midalign.models import DEFAULT_LORA_CONFIG, tiny_model
from midalign.training.run import parse_args, run_training

# the seven projections of a Llama-style decoder exist under these names; the others name or fuse them otherwise
LLAMA_STYLE = {"llama", "qwen2", "qwen3", "mistral", "gemma", "gemma2", "gemma3_text", "olmo2"}


@pytest.fixture(scope="module", params=sorted(DECODER_LAYOUTS))
def arch_dir(request, tmp_path_factory, tokenizer):
    model = tiny_model(request.param, vocab_size=len(tokenizer), num_layers=3)
    model.config.pad_token_id = tokenizer.pad_token_id
    path = tmp_path_factory.mktemp(request.param)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return request.param, str(path)


def test_default_training_runs_on_every_architecture(arch_dir, tmp_path, data_files, caplog):
    arch, path = arch_dir
    argv = ["--model_name_or_path", path, "--train_file", data_files["both"], "--output_dir", str(tmp_path / "run"),
            "--max_steps", "2", "--per_device_train_batch_size", "4", "--learning_rate", "1e-3", "--logging_steps", "1",
            "--alignment_schedule", "alternate", "--alignment_layer", "2", "--save_strategy", "no",
            "--report_to", "none", "--disable_tqdm", "True"]  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="midalign.models.loading"):
        trainer = run_training(*parse_args(argv))
    logs = trainer.state.log_history
    assert any("loss/align" in h for h in logs) and any("loss/task" in h for h in logs)
    assert all(torch.isfinite(torch.tensor(h["loss/align"])) for h in logs if "loss/align" in h)
    lora = {n for n, p in trainer.model.named_parameters() if p.requires_grad}
    assert lora and all("lora_" in n for n in lora)
    targeted = {n.split(".lora_")[0].rsplit(".", 1)[-1] for n in lora}
    fell_back = "all-linear" in caplog.text
    if arch in LLAMA_STYLE:  # the paper's targets, exactly
        assert targeted == set(DEFAULT_LORA_CONFIG["target_modules"]) and not fell_back
    else:  # said once, and every linear layer of the blocks is adapted (never the output head)
        assert fell_back and "lm_head" not in targeted and "embed_out" not in targeted and len(targeted) >= 3


def test_an_explicit_target_list_is_the_users(tokenizer):
    from midalign.models.loading import default_lora_targets

    model = tiny_model("gpt_neox", vocab_size=64, num_layers=2)
    mine = {**DEFAULT_LORA_CONFIG, "target_modules": ["query_key_value"]}
    assert default_lora_targets(model, mine) is mine
    assert default_lora_targets(model, dict(DEFAULT_LORA_CONFIG))["target_modules"] == "all-linear"
    llama = tiny_model("llama", vocab_size=64, num_layers=2)
    assert default_lora_targets(llama, dict(DEFAULT_LORA_CONFIG)) == DEFAULT_LORA_CONFIG
