import json
import math

import pytest
import torch

from midalign.analysis import facts as F
from midalign.analysis.cli import main as analyze_main
from midalign.models import tiny_model
from tests.conftest import ROOT


def _write(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return str(path)


FACT = {
    "id": "capital/France",
    "relation": "capital",
    "answer": 0,
    "sentences": {
        "en": ["Paris is it.", "Rome is it.", "Oslo is it."],
        "de": ["Paris ist es.", "Rom ist es.", "Oslo."],
    },
}


def test_shipped_facts_load():
    rows = F.load_facts(str(ROOT / "data_example" / "facts.jsonl"))
    assert len(rows) == 32 and {r["relation"] for r in rows} == {"capital", "official_language", "continent"}
    assert all(sorted(r["sentences"]) == ["de", "en", "es", "fr", "ru", "zh"] for r in rows)
    assert F.load_facts(str(ROOT / "data_example" / "facts.jsonl"), ["zh", "en"])[0]["sentences"].keys() == {"zh", "en"}


@pytest.mark.parametrize(
    "bad, message",
    [
        ({**FACT, "answer": 3}, r"x.jsonl:2: 'answer' must index the candidates \(0..2\)"),
        ({**FACT, "sentences": {"en": ["a", "b"], "de": ["a", "b", "c"]}}, "x.jsonl:2: every language needs the same"),
        ({**FACT, "sentences": {"en": ["a"]}}, "x.jsonl:2: every language needs the same number"),
        ({"id": "x"}, "x.jsonl:2: needs 'sentences'"),
    ],
)
def test_bad_facts_name_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path / "x.jsonl", [FACT, bad])
    with pytest.raises(ValueError, match=message):
        F.load_facts(path)


def test_missing_language_is_an_error(tmp_path):
    with pytest.raises(ValueError, match=r"x.jsonl:1: no sentences for \['fr'\]"):
        F.load_facts(_write(tmp_path / "x.jsonl", [FACT]), ["en", "fr"])


def test_sentence_logprobs_equal_one_sentence_at_a_time(tokenizer):
    model = tiny_model("llama", vocab_size=len(tokenizer), seed=2).eval()
    sentences = ["the capital of france is paris.", "a", "zehn kleine wörter in einer langen reihe hier und da"]
    got_sum = F.sentence_logprobs(model, tokenizer, sentences, batch_size=2)
    got_mean = F.sentence_logprobs(model, tokenizer, sentences, batch_size=3, reduce="mean")
    for s, total, mean in zip(sentences, got_sum, got_mean):
        ids = torch.tensor([tokenizer(s)["input_ids"]])
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=ids).logits[0, :-1], -1)
        want = logp.gather(-1, ids[0, 1:, None]).sum().item()
        assert total == pytest.approx(want, abs=1e-4)
        assert mean == pytest.approx(want / max(ids.shape[1] - 1, 1), abs=1e-4)


def test_rankc_by_hand():
    assert F.rankc([2, 0, 1], [2, 0, 1]) == pytest.approx(1.0)
    # N = 2, swapped: P@1 = 0, P@2 = 1, weights e^1 and e^0 normalised
    assert F.rankc([0, 1], [1, 0]) == pytest.approx(1 / (math.e + 1))
    with pytest.raises(ValueError):
        F.rankc([0, 1], [0, 2])


def test_probe_metrics_against_hand_counts(monkeypatch):
    facts = [
        {"id": "a", "relation": "r1", "answer": 0, "sentences": {"en": ["x0", "x1", "x2"], "de": ["y0", "y1", "y2"]}},
        {"id": "b", "relation": "r2", "answer": 2, "sentences": {"en": ["x0", "x1", "x2"], "de": ["y0", "y1", "y2"]}},
    ]
    # en: fact a ranks 0>1>2 (right), fact b ranks 0>2>1 (answer 2nd); de: a ranks 1>0>2 (answer 2nd), b 0>2>1
    scores = {("a", "en"): [3, 2, 1], ("b", "en"): [3, 1, 2], ("a", "de"): [2, 3, 1], ("b", "de"): [3, 1, 2]}
    flat = [s for f in facts for lang in ("en", "de") for s in scores[(f["id"], lang)]]
    monkeypatch.setattr(F, "sentence_logprobs", lambda *a, **k: [float(x) for x in flat])
    res = F.probe_facts(None, None, facts)
    assert res["languages"]["en"]["accuracy"] == 0.5 and res["languages"]["en"]["mrr"] == pytest.approx(0.75)
    assert res["languages"]["de"]["accuracy"] == 0.0 and res["languages"]["de"]["mrr"] == pytest.approx(0.5)
    assert res["languages"]["en"]["accuracy_by_relation"] == {"r1": 1.0, "r2": 0.0}
    pair = res["pairs"]["en-de"]
    assert pair["top1_agreement"] == 0.5  # fact b: both rank candidate 0 first (wrongly)
    want_a = F.rankc([0, 1, 2], [1, 0, 2])
    assert pair["rankc"] == pytest.approx((want_a + 1.0) / 2)
    assert res["rankings"]["b"] == {"en": [0, 2, 1], "de": [0, 2, 1]}


def test_cli_on_a_tiny_model(tmp_path, tiny_model_dir):
    path = _write(tmp_path / "facts.jsonl", [FACT, {**FACT, "id": "f2", "answer": 1}])
    out = analyze_main(
        ["facts", "--model", tiny_model_dir, "--input", path, "--output-dir", str(tmp_path / "o"), "--name", "t"]
    )
    assert set(out) == {"base"} and out["base"]["n_facts"] == 2
    saved = json.loads((tmp_path / "o" / "t.json").read_text())
    assert saved["series"]["base"]["pairs"]["en-de"].keys() == {"top1_agreement", "rankc"}
    assert (tmp_path / "o" / "t.csv").read_text().startswith("series,language,accuracy,mrr")
