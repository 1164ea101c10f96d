"""The README's Python example runs as written (on the tiny model instead of the prepared SmolLM2)."""

import re

import torch

from tests.conftest import ROOT


def test_readme_python_example_trains(tmp_path, tiny_model_dir, monkeypatch):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) == 1
    code = blocks[0]
    assert 'prepared_model_path("SmolLM2-135M-Instruct")' in code
    code = code.replace('prepared_model_path("SmolLM2-135M-Instruct")', repr(tiny_model_dir))
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)  # noqa: S102 - the README's own code
    model = scope["model"]
    out = tmp_path / "outputs" / "api_example"
    assert (out / "adapter_model.safetensors").is_file()
    from midalign.alignment import num_decoder_layers

    assert scope["args"].alignment_layer == num_decoder_layers(model) // 2  # the default: the middle layer
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]
    assert lora and any(p.abs().sum() > 0 for p in lora) and all(torch.isfinite(p).all() for p in lora)
