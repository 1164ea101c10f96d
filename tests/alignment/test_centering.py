"""Centering remedies: hand-computed values, gradients through the batch mean, statistics, fp32 pooling."""

import pytest
import torch

from midalign.alignment import PooledStats, alignment_loss, center, pool, stats_from_pooled


def test_batch_center_subtracts_each_sides_own_mean():
    p = torch.tensor([[1.0, 2.0], [3.0, 6.0]])
    assert torch.equal(center(p, "batch"), torch.tensor([[-1.0, -2.0], [1.0, 2.0]]))
    assert center(p, "none") is p


def test_fixed_and_standardize_use_the_side_row():
    stats = PooledStats(mean=torch.tensor([[1.0, 1.0], [10.0, 20.0]]), std=torch.tensor([[1.0, 1.0], [2.0, 4.0]]),
                        count=4)  # fmt: skip
    p = torch.tensor([[12.0, 28.0]])
    assert torch.equal(center(p, "fixed", 1, stats), torch.tensor([[2.0, 8.0]]))
    assert torch.equal(center(p, "standardize", 1, stats), torch.tensor([[1.0, 2.0]]))
    assert torch.equal(center(p, "fixed", 0, stats), torch.tensor([[11.0, 27.0]]))
    with pytest.raises(ValueError, match="needs statistics"):
        center(p, "fixed")
    with pytest.raises(ValueError, match="unknown centering"):
        center(p, "whiten")


def test_stats_match_torch_and_round_trip(tmp_path):
    g = torch.Generator().manual_seed(0)
    p0, p1 = torch.randn(9, 5, generator=g), torch.randn(9, 5, generator=g) + 3
    s = stats_from_pooled(p0, p1)
    torch.testing.assert_close(s.mean, torch.stack([p0.mean(0), p1.mean(0)]))
    torch.testing.assert_close(s.std, torch.stack([p0.std(0), p1.std(0)]))
    s.save(str(tmp_path / "s.safetensors"))
    back = PooledStats.load(str(tmp_path / "s.safetensors"))
    assert back.count == 9 and torch.equal(back.mean, s.mean) and torch.equal(back.std, s.std)
    with pytest.raises(FloatingPointError):
        stats_from_pooled(torch.full((3, 2), float("nan")), p1[:3, :2])


def test_centering_turns_an_anisotropic_batch_into_a_signal():
    # A shared direction of norm 1000 plus small sentence-specific parts: the paper's loss sits at ln B, centred
    # it sees the pairs (hand-made: partner = same small part).
    g = torch.Generator().manual_seed(0)
    small = torch.randn(8, 16, generator=g)
    shared = torch.zeros(16)
    shared[0] = 1000.0
    p0, p1 = shared + small, shared + small + 0.01 * torch.randn(8, 16, generator=g)
    raw = alignment_loss(p0, p1)
    centred = alignment_loss(center(p0, "batch"), center(p1, "batch"))
    assert abs(raw.item() - torch.log(torch.tensor(8.0)).item()) < 0.01
    assert centred.item() < 0.5


def test_batch_center_gradient_goes_through_the_mean():
    p = torch.randn(4, 3, requires_grad=True)
    center(p, "batch").sum().backward()  # sum of centred rows is 0 whatever p: zero gradient
    torch.testing.assert_close(p.grad, torch.zeros(4, 3))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_pooling_sums_in_float32_whatever_the_model_dtype(dtype):
    # Gemma 3 style: one massive dimension (2e4, fine for fp16 per token, not summed over 8 tokens) + small parts.
    g = torch.Generator().manual_seed(0)
    h = torch.randn(2, 8, 4, generator=g)
    h[..., 0] = 2e4
    low = h.to(dtype)
    pooled = pool(low, None, "mean")
    assert pooled.dtype == torch.float32
    assert torch.isfinite(pooled).all()
    torch.testing.assert_close(pooled, low.float().mean(dim=1))  # exactly the fp32 mean of the same values
