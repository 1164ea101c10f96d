import pytest
import torch

from midalign import layer_output
from midalign.alignment import DECODER_LAYOUTS, find_decoder, truncated
from midalign.models import TINY_CONFIGS, tiny_model

ARCHS = sorted(TINY_CONFIGS)


def _inputs(vocab=512):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab, (3, 9), generator=g)
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 4:] = 0
    return ids, mask


def test_every_tiny_architecture_is_in_the_layout_table():
    assert set(TINY_CONFIGS) == set(DECODER_LAYOUTS)  # every architecture of the table runs in these tests


@pytest.mark.parametrize("arch", ARCHS)
def test_equals_hidden_states_of_full_forward(arch):
    model = tiny_model(arch)
    ids, mask = _inputs()
    with torch.no_grad():
        hs = model(ids, attention_mask=mask, output_hidden_states=True).hidden_states
        for k in range(1, model.config.num_hidden_layers):
            torch.testing.assert_close(layer_output(model, ids, mask, k), hs[k], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_last_layer_is_raw_output_not_final_norm(arch):
    model = tiny_model(arch)
    ids, mask = _inputs()
    decoder, layout = find_decoder(model)
    seen = {}
    last = getattr(decoder, layout.layers)[-1]
    handle = last.register_forward_hook(lambda m, i, o: seen.setdefault("out", o[0] if isinstance(o, tuple) else o))
    with torch.no_grad():
        model(ids, attention_mask=mask)
        handle.remove()
        got = layer_output(model, ids, mask, model.config.num_hidden_layers)
    torch.testing.assert_close(got, seen["out"])


@pytest.mark.parametrize("arch", ["llama", "gemma2"])
def test_layers_above_k_final_norm_and_head_never_run(arch):
    model = tiny_model(arch)
    decoder, layout = find_decoder(model)
    calls = []
    for i, lay in enumerate(getattr(decoder, layout.layers)):
        lay.register_forward_hook(lambda m, a, o, i=i: calls.append(i + 1))
    getattr(decoder, layout.norm).register_forward_hook(lambda *a: calls.append("norm"))
    model.lm_head.register_forward_hook(lambda *a: calls.append("head"))
    ids, mask = _inputs()
    layer_output(model, ids, mask, 2)
    assert calls == [1, 2]
    # the model is intact afterwards
    calls.clear()
    model(ids, attention_mask=mask)
    assert calls == [1, 2, 3, 4, "norm", "head"]


def _lora(model):
    from peft import LoraConfig, get_peft_model

    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"], init_lora_weights=False)
    return get_peft_model(model, cfg)


@pytest.mark.parametrize("checkpointing", [False, True])
def test_peft_gradients_reach_only_layers_up_to_k(checkpointing):
    model = _lora(tiny_model("llama"))
    model.train()
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    ids, mask = _inputs()
    out = layer_output(model, ids, mask, 2)
    out.pow(2).mean().backward()
    for name, p in model.named_parameters():
        if "lora_" not in name:
            assert p.grad is None, name
            continue
        layer = int(name.split(".layers.")[1].split(".")[0]) + 1
        if layer <= 2:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


def test_peft_output_uses_the_adapter_and_matches_full_forward():
    model = _lora(tiny_model("qwen2")).eval()
    ids, mask = _inputs()
    with torch.no_grad():
        hs = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states
        got = layer_output(model, ids, mask, 3)
        torch.testing.assert_close(got, hs[3], rtol=1e-5, atol=1e-5)
        with model.disable_adapter():
            assert not torch.allclose(layer_output(model, ids, mask, 3), got)


def test_gradient_checkpointing_gives_the_same_gradients():
    grads = []
    for checkpointing in (False, True):
        model = _lora(tiny_model("llama"))
        model.train()
        for m in model.modules():  # dropout off so both runs are comparable
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        ids, mask = _inputs()
        layer_output(model, ids, mask, 3).sum().backward()
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and grads[0]
    for n in grads[0]:
        torch.testing.assert_close(grads[0][n], grads[1][n], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("layer", [0, 5, -1, 2.0, True])
def test_layer_out_of_range_is_an_error(layer):
    model = tiny_model("llama")
    ids, mask = _inputs()
    with pytest.raises(ValueError, match=r"1\.\.4"):
        layer_output(model, ids, mask, layer)


def test_unknown_architecture_is_an_error():
    from transformers import GPTJConfig, GPTJForCausalLM

    model = GPTJForCausalLM(GPTJConfig(n_embd=32, n_layer=2, n_head=4, vocab_size=64, rotary_dim=8))
    with pytest.raises(NotImplementedError, match="model_type='gptj'"):
        layer_output(model, torch.ones(2, 3, dtype=torch.long), None, 1)


@pytest.mark.parametrize("arch", ["llama", "gemma2"])
def test_all_layer_outputs_equal_layer_output(arch):
    from midalign.alignment import all_layer_outputs

    model = tiny_model(arch)
    ids, mask = _inputs()
    with torch.no_grad():
        hs = all_layer_outputs(model, ids, mask)
        assert len(hs) == model.config.num_hidden_layers + 1
        for k in range(1, len(hs)):
            torch.testing.assert_close(hs[k], layer_output(model, ids, mask, k), rtol=1e-5, atol=1e-5)


def test_unsupported_wrappers_fail_loudly():
    """Wrappers that trace, shard or replicate the module would silently ignore the swapped layers: refused by name."""
    model = tiny_model("llama")
    ids = torch.tensor([[5, 6, 7]])
    with pytest.raises(NotImplementedError, match="OptimizedModule.*torch.compile"):
        layer_output(torch.compile(model), ids, None, 2)
    with pytest.raises(NotImplementedError, match="DataParallel.*torchrun"):
        layer_output(torch.nn.DataParallel(model), ids, None, 2)

    class FSDPModule:  # what torch's fully_shard mixes into the wrapped module's class
        pass

    sharded = type("FSDPLlamaForCausalLM", (FSDPModule, type(model)), {})
    model.__class__ = sharded
    try:
        with pytest.raises(NotImplementedError, match="FSDP shards"):
            layer_output(model, ids, None, 2)
    finally:
        model.__class__ = sharded.__mro__[2]


def test_truncation_is_not_reentrant_and_restores_the_model():
    model = tiny_model("llama")
    with truncated(model, 2):
        with pytest.raises(RuntimeError, match="already active"):
            with truncated(model, 1):
                pass
    assert len(model.model.layers) == 4  # restored after the refused nested call
    with truncated(model, 1) as decoder:  # usable again
        assert len(decoder.layers) == 1
