"""Label scoring: equal to the naive full-sequence log-likelihood on every tiny architecture; resumable file."""

import json

import pytest
import torch
import torch.nn.functional as F

from midalign.data.processing import tokenize_task
from midalign.inference.scoring import run_scoring, score_continuations
from midalign.models import tiny_model

PREFIXES = ["Input: the cat sat\nOutput:", "Input: a much longer sentence about the weather tomorrow\nOutput:", "x"]
LABELS = [" sports</s>", " science/technology</s>", " travel</s>"]


def _naive(model, tokenizer, prefix, text):
    feats = tokenize_task(tokenizer, prefix, text, None)
    ids = torch.tensor([feats["input_ids"]])
    labels = torch.tensor([feats["labels"]])
    with torch.no_grad():
        logp = F.log_softmax(model(input_ids=ids).logits[0, :-1].float(), -1)
    tgt = labels[0, 1:]
    keep = tgt.ne(-100)
    return logp[keep].gather(1, tgt[keep, None]).sum().item()


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma3_text"])
@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_scores_equal_the_naive_likelihood(tokenizer, arch, batch_size):
    model = tiny_model(arch, vocab_size=len(tokenizer), seed=0).eval()
    got = score_continuations(model, tokenizer, PREFIXES, LABELS, batch_size=batch_size)
    want = torch.tensor([[_naive(model, tokenizer, p, t) for t in LABELS] for p in PREFIXES])
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_run_scoring_resumes_and_refuses_another_run(tmp_path, tokenizer):
    model = tiny_model("llama", vocab_size=len(tokenizer), seed=0).eval()
    rows = [{"id": i, "prompt": p} for i, p in enumerate(PREFIXES)]
    path = str(tmp_path / "pred.jsonl")
    full = run_scoring(model, tokenizer, rows, LABELS, path, batch_size=2, provenance={"model": "m"})
    # a killed run: keep the first batch (2 rows, tagged) and a torn line
    lines = [json.dumps({**full[0], "_batch": 0, "_batch_len": 2}), json.dumps({**full[1], "_batch": 0,
             "_batch_len": 2}), '{"id": 2, "pro']  # fmt: skip
    (tmp_path / "pred.jsonl").write_text("\n".join(lines))
    again = run_scoring(model, tokenizer, rows, LABELS, path, batch_size=2, provenance={"model": "m"})
    assert [r["prediction"] for r in again] == [r["prediction"] for r in full]
    assert len(open(path).read().splitlines()) == 3
    with pytest.raises(ValueError, match="made by another run"):
        run_scoring(model, tokenizer, rows, LABELS, path, batch_size=2, provenance={"model": "other"})
    with pytest.raises(ValueError, match="batch-size"):
        score_continuations(model, tokenizer, PREFIXES, LABELS, batch_size=0)
