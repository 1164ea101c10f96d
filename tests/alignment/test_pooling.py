import pytest
import torch

from midalign import pool


def test_mean_ignores_padding():
    h = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    m = torch.tensor([[1, 1, 0]])
    assert torch.equal(pool(h, m, "mean"), torch.tensor([[2.0, 3.0]]))


def test_bos_takes_first_real_token_with_left_or_right_padding():
    h = torch.arange(12.0).reshape(2, 3, 2)
    right = torch.tensor([[1, 1, 0], [1, 1, 1]])
    left = torch.tensor([[0, 1, 1], [1, 1, 1]])
    assert torch.equal(pool(h, right, "bos"), torch.stack([h[0, 0], h[1, 0]]))
    assert torch.equal(pool(h, left, "bos"), torch.stack([h[0, 1], h[1, 0]]))


def test_no_mask_means_all_tokens():
    h = torch.randn(2, 4, 3)
    assert torch.allclose(pool(h), h.mean(1))


@pytest.mark.parametrize(
    "hidden,mask,mode,match",
    [
        (torch.zeros(2, 3), None, "mean", r"\[B, T, H\]"),
        (torch.zeros(2, 3, 4), torch.ones(2, 4), "mean", "does not match"),
        (torch.zeros(2, 3, 4), torch.ones(2, 3), "max", "unknown mode 'max'"),
    ],
)
def test_errors(hidden, mask, mode, match):
    with pytest.raises(ValueError, match=match):
        pool(hidden, mask, mode)


def test_mean_skip_first_drops_the_first_real_token():
    h = torch.tensor(
        [
            [[1000.0, 0.0], [1.0, 2.0], [3.0, 4.0]],
            [[9.0, 9.0], [500.0, 0.0], [5.0, 6.0]],
            [[7.0, 8.0], [0.0, 0.0], [0.0, 0.0]],
        ]
    )
    m = torch.tensor([[1, 1, 1], [0, 1, 1], [1, 0, 0]])  # right, left padding, one-token sentence
    got = pool(h, m, "mean_skip_first")
    assert torch.equal(got, torch.tensor([[2.0, 3.0], [5.0, 6.0], [7.0, 8.0]]))
