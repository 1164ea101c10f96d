"""The task loss with logits only at supervised positions equals the full computation: loss and every gradient."""

import pytest
import torch

from midalign.data import IGNORE_INDEX
from midalign.models import TINY_CONFIGS, tiny_model
from midalign.training import causal_lm_loss, supervised_positions, task_loss
from midalign.training.trainer import _accepts_logits_to_keep

CASES = [(arch, {}) for arch in sorted(TINY_CONFIGS)] + [
    ("llama", {"tie_word_embeddings": True}),
    ("gemma2", {"final_logit_softcapping": 5.0}),  # soft-capping must be applied to the kept logits too
]


def _batch(vocab: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, vocab, (3, 20), generator=g)
    mask = torch.ones_like(ids)
    labels = ids.clone()
    for row, (prompt, length) in enumerate([(12, 20), (5, 9), (15, 18)]):  # right padding after `length`
        labels[row, :prompt] = IGNORE_INDEX
        labels[row, length:] = IGNORE_INDEX
        mask[row, length:] = 0
    return ids, mask, labels


def test_supervised_positions_is_the_union_of_shifted_targets():
    labels = torch.full((2, 8), IGNORE_INDEX)
    labels[0, 5:7] = 1
    labels[1, 3] = 1
    assert supervised_positions(labels).tolist() == [2, 4, 5]
    assert supervised_positions(torch.full((2, 8), IGNORE_INDEX)).numel() == 0


@pytest.mark.parametrize("arch,extra", CASES, ids=[f"{a}{'-' + next(iter(e)) if e else ''}" for a, e in CASES])
def test_supervised_only_equals_full_loss_and_gradients(arch, extra):
    model = tiny_model(arch, vocab_size=97, num_layers=2, **extra).train()
    assert _accepts_logits_to_keep(model)  # the fast path is the one under test
    torch.manual_seed(0)
    ids, mask, labels = _batch(97)
    results = []
    for supervised_only in (False, True):
        model.zero_grad()
        total, n = task_loss(model, ids, mask, labels, supervised_only=supervised_only)
        (total / n).backward()
        results.append((total.detach(), n, {k: p.grad.clone() for k, p in model.named_parameters()}))
    (full, n_full, g_full), (part, n_part, g_part) = results
    assert n_full == n_part == int(labels[:, 1:].ne(IGNORE_INDEX).sum())
    torch.testing.assert_close(part, full, rtol=1e-5, atol=1e-5)
    for name in g_full:
        torch.testing.assert_close(g_part[name], g_full[name], rtol=1e-4, atol=1e-6, msg=name)


def test_loss_at_positions_matches_hand_computation():
    logits = torch.randn(1, 4, 5)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 2, 4]])
    positions = supervised_positions(labels)
    assert positions.tolist() == [1, 2]
    total, n = causal_lm_loss(logits[:, positions], labels, positions)
    expected = -(logits[0, 1].log_softmax(-1)[2] + logits[0, 2].log_softmax(-1)[4])
    torch.testing.assert_close(total, expected)
    assert n == 2
