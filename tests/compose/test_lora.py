import json
from pathlib import Path

import pytest
import torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file

from midalign.cli import main as cli_main
from midalign.compose import combine_adapters, read_adapter
from midalign.models import load_model_with_adapters


def _adapter(base_dir, out, seed, **lora):
    """A LoRA adapter on the tiny base with random (non-zero) A and B, saved with safetensors."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    peft_model = get_peft_model(model, LoraConfig(**lora))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.05)
    peft_model.save_pretrained(out)
    return str(out)


@pytest.fixture(scope="module")
def adapters(tiny_model_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("adapters")
    a = _adapter(tiny_model_dir, root / "a", 1, r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    # another rank, rsLoRA scaling, a per-module alpha and partly other modules
    b = _adapter(
        tiny_model_dir,
        root / "b",
        2,
        r=2,
        lora_alpha=4,
        use_rslora=True,
        alpha_pattern={"o_proj": 1},
        target_modules=["q_proj", "o_proj"],
    )
    return a, b


def _weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _ids():
    return torch.tensor([[5, 17, 42, 9, 100, 3]])


def test_read_adapter_scales(adapters):
    a, b = (read_adapter(p) for p in adapters)
    assert {round(t[2], 6) for t in a.modules.values()} == {2.0}  # 8 / 4
    scales = {m.rsplit(".", 1)[-1]: t[2] for m, t in b.modules.items()}
    assert scales["q_proj"] == pytest.approx(4 / 2**0.5) and scales["o_proj"] == pytest.approx(1 / 2**0.5)


def test_cat_is_exactly_the_sum_of_the_updates(tiny_model_dir, adapters, tmp_path):
    summary = combine_adapters(list(adapters), [1.0, 1.0], str(tmp_path / "sum"))
    assert summary["rank"] == 6 and summary["method"] == "cat"
    stacked = load_model_with_adapters(tiny_model_dir, list(adapters))  # merged in turn = the sum
    combined = load_model_with_adapters(tiny_model_dir, [str(tmp_path / "sum")])
    for k, v in _weights(stacked).items():
        torch.testing.assert_close(_weights(combined)[k], v, rtol=1e-5, atol=1e-6)
    base = load_model_with_adapters(tiny_model_dir)
    with torch.no_grad():
        assert not torch.allclose(base(_ids()).logits, stacked(_ids()).logits, atol=1e-3)
        torch.testing.assert_close(combined(_ids()).logits, stacked(_ids()).logits, rtol=1e-4, atol=1e-5)


def test_negation_cancels_an_adapter(tiny_model_dir, adapters, tmp_path):
    a, _ = adapters
    combine_adapters([a], [-1.0], str(tmp_path / "neg"))
    back = load_model_with_adapters(tiny_model_dir, [a, str(tmp_path / "neg")])
    base = load_model_with_adapters(tiny_model_dir)
    for k, v in _weights(base).items():
        torch.testing.assert_close(_weights(back)[k], v, rtol=0, atol=1e-6)


def test_weighted_sum_and_svd(tiny_model_dir, adapters, tmp_path):
    a, b = (read_adapter(p) for p in adapters)
    combine_adapters(list(adapters), [0.5, -2.0], str(tmp_path / "cat"))
    combine_adapters(list(adapters), [0.5, -2.0], str(tmp_path / "full"), method="svd", rank=6)
    combine_adapters(list(adapters), [0.5, -2.0], str(tmp_path / "r1"), method="svd", rank=1)
    cat, full, r1 = (read_adapter(str(tmp_path / n)) for n in ("cat", "full", "r1"))
    for m in sorted(set(a.modules) | set(b.modules)):
        want = sum(w * x.delta(m) for x, w in ((a, 0.5), (b, -2.0)) if m in x.modules)
        torch.testing.assert_close(cat.delta(m), want, rtol=1e-5, atol=1e-7)
        torch.testing.assert_close(full.delta(m), want, rtol=1e-4, atol=1e-6)
        # rank 1: the best rank-1 approximation (Eckart-Young: error = norm of the other singular values)
        s = torch.linalg.svdvals(want)
        err = torch.linalg.matrix_norm(r1.delta(m) - want)
        assert err == pytest.approx(float(s[1:].norm()), rel=1e-4, abs=1e-7)
    assert r1.config["r"] == 1 and json.loads((tmp_path / "r1" / "composition.json").read_text())["rank"] == 1


def test_cli_and_errors(adapters, tmp_path):
    a, b = adapters
    cli_main(
        ["compose", "--adapter", a, "--adapter", b, "--weight", "1", "--weight", "0.5", "--output", str(tmp_path / "c")]
    )
    combine_adapters([a, b], [1.0, 0.5], str(tmp_path / "d"))
    via_cli, direct = (load_file(str(tmp_path / n / "adapter_model.safetensors")) for n in ("c", "d"))
    assert via_cli.keys() == direct.keys() and all(torch.equal(via_cli[k], direct[k]) for k in direct)
    with pytest.raises(SystemExit):
        cli_main(["compose", "--adapter", a, "--weight", "1", "--weight", "2", "--output", str(tmp_path / "x")])
    with pytest.raises(ValueError, match="one weight per adapter"):
        combine_adapters([a, b], [1.0], str(tmp_path / "x"))
    with pytest.raises(FileNotFoundError, match="adapter_config.json"):
        read_adapter(str(tmp_path))
    bad = tmp_path / "dora"
    bad.mkdir()
    (bad / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "use_dora": True}))
    with pytest.raises(ValueError, match="DoRA"):
        read_adapter(str(bad))
    # a .bin adapter: read as peft (and inference) reads it, with torch's restricted unpickler
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "adapter_config.json").write_text(Path(a, "adapter_config.json").read_text())
    torch.save(load_file(str(Path(a, "adapter_model.safetensors"))), legacy / "adapter_model.bin")
    combine_adapters([str(legacy), b], [1.0, 0.5], str(tmp_path / "e"))
    from_bin = load_file(str(tmp_path / "e" / "adapter_model.safetensors"))
    assert from_bin.keys() == direct.keys() and all(torch.equal(from_bin[k], direct[k]) for k in direct)
    code = legacy / "code"
    code.mkdir()
    (code / "adapter_config.json").write_text(Path(a, "adapter_config.json").read_text())
    torch.save({"x": Path("not a tensor")}, code / "adapter_model.bin")  # arbitrary objects are refused
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported"):
        read_adapter(str(code))


@pytest.mark.parametrize("method", ["cat", "svd"])
def test_matches_peft_add_weighted_adapter(tiny_model_dir, tmp_path, method):
    """peft's own combination (on a loaded model) and ours (from the files, no base model) give the same model; ours
    is kept because it writes a regular adapter without loading the base weights."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    cfg = dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"])
    a = _adapter(tiny_model_dir, tmp_path / "a", 11, **cfg)
    b = _adapter(tiny_model_dir, tmp_path / "b", 12, **cfg)
    weights = [0.7, -0.4]
    peft_model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), a, adapter_name="a")
    peft_model.load_adapter(b, adapter_name="b")
    kw = {"svd_rank": 4} if method == "svd" else {}
    peft_model.add_weighted_adapter(["a", "b"], weights, "mix", combination_type=method, **kw)
    peft_model.set_adapter("mix")
    combine_adapters([a, b], weights, str(tmp_path / "ours"), method=method, rank=4 if method == "svd" else None)
    ours = load_model_with_adapters(tiny_model_dir, [str(tmp_path / "ours")])
    with torch.no_grad():
        base = load_model_with_adapters(tiny_model_dir)(_ids()).logits
        expected = peft_model.eval()(_ids()).logits
        assert not torch.allclose(base, expected, atol=1e-3)
        torch.testing.assert_close(ours(_ids()).logits, expected, rtol=1e-4, atol=1e-4)
