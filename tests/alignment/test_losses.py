import math

import pytest
import torch

from midalign import alignment_loss, retrieval_accuracy
from midalign.alignment import similarity_matrix

P0 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
P1 = torch.tensor([[1.0, 0.1], [0.2, 1.0], [-1.0, 1.0]])


def _cos(u, v):
    return sum(a * b for a, b in zip(u, v)) / math.sqrt(sum(a * a for a in u) * sum(b * b for b in v))


def _reference(p0, p1, tau, sim, direction):
    """Hand-written loops: logits[a][b] = sim(p0[b], p1[a]) / tau."""
    p0, p1 = p0.tolist(), p1.tolist()
    n = len(p0)
    logits = [[sim(p0[b], p1[a]) / tau for b in range(n)] for a in range(n)]

    def col_term(b):  # log softmax over a (dim 0) at [b, b]
        return logits[b][b] - math.log(sum(math.exp(logits[a][b]) for a in range(n)))

    def row_term(a):  # log softmax over b (dim 1) at [a, a]
        return logits[a][a] - math.log(sum(math.exp(logits[a][b]) for b in range(n)))

    paper = -sum(col_term(b) for b in range(n)) / n
    if direction == "paper":
        return paper
    return 0.5 * (paper - sum(row_term(a) for a in range(n)) / n)


def _neg_sq(u, v):
    return -sum((a - b) ** 2 for a, b in zip(u, v))


@pytest.mark.parametrize("direction", ["paper", "symmetric"])
@pytest.mark.parametrize("distance,sim", [("cosine", _cos), ("l2", _neg_sq)])
@pytest.mark.parametrize("tau", [0.1, 1.0])
def test_matches_hand_computed(direction, distance, sim, tau):
    got = alignment_loss(P0, P1, temperature=tau, distance=distance, direction=direction)
    assert got.item() == pytest.approx(_reference(P0, P1, tau, sim, direction), rel=1e-5)


def test_paper_direction_is_softmax_over_dim0_not_dim1():
    # The paper loss is not symmetric in its arguments: swapping p0 and p1 changes it for this data.
    a = alignment_loss(P0, P1).item()
    b = alignment_loss(P1, P0).item()
    assert a != pytest.approx(b)
    logits = similarity_matrix(P0, P1, temperature=0.1)
    assert logits[0, 1].item() == pytest.approx(_cos(P0[1].tolist(), P1[0].tolist()) / 0.1, rel=1e-6)


def test_weight_scales():
    assert alignment_loss(P0, P1, weight=2.5).item() == pytest.approx(2.5 * alignment_loss(P0, P1).item())


def test_detach_target_stops_gradient_through_p1():
    p0, p1 = P0.clone().requires_grad_(), P1.clone().requires_grad_()
    alignment_loss(p0, p1, detach_target=True).backward()
    assert p0.grad is not None and p0.grad.abs().sum() > 0
    assert p1.grad is None
    p0, p1 = P0.clone().requires_grad_(), P1.clone().requires_grad_()
    alignment_loss(p0, p1).backward()
    assert p1.grad.abs().sum() > 0


def test_computed_in_float32_for_bf16_inputs():
    got = alignment_loss(P0.bfloat16(), P1.bfloat16())
    assert got.dtype == torch.float32


def test_retrieval_accuracy():
    assert retrieval_accuracy(P0, P0 + 0.01).item() == 1.0
    assert retrieval_accuracy(P0, P1.flip(0)).item() == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    "p0,p1,kwargs,match",
    [
        (torch.ones(1, 4), torch.ones(1, 4), {}, "B=1"),
        (torch.ones(2, 4), torch.ones(3, 4), {}, "same shape"),
        (torch.ones(2, 4), torch.ones(2, 4), {"temperature": 0.0}, "temperature"),
        (torch.ones(2, 4), torch.ones(2, 4), {"distance": "dot"}, "unknown distance"),
        (torch.ones(2, 4), torch.ones(2, 4), {"direction": "reverse"}, "unknown direction"),
    ],
)
def test_errors(p0, p1, kwargs, match):
    with pytest.raises(ValueError, match=match):
        alignment_loss(p0, p1, **kwargs)
