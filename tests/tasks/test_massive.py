import json
import os
import signal
import subprocess
import sys
import time

import pytest

from midalign.tasks import massive
from midalign.tasks.massive_cli import evaluate, extract, read_outputs
from tests.conftest import ROOT

ROWS = {
    "en-US": [
        ("wake me up at [time : nine am] on [date : friday]", "train"),
        ("play [song_name : hello] by [artist_name : adele]", "test"),
        ("what is the weather", "test"),
        ("set an alarm for [time : 10:30 am] [date : tomorrow]", "test"),
        ("play [song_name : hello] and then say hello", "test"),
    ],
    "de-DE": [
        ("weck mich um [time : neun uhr] am [date : freitag]", "test"),
        ("wie ist das wetter in [place_name : berlin]", "test"),
    ],
    "ja-JP": [
        ("[date : 明日]の[time : 午前九時]に起こして", "test"),
        ("[artist_name : adele]の曲をかけて", "test"),
    ],
    "zh-CN": [("播放[artist_name : Adele]的歌", "test"), ("今天天气怎么样", "test")],
}


@pytest.fixture
def massive_dir(tmp_path):
    d = tmp_path / "massive"
    d.mkdir()
    for locale, rows in ROWS.items():
        lines = []
        for i, (annot, part) in enumerate(rows):
            utt, _ = massive.parse_annotation(annot)
            lines.append(
                json.dumps(
                    {
                        "id": f"{locale}-{i}",
                        "locale": locale,
                        "partition": part,
                        "utt": utt,
                        "annot_utt": annot,
                        "scenario": "x",
                        "intent": "y",
                    },
                    ensure_ascii=False,
                )
            )
        (d / f"{locale}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(d)


def test_locales_and_codes():
    assert len(massive.MASSIVE_LOCALES) == 52  # 51 of MASSIVE 1.0 + ca-ES (1.1)
    assert massive.resolve_locale("en") == "en-US"
    assert massive.resolve_locale("zh") == "zh-CN" and massive.resolve_locale("zh-tw") == "zh-TW"
    assert massive.resolve_locale("JA_jp") == "ja-JP"
    with pytest.raises(ValueError, match="not a MASSIVE language; valid: .*de.*en"):
        massive.resolve_locale("xx")


@pytest.mark.parametrize(
    "annot,utt,target",
    [
        (
            "wake me up at [time : nine am] on [date : friday]",
            "wake me up at nine am on friday",
            "time: nine am; date: friday",
        ),
        ("what is the weather", "what is the weather", "None"),
        ("set an alarm for [time : 10:30 am]", "set an alarm for 10:30 am", "time: 10:30 am"),
        ("[date : 明日]の[time : 午前九時]に", "明日の午前九時に", "date: 明日; time: 午前九時"),
    ],
)
def test_gold_target_and_utterance(annot, utt, target):
    assert massive.parse_annotation(annot)[0] == utt
    assert massive.gold_target(annot) == target


def test_unbalanced_annotation_is_an_error():
    with pytest.raises(ValueError, match="unbalanced"):
        massive.parse_annotation("play [song_name : hello")


def test_bio_words_for_char_locales_keep_latin_runs():
    toks, tags = massive.gold_bio("[artist_name : adele]の曲をかけて", "ja-JP")
    assert toks == ["adele", "の", "曲", "を", "か", "け", "て"]
    assert tags == ["B-artist_name"] + ["O"] * 6
    toks, tags = massive.gold_bio("播放[artist_name : Adele Adkins]的歌", "zh-CN")
    assert toks == ["播", "放", "Adele", "Adkins", "的", "歌"]
    assert tags == ["O", "O", "B-artist_name", "I-artist_name", "O", "O"]


@pytest.mark.parametrize(
    "text,slots,bad",
    [
        ("None", [], 0),
        ("none.", [], 0),
        ("time: nine am; date: Friday", [("time", "nine am"), ("date", "Friday")], 0),
        ("time: 10:30 am", [("time", "10:30 am")], 0),
        ("time nine am", [], 1),
        ("time: nine am; garbage; : x", [("time", "nine am")], 2),
        ("song name: hello\nmore text", [("song_name", "hello")], 0),
    ],
)
def test_parse_prediction(text, slots, bad):
    assert massive.parse_prediction(text) == (slots, bad)


def test_repeated_spans_go_left_to_right_without_overlap():
    toks, _ = massive.gold_bio("play [song_name : hello] and then say hello", "en-US")
    tags, miss = massive.prediction_bio(toks, [("song_name", "Hello"), ("greeting", "hello"), ("x", "bye")], "en-US")
    assert tags == ["O", "B-song_name", "O", "O", "O", "B-greeting"]
    assert miss == 1


def test_scores_against_hand_computed_values():
    golds = [
        {"annot_utt": a, "locale": "en-US"}
        for a in (
            "wake me up at [time : nine am] on [date : friday]",  # 2 gold entities
            "what is the weather",  # 0
            "play [song_name : hello] by [artist_name : adele]",  # 2
        )
    ]
    preds = [
        "time: nine am; date: monday",  # TP time; monday cannot be placed (unmatched) -> FN date
        "place_name: weather",  # FP
        "song_name: hello; artist_name: adele",  # 2 TP, exact
    ]
    s = massive.score_slots(golds, preds)
    # TP 3, FP 1, FN 1 -> P = 3/4, R = 3/4, F1 = 0.75
    assert (s.slot_precision, s.slot_recall, s.slot_f1) == pytest.approx((0.75, 0.75, 0.75))
    assert s.exact_match == pytest.approx(1 / 3)
    assert s.unmatched_slots == 1 and s.unparseable_predictions == 0
    s2 = massive.score_slots(golds, ["garbage", "None", "song_name: hello; artist_name: adele"])
    assert s2.unparseable_predictions == 1 and s2.exact_match == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 predictions for 3"):
        massive.score_slots(golds, preds[:2])


def test_load_local_release_and_errors(massive_dir, tmp_path):
    rows = massive.load_massive("en", "test", massive_dir)
    assert [r["id"] for r in rows] == ["en-US-1", "en-US-2", "en-US-3", "en-US-4"]
    assert len(massive.load_massive("en", "train", massive_dir)) == 1
    with pytest.raises(FileNotFoundError, match="fr-FR.jsonl"):
        massive.load_massive("fr", "test", massive_dir)
    with pytest.raises(ValueError, match="--partition"):
        massive.load_massive("en", "heldout", massive_dir)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "en-US.jsonl").write_text('{"utt": "a", "annot_utt": "a", "partition": "test"}\n{"utt": 1}\n')
    with pytest.raises(ValueError, match=r"en-US.jsonl:2: missing or non-string field 'utt'"):
        massive.load_massive("en", "test", str(bad))


def test_extract_keeps_one_line_per_example_and_input_order(tmp_path):
    out = tmp_path / "out.json"
    out.write_text(
        "\n".join(
            json.dumps(r)
            for r in [
                {"id": "b", "index": 1, "prediction": "time: nine\nam"},
                {"id": "a", "index": 0, "prediction": "None"},
            ]
        )
        + "\n"
    )
    extract([str(out), str(tmp_path / "p.txt")])
    assert (tmp_path / "p.txt").read_text() == "None\ntime: nine am\n"
    paper = tmp_path / "paper.json"  # the paper's output: {"prompt", "prediction"} lines, no index
    paper.write_text(json.dumps({"prompt": "x", "prediction": "a"}) + "\n")
    assert [r["prediction"] for r in read_outputs(str(paper))] == ["a"]


def test_eval_wrong_line_count_is_a_clear_error(tmp_path, massive_dir):
    preds = tmp_path / "p.txt"
    preds.write_text("None\nNone\n")
    with pytest.raises(SystemExit, match="2 lines, but en-US test has 4 examples"):
        evaluate(["--pred-slots-file", str(preds), "--lang", "en", "--partition", "test", "--data-dir", massive_dir])


def test_eval_several_languages(tmp_path, massive_dir):
    en, ja = tmp_path / "en.txt", tmp_path / "ja.txt"
    en.write_text("song_name: hello; artist_name: adele\nNone\ntime: 10:30 am; date: tomorrow\nsong_name: hello\n")
    ja.write_text("date: 明日; time: 午前九時\nNone\n")
    scores = evaluate(
        [
            "--pred-slots-file",
            f"{en},{ja}",
            "--lang",
            "en,ja",
            "--partition",
            "test",
            "--data-dir",
            massive_dir,
            "--output",
            str(tmp_path / "s.json"),
        ]
    )
    assert scores["per_language"]["en-US"]["slot_f1"] == 1.0
    assert scores["per_language"]["ja-JP"]["slot_recall"] == pytest.approx(2 / 3)
    assert scores["n"] == 6 and json.loads((tmp_path / "s.json").read_text())["n"] == 6


def _infer_cmd(model_dir, massive_dir, out, *extra):
    return [
        sys.executable,
        "-m",
        "scripts.run_inference_massive",
        "--base-model-name",
        model_dir,
        "--lang",
        "en",
        "--partition",
        "test",
        "--data-dir",
        massive_dir,
        "--output-path",
        str(out),
        "--max-new-tokens",
        "6",
        *extra,
    ]


def test_three_paper_commands_end_to_end(tmp_path, tiny_model_dir, massive_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out, preds = tmp_path / "out.json", tmp_path / "preds.txt"
    for cmd in (
        _infer_cmd(tiny_model_dir, massive_dir, out, "--no-default-template", "--batch-size", "3"),
        [sys.executable, "scripts/extract_json_output.py", str(out), str(preds)],
        [
            sys.executable,
            "-m",
            "scripts.eval_massive",
            "--pred-slots-file",
            str(preds),
            "--lang",
            "en",
            "--partition",
            "test",
            "--data-dir",
            massive_dir,
            "--output",
            str(tmp_path / "scores.json"),
        ],
    ):
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["en-US-1", "en-US-2", "en-US-3", "en-US-4"]
    assert all(set(r) >= {"id", "prompt", "prediction", "gold"} for r in rows)
    assert "<|im_start|>system\nGiven a command" in rows[0]["prompt"]
    assert len(preds.read_text().splitlines()) == 4
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert scores["n"] == 4 and 0.0 <= scores["slot_f1"] <= 1.0


SLOW_DRIVER = """
import sys, time
import midalign.inference.engine as engine
real = engine.generate_batch
def slow(*a, **k):
    time.sleep(0.4)
    return real(*a, **k)
engine.generate_batch = slow
from midalign.tasks.massive_cli import infer
infer(sys.argv[1:])
"""


def test_resume_after_kill_gives_identical_output(tmp_path, tiny_model_dir, massive_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # 10 examples, batch 2 -> 5 batches
    rows = [json.loads(x) for x in open(os.path.join(massive_dir, "en-US.jsonl"))]
    many = [{**rows[1 + i % 4], "id": f"r{i}", "utt": rows[1 + i % 4]["utt"] + " x" * i} for i in range(10)]
    with open(os.path.join(massive_dir, "en-US.jsonl"), "w") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in many)
    ref, out = tmp_path / "ref.json", tmp_path / "out.json"
    args = [
        "--base-model-name",
        tiny_model_dir,
        "--lang",
        "en",
        "--partition",
        "test",
        "--data-dir",
        massive_dir,
        "--max-new-tokens",
        "6",
        "--batch-size",
        "2",
    ]
    subprocess.run(
        [sys.executable, "-m", "scripts.run_inference_massive", *args, "--output-path", str(ref)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", SLOW_DRIVER, *args, "--output-path", str(out)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    while time.time() < deadline and (not out.exists() or len(out.read_text().splitlines()) < 4):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    partial = out.read_text().splitlines()
    assert 4 <= len(partial) < 10, "the run was not interrupted mid-way"
    with open(out, "a") as fh:  # a torn line, as if killed while writing
        fh.write('{"id": "r9", "predic')
    subprocess.run(
        [sys.executable, "-m", "scripts.run_inference_massive", *args, "--output-path", str(out)],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert out.read_text() == ref.read_text()
    ids = [json.loads(line)["id"] for line in out.read_text().splitlines()]
    assert ids == [f"r{i}" for i in range(10)]


def test_paper_format_on_a_llama3_style_template(tokenizer):
    """--no-default-template: BOS the tokenizer adds itself is dropped from the string; line break after eot."""
    import copy

    from midalign.inference import build_prompt

    tok = copy.deepcopy(tokenizer)
    tok.chat_template = (
        "{{ bos_token }}{% for m in messages %}<|start|>{{ m['role'] }}\n{{ m['content'] }}<|eot|>{% endfor %}"
        "{% if add_generation_prompt %}<|start|>assistant\n{% endif %}"
    )
    tok.add_special_tokens({"bos_token": "<|endoftext|>", "additional_special_tokens": ["<|start|>", "<|eot|>"]})
    from tokenizers import processors

    tok._tokenizer.post_processor = processors.TemplateProcessing(
        single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", tok.convert_tokens_to_ids("<|endoftext|>"))]
    )
    default = build_prompt(tok, "hi", "sys", default_template=True)
    paper = build_prompt(tok, "hi", "sys", default_template=False)
    assert default == "<|endoftext|><|start|>system\nsys<|eot|><|start|>user\nhi<|eot|><|start|>assistant\n"
    assert paper == "<|start|>system\nsys<|eot|>\n<|start|>user\nhi<|eot|>\n<|start|>assistant\n"
    # ChatML (the asset tokenizer, like SmolLM2): <|im_start|> is its "BOS" but the tokenizer never adds it
    chatml = build_prompt(tokenizer, "hi", None, default_template=False)
    assert (
        chatml
        == build_prompt(tokenizer, "hi", None, default_template=True)
        == ("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n")
    )


def test_prefix_cache_flag_gives_the_same_output_file(tmp_path, tiny_model_dir, massive_dir, monkeypatch):
    from midalign.inference import engine
    from midalign.tasks.massive_cli import infer

    computed = []
    real = engine.PrefixCache._compute
    monkeypatch.setattr(engine.PrefixCache, "_compute", lambda self, p: computed.append(len(p)) or real(self, p))
    args = ["--base-model-name", tiny_model_dir, "--lang", "en", "--partition", "test", "--data-dir", massive_dir]
    args += ["--max-new-tokens", "6", "--batch-size", "2"]
    infer([*args, "--output-path", str(tmp_path / "cached.json")])
    assert len(computed) == 1 and computed[0] > 50  # the system prompt, computed once for all batches
    infer([*args, "--no-prefix-cache", "--output-path", str(tmp_path / "plain.json")])
    assert len(computed) == 1
    assert (tmp_path / "cached.json").read_text() == (tmp_path / "plain.json").read_text()


def test_rerun_into_an_existing_output_with_another_model_is_refused(tmp_path, tiny_model_dir, massive_dir):
    from peft import LoraConfig, get_peft_model

    from midalign.models import load_model
    from midalign.tasks.massive_cli import infer

    adapter = tmp_path / "adapter"
    get_peft_model(load_model(tiny_model_dir), LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(adapter)
    out = tmp_path / "out.json"
    base = ["--base-model-name", tiny_model_dir, "--lang", "en", "--partition", "test", "--data-dir", massive_dir,
            "--output-path", str(out), "--max-new-tokens", "4"]  # fmt: skip
    infer([*base, "--limit", "2"])  # a partial base-model file
    first = out.read_text()
    run_json = json.loads((tmp_path / "out.json.run.json").read_text())["provenance"]
    assert run_json["adapters"] == [] and run_json["max_new_tokens"] == 4
    with pytest.raises(ValueError, match=r"made by another run \(adapters: \[\] -> \['sha256:"):
        infer([*base, "--peft-model-id", str(adapter)])
    with pytest.raises(ValueError, match="max_new_tokens: 4 -> 5"):
        infer([*base[:-1], "5"])
    with pytest.raises(ValueError, match="default_template: True -> False"):
        infer([*base, "--no-default-template"])
    assert out.read_text() == first  # nothing was mixed in
    # a row made from another prompt (another version's template, edited data) is caught by the row itself
    out.write_text(first.replace("<|im_start|>user", "<|im_start|>user ", 1))
    with pytest.raises(ValueError, match="1 stored row\\(s\\) were generated from other prompts"):
        infer(base)
    out.write_text(first)
    rows = infer(base)  # the same run resumes and completes
    assert len(rows) == 4 and out.read_text().startswith(first)
    out.unlink()
    (tmp_path / "out.json.run.json").unlink()
    assert len(infer([*base, "--peft-model-id", str(adapter)])) == 4  # starting over is fine


def test_scoring_zero_examples_is_an_error(tmp_path, massive_dir):
    with pytest.raises(ValueError, match="no examples to score"):
        massive.score_slots([], [])
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    # de-DE has no train rows in this release: an empty input must not report F1 0.0 and exit 0
    with pytest.raises(ValueError, match="no examples to score"):
        evaluate(["--pred-slots-file", str(empty), "--lang", "de", "--partition", "train", "--data-dir", massive_dir])


def test_extract_refuses_options_and_overwriting_its_input(tmp_path):
    """Issue 22 item 13: ``massive extract --foo`` used to read ``--foo`` as a file name."""
    out = tmp_path / "out.json"
    out.write_text(json.dumps({"index": 0, "prediction": "None"}) + "\n")
    with pytest.raises(SystemExit, match="unknown option '--foo'"):
        extract(["--foo", str(out)])
    assert not (tmp_path / "--foo").exists()
    with pytest.raises(SystemExit, match="would overwrite OUTPUT.json"):
        extract([str(out), str(out)])
    assert json.loads(out.read_text())["prediction"] == "None"
