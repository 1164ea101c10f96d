"""xSID: reading the shared release, gold answers, value placement (space-separated and CJK) and slot F1 with
known values, and the three paper-style commands end to end."""

import json

import pytest

from midalign.tasks import xsid
from midalign.tasks.xsid_cli import evaluate, export, pairs


def test_release_sizes_and_parallel_english(xsid_dir):
    sizes = {lang: len(xsid.load_xsid(lang, "test", xsid_dir)) for lang in xsid.XSID_LANGUAGES}
    assert sizes == {lang: 250 if lang == "ja" else 500 for lang in xsid.XSID_LANGUAGES}
    assert len(xsid.load_xsid("no", "test", xsid_dir, dialect=None)) == 5500
    en = xsid.load_xsid("en", "test", xsid_dir)
    de = xsid.load_xsid("de", "test", xsid_dir)
    assert de[0].text_en == en[0].text == "show all reminders" and de[0].text == "Zeige alle Erinnerungen"
    no = xsid.load_xsid("no", "test", xsid_dir)  # Bokmål, English original found through the id
    assert all(s.dialect == "B" for s in no)
    assert no[0].text_en == en[int(no[0].id.split("/")[0]) - 1].text
    assert len(xsid.load_xsid("ja", "valid", xsid_dir)) == 150


def test_gold_values_are_surface_text(xsid_dir):
    en = xsid.load_xsid("en", "valid", xsid_dir)
    assert xsid.gold_target(en[0]) == "weather/attribute: rain; datetime: today"
    assert xsid.gold_target(en[0], intent=True) == "intent: weather/find; weather/attribute: rain; datetime: today"
    zh = xsid.load_xsid("zh", "valid", xsid_dir)[0]
    assert zh.tokens[:2] == ["今天", "会"] and xsid.gold_target(zh) == "datetime: 今天; weather/attribute: 下雨"
    ja = xsid.load_xsid("ja", "test", xsid_dir)[0]  # 表 示 are two tokens of the word 表示
    assert ja.span_text(4, 6) == "表示"


def test_scores_known_values_with_cjk(xsid_dir):
    zh = xsid.load_xsid("zh", "valid", xsid_dir)[:2]  # gold: 今天/datetime 下雨/weather ; 今天/datetime 热/weather
    preds = [
        "datetime: 今天; weather/attribute: 下雨",  # both right
        "datetime: 今天会; weather/attribute: 热",  # first span too long (wrong), second right
    ]
    s = xsid.score_xsid(zh, preds)
    # 4 gold spans, 4 predicted spans, 3 correct -> P = R = F1 = 0.75
    assert (s.slot_precision, s.slot_recall, s.slot_f1) == (0.75, 0.75, 0.75)
    assert s.exact_match == 0.5 and s.unmatched_slots == 0
    s2 = xsid.score_xsid(zh, ["datetime: 明天", "None"])  # value not in the sentence: unmatched, tags nothing
    assert s2.slot_f1 == 0.0 and s2.unmatched_slots == 1


def test_scores_known_values_space_separated_and_intent(xsid_dir):
    en = xsid.load_xsid("en", "valid", xsid_dir)[:3]  # rain/today ; hot/today ; hot
    preds = [
        "intent: weather/find; weather/attribute: Rain; datetime: today",  # case-insensitive placement
        "intent: alarm/set_alarm; datetime: today",  # wrong intent, one of two slots
        "weather/attribute: hot; datetime: hot",  # second value already used: unmatched
    ]
    s = xsid.score_xsid(en, preds)
    # gold 5 spans; predicted placed 4, correct 4 -> P = 1, R = 0.8
    assert s.slot_precision == 1.0 and s.slot_recall == pytest.approx(0.8)
    assert s.slot_f1 == pytest.approx(2 * 0.8 / 1.8)
    assert s.unmatched_slots == 1
    assert s.intent_accuracy == pytest.approx(1 / 3)


def test_repeated_value_goes_to_the_leftmost_free_span():
    s = xsid.XsidSentence(
        id="1", lang="en", text="from today to today", intent="x", tokens="from today to today".split(),
        tags=["O", "B-datetime", "O", "B-datetime"], offsets=[(0, 4), (5, 10), (11, 13), (14, 19)], where="t:1",
    )  # fmt: skip
    tags, miss = xsid.prediction_tags(s, [("datetime", "today"), ("datetime", "today"), ("datetime", "today")])
    assert tags == ["O", "B-datetime", "O", "B-datetime"] and miss == 1


def test_errors_name_file_and_line(tmp_path, xsid_dir):
    bad = tmp_path / "de.test.conll"
    bad.write_text("# text = a b\n# intent = x\n1\ta\tx\tO\n2\tb\tx\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{bad}:4: expected 4 tab-separated columns"):
        xsid.load_xsid("de", "test", str(tmp_path))
    bad.write_text("# text = a b\n# intent = x\n1\ta\tx\tO\n2\tb\tx\tI-date\n", encoding="utf-8")
    with pytest.raises(ValueError, match=rf"{bad}:1: I-date does not continue"):
        xsid.load_xsid("de", "test", str(tmp_path))
    bad.write_text("# text = a c\n# intent = x\n1\ta\tx\tO\n2\tb\tx\tB-date\n", encoding="utf-8")
    (sent,) = xsid.load_xsid("de", "test", str(tmp_path))  # tokens disagree with the text: the tokens win
    assert sent.text == "a b" and sent.meta["text-original"] == "a c" and sent.slots() == [("date", "b")]
    with pytest.raises(ValueError, match="'fr' is not an xSID language"):
        xsid.load_xsid("fr", "test", xsid_dir)
    with pytest.raises(ValueError, match="--partition 'train'"):
        xsid.load_xsid("de", "train", xsid_dir)
    with pytest.raises(FileNotFoundError, match="no such directory"):
        xsid.load_xsid("de", "test", str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="empty input"):
        xsid.score_xsid([], [])


def test_eval_command_per_language_and_combined(tmp_path, xsid_dir):
    en = xsid.load_xsid("en", "test", xsid_dir)
    zh = xsid.load_xsid("zh", "test", xsid_dir)
    p_en, p_zh = tmp_path / "en.txt", tmp_path / "zh.txt"
    p_en.write_text("".join(xsid.gold_target(s) + "\n" for s in en), encoding="utf-8")  # perfect
    p_zh.write_text("None\n" * len(zh), encoding="utf-8")  # nothing found
    out = tmp_path / "scores.json"
    scores = evaluate(
        ["--pred-slots-file", f"{p_en},{p_zh}", "--lang", "en,zh", "--partition", "test", "--data-dir", xsid_dir,
         "--output", str(out)]
    )  # fmt: skip
    assert scores["per_language"]["en"]["slot_f1"] == 1.0 and scores["per_language"]["zh"]["slot_f1"] == 0.0
    assert scores["per_language"]["en"]["exact_match"] == 1.0
    n_en = sum(len(s.slots()) for s in en)
    n_zh = sum(len(s.slots()) for s in zh)
    assert scores["slot_recall"] == pytest.approx(n_en / (n_en + n_zh))
    assert json.loads(out.read_text())["slot_f1"] == scores["slot_f1"]
    p_en.write_text("None\n", encoding="utf-8")
    with pytest.raises(SystemExit, match="1 lines, but xSID en.test has 500"):
        evaluate(["--pred-slots-file", str(p_en), "--lang", "en", "--data-dir", xsid_dir])


def test_export_and_pairs(tmp_path, xsid_dir, tiny_model_dir):
    rows_path, pairs_path = tmp_path / "train.json", tmp_path / "pairs.json"
    n = export(["--lang", "en", "--data-dir", xsid_dir, "--model", tiny_model_dir, "--output", str(rows_path)])
    rows = [json.loads(line) for line in rows_path.read_text(encoding="utf-8").splitlines()]
    assert n == len(rows) == 300
    assert rows[0]["prefix"].endswith("<|im_start|>assistant\n") and "Is it going to rain today?" in rows[0]["prefix"]
    assert rows[0]["text"] == "weather/attribute: rain; datetime: today<|im_end|>"
    assert pairs(["--lang", "de,ja", "--data-dir", xsid_dir, "--output", str(pairs_path)]) == 450
    first = json.loads(pairs_path.read_text(encoding="utf-8").splitlines()[0])
    assert first == {
        "text_parallel_0": "Is it going to rain today?",
        "text_parallel_1": "Regnet es heute?",
        "lang": "de",
    }


@pytest.fixture(scope="module")
def plain_model_dir(tmp_path_factory, tiny_model_dir):
    """The tiny model with a tokenizer that has no chat template (a base model, as Gemma 3 270M)."""
    import shutil

    from transformers import AutoTokenizer

    path = tmp_path_factory.mktemp("tiny-plain")
    for name in ("config.json", "model.safetensors", "generation_config.json"):
        if (src := __import__("pathlib").Path(tiny_model_dir) / name).exists():
            shutil.copy(src, path / name)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    tok.chat_template = None
    tok.save_pretrained(path)
    (path / "chat_template.jinja").unlink(missing_ok=True)
    assert AutoTokenizer.from_pretrained(path).chat_template is None
    return str(path)


@pytest.mark.parametrize("template", ["chat", "plain"])
def test_three_paper_commands_end_to_end(tmp_path, xsid_dir, tiny_model_dir, plain_model_dir, template):
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT

    model = tiny_model_dir if template == "chat" else plain_model_dir
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out, preds, scores_path = tmp_path / "out.json", tmp_path / "preds.txt", tmp_path / "scores.json"
    common = ["--lang", "ja", "--partition", "valid", "--data-dir", xsid_dir]
    for cmd in (
        [sys.executable, "-m", "scripts.run_inference_xsid", "--base-model-name", model, *common,
         "--output-path", str(out), "--max-new-tokens", "3", "--batch-size", "50"],
        [sys.executable, "scripts/extract_json_output.py", str(out), str(preds)],
        [sys.executable, "-m", "scripts.eval_xsid", "--pred-slots-file", str(preds), *common,
         "--output", str(scores_path)],
    ):  # fmt: skip
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    gold = xsid.load_xsid("ja", "valid", xsid_dir)
    assert [r["id"] for r in rows] == [s.id for s in gold] and len(rows) == 150
    assert rows[0]["gold"] == xsid.gold_target(gold[0]) and rows[0]["utt"] == gold[0].text
    if template == "chat":
        assert rows[0]["prompt"].startswith("<|im_start|>system\n" + xsid.SYSTEM_PROMPT)
    else:
        assert rows[0]["prompt"] == f"{xsid.SYSTEM_PROMPT}\n\nInput: {gold[0].text}\nOutput:"
    scores = json.loads(scores_path.read_text())
    # the scores the command wrote are the scorer's on the extracted predictions
    expected = xsid.score_xsid(gold, preds.read_text(encoding="utf-8").splitlines())
    assert scores["n"] == 150 and scores["slot_f1"] == expected.slot_f1


def test_plain_format_training_rows_mask_the_prompt_exactly(plain_model_dir, xsid_dir):
    from midalign.data import IGNORE_INDEX, tokenize_task
    from midalign.inference.prompts import render_example
    from midalign.models import load_tokenizer

    tok = load_tokenizer(plain_model_dir)
    sent = xsid.load_xsid("en", "valid", xsid_dir)[0]
    row = render_example(tok, sent.text, xsid.gold_target(sent), xsid.SYSTEM_PROMPT)
    assert row["prefix"].endswith("\nOutput:") and row["text"] == f" {xsid.gold_target(sent)}{tok.eos_token}"
    feats = tokenize_task(tok, row["prefix"], row["text"], None)
    n_prompt = len(tok(row["prefix"])["input_ids"])
    assert feats["input_ids"][:n_prompt] == tok(row["prefix"])["input_ids"]
    target = [t for t in feats["labels"] if t != IGNORE_INDEX]
    assert tok.decode(target) == row["text"] and target[-1] == tok.eos_token_id


def test_sentence_span_counts_sum_to_the_corpus_f1():
    """Summed per-sentence span counts give exactly score_xsid's micro-F1 (so a bootstrap may resample sentences)."""
    from midalign.tasks import xsid
    from tests.conftest import ROOT

    sents = xsid.load_xsid("de", "test", str(ROOT / "tests" / "assets" / "xsid"))
    gold = [xsid.gold_target(s) for s in sents]
    preds = [gold[0], "None", gold[2].split(";")[0], "weather/attribute: regen; ;;", gold[4], "garbage"][: len(sents)]
    counts = xsid.sentence_span_counts(sents, preds)
    c, p, g = (sum(x[i] for x in counts) for i in range(3))
    assert g == sum(len(s.slots()) for s in sents) and 0 < c < g
    assert 2 * c / (p + g) == pytest.approx(xsid.score_xsid(sents, preds).slot_f1)
    assert counts[0][0] == counts[0][1] == counts[0][2]  # the gold answer: every span right


def test_export_with_a_bad_language_leaves_the_existing_output_alone(tmp_path, xsid_dir, tiny_model_dir):
    """Issue 31, item 4: every input is read before the output is written, and then whole (atomically): a bad
    language never replaces the user's file with a valid-looking partial one."""
    out = tmp_path / "existing.json"
    out.write_text("the user's file\n")
    common = ["--lang", "de,xx", "--data-dir", xsid_dir, "--output", str(out)]
    for command, argv in ((export, [*common, "--model", tiny_model_dir]), (pairs, common)):
        with pytest.raises((ValueError, FileNotFoundError), match="xx"):
            command(argv)
        assert out.read_text() == "the user's file\n" and not list(tmp_path.glob("*.tmp"))


def test_export_to_a_missing_directory_names_the_output_not_a_temp_file(tmp_path, xsid_dir, tiny_model_dir):
    """Issue 31, item 10: the error names the path the user gave (not ``x.jsonl.tmp``)."""
    out = tmp_path / "missing_dir" / "x.jsonl"
    with pytest.raises(FileNotFoundError, match=r"missing_dir/x\.jsonl: no such directory") as err:
        export(["--lang", "de", "--data-dir", xsid_dir, "--model", tiny_model_dir, "--output", str(out)])
    assert ".tmp" not in str(err.value)
