"""`midalign bench xsid --quick` end to end on a tiny model and the shared xSID files: every method trains through
the real entry point, every language is scored, results and the table are written, and a rerun resumes."""

import json

import pytest

pytestmark = pytest.mark.slow


def test_quick_run_writes_results_and_resumes(tmp_path, tiny_model_dir, xsid_dir, capsys, monkeypatch):
    from midalign.experiments import xsid as experiment
    from midalign.experiments.xsid import main

    seen = {}
    real_train = experiment.train

    def spy(argv):  # the real training, recording each run's flags
        seen[argv[argv.index("--output_dir") + 1].split("/")[-2]] = argv
        return real_train(argv)

    monkeypatch.setattr(experiment, "train", spy)

    argv = ["--quick", "--model", tiny_model_dir, "--data-dir", xsid_dir, "--output-dir", str(tmp_path / "work"),
            "--fig-dir", str(tmp_path / "fig")]  # fmt: skip
    result = main(argv)
    langs = ["en", "de", "zh", "da", "ja"]
    assert [(r["seed"], r["method"]) for r in result["runs"]] == [
        (0, "baseline"),
        (0, "baseline_2x"),
        (0, "alignment"),
        (0, "alignment_center"),
    ]
    for run in result["runs"]:
        assert set(run["f1"]) == set(langs) and all(0.0 <= v <= 1.0 for v in run["f1"].values())
        assert set(run["retrieval_at_layer"]) == {"de", "zh", "da", "ja"}
        assert run["dtype"] == "float32"
    # the precision is recorded with the machine and code, and heads the table
    assert result["env"]["dtype"] == "float32" and result["env"]["cpu"] and result["summary"]["dtype"] == "float32"
    assert (tmp_path / "fig" / "xsid_quick.md").read_text().startswith("Compute dtype: float32.")
    align_logs = result["runs"][2]["final_logs"]
    assert any("loss/align" in h for h in align_logs)  # the alignment run really ran the alignment loss
    assert not any("loss/align" in h for h in result["runs"][0]["final_logs"])
    assert any("loss/align" in h for h in result["runs"][3]["final_logs"])
    # the remedy row trained with --alignment_center batch, the paper's row without it
    for method, center in (("alignment", "none"), ("alignment_center", "batch")):
        assert seen[method][seen[method].index("--alignment_center") + 1] == center
    summary = result["summary"]
    assert summary["groups"] == {"english": ["en"], "aligned": ["de", "zh"], "transfer": ["da", "ja"]}
    base = summary["methods"]["baseline"]
    # group means are means of the per-language F1 (one seed)
    assert base["groups"]["aligned"][0] == pytest.approx((base["f1"]["de"][0] + base["f1"]["zh"][0]) / 2)
    # paired differences with bootstrap intervals, from per-sentence span counts
    pair = summary["paired"]["alignment_center - baseline_2x"]
    assert pair["seeds"] == [0] and set(pair) == {"seeds", "english", "aligned", "transfer"}
    a, b = summary["methods"]["alignment_center"], summary["methods"]["baseline_2x"]
    assert pair["english"][0] == pytest.approx(a["f1"]["en"][0] - b["f1"]["en"][0])
    assert pair["english"][1] <= pair["english"][0] <= pair["english"][2]
    assert "Paired differences in slot F1" in (tmp_path / "fig" / "xsid_quick.md").read_text()
    assert (tmp_path / "fig" / "xsid_quick.png").stat().st_size > 0
    table = (tmp_path / "fig" / "xsid_quick.md").read_text()
    assert "\n| method | English | aligned avg | transfer avg | en | de | zh | da | ja |" in table
    saved = json.loads((tmp_path / "fig" / "xsid_quick.json").read_text())
    assert saved["summary"]["methods"]["alignment"]["f1"] == summary["methods"]["alignment"]["f1"]
    # the predictions are on disk, one file per language, 4 sentences each
    preds = (tmp_path / "work" / "seed0" / "alignment" / "pred_zh.json").read_text(encoding="utf-8").splitlines()
    assert len(preds) == 4
    capsys.readouterr()
    again = main([*argv, "--overwrite"])  # nothing left to do: every (method, seed) is read back
    assert capsys.readouterr().out.count("done earlier") == 4
    assert again["runs"] == result["runs"]


def test_bad_arguments_are_clear(tmp_path, xsid_dir, tiny_model_dir):
    from midalign.experiments.xsid import main

    with pytest.raises(SystemExit):
        main(["--methods", "baseline,madx"])
    with pytest.raises(ValueError, match="unknown xSID languages"):
        main(["--quick", "--model", tiny_model_dir, "--data-dir", xsid_dir, "--lang", "en,fr",
              "--output-dir", str(tmp_path)])  # fmt: skip


def test_evaluated_items_are_a_seeded_sample_held_out_of_every_training_file(xsid_dir):
    """On the real release: en.test shares sentences with en.valid (the training file) and the aligned languages'
    valid files translate some test sentences; none of them is evaluated, in any language, and the sample is
    seeded (not a file prefix) and the same items in every language."""
    from midalign.experiments.leakage import normalize_text
    from midalign.experiments.xsid import XsidBenchConfig, xsid_subsets
    from midalign.tasks import xsid

    cfg = XsidBenchConfig(data_dir=xsid_dir, aligned=("de", "zh"), test_size=32, retrieval_size=50)
    got = xsid_subsets(cfg, ["en", "de", "da", "zh"])
    rec = got["record"]
    assert rec["leaked"] > 0 and rec["test_items"] == 32 and rec["retrieval_items"] == 50
    train = {normalize_text(s.text) for s in xsid.load_xsid("en", "valid", xsid_dir)}
    pairs = {normalize_text(t) for lang in ("de", "zh") for s in xsid.load_xsid(lang, "valid", xsid_dir)
             for t in (s.text, s.text_en or "")}  # fmt: skip
    english = [normalize_text(s.text) for s in got["test"]["en"]]
    for sents in got["test"].values():
        assert [normalize_text(s.text_en or s.text) for s in sents] == english  # the same items everywhere
        assert not {normalize_text(s.text) for s in sents} & (train | pairs)
    assert not set(english) & (train | pairs)
    prefix = [normalize_text(s.text) for s in xsid.load_xsid("en", "test", xsid_dir)[:32]]
    assert english != prefix
    other = xsid_subsets(XsidBenchConfig(data_dir=xsid_dir, aligned=("de", "zh"), subset_seed=1), ["en", "de"])
    assert [s.text for s in other["test"]["en"]] != [s.text for s in got["test"]["en"]]
    kept = xsid_subsets(XsidBenchConfig(data_dir=xsid_dir, aligned=("de", "zh"), keep_leaked=True), ["en", "de"])
    assert kept["record"]["kept_leaked"] is True  # --keep-leaked: counted, not dropped
