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
    ids = torch.randint(3, vocab, (3, 24), generator=g)  # columns 20-23: padding in every row
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


def _loss_and_grads(model, batch, **kwargs):
    model.zero_grad()
    total, n = task_loss(model, *batch, **kwargs)
    (total / n).backward()
    return total.detach(), int(n), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("chunk", [None, 97 * 4], ids=["one-piece", "chunks-of-4"])
@pytest.mark.parametrize("arch,extra", CASES, ids=[f"{a}{'-' + next(iter(e)) if e else ''}" for a, e in CASES])
def test_supervised_only_equals_full_loss_and_gradients(arch, extra, chunk):
    """Per-row target positions only (15 targets of 3 x 20 positions), in one piece and in chunks of 4 rows
    (4+4+4+3, each recomputed in the backward): the same loss and gradients as logits at every position."""
    model = tiny_model(arch, vocab_size=97, num_layers=2, **extra).train()
    assert _accepts_logits_to_keep(model)  # the fast path is the one under test
    torch.manual_seed(0)
    batch = _batch(97)
    labels = batch[2]
    head_rows, widths = [], []
    hook = model.get_output_embeddings().register_forward_hook(lambda m, a, out: head_rows.append(a[0].shape[:-1]))
    width = model.get_input_embeddings().register_forward_hook(lambda m, a, out: widths.append(a[0].shape[1]))
    full, n_full, g_full = _loss_and_grads(model, batch, supervised_only=False)
    head_rows.clear()
    part, n_part, g_part = _loss_and_grads(model, batch, chunk_logits=chunk)
    hook.remove(), width.remove()
    # the decoder ran up to the last position whose logits are needed (18: it predicts row 0's last token, 19)
    assert widths == [24, 19]
    assert n_full == n_part == int(labels[:, 1:].ne(IGNORE_INDEX).sum()) == 15
    # the head ran on each row's own targets only: [15] at once, or [4] in the forward + 4, 4, 3 (and their
    # recomputation in the backward) for the later chunks
    expected = [(15,)] if chunk is None else [(4,), (4,), (4,), (4,), (3,), (4,), (4,), (3,)]
    assert sorted(head_rows) == sorted(expected)
    torch.testing.assert_close(part, full, rtol=1e-5, atol=1e-5)
    assert g_part.keys() == g_full.keys()
    for name in g_full:
        torch.testing.assert_close(g_part[name], g_full[name], rtol=1e-4, atol=1e-6, msg=name)


def test_chunks_under_lora_reach_the_adapter_on_the_head():
    """A LoRA on the LM head itself (peft wraps the head module): chunked = full, the adapter's gradients too."""
    from midalign.models import apply_lora

    model = apply_lora(
        tiny_model("llama", vocab_size=97, num_layers=2),
        {"lora_dropout": 0.0, "target_modules": ["q_proj", "lm_head"], "init_lora_weights": False},
    ).train()
    batch = _batch(97)
    full, _, g_full = _loss_and_grads(model, batch, supervised_only=False)
    part, _, g_part = _loss_and_grads(model, batch, chunk_logits=97 * 4)
    assert any("lm_head.lora_B" in name for name in g_full)
    torch.testing.assert_close(part, full, rtol=1e-5, atol=1e-5)
    for name in g_full:
        torch.testing.assert_close(g_part[name], g_full[name], rtol=1e-4, atol=1e-6, msg=name)


def test_unknown_logit_transform_is_refused_when_chunked():
    """A model that changes its logits after the head in a way the chunked path does not know gets a clear error
    naming the way out, not a silently different loss; in one piece its own transform is used, so it is exact."""
    import functools

    model = tiny_model("llama", vocab_size=97, num_layers=2)
    forward = model.forward

    @functools.wraps(forward)
    def doubled(*args, **kwargs):
        out = forward(*args, **kwargs)
        out.logits = out.logits * 2.0
        return out

    model.forward = doubled
    batch = _batch(97)
    with pytest.raises(NotImplementedError, match="--lm_head_chunk 0"):
        task_loss(model, *batch, chunk_logits=97 * 4)
    full, _ = task_loss(model, *batch, supervised_only=False)
    part, _ = task_loss(model, *batch, chunk_logits=0)
    torch.testing.assert_close(part, full, rtol=1e-5, atol=1e-5)


def test_loss_at_positions_matches_hand_computation():
    logits = torch.randn(1, 4, 5)
    labels = torch.tensor([[IGNORE_INDEX, IGNORE_INDEX, 2, 4]])
    positions = supervised_positions(labels)
    assert positions.tolist() == [1, 2]
    total, n = causal_lm_loss(logits[:, positions], labels, positions)
    expected = -(logits[0, 1].log_softmax(-1)[2] + logits[0, 2].log_softmax(-1)[4])
    torch.testing.assert_close(total, expected)
    assert n == 2


def _prefixed_batch(vocab: int, shared: int = 10):
    """Rows sharing their first ``shared`` tokens (a rendered system prompt), then their own, right-padded."""
    ids, mask, labels = _batch(vocab)
    ids[:, :shared] = ids[0, :shared]
    mask[1, :16] = 1  # row 1: prompt 12, targets 12..15 (the others as in _batch)
    labels[1] = torch.where(torch.arange(ids.shape[1]).ge(12) & mask[1].bool(), ids[1], IGNORE_INDEX)
    return ids, mask, labels


@pytest.mark.parametrize("arch", sorted(TINY_CONFIGS))
def test_a_shared_prompt_prefix_computed_once_gives_the_same_loss_and_gradients(arch):
    """Three rows sharing 11 tokens: the prefix runs once as a batch of one, the rest batched after it; the loss
    and every LoRA gradient equal the plain computation's."""
    from peft import LoraConfig, get_peft_model

    from midalign.training.lm_loss import MIN_SHARED_PREFIX, shared_prefix_length

    model = tiny_model(arch, vocab_size=97, num_layers=2)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear")).train()
    torch.manual_seed(0)
    for p in model.parameters():  # LoRA B starts at zero: move it so the prefix pass has gradients to carry
        if p.requires_grad:
            p.data.normal_(0, 0.02)
    ids, mask, labels = _prefixed_batch(97, shared=11)
    positions = supervised_positions(labels)
    assert shared_prefix_length(ids, mask, positions) == 11 >= MIN_SHARED_PREFIX
    widths = []
    hook = model.get_input_embeddings().register_forward_hook(lambda m, a, out: widths.append(a[0].shape))
    plain, n_plain, g_plain = _loss_and_grads(model, (ids, mask, labels))
    widths.clear()
    shared, n_shared, g_shared = _loss_and_grads(model, (ids, mask, labels), share_prefix=True)
    hook.remove()
    assert widths == [torch.Size([1, 11]), torch.Size([3, 19 - 11])]  # the prefix once, then the rest batched
    assert n_plain == n_shared
    torch.testing.assert_close(shared, plain, rtol=1e-5, atol=1e-5)
    assert g_shared.keys() == g_plain.keys() and g_plain
    for name in g_plain:
        torch.testing.assert_close(g_shared[name], g_plain[name], rtol=1e-4, atol=1e-6, msg=name)


def test_prefix_sharing_steps_aside_for_dropout_and_short_prefixes():
    from peft import LoraConfig, get_peft_model

    from midalign.training.lm_loss import shared_prefix_length

    ids, mask, labels = _prefixed_batch(97, shared=11)
    short = labels.clone()
    short[1, 5:12] = ids[1, 5:12]  # row 1's prompt ends at 5: only the columns before position 4 may be shared
    assert shared_prefix_length(ids, mask, supervised_positions(short)) == 4
    assert shared_prefix_length(ids[:1], mask[:1], supervised_positions(labels[:1])) == 0
    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules="all-linear")
    model = get_peft_model(tiny_model("llama", vocab_size=97, num_layers=2), lora).train()
    widths = []
    hook = model.get_input_embeddings().register_forward_hook(lambda m, a, out: widths.append(a[0].shape[0]))
    task_loss(model, ids, mask, labels, share_prefix=True)
    hook.remove()
    assert widths == [3]  # dropout active: one mask per row needs the plain path
