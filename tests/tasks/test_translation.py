import json
import os
import subprocess
import sys

import pytest

from midalign.tasks import translation
from tests.conftest import ROOT

HYPS = {
    "en": ["The cat sits on the mat.", "It is raining today in Prague.", "I like green tea."],
    "zh": ["猫坐在垫子上。", "今天布拉格下雨。", "我喜欢绿茶"],
    "ja": ["猫はマットの上に座っている。", "今日はプラハで雨が降っている。", "緑茶が好きです。"],
}
REFS = {
    "en": ["The cat is sitting on the mat.", "Today it is raining in Prague.", "I like green tea."],
    "zh": ["猫坐在垫子上。", "今天布拉格在下雨。", "我喜欢喝绿茶。"],
    "ja": ["猫がマットの上に座っている。", "今日はプラハで雨が降っています。", "私は緑茶が好きです。"],
}


@pytest.mark.parametrize(
    "src,tgt,prompt",
    [
        ("cs", "en", "Translate the following sentences from Czech to English."),
        ("ces", "eng", "Translate the following sentences from Czech to English."),
        ("en", "zh", "Translate the following sentences from English to Chinese."),
        ("deu", "ja", "Translate the following sentences from German to Japanese."),
        ("cmn", "ru", "Translate the following sentences from Chinese to Russian."),
    ],
)
def test_prompts_and_code_aliases(src, tgt, prompt):
    assert translation.system_prompt(src, tgt) == prompt


def test_unknown_code_lists_valid_ones():
    with pytest.raises(ValueError, match="unknown language code 'xx'; valid: .*cs.*deu"):
        translation.resolve_lang("xx")


@pytest.mark.parametrize("tgt", ["en", "zh", "ja"])
def test_scores_equal_sacrebleu_own_corpus_functions(tgt):
    import sacrebleu

    got = translation.score_translation(HYPS[tgt], REFS[tgt], tgt)
    tok = translation.bleu_tokenizer(tgt)
    assert got["bleu"]["score"] == pytest.approx(sacrebleu.corpus_bleu(HYPS[tgt], [REFS[tgt]], tokenize=tok).score)
    assert got["bleu_paper_13a"]["score"] == pytest.approx(
        sacrebleu.corpus_bleu(HYPS[tgt], [REFS[tgt]], tokenize="13a").score
    )
    assert got["chrf"]["score"] == pytest.approx(sacrebleu.corpus_chrf(HYPS[tgt], [REFS[tgt]]).score)
    assert f"tok:{tok}" in got["bleu"]["signature"]
    if tgt == "zh":
        assert tok == "zh" and got["bleu"]["score"] != got["bleu_paper_13a"]["score"]


def test_cs_en_is_built_by_reversing_en_cs(monkeypatch):
    import datasets

    rows = [{"en-cs": {"en": "Hello.", "cs": "Ahoj."}}, {"en-cs": {"en": "Thanks.", "cs": "Díky."}}]

    class FakeDS(list):
        def __getitem__(self, key):
            return [r[key] for r in self] if isinstance(key, str) else list.__getitem__(self, key)

    monkeypatch.setattr(datasets, "get_dataset_config_names", lambda *a, **k: ["en-cs", "en-de"])
    monkeypatch.setattr(datasets, "load_dataset", lambda name, cfg, split, revision=None: FakeDS(rows))
    src, ref, note = translation.load_pairs("cs", "en")
    assert src == ["Ahoj.", "Díky."] and ref == ["Hello.", "Thanks."]
    assert "REVERSED" in note
    with pytest.raises(ValueError, match="has no ja-de"):
        translation.load_pairs("ja", "de")


def test_local_files_must_be_aligned(tmp_path):
    a, b = tmp_path / "src.txt", tmp_path / "ref.txt"
    a.write_text("a\nb\n")
    b.write_text("a\n")
    with pytest.raises(ValueError, match="has 2 lines but"):
        translation.load_pairs("cs", "en", source_file=str(a), reference_file=str(b))


def test_comet_command_fails_cleanly_without_the_package(tmp_path):
    out = tmp_path / "cs-en_wmt23.json"
    out.write_text(json.dumps({"src": "a", "ref": "b", "prediction": "c"}) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "score_comet.py"), str(out)], capture_output=True, text=True, env=env
    )
    assert proc.returncode != 0
    assert "COMET is not installed" in proc.stderr and "requirements-comet.txt" in proc.stderr


FAKE_COMET = """
import json
import os
seen = []
def download_model(name):
    if name != "Unbabel/wmt22-comet-da":
        raise OSError("no such model: " + name)
    return os.environ["FAKE_CKPT"]
class _Result:
    def __init__(self, scores):
        self.scores, self.system_score = scores, sum(scores) / len(scores)
class _Model:
    def predict(self, data, batch_size, gpus):
        with open(os.environ["FAKE_LOG"], "w") as fh:
            json.dump(data, fh)
        return _Result([len(d["mt"]) / 10 for d in data])
def load_from_checkpoint(path):
    assert path == os.environ["FAKE_CKPT"], path
    return _Model()
"""


def test_comet_command_writes_both_score_files(tmp_path):
    """score_comet.py against a stand-in ``comet`` package with unbabel-comet's API (the real one needs its own
    environment and a checkpoint download)."""
    pkg = tmp_path / "fake" / "comet"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_COMET)
    out = tmp_path / "cs-en_wmt23.json"
    rows = [  # written out of order, with a line break inside a prediction
        {"index": 1, "src": "Děkuji.", "ref": "Thank you.", "prediction": "Thanks\nyou."},
        {"index": 0, "src": "Ahoj.", "ref": "Hello.", "prediction": "Hello."},
    ]
    out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "fake"), "FAKE_CKPT": str(tmp_path / "model.ckpt")}
    env["FAKE_LOG"] = str(tmp_path / "seen.txt")
    run = lambda *extra: subprocess.run(  # noqa: E731
        [sys.executable, str(ROOT / "scripts" / "score_comet.py"), str(out), *extra],
        capture_output=True,
        text=True,
        env=env,
    )
    proc = run()
    assert proc.returncode == 0, proc.stderr
    seen = json.loads((tmp_path / "seen.txt").read_text())
    assert seen == [
        {"src": "Ahoj.", "mt": "Hello.", "ref": "Hello."},
        {"src": "Děkuji.", "mt": "Thanks you.", "ref": "Thank you."},
    ]
    full = json.loads((tmp_path / "cs-en_wmt23.json.comet.json").read_text())
    assert full["scores"] == [0.6, 1.1] and full["mean_score"] == pytest.approx(0.85) and full["n"] == 2
    paper = json.loads((tmp_path / "cs-en_comet.txt").read_text())
    assert paper == {"mean_score": full["mean_score"], "model": "Unbabel/wmt22-comet-da", "n": 2}
    proc = run("--model", "Unbabel/not-a-model")
    assert proc.returncode != 0 and "is not available" in proc.stderr and "--model /path/to" in proc.stderr


def test_wmt_script_end_to_end_on_local_files(tmp_path, tiny_model_dir):
    src, ref = tmp_path / "src.cs", tmp_path / "ref.en"
    src.write_text("Ahoj světe.\nDěkuji.\nDobrý den.\n")
    ref.write_text("Hello world.\nThank you.\nGood day.\n")
    out = tmp_path / "cs-en_wmt23.json"
    cmd = [
        sys.executable,
        "-m",
        "scripts.run_inference_eval_wmt23",
        "--base-model-name",
        tiny_model_dir,
        "--source-lang",
        "cs",
        "--lang",
        "en",
        "--output-path",
        str(out),
        "--no-default-template",
        "--source-file",
        str(src),
        "--reference-file",
        str(ref),
        "--max-new-tokens",
        "5",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["src"] for r in rows] == ["Ahoj světe.", "Děkuji.", "Dobrý den."]
    assert "from Czech to English" in rows[0]["prompt"]
    scores = json.loads((tmp_path / "cs-en_scores.json").read_text())
    assert {"bleu", "bleu_paper_13a", "chrf"} <= set(scores)
    assert json.loads((tmp_path / "cs-en_bleu.txt").read_text())["signature"].startswith("nrefs:1")
    # re-scoring a saved output
    proc = subprocess.run([*cmd, "--evaluation-only"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((tmp_path / "cs-en_scores.json").read_text())["chrf"] == scores["chrf"]
