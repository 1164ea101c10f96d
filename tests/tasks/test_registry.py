"""The task registry: lookup, the shared interface on the committed SIB-200 sample, clear errors."""

import pytest

from midalign.tasks.registry import TASKS, Task, get_task, register
from tests.conftest import ROOT


def test_registered_tasks_share_one_interface():
    assert {"sib200", "nusax", "xsid"} <= set(TASKS)
    task = get_task("sib200")
    sample = str(ROOT / "tests" / "assets" / "sib200")
    assert "deu_Latn" in task.languages(sample)
    examples = task.load("deu_Latn", "test", sample)
    scores = task.score(examples, [e.label for e in examples])
    assert scores["accuracy"] == 1.0 and task.kind == "labels"


def test_unknown_and_duplicate_tasks_are_errors():
    with pytest.raises(ValueError, match="unknown task 'nope'; choose one of .*sib200"):
        get_task("nope")
    with pytest.raises(ValueError, match="registered twice"):
        register(Task("sib200", "labels", list, list, list, ""))


def test_xsid_languages_are_the_files_present(tmp_path):
    from midalign.tasks import xsid

    (tmp_path / "nl.test.conll").write_text("")
    (tmp_path / "en.valid.conll").write_text("")
    assert xsid.available_languages(str(tmp_path)) == ["en", "nl"]
    assert xsid._check_lang("nl", str(tmp_path)) == "nl"
    with pytest.raises(ValueError, match="files in"):
        xsid._check_lang("xx", str(tmp_path))


def test_massive_and_ner_through_the_registry(tmp_path):
    """The paper's MASSIVE and NER tasks behind the same interface: languages are the files present, load + score
    with gold predictions are perfect."""
    import json

    from midalign.tasks import massive

    (tmp_path / "de-DE.jsonl").write_text(
        "\n".join(
            json.dumps({"id": str(i), "locale": "de-DE", "partition": "test", "utt": massive.parse_annotation(a)[0],
                        "annot_utt": a})
            for i, a in enumerate(["weck mich um [time : sieben]", "spiel musik"])
        ) + "\n"
    )  # fmt: skip
    (tmp_path / "da_ddt-ud-test.iob2").write_text("1\tAnna\tB-PER\t-\t-\n2\tbor\tO\t-\t-\n\n1\ti\tO\t-\t-\n")
    task = get_task("massive")
    assert task.languages(str(tmp_path)) == ["de-DE"]
    rows = task.load("de", "test", str(tmp_path))
    assert task.score(rows, [massive.gold_target(r["annot_utt"]) for r in rows])["slot_f1"] == 1.0
    ner_task = get_task("ner")
    assert ner_task.languages(str(tmp_path)) == ["da"]
    sents = ner_task.load("da", "test", str(tmp_path))
    from midalign.tasks import ner

    golds = [ner.gold_json(ner.entities_from_bio(e["tokens"], e["tags"])) for e in sents]
    assert ner_task.score(sents, golds)["micro"]["f1"] == 1.0
    assert get_task("wmt23").kind == "generation" and "cs-en" in get_task("wmt23").languages(None)
    with pytest.raises(ValueError, match="test split only"):
        get_task("wmt23").load("cs-en", "train")


XSID_SAMPLE = str(ROOT / "tests" / "assets" / "xsid")


def test_xsid_reader_and_scorer_on_the_committed_sample():
    """Runs on a clone alone (no ../shared): the committed xSID sample read in the release layout and scored by
    hand. German test, 7 gold spans in 6 sentences; sentence 1 predicts the wrong span (1 FP, 1 FN), sentence 6 misses
    one of its two: TP 5, FP 1, FN 2 -> P 5/6, R 5/7, F1 50/65; exact slot sets 4 of 6."""
    task = get_task("xsid")
    assert task.languages(XSID_SAMPLE) == ["de", "en", "ja"]
    sents = task.load("de", "test", XSID_SAMPLE)
    assert [s.text_en for s in sents][:2] == ["show all reminders", "Do I need a sweater?"]
    from midalign.tasks import xsid

    preds = [xsid.gold_target(s) for s in sents]
    assert task.score(sents, preds).slot_f1 == 1.0
    preds[0] = "reference: Erinnerungen"
    preds[5] = "datetime: am Mittwoch"
    scores = task.score(sents, preds)
    assert scores.slot_precision == pytest.approx(5 / 6) and scores.slot_recall == pytest.approx(5 / 7)
    assert scores.slot_f1 == pytest.approx(50 / 65) and scores.exact_match == pytest.approx(4 / 6)
    ja = task.load("ja", "valid", XSID_SAMPLE)
    assert len(ja) == 6 and ja[0].text_en
