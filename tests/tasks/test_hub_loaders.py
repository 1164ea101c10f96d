"""The hub code paths, with ``datasets.load_dataset`` replaced by a fake that records its arguments and returns rows
in the hub datasets' schemas (nothing can be downloaded here)."""

import datasets
import pytest

from midalign.analysis.parallel import FLORES_HUB_ID, load_parallel
from midalign.tasks.massive import HUB_ID, HUB_REVISION, gold_target, load_massive
from midalign.tasks.ner import UNER_HUB_ID, load_uner


@pytest.fixture
def fake_hub(monkeypatch):
    calls, tables = [], {}

    def load_dataset(path, name=None, split=None, revision=None, **kw):
        calls.append((path, name, split, revision))
        return tables[(path, name, split)]

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls, tables


def test_massive_from_the_parquet_revision(fake_hub):
    calls, tables = fake_hub
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "locale": datasets.Value("string"),
            "partition": datasets.Value("string"),
            "scenario": datasets.ClassLabel(names=["alarm", "play"]),
            "intent": datasets.ClassLabel(names=["alarm_set", "play_music"]),
            "utt": datasets.Value("string"),
            "annot_utt": datasets.Value("string"),
        }
    )
    rows = [
        {"id": "7", "locale": "de-DE", "partition": "test", "scenario": 0, "intent": 0,
         "utt": "weck mich um neun", "annot_utt": "weck mich um [time : neun]"},
        {"id": "9", "locale": "de-DE", "partition": "test", "scenario": 1, "intent": 1,
         "utt": "musik bitte", "annot_utt": "musik bitte"},
    ]  # fmt: skip
    tables[(HUB_ID, "de-DE", "test")] = datasets.Dataset.from_list(rows, features=features)
    got = load_massive("de", "test")
    assert calls == [(HUB_ID, "de-DE", "test", HUB_REVISION)] and HUB_REVISION == "refs/convert/parquet"
    assert [r["id"] for r in got] == ["7", "9"]
    assert [gold_target(r["annot_utt"]) for r in got] == ["time: neun", "None"]
    tables[(HUB_ID, "zh-CN", "validation")] = datasets.Dataset.from_list(rows[:1], features=features)
    load_massive("zh", "dev")  # the release's "dev" is the hub's "validation"
    assert calls[-1] == (HUB_ID, "zh-CN", "validation", HUB_REVISION)


def test_uner_tags_come_from_the_class_label_names(fake_hub):
    calls, tables = fake_hub
    names = ["O", "B-PER", "I-PER", "B-LOC"]
    features = datasets.Features(
        {
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=names)),
        }
    )
    rows = [{"tokens": ["Ada", "Lovelace", "in", "London"], "ner_tags": [1, 2, 0, 3]}]
    tables[(UNER_HUB_ID, "en_ewt", "test")] = datasets.Dataset.from_list(rows, features=features)
    got = load_uner("en", "test", revision="abc")
    assert calls == [(UNER_HUB_ID, "en_ewt", "test", "abc")]
    assert got == [{"tokens": ["Ada", "Lovelace", "in", "London"], "tags": ["B-PER", "I-PER", "O", "B-LOC"]}]


def test_flores_plus_languages_are_row_aligned(fake_hub):
    calls, tables = fake_hub
    texts = {"eng_Latn": ["Hello.", "Thanks.", "Bye."], "deu_Latn": ["Hallo.", "Danke.", "Tschüss."]}
    for lang, order in (("eng_Latn", [0, 1, 2]), ("deu_Latn", [2, 0, 1])):  # rows aligned by id, not position
        tables[(FLORES_HUB_ID, lang, "devtest")] = datasets.Dataset.from_list(
            [{"id": i, "iso_639_3": lang[:3], "text": texts[lang][i]} for i in order]
        )
    got = load_parallel(flores=["eng_Latn", "deu_Latn"], limit=2)
    assert got == {"eng_Latn": ["Hello.", "Thanks."], "deu_Latn": ["Hallo.", "Danke."]}
    assert [c[1:] for c in calls] == [("eng_Latn", "devtest", None), ("deu_Latn", "devtest", None)]
