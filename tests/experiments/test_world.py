import pytest

from midalign.experiments.world import INTENTS, SLOT_TYPES, Instance, make_world
from midalign.tasks.massive import gold_target, parse_annotation


def test_deterministic_for_a_seed_and_different_across_seeds():
    a, b, c = make_world(3), make_world(3), make_world(4)
    assert a.languages["sov"].lexicon == b.languages["sov"].lexicon
    assert a.instances(50, 7) == b.instances(50, 7)
    assert a.languages["src"].lexicon != c.languages["src"].lexicon


def test_vocabularies_are_disjoint_and_scripts_differ():
    w = make_world(0)
    words = {name: set(lang.lexicon.values()) for name, lang in w.languages.items()}
    assert not words["src"] & words["sov"] and not words["src"] & words["cyr"] and not words["sov"] & words["cyr"]
    assert all(len(v) == len(w.languages["src"].lexicon) for v in words.values())  # no homonyms inside a language
    assert all(any("\u0400" <= ch <= "\u04ff" for ch in word) for word in words["cyr"])
    assert not any("\u0400" <= ch <= "\u04ff" for word in words["src"] for ch in word)


def test_parallel_renderings_express_the_same_meaning():
    w = make_world(1)
    for inst in w.instances(200, 5):
        per_lang = {}
        for name, lang in w.languages.items():
            sent, slots = lang.render(inst)
            # every slot value of the instance appears as its word in this language
            assert sorted(slots) == sorted((s, lang.value(s, i)) for s, i in inst.slots)
            assert all(lang.value(s, i) in sent.split() for s, i in inst.slots)
            assert lang.word(INTENTS[inst.intent][0]) in sent.split()
            per_lang[name] = [w_ for w_ in sent.split()]
        # word order really differs (not a word-for-word substitution) when there are two or more slots
        if len(inst.slots) >= 2:
            src_vals = [w.languages["src"].value(s, i) for s, i in inst.slots]
            sov_vals = [w.languages["sov"].value(s, i) for s, i in inst.slots]
            src_pos = [per_lang["src"].index(v) for v in src_vals]
            sov_pos = [per_lang["sov"].index(v) for v in sov_vals]
            assert (src_pos == sorted(src_pos)) != (sov_pos == sorted(sov_pos))


@pytest.mark.parametrize("lang", ["src", "sov", "cyr"])
def test_task_targets_match_the_slots(lang):
    w = make_world(2)
    for inst in w.instances(100, 9):
        annot = w.annotated(inst, lang)
        utt, slots = parse_annotation(annot)
        assert utt == w.languages[lang].render(inst)[0]
        assert [s for s, _ in slots] == [s for s, _ in w.languages[lang].render(inst)[1]]
        expected = "None" if not inst.slots else " ; ".join(f"{s} : {v}" for s, v in slots)
        assert w.target(inst, lang) == expected
        assert gold_target(annot).replace(": ", " : ").replace("; ", " ; ") == expected


def test_instances_cover_every_intent_and_slot_type():
    w = make_world(0)
    insts = w.instances(500, 1)
    assert {i.intent for i in insts} == set(INTENTS)
    assert {s for i in insts for s, _ in i.slots} == set(SLOT_TYPES)
    assert any(not i.slots for i in insts)
    assert Instance("joke", ()) in insts


def test_unknown_language_is_an_error():
    with pytest.raises(ValueError, match="unknown synthetic language 'xx'"):
        make_world(0, ("src", "xx"))


def test_pretraining_corpus_is_the_same_in_every_process():
    import os
    import subprocess
    import sys

    code = (
        "import hashlib, json; from midalign.experiments.transfer import TransferConfig, pretraining_rows; "
        "from midalign.experiments.world import make_world; c = TransferConfig.quick(); "
        "print(hashlib.md5(json.dumps(pretraining_rows(make_world(0), c, 0)).encode()).hexdigest())"
    )
    digests = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": salt},
        ).stdout.strip()
        for salt in ("1", "2")
    }
    assert len(digests) == 1


def test_targets_with_source_language_values():
    w = make_world(2)
    inst = Instance("remind", (("person", 1), ("date", 2), ("time", 3)))
    src = w.languages["src"]
    # the sov sentence's slot order (reversed), with the source language's words for the values
    assert w.target(inst, "sov", values="src") == (
        f"time : {src.value('time', 3)} ; date : {src.value('date', 2)} ; person : {src.value('person', 1)}"
    )
    assert w.target(inst, "src", values="src") == w.target(inst, "src")
    assert w.target(Instance("joke", ()), "cyr", values="src") == "None"


def test_pair_f1_against_hand_counts():
    from midalign.experiments.transfer import pair_f1

    golds = ["time : a ; date : b", "None", "place : c ; place : d"]
    preds = ["time : a ; date : x", "genre : e", "place : d ; place : c ; place : c"]
    # tp: (time,a) + (place,c) + (place,d) = 3; predicted 2 + 1 + 3 = 6; gold 2 + 0 + 2 = 4
    assert pair_f1(golds, preds) == pytest.approx(2 * (3 / 6) * (3 / 4) / (3 / 6 + 3 / 4))
    assert pair_f1(golds, golds) == 1.0 and pair_f1(["None"], ["None"]) == 1.0 and pair_f1(["None"], ["x : y"]) == 0
