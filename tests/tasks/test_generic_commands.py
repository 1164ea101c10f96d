"""A task is one spec: NusaX-Senti, added as one ``csv_label_task`` call, runs through the generic commands
``midalign infer|eval|export|pairs --task NAME`` on the committed sample, and generation tasks are reached through
the same verbs."""

import csv
import json
import shutil

import pytest

from midalign.tasks.spec import get_label_task
from tests.conftest import ROOT

NUSAX = str(ROOT / "data_example" / "nusax")


def _run(argv):
    from midalign.cli import main

    main(argv)


def test_nusax_sample_is_parallel_stratified_and_licensed():
    task = get_label_task("nusax")
    assert task.languages(NUSAX) == ["english", "indonesian", "javanese", "sundanese"]
    assert task.labels(NUSAX) == ["negative", "neutral", "positive"] and task.splits == ("train", "dev", "test")
    for split, n in (("train", 24), ("dev", 9), ("test", 24)):
        en = task.load("english", split, NUSAX)
        assert len(en) == n
        for lang in ("indonesian", "javanese", "sundanese"):
            other = task.load(lang, split, NUSAX)
            # the same ids and labels in every language, and the text is a translation (not a copy)
            assert [(x.id, x.label) for x in other] == [(x.id, x.label) for x in en]
            assert sum(x.text != y.text for x, y in zip(other, en)) == n
    test = task.load("english", "test", NUSAX)
    assert {lab: sum(x.label == lab for x in test) for lab in task.labels(NUSAX)} == {
        "negative": 9,
        "neutral": 6,
        "positive": 9,
    }  # fmt: skip  (the release's 153:96:151 of 400, stratified)
    assert "Attribution-ShareAlike 4.0" in (ROOT / "data_example" / "nusax" / "LICENSE").read_text()


def _copy(tmp_path):
    data = tmp_path / "nusax"
    shutil.copytree(NUSAX, data)
    return data


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda rows: rows.__setitem__(3, [rows[3][0], rows[3][1], "angry"]), ":4: label 'angry' is not one of"),
        (lambda rows: rows.__setitem__(5, [rows[2][0], rows[5][1], rows[5][2]]), ":6: id '{id}' repeats line 3"),
        (lambda rows: rows.__setitem__(0, ["id", "sentence", "label"]), ":1: no column 'text' in the header"),
        (lambda rows: rows.__setitem__(2, [rows[2][0], "  ", rows[2][2]]), ":3: empty 'id' or 'text'"),
    ],
)
def test_bad_rows_are_one_error_naming_file_and_line(tmp_path, edit, message):
    data = _copy(tmp_path)
    path = data / "javanese" / "test.csv"
    with open(path, encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    repeated = rows[2][0]
    edit(rows)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    with pytest.raises(ValueError) as err:
        get_label_task("nusax").load("javanese", "test", str(data))
    assert str(err.value).startswith(str(path)) and message.format(id=repeated) in str(err.value)


def test_missing_data_and_language_are_clear_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MIDALIGN_NUSAX_DIR", raising=False)
    task = get_label_task("nusax")
    with pytest.raises(FileNotFoundError, match=r"give --data-dir .* or set \$MIDALIGN_NUSAX_DIR"):
        task.resolve_data_dir(None)
    with pytest.raises(FileNotFoundError, match="no nusax language folders there"):
        task.resolve_data_dir(str(tmp_path))
    with pytest.raises(ValueError, match="'balinese' is not in .*; there: english, indonesian"):
        task.load("balinese", "test", NUSAX)
    with pytest.raises(SystemExit) as err:
        _run(["infer", "--task", "nope"])
    assert err.value.code == 2 and "--task 'nope': choose one of" in capsys.readouterr().err
    with pytest.raises(SystemExit) as err:
        _run(["eval", "--predictions", "x.jsonl"])
    assert err.value.code == 2 and "needs --task NAME" in capsys.readouterr().err


def test_infer_eval_export_pairs_through_the_generic_commands(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "jv.jsonl"
    argv = ["infer", "--task", "nusax", "--model", tiny_model_dir, "--lang", "javanese", "--data-dir", NUSAX,
            "--output", str(out), "--batch-size", "8"]  # fmt: skip
    _run(argv)
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 24 and rows[0]["id"].startswith("javanese:") and len(rows[0]["scores"]) == 3
    before = out.read_text()
    _run(argv)  # a second run finds every row done and rewrites nothing
    assert out.read_text() == before
    capsys.readouterr()
    _run(["eval", "--task", "nusax", "--predictions", str(out), "--lang", "javanese", "--data-dir", NUSAX])
    printed = json.loads(capsys.readouterr().out)
    labels = ["negative", "neutral", "positive"]
    by_hand = sum(labels[r["prediction"]] == r["gold"] for r in rows) / len(rows)
    assert printed["accuracy"] == pytest.approx(by_hand) and printed["n"] == 24
    assert printed["majority_accuracy"] == pytest.approx(9 / 24) and printed["chance"] == pytest.approx(1 / 3)
    assert printed["label_counts"] == {"negative": 9, "neutral": 6, "positive": 9}

    pairs = tmp_path / "pairs.jsonl"
    _run(["pairs", "--task", "nusax", "--lang", "javanese,sundanese", "--data-dir", NUSAX, "--output", str(pairs)])
    got = [json.loads(x) for x in pairs.read_text().splitlines()]
    task = get_label_task("nusax")
    en = {it.text: it.id for it in task.load("english", "train", NUSAX)}
    su = {it.id: it.text for it in task.load("sundanese", "train", NUSAX)}
    assert len(got) == 48 and {r["lang"] for r in got} == {"javanese", "sundanese"}
    assert all(su[en[r["text_parallel_0"]]] == r["text_parallel_1"] for r in got if r["lang"] == "sundanese")
    train = tmp_path / "train.jsonl"
    _run(["export", "--task", "nusax", "--data-dir", NUSAX, "--model", tiny_model_dir, "--output", str(train)])
    first = json.loads(train.read_text().splitlines()[0])
    assert set(first) == {"prefix", "text"} and "sentiment" in first["prefix"]
    assert first["text"].strip().split("<")[0].strip() == task.load("english", "train", NUSAX)[0].label


def test_limit_is_the_same_stratified_sample_in_infer_and_eval(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "su.jsonl"
    _run(["infer", "--task", "nusax", "--model", tiny_model_dir, "--lang", "sundanese", "--data-dir", NUSAX,
          "--limit", "8", "--limit-seed", "3", "--output", str(out)])  # fmt: skip
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert len(rows) == 8 and sorted(r["gold"] for r in rows).count("neutral") == 2  # 6/24 of 8, stratified
    # the same ids as English gets (the sample is drawn on the pivot language)
    en = tmp_path / "en.jsonl"
    _run(["infer", "--task", "nusax", "--model", tiny_model_dir, "--lang", "english", "--data-dir", NUSAX,
          "--limit", "8", "--limit-seed", "3", "--output", str(en)])  # fmt: skip
    en_ids = [json.loads(x)["id"].split(":")[1] for x in en.read_text().splitlines()]
    assert [r["id"].split(":")[1] for r in rows] == en_ids
    capsys.readouterr()
    base = ["eval", "--task", "nusax", "--predictions", str(out), "--lang", "sundanese", "--data-dir", NUSAX]
    _run([*base, "--limit", "8", "--limit-seed", "3"])
    assert json.loads(capsys.readouterr().out)["n"] == 8
    with pytest.raises(SystemExit):  # without the sample's flags: the file's recorded run says so, nothing scored
        _run(base)
    assert "its run recorded limit 8 (asked: None), limit_seed 3 (asked: None)" in capsys.readouterr().err
    (tmp_path / "su.jsonl.run.json").unlink()  # without its record, the missing items still refuse it
    with pytest.raises(SystemExit):
        _run(base)
    assert "no prediction for 16 of 24 items of sundanese" in capsys.readouterr().err


def test_eval_refuses_predictions_of_another_split_or_data(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "dev.jsonl"
    _run(["infer", "--task", "nusax", "--model", tiny_model_dir, "--lang", "english", "--data-dir", NUSAX,
          "--split", "dev", "--output", str(out)])  # fmt: skip
    capsys.readouterr()
    with pytest.raises(SystemExit):
        _run(["eval", "--task", "nusax", "--predictions", str(out), "--lang", "english", "--data-dir", NUSAX])
    assert "its run recorded split 'dev' (asked: 'test')" in capsys.readouterr().err
    # a file without its record whose ids happen to match: the gold labels it carries give it away
    data = _copy(tmp_path)
    rows = (data / "english" / "valid.csv").read_text().splitlines()
    flipped = [rows[0]] + [r.rsplit(",", 1)[0] + ("," + ("neutral" if r.endswith("negative") else "negative"))
                            for r in rows[1:]]  # fmt: skip
    (data / "english" / "valid.csv").write_text("\n".join(flipped) + "\n")
    (tmp_path / "dev.jsonl.run.json").unlink()
    with pytest.raises(SystemExit):
        _run(["eval", "--task", "nusax", "--predictions", str(out), "--lang", "english", "--data-dir", str(data),
              "--split", "dev"])  # fmt: skip
    assert "rows carry another gold label than the data" in capsys.readouterr().err


def test_the_per_task_command_is_the_generic_one(tmp_path, tiny_model_dir):
    """``midalign sib200 export`` = ``midalign export --task sib200``; ``midalign export --task xsid`` runs xSID's own
    command (a generation task keeps its flags)."""
    sib = str(ROOT / "tests" / "assets" / "sib200")
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    _run(["sib200", "export", "--data-dir", sib, "--model", tiny_model_dir, "--output", str(a)])
    _run(["export", "--task", "sib200", "--data-dir", sib, "--model", tiny_model_dir, "--output", str(b)])
    assert a.read_text() == b.read_text() and len(a.read_text().splitlines()) == 8
    xsid_dir = str(ROOT / "tests" / "assets" / "xsid")
    c, d = tmp_path / "c.jsonl", tmp_path / "d.jsonl"
    _run(["xsid", "pairs", "--lang", "de", "--data-dir", xsid_dir, "--output", str(c)])
    _run(["pairs", "--task", "xsid", "--lang", "de", "--data-dir", xsid_dir, "--output", str(d)])
    assert c.read_text() == d.read_text() and c.read_text()


def test_a_generation_task_refuses_a_verb_it_does_not_have(capsys):
    with pytest.raises(SystemExit) as err:
        _run(["pairs", "--task", "wmt23"])
    assert err.value.code == 2 and "`pairs` is not available for this task (it has: eval)" in capsys.readouterr().err


def test_export_lm_eval_takes_any_label_task(tmp_path, tiny_model_dir):
    from midalign.tasks.lm_eval_export_cli import main

    names = main(["--task", "nusax", "--data-dir", NUSAX, "--model", tiny_model_dir, "--lang", "english,javanese",
                  "--output-dir", str(tmp_path)])  # fmt: skip
    assert names == ["midalign_nusax_english", "midalign_nusax_javanese"]
    rows = [json.loads(x) for x in (tmp_path / "midalign_nusax_javanese.jsonl").read_text().splitlines()]
    gold = [it.label for it in get_label_task("nusax").load("javanese", "test", NUSAX)]
    assert [["negative", "neutral", "positive"][r["gold"]] for r in rows] == gold and len(rows[0]["choices"]) == 3


def test_a_malformed_csv_and_a_conflicting_task_are_one_line_errors(tmp_path, capsys):
    data = _copy(tmp_path)
    # an unterminated quote runs the field past the csv module's size limit: csv.Error, said with file and line
    (data / "javanese" / "test.csv").write_text('id,text,label\n1,"ok",positive\n2,"never closed' + "x" * 200_000)
    with pytest.raises(ValueError, match=r"javanese/test\.csv:\d+: not readable as CSV \(field larger than"):
        get_label_task("nusax").load("javanese", "test", str(data))
    with pytest.raises(SystemExit) as err:
        _run(["sib200", "eval", "--task", "nusax", "--predictions", "p.jsonl"])
    assert err.value.code == 2 and "runs the task sib200; --task nusax names another" in capsys.readouterr().err


def test_a_label_task_registered_later_is_in_the_registry(tmp_path):
    from midalign.tasks import spec
    from midalign.tasks.registry import TASKS, get_task

    late = spec.csv_label_task("late_demo", "a late task", "Classify.", env="X_LATE_DIR", pivot="english",
                               labels=("negative", "neutral", "positive"),
                               files={"train": "train.csv", "dev": "valid.csv", "test": "test.csv"})  # fmt: skip
    spec.register_label_task(late)
    try:
        task = get_task("late_demo")
        assert task.kind == "labels" and len(task.load("english", "test", NUSAX)) == 24
    finally:
        spec.LABEL_TASKS.pop("late_demo", None)
        TASKS.pop("late_demo", None)


def test_a_torn_provenance_record_is_one_line_naming_it(tmp_path, capsys):
    out = tmp_path / "p.jsonl"
    out.write_text('{"id": "english:1", "prediction": 0}\n')
    (tmp_path / "p.jsonl.run.json").write_text("{torn")
    with pytest.raises(SystemExit) as err:
        _run(["eval", "--task", "nusax", "--data-dir", NUSAX, "--predictions", str(out)])
    assert err.value.code == 2 and "p.jsonl.run.json: not a provenance record" in capsys.readouterr().err
