"""INCLINE's intervention: the prompt's last position, every layer, the prefill only; exact at the first layer."""

import pytest
import torch

from midalign.inference.incline import fit_incline, incline, mlp_modules, pooled_mlp_outputs
from midalign.models import tiny_model


@pytest.fixture(scope="module")
def model(tokenizer):
    torch.manual_seed(0)
    m = tiny_model("llama", vocab_size=len(tokenizer), num_layers=3).eval()
    m.config.pad_token_id = tokenizer.pad_token_id
    return m


def _capture(model, enc):
    seen = []
    handles = [m.register_forward_hook(lambda mod, i, o: seen.append(o.detach().clone())) for m in mlp_modules(model)]
    try:
        with torch.no_grad():
            logits = model(**enc).logits
    finally:
        for h in handles:
            h.remove()
    return seen, logits


def test_last_position_shift_and_nothing_else(model, tokenizer):
    hidden = model.config.hidden_size
    maps = torch.randn(3, hidden, hidden, generator=torch.Generator().manual_seed(1)) * 0.1
    enc = tokenizer(["book a flight to boston tomorrow"], return_tensors="pt")
    plain, plain_logits = _capture(model, enc)
    with incline(model, maps, 0.5):
        shifted, shifted_logits = _capture(model, enc)  # capture hooks run after INCLINE's: they see its output
    # first layer: its input is untouched, so its output is exactly m + 0.5 m W at the last position
    m = plain[0][:, -1]
    torch.testing.assert_close(shifted[0][:, -1], m + 0.5 * m @ maps[0])
    for a, b in zip(plain, shifted):  # causal attention: earlier positions never see the last one
        torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(plain_logits[:, -1], shifted_logits[:, -1])
    torch.testing.assert_close(plain_logits[:, :-1], shifted_logits[:, :-1])
    # sigma 0 and a one-token forward (a generation step) are left alone; the hooks are gone after the block
    with incline(model, maps, 0.0):
        torch.testing.assert_close(_capture(model, enc)[1], plain_logits)
    one = {k: v[:, :1] for k, v in enc.items()}
    with incline(model, maps, 0.5):
        torch.testing.assert_close(_capture(model, one)[1], _capture(model, one)[1])
    torch.testing.assert_close(_capture(model, enc)[1], plain_logits)


def test_pooled_outputs_ignore_padding(model, tokenizer):
    short, long = "hello there", "book a flight to boston tomorrow morning please"
    both = pooled_mlp_outputs(model, tokenizer, [short, long], batch_size=2)
    alone = pooled_mlp_outputs(model, tokenizer, [short], batch_size=1)
    torch.testing.assert_close(both[:, 0], alone[:, 0], atol=1e-5, rtol=1e-5)


def test_fit_recovers_a_linear_relation(model, tokenizer):
    sents = [f"sentence number {i} about {w}" for i, w in enumerate(["rain", "music", "alarms", "food"] * 20)]
    maps = fit_incline(model, tokenizer, sents, sents)  # a language mapped to itself: X W = X is attainable
    x = pooled_mlp_outputs(model, tokenizer, sents)
    for layer in range(maps.shape[0]):
        torch.testing.assert_close(x[layer].float() @ maps[layer], x[layer].float(), atol=1e-3, rtol=1e-3)
    with pytest.raises(ValueError, match="parallel"):
        fit_incline(model, tokenizer, sents, sents[:-1])
    with pytest.raises(ValueError, match="maps for a model with 3"):
        with incline(model, maps[:2], 0.1):
            pass
