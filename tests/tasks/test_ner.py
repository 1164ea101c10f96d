import json
import os
import subprocess
import sys

import pytest

from midalign.tasks import ner
from tests.conftest import ROOT


@pytest.mark.parametrize(
    "text,entities,status",
    [
        ('{"Results": [{"TypeName": "LOC", "Text": "Paris"}]}', [("LOC", "Paris")], "valid"),
        ('{"Results": []}', [], "valid"),
        ('```json\n{"Results": [{"TypeName": "per", "Text": "Anna  Berg"}]}\n```', [("PER", "Anna Berg")], "fenced"),
        (
            'Sure! {"Results": [{"TypeName": "ORG", "Text": "ACME {Inc}"}]} Hope this helps.',
            [("ORG", "ACME {Inc}")],
            "embedded",
        ),
        ('{"Results": [{"TypeName": "LOC", "Text": "Paris"}', [], "invalid"),  # truncated
        ("no entities here", [], "invalid"),
        ('{"results": []}', [], "invalid"),  # wrong key
        ('{"Results": [{"TypeName": "LOC"}]}', [], "invalid"),  # missing Text
        ('{"Results": "Paris"}', [], "invalid"),
        ("", [], "invalid"),
        ('{"Results": [{"TypeName": "LOC", "Text": "a \\" b"}]} trailing', [("LOC", 'a " b')], "embedded"),
    ],
)
def test_parser_catalogue(text, entities, status):
    assert ner.parse_entities(text) == (entities, status)


def test_entities_from_bio():
    toks = ["Anna", "Berg", "visited", "New", "York", "and", "ACME", "Inc", "."]
    tags = ["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "O", "B-ORG", "I-ORG", "O"]
    assert ner.entities_from_bio(toks, tags) == [("PER", "Anna Berg"), ("LOC", "New York"), ("ORG", "ACME Inc")]
    assert ner.entities_from_bio(["a", "b"], ["I-LOC", "I-PER"]) == [("LOC", "a"), ("PER", "b")]
    assert ner.entities_from_bio(["北", "京"], ["B-LOC", "I-LOC"], joiner="") == [("LOC", "北京")]


def test_f1_against_hand_computed_values():
    golds = [[("PER", "Anna"), ("LOC", "Paris")], [("ORG", "ACME")], []]
    preds = [
        '{"Results": [{"TypeName": "PER", "Text": "Anna"}, {"TypeName": "LOC", "Text": "Rome"}]}',  # 1 TP, 1 FP, 1 FN
        "garbage",  # invalid: 1 FN (ORG)
        '{"Results": [{"TypeName": "LOC", "Text": "Oslo"}]}',  # 1 FP
    ]
    s = ner.score_entities(golds, preds)
    assert (s["micro"]["tp"], s["micro"]["fp"], s["micro"]["fn"]) == (1, 2, 2)
    assert s["micro"]["precision"] == pytest.approx(1 / 3) and s["micro"]["recall"] == pytest.approx(1 / 3)
    assert s["per_type"]["PER"]["f1"] == 1.0 and s["per_type"]["ORG"]["recall"] == 0.0
    assert s["per_type"]["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "tp": 0, "fp": 2, "fn": 1}
    assert s["valid_json_share"] == pytest.approx(2 / 3)


def test_read_conll_both_layouts_and_errors(tmp_path):
    two = tmp_path / "en.test.conll"
    two.write_text("Anna\tB-PER\nlives\tO\n\nOslo\tB-LOC\n")
    uner = tmp_path / "da_ddt-ud-test.iob2"
    uner.write_text("# sent_id = 1\n1\tAnna\tB-PER\t-\t-\n2\tbor\tO\t-\t-\n")
    assert ner.read_conll(str(two)) == [
        {"tokens": ["Anna", "lives"], "tags": ["B-PER", "O"]},
        {"tokens": ["Oslo"], "tags": ["B-LOC"]},
    ]
    assert ner.read_conll(str(uner)) == [{"tokens": ["Anna", "bor"], "tags": ["B-PER", "O"]}]
    bad = tmp_path / "bad.conll"
    bad.write_text("Anna\tPERSON\n")
    with pytest.raises(ValueError, match=r"bad.conll:1: tag 'PERSON' is not IOB2"):
        ner.read_conll(str(bad))
    assert len(ner.load_uner("da", "test", str(tmp_path))) == 1
    with pytest.raises(ValueError, match="unknown NER language 'xx'"):
        ner.load_uner("xx", "test", str(tmp_path))


def test_ner_script_and_export_end_to_end(tmp_path, tiny_model_dir):
    data = tmp_path / "uner"
    data.mkdir()
    (data / "en.test.conll").write_text("Anna\tB-PER\nlives\tO\nin\tO\nOslo\tB-LOC\n\nHello\tO\n")
    out = tmp_path / "en_ner.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "scripts.run_inference_eval_ner",
            "--base-model-name",
            tiny_model_dir,
            "--lang",
            "en",
            "--data-dir",
            str(data),
            "--output-path",
            str(out),
            "--max-new-tokens",
            "5",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    scores = json.loads((tmp_path / "en_ner_scores.json").read_text())
    assert scores["n"] == 2 and 0 <= scores["valid_json_share"] <= 1
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    assert json.loads(rows[0]["gold"]) == {
        "Results": [{"TypeName": "PER", "Text": "Anna"}, {"TypeName": "LOC", "Text": "Oslo"}]
    }
    from midalign.tasks.ner_cli import export

    exp = tmp_path / "train.json"
    assert (
        export(
            [
                "--lang",
                "en",
                "--split",
                "test",
                "--data-dir",
                str(data),
                "--model",
                tiny_model_dir,
                "--output",
                str(exp),
            ]
        )
        == 2
    )
    row = json.loads(exp.read_text().splitlines()[0])
    assert row["text"].endswith("<|im_end|>") and row["prefix"].endswith("<|im_start|>assistant\n")


def test_parser_never_raises_and_its_work_is_bounded():
    import time

    deep = "[" * 5000 + "]" * 5000
    assert ner.parse_entities(deep) == ([], "invalid")
    assert ner.parse_entities('{"a": ' * 3000 + "1" + "}" * 3000) == ([], "invalid")
    t = time.perf_counter()
    assert ner.parse_entities("{" * 140_000) == ([], "invalid")  # quadratic before: 186 s
    assert ner.parse_entities('x {"Results": ' + "{" * 70_000) == ([], "invalid")
    assert time.perf_counter() - t < 10  # generous: a few hundred ms here; was minutes
    ok = 'noise {"a": 1} then {"Results": [{"TypeName": "per", "Text": "Anna"}]} end'
    assert ner.parse_entities(ok) == ([("PER", "Anna")], "embedded")
