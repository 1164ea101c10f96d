"""SIB-200 reader and scorer on the committed sample (tests/assets/sib200), plus label-scoring prediction."""

import pytest

from midalign.tasks import sib200
from tests.conftest import ROOT

SAMPLE = str(ROOT / "tests" / "assets" / "sib200")


def test_reader_reads_the_release_layout():
    assert sib200.available_languages(SAMPLE) == ["arb_Arab", "deu_Latn", "eng_Latn", "zho_Hans"]
    assert len(sib200.load_labels(SAMPLE)) == 7
    en = sib200.load_sib200("eng_Latn", "test", SAMPLE)
    zh = sib200.load_sib200("zho_Hans", "test", SAMPLE)
    assert len(en) == 6 and [e.index_id for e in en] == [z.index_id for z in zh]  # parallel by index_id
    assert en[0].category == zh[0].category and en[0].text != zh[0].text
    assert len(sib200.load_sib200("deu_Latn", "train", SAMPLE)) == 8


def test_missing_language_lists_what_is_there():
    with pytest.raises(ValueError, match="'fra_Latn' is not in .*there: arb_Arab, deu_Latn, eng_Latn, zho_Hans"):
        sib200.load_sib200("fra_Latn", "test", SAMPLE)


def test_missing_data_dir_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.delenv("MIDALIGN_SIB200_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match="give --data-dir"):
        sib200.resolve_data_dir(None)
    with pytest.raises(FileNotFoundError, match="no SIB-200 language folders"):
        sib200.resolve_data_dir(str(tmp_path))


def test_bad_rows_name_file_and_line(tmp_path):
    d = tmp_path / "xx_Latn"
    d.mkdir()
    (d / "labels.txt").write_text("sports\ntravel\n")
    for s in ("train", "dev"):
        (d / f"{s}.tsv").write_text("index_id\tcategory\ttext\n")
    (d / "test.tsv").write_text("index_id\tcategory\ttext\n1\tsports\tok\n2\tcooking\tbad\n")
    with pytest.raises(ValueError, match=r"test.tsv:3: category 'cooking'"):
        sib200.load_sib200("xx_Latn", "test", str(tmp_path))
    (d / "test.tsv").write_bytes("index_id\tcategory\ttext\n1\tsports\tcaf\xe9\n".encode("latin-1"))
    with pytest.raises(ValueError, match="test.tsv: not UTF-8"):
        sib200.load_sib200("xx_Latn", "test", str(tmp_path))


def test_scores_by_hand():
    gold = ["a", "a", "b", "c"]
    pred = ["a", "b", "b", "b"]
    s = sib200.score_sib(gold, pred, ["a", "b", "c"])
    # a: tp 1, gold 2, pred 1 -> 2/3; b: tp 1, gold 1, pred 3 -> 1/2; c: 0
    assert s["accuracy"] == 0.5
    assert s["macro_f1"] == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)
    with pytest.raises(ValueError):
        sib200.score_sib(["a"], [])


def test_predict_by_label_scoring_is_resumable(tmp_path, tokenizer):
    from midalign.models import tiny_model

    model = tiny_model("llama", vocab_size=len(tokenizer), seed=0).eval()
    labels = sib200.load_labels(SAMPLE)
    ex = sib200.load_sib200("deu_Latn", "test", SAMPLE)
    out = str(tmp_path / "p.jsonl")
    first = sib200.predict(model, tokenizer, ex, labels, out, batch_size=4, provenance={"m": 1})
    assert len(first) == 6 and set(first) <= set(labels)
    assert sib200.predict(model, tokenizer, ex, labels, out, batch_size=4, provenance={"m": 1}) == first
    rows = sib200.task_rows(tokenizer, ex[:1])
    assert rows[0]["text"].strip().startswith("science/technology")
