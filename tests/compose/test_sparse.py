import pytest
import torch

from midalign.compose.sparse import SparseDiff, apply_sparse_diffs, restrict_training, sparse_diff
from midalign.models import tiny_model


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _nudged(base_state, changes):
    """A copy of ``base_state`` with ``changes`` {(name, flat index): delta} added."""
    tuned = {k: v.clone() for k, v in base_state.items()}
    for (name, i), d in changes.items():
        tuned[name].view(-1)[i] += d
    return tuned


@pytest.fixture
def model():
    return tiny_model("llama", vocab_size=64, seed=4)


def test_top_k_changes_are_selected_globally(model):
    base = _state(model)
    q = "model.layers.0.self_attn.q_proj.weight"
    up = "model.layers.1.mlp.up_proj.weight"
    changes = {(q, 3): 0.5, (q, 10): -0.9, (up, 7): 0.2, (up, 8): 0.05, ("model.norm.weight", 0): -0.3}
    diff = sparse_diff(base, _nudged(base, changes), k=3)
    got = {(n, int(i)): float(v) for n, (idx, val) in diff.entries.items() for i, v in zip(idx, val)}
    assert got == pytest.approx({(q, 3): 0.5, (q, 10): -0.9, ("model.norm.weight", 0): -0.3}, abs=1e-6)
    assert len(diff) == 3 and diff.shapes[q] == list(base[q].shape)
    total = sum(v.numel() for k, v in base.items() if v.is_floating_point() and k != "lm_head.weight")
    assert len(sparse_diff(base, _nudged(base, changes), density=4 / total)) == 4
    with pytest.raises(ValueError, match="exactly one of k or density"):
        sparse_diff(base, base)
    with pytest.raises(ValueError, match="density"):
        sparse_diff(base, base, density=1.5)


def test_save_load_apply_and_compose(model, tmp_path):
    base = _state(model)
    q, v = "model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.v_proj.weight"
    lang = sparse_diff(base, _nudged(base, {(q, 1): 0.4, (v, 2): 0.1}), k=2)
    task = sparse_diff(base, _nudged(base, {(q, 1): 0.25, (v, 5): -0.2}), k=2)
    lang.save(str(tmp_path / "lang.safetensors"))
    loaded = SparseDiff.load(str(tmp_path / "lang.safetensors"))
    assert loaded.shapes == lang.shapes and all(
        torch.equal(loaded.entries[n][0], lang.entries[n][0]) and torch.equal(loaded.entries[n][1], lang.entries[n][1])
        for n in lang.entries
    )
    apply_sparse_diffs(model, [loaded, task], [1.0, 2.0])
    after = _state(model)
    assert after[q].view(-1)[1] == pytest.approx(float(base[q].view(-1)[1]) + 0.4 + 2 * 0.25, abs=1e-6)
    assert after[v].view(-1)[2] == pytest.approx(float(base[v].view(-1)[2]) + 0.1, abs=1e-6)
    assert after[v].view(-1)[5] == pytest.approx(float(base[v].view(-1)[5]) - 0.4, abs=1e-6)
    changed = sum(int((after[k] != base[k]).sum()) for k in base if base[k].is_floating_point())
    assert changed == 3
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "weights.safetensors"))  # a checkpoint, not a difference
    with pytest.raises(ValueError, match="not a sparse difference"):
        SparseDiff.load(str(tmp_path / "weights.safetensors"))


def test_restricted_training_moves_only_the_masked_entries(model):
    base = _state(model)
    q = "model.layers.0.self_attn.q_proj.weight"
    emb = "model.embed_tokens.weight"
    mask = sparse_diff(base, _nudged(base, {(q, 4): 1.0, (q, 9): 1.0, (emb, 70): 1.0}), k=3)
    handles = restrict_training(model, mask)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(handles) == len(trainable) == 2
    opt = torch.optim.AdamW(trainable, lr=1e-2, weight_decay=0.0)
    ids = torch.randint(0, 64, (2, 12))
    ids[0, 3] = 70 // base[emb].shape[1]  # the token whose embedding row holds the masked entry
    for _ in range(3):
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
    trained = sparse_diff(base, _state(model), mask=mask)
    after = _state(model)
    moved = {(k, int(i)) for k in base if base[k].is_floating_point() for i in (after[k] != base[k]).view(-1).nonzero()}
    tied = {("lm_head.weight", 70)} if model.config.tie_word_embeddings else set()
    assert moved == {(q, 4), (q, 9), (emb, 70)} | tied
    assert all(float(v.abs().min()) > 0 for _, v in trained.entries.values())
    with pytest.raises(KeyError, match="not a parameter"):
        restrict_training(model, SparseDiff({"nope": (torch.tensor([0]), torch.tensor([1.0]))}))


def test_a_difference_is_refused_on_a_model_it_was_not_made_for(model, tmp_path):
    """Issue 22 item 8: a mask or difference carries the signature (tensor names and shapes) of its model; on a model
    of another size it is refused by diff --mask, apply and restricted training alike -- smaller or larger shapes --
    while the same model in another dtype is accepted."""
    from midalign.compose.sparse import SparseMismatchError, model_signature

    base = _state(model)
    q = "model.layers.0.self_attn.q_proj.weight"
    mask = sparse_diff(base, _nudged(base, {(q, 4): 1.0}), k=1)
    mask.save(str(tmp_path / "mask.safetensors"))
    mask = SparseDiff.load(str(tmp_path / "mask.safetensors"))
    assert mask.model == model_signature(base)
    for hidden in (16, 64):  # smaller and larger than the tiny model's
        other = tiny_model("llama", vocab_size=64, seed=4, hidden_size=hidden)
        state = _state(other)
        with pytest.raises(SparseMismatchError, match=r"mask.safetensors was made for another model"):
            sparse_diff(state, state, mask=mask)
        with pytest.raises(SparseMismatchError, match=r"mask.safetensors was made for another model"):
            apply_sparse_diffs(other, [mask])
        with pytest.raises(SparseMismatchError, match=r"mask.safetensors was made for another model"):
            restrict_training(other, mask)
        assert _state(other).keys() == state.keys() and all(torch.equal(_state(other)[k], state[k]) for k in state)
    apply_sparse_diffs(tiny_model("llama", vocab_size=64, seed=4).to(torch.bfloat16), [mask])  # same model: fine
    # a file without the signature (written before it was kept) still meets the shape and index checks
    legacy = SparseDiff({q: (torch.tensor([10**6]), torch.tensor([1.0]))}, {q: list(base[q].shape)})
    with pytest.raises(ValueError, match="indices reach 1000000"):
        apply_sparse_diffs(model, [legacy])
