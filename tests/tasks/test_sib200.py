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


# --- midalign sib200 infer / eval / export / pairs ------------------------------------------------------------------


def _sib(argv):
    from midalign.cli import main

    main(["sib200", *argv])


def test_infer_then_eval_end_to_end_and_resume(tmp_path, tiny_model_dir, capsys):
    import json

    out = tmp_path / "de.jsonl"
    argv = ["infer", "--model", tiny_model_dir, "--lang", "deu_Latn", "--data-dir", SAMPLE, "--output-path", str(out),
            "--batch-size", "4"]  # fmt: skip
    _sib(argv)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 6 and rows[0]["id"].startswith("deu_Latn:") and len(rows[0]["scores"]) == 7
    before = out.read_text()
    _sib(argv)  # a second run finds every row done and rewrites nothing
    assert out.read_text() == before
    capsys.readouterr()
    scores_file = tmp_path / "s.json"
    _sib(["eval", "--predictions", str(out), "--lang", "deu_Latn", "--data-dir", SAMPLE, "--output",
          str(scores_file)])  # fmt: skip
    printed = json.loads(capsys.readouterr().out)
    # the accuracy eval prints is the share of rows whose best-scoring label is the gold one, counted here by hand
    labels = sib200.load_labels(SAMPLE)
    by_hand = sum(labels[r["prediction"]] == r["gold"] for r in rows) / len(rows)
    assert printed["accuracy"] == pytest.approx(by_hand) and printed["n"] == 6
    assert json.loads(scores_file.read_text()) == printed


def test_infer_refuses_another_languages_file(tmp_path, tiny_model_dir, capsys):
    out = str(tmp_path / "p.jsonl")
    base = ["infer", "--model", tiny_model_dir, "--data-dir", SAMPLE, "--output-path", out, "--limit", "2"]
    _sib([*base, "--lang", "deu_Latn"])
    before = open(out).read()
    with pytest.raises(SystemExit) as err:
        _sib([*base, "--lang", "zho_Hans"])
    assert err.value.code == 2 and "holds rows of another run" in capsys.readouterr().err
    assert open(out).read() == before  # nothing of the first run lost


def test_eval_reads_one_label_per_line_and_names_bad_lines(tmp_path, capsys):
    import json

    gold = [e.category for e in sib200.load_sib200("eng_Latn", "test", SAMPLE)]
    pred = gold[:5] + ["travel" if gold[5] != "travel" else "sports"]
    f = tmp_path / "p.txt"
    f.write_text("\n".join(pred) + "\n")
    _sib(["eval", "--predictions", str(f), "--data-dir", SAMPLE])
    assert json.loads(capsys.readouterr().out)["accuracy"] == pytest.approx(5 / 6)
    f.write_text("\n".join(gold[:2] + ["cooking"] + gold[3:]) + "\n")
    with pytest.raises(SystemExit) as err:
        _sib(["eval", "--predictions", str(f), "--data-dir", SAMPLE])
    assert err.value.code == 2
    assert f"{f}:3: 'cooking' is not a label" in capsys.readouterr().err
    f.write_text("\n".join(gold[:3]) + "\n")
    with pytest.raises(SystemExit):
        _sib(["eval", "--predictions", str(f), "--data-dir", SAMPLE])
    assert "3 lines, but the split has 6 items" in capsys.readouterr().err


def test_eval_pools_languages_and_checks_ids(tmp_path, capsys):
    import json

    files = []
    for lang in ("deu_Latn", "zho_Hans"):
        ex = sib200.load_sib200(lang, "test", SAMPLE)
        rows = [{"id": f"{lang}:{e.index_id}", "prediction": e.category} for e in ex]
        files.append(str(tmp_path / f"{lang}.jsonl"))
        (tmp_path / f"{lang}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    _sib(["eval", "--predictions", ",".join(files), "--lang", "deu_Latn,zho_Hans", "--data-dir", SAMPLE])
    out = json.loads(capsys.readouterr().out)
    assert out["accuracy"] == 1.0 and out["n"] == 12 and set(out["per_language"]) == {"deu_Latn", "zho_Hans"}
    with pytest.raises(SystemExit):  # German predictions scored as Arabic: ids do not match
        _sib(["eval", "--predictions", files[0], "--lang", "arb_Arab", "--data-dir", SAMPLE])
    assert "no prediction for 6 of 6 items of arb_Arab" in capsys.readouterr().err


def test_pairs_by_index_id_and_export(tmp_path, tiny_model_dir):
    import json

    out = tmp_path / "pairs.jsonl"
    _sib(["pairs", "--lang", "deu_Latn,zho_Hans", "--data-dir", SAMPLE, "--output", str(out)])
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    en = {e.text: e.index_id for e in sib200.load_sib200("eng_Latn", "train", SAMPLE)}
    de = {e.index_id: e.text for e in sib200.load_sib200("deu_Latn", "train", SAMPLE)}
    assert len(rows) == 16 and {r["lang"] for r in rows} == {"deu_Latn", "zho_Hans"}
    for r in rows:
        if r["lang"] == "deu_Latn":
            assert de[en[r["text_parallel_0"]]] == r["text_parallel_1"]  # the same sentence, by index_id
    assert [r["lang"] for r in rows] != sorted(r["lang"] for r in rows)  # shuffled across languages
    train = tmp_path / "train.jsonl"
    _sib(["export", "--lang", "eng_Latn", "--data-dir", SAMPLE, "--model", tiny_model_dir, "--output", str(train)])
    first = json.loads(train.read_text().splitlines()[0])
    assert set(first) == {"prefix", "text"}
    assert first["text"].strip().split("<")[0].strip() in sib200.load_labels(SAMPLE)


def test_infer_refuses_to_resume_over_new_weights_at_the_same_path(tmp_path, tiny_model_dir, tokenizer, capsys):
    """Issue 31, item 3: the base model is fingerprinted by content, not only by path: new weights saved where the
    old ones were make a resume refused (not rows 1-3 of the old weights and 4-6 of the new)."""
    import shutil

    from midalign.models import tiny_model
    from midalign.models.loading import model_fingerprint

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    out = tmp_path / "de.jsonl"
    argv = ["infer", "--model", str(model_dir), "--lang", "deu_Latn", "--data-dir", SAMPLE, "--output-path", str(out),
            "--batch-size", "4"]  # fmt: skip
    _sib(argv)
    out.write_text("".join(out.read_text().splitlines(keepends=True)[:3]))  # an interrupted run: 3 of 6 rows
    before, fingerprint = out.read_text(), model_fingerprint(str(model_dir))
    assert fingerprint.startswith("sha256:") and model_fingerprint("owner/name") == "owner/name"
    new = tiny_model("llama", vocab_size=len(tokenizer), num_layers=4, seed=1)  # other weights (the fingerprint
    # is a function of content: the same weights saved again keep it)
    new.config.pad_token_id = tokenizer.pad_token_id
    new.save_pretrained(model_dir)  # new weights, same path, same shapes
    assert model_fingerprint(str(model_dir)) != fingerprint
    capsys.readouterr()
    with pytest.raises(SystemExit) as err:
        _sib(argv)
    assert err.value.code == 2 and "base_model_fingerprint" in capsys.readouterr().err
    assert out.read_text() == before


def test_a_model_fingerprint_is_a_function_of_content_only(tmp_path, tiny_model_dir):
    """The same weights prepared again (another directory, another day, with or without HF_HUB_OFFLINE, which
    transformers records as local_files_only) keep their fingerprint: a preregistered plan that fixes it can be run
    on the next machine."""
    import json
    import os
    import shutil

    from midalign.models.loading import model_fingerprint

    copy = tmp_path / "again"
    shutil.copytree(tiny_model_dir, copy)
    for f in copy.iterdir():
        os.utime(f, (1, 1))
    tok = copy / "tokenizer_config.json"
    cfg = json.loads(tok.read_text())
    tok.write_text(json.dumps({**cfg, "local_files_only": not cfg.get("local_files_only", False)}, indent=4))
    assert model_fingerprint(str(copy)) == model_fingerprint(tiny_model_dir)
    conf = copy / "config.json"
    conf.write_text(json.dumps({**json.loads(conf.read_text()), "rms_norm_eps": 0.5}))
    assert model_fingerprint(str(copy)) != model_fingerprint(tiny_model_dir)


def test_export_to_a_missing_directory_names_the_output(tmp_path, tiny_model_dir, capsys):
    """Issue 31, item 10: ``--output missing_dir/x.jsonl`` is named as given (not ``x.jsonl.tmp``), one line."""
    out = tmp_path / "missing_dir" / "x.jsonl"
    with pytest.raises(SystemExit) as err:
        _sib(["export", "--lang", "eng_Latn", "--data-dir", SAMPLE, "--model", tiny_model_dir, "--output", str(out)])
    message = str(err.value.code)  # FileNotFoundError: the CLI exits with the one line
    assert "missing_dir/x.jsonl: no such directory" in message and ".tmp" not in message


def test_eval_of_a_directory_is_one_line(tmp_path, capsys):
    """Issue 31, item 10: ``--predictions <a directory>`` is one clear line, exit 2 (not IsADirectoryError)."""
    with pytest.raises(SystemExit) as err:
        _sib(["eval", "--predictions", str(tmp_path), "--lang", "deu_Latn", "--data-dir", SAMPLE])
    assert err.value.code == 2 and f"--predictions {tmp_path}: a directory" in capsys.readouterr().err
