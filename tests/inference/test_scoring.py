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


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma3_text"])
def test_the_lm_head_sees_only_real_continuation_positions(tokenizer, arch):
    # labels of different lengths: the continuation pass pads them; the head must run on the real positions only
    model = tiny_model(arch, vocab_size=len(tokenizer), seed=0).eval()
    if arch == "gemma3_text":
        model.config.final_logit_softcapping = 5.0  # the head's output transform must still apply
    head_rows = []
    handle = model.get_output_embeddings().register_forward_hook(
        lambda m, args, out: head_rows.append(args[0].reshape(-1, args[0].shape[-1]).shape[0])
    )
    got = score_continuations(model, tokenizer, PREFIXES, LABELS, batch_size=8, prefix_cache=False)
    handle.remove()
    want = torch.tensor([[_naive(model, tokenizer, p, t) for t in LABELS] for p in PREFIXES])
    torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    conts = [len(tokenize_task(tokenizer, PREFIXES[0], t, None)["input_ids"])
             - len(tokenizer(PREFIXES[0])["input_ids"]) for t in LABELS]  # fmt: skip
    real = len(PREFIXES) * sum(c - 1 for c in conts)  # positions predicting a label's 2nd.. token
    # the prompts' last positions, then the real positions only (in one batch, or one per prompt where the tiny
    # model's sliding window forces batches of one)
    assert sum(head_rows) == len(PREFIXES) + real
    assert real < len(PREFIXES) * len(LABELS) * (max(conts) - 1)  # padding existed and was skipped


def test_first_token_scoring_is_an_explicit_option_recorded_in_the_file(tmp_path, tokenizer):
    model = tiny_model("llama", vocab_size=len(tokenizer), seed=0).eval()
    got = score_continuations(model, tokenizer, PREFIXES, LABELS, method="first_token")
    for i, p in enumerate(PREFIXES):
        prompt = tokenizer(p)["input_ids"]
        with torch.no_grad():
            logp = F.log_softmax(model(input_ids=torch.tensor([prompt])).logits[0, -1].float(), -1)
        for j, t in enumerate(LABELS):
            first = tokenize_task(tokenizer, p, t, None)["input_ids"][len(prompt)]
            assert got[i, j].item() == pytest.approx(logp[first].item(), abs=1e-4)
    rows = [{"id": i, "prompt": p} for i, p in enumerate(PREFIXES)]
    path = str(tmp_path / "pred.jsonl")
    run_scoring(model, tokenizer, rows, LABELS, path, method="first_token")
    with pytest.raises(ValueError, match="made by another run"):  # exact scoring never resumes a shortcut's file
        run_scoring(model, tokenizer, rows, LABELS, path)
    with pytest.raises(ValueError, match="scoring method"):
        score_continuations(model, tokenizer, PREFIXES, LABELS, method="fast")
