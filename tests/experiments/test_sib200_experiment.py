"""`midalign experiment sib200 --quick` end to end on a tiny model and the committed SIB-200 sample: every row trains
through the real entry point, every language is scored, intervals and paired differences are written, and a rerun
resumes without recomputing."""

import json
import statistics

import pytest

from tests.conftest import ROOT

SAMPLE = str(ROOT / "tests" / "assets" / "sib200")


def test_quick_run_writes_results_and_resumes(tmp_path, tiny_model_dir, capsys):
    from midalign.experiments.sib200 import main

    argv = ["--quick", "--model", tiny_model_dir, "--data-dir", SAMPLE, "--output-dir", str(tmp_path / "work"),
            "--fig-dir", str(tmp_path / "fig"), "--dtype", "float32"]  # fmt: skip
    result = main(argv)
    # every experiment writes its plan (exploratory: not preregistered) and says whether a result predates it
    assert result["plan"]["status"] == "exploratory" and result["plan"]["plan"]["settings"]["test_size"] == 4
    assert result["timeline"]["runs_before_plan"] == 0 and result["timeline"]["n_runs"] == 6
    methods = ["baseline", "baseline_2x", "alignment", "alignment_center", "control_paper", "control_center"]
    assert [r["method"] for r in result["runs"]] == methods
    langs = ["eng_Latn", "deu_Latn", "zho_Hans"]
    assert result["languages"] == langs
    for run in result["runs"]:
        assert set(run["retrieval"]) == {"deu_Latn", "zho_Hans"}
        if not run["method"].startswith("control"):
            assert set(run["eval"]) == set(langs)
            assert all(len(v["correct"]) == 4 for v in run["eval"].values())
    assert any("loss/align" in h for h in result["runs"][2]["final_logs"])
    assert not any("loss/task" in h for h in result["runs"][4]["final_logs"])  # control: alignment only
    summary = result["summary"]
    assert summary["groups"]["aligned"] == ["deu_Latn"] and summary["groups"]["transfer"] == ["zho_Hans"]
    base = summary["methods"]["baseline"]
    mean, low, high = base["groups"]["english"]
    assert low <= mean <= high
    assert mean == pytest.approx(result["runs"][0]["eval"]["eng_Latn"]["accuracy"])
    assert "alignment - baseline" in summary["paired"] and "alignment_center - baseline_2x" in summary["paired"]
    table = (tmp_path / "fig" / "sib200_quick.md").read_text()
    assert "| alignment_center | 1 |" in table
    assert (tmp_path / "fig" / "sib200_quick.png").stat().st_size > 0
    saved = json.loads((tmp_path / "fig" / "sib200_quick.json").read_text())
    assert saved["summary"]["paired"] == summary["paired"]
    train_rows = (tmp_path / "work" / "train_eng_Latn.json").read_text().splitlines()
    assert len(train_rows) == 8
    capsys.readouterr()
    again = main([*argv, "--overwrite"])  # the results of the first call are replaced on purpose
    assert capsys.readouterr().out.count("done earlier") == len(methods) + 1  # + the base model's retrieval
    assert again["runs"] == result["runs"]
    # --report-only summarises what is finished, running nothing: remove one run and it is left out
    import shutil

    shutil.rmtree(tmp_path / "work" / "seed0" / "control_center")
    report = main([*argv, "--report-only", "--overwrite"])
    assert [r["method"] for r in report["runs"]] == methods[:-1] and report["complete"] is False
    assert not (tmp_path / "work" / "seed0" / "control_center").exists()


def test_unknown_language_is_one_clear_error(tmp_path, tiny_model_dir):
    from midalign.experiments.sib200 import main

    with pytest.raises(ValueError, match=r"\['fra_Latn'\] are not in"):
        main(["--quick", "--model", tiny_model_dir, "--data-dir", SAMPLE, "--lang", "eng_Latn,fra_Latn",
              "--output-dir", str(tmp_path)])  # fmt: skip


def test_reuse_results_runs_only_what_the_file_lacks(tmp_path, tiny_model_dir, capsys):
    """A committed results file stands in for a lost work dir: its runs are not rerun, the missing seed is, and the
    report covers both; a file written with other settings is refused, naming the setting."""
    from midalign.experiments.sib200 import main

    common = ["--quick", "--model", tiny_model_dir, "--data-dir", SAMPLE, "--dtype", "float32",
              "--methods", "baseline,control_center", "--fig-dir", str(tmp_path / "fig")]  # fmt: skip
    first = main([*common, "--output-dir", str(tmp_path / "lost"), "--name", "first"])
    results = str(tmp_path / "fig" / "first.json")
    capsys.readouterr()
    both = main([*common, "--seeds", "0,1", "--output-dir", str(tmp_path / "new"), "--reuse-results", results])
    out = capsys.readouterr().out
    assert "3 finished runs taken from" in out  # base + seed 0's two rows
    assert out.count("done earlier") == 3
    assert [(r["seed"], r["method"]) for r in both["runs"]] == [
        (0, "baseline"), (0, "control_center"), (1, "baseline"), (1, "control_center")]  # fmt: skip
    assert both["runs"][0]["eval"] == first["runs"][0]["eval"] and both["runs"][0]["reused_from"] == results
    assert "reused_from" not in both["runs"][2] and both["complete"] is True
    assert both["summary"]["methods"]["baseline"]["n_seeds"] == 2
    with pytest.raises(ValueError, match=r"other settings \(steps: file 2 vs now 3\)"):
        main([*common, "--max-steps", "3", "--output-dir", str(tmp_path / "other"), "--reuse-results", results,
              "--name", "other"])  # fmt: skip


def test_settings_are_validated_before_any_run_and_quick_has_its_own_work_dir(tmp_path, tiny_model_dir):
    from midalign.experiments.sib200 import Sib200Config, eval_subset, main

    common = ["--quick", "--model", tiny_model_dir, "--data-dir", SAMPLE, "--fig-dir", str(tmp_path / "fig")]
    for flag, value in (("--alignment-layer", "0"), ("--test-size", "-1"), ("--test-size", "0")):
        with pytest.raises(ValueError, match=flag):
            main([*common, flag, value, "--output-dir", str(tmp_path / "w")])
    assert not (tmp_path / "w").exists()  # refused before anything was written
    from midalign.experiments.harness import experiment_cli

    kw = dict(prog="p", description="d", cfg_cls=Sib200Config, methods=("baseline",),
              languages_help="", quick_help="", work_dir="outputs/experiment_sib200")  # fmt: skip
    assert experiment_cli(["--quick"], **kw)[1].work_dir == "outputs/experiment_sib200_quick"
    assert experiment_cli([], **kw)[1].work_dir == "outputs/experiment_sib200"
    # the evaluated subset is recorded with its label profile; by default the whole split
    cfg = Sib200Config(data_dir=SAMPLE)
    sub = eval_subset(cfg)
    assert sub["method"] == "whole split" and sub["size"] == sub["of"] == 6
    assert sub["labels"]["majority_accuracy"] == 1.0  # the committed sample holds one topic: a page must say so


def test_infer_limit_is_a_stratified_sample_not_a_prefix(tmp_path, tiny_model_dir):
    from midalign.tasks.cli import sib200 as main
    from tests.experiments.test_powered import make_task_dir

    data = make_task_dir(tmp_path / "data", ["eng_Latn", "deu_Latn"], sizes=(7, 7, 14))
    out = tmp_path / "pred.jsonl"
    main(["infer", "--model", tiny_model_dir, "--data-dir", data, "--lang", "deu_Latn", "--limit", "7",
          "--output-path", str(out)])  # fmt: skip
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 7 and len({r["gold"] for r in rows}) == 7  # one of each topic; a prefix held 4 topics


def test_reuse_results_refuses_a_bad_run_before_any_run(tmp_path, tiny_model_dir):
    """Issue 31, item 1: a reused run with an escaping method, or without its eval, is refused naming the file and
    the run; nothing is written outside the work dir and no run starts."""
    from dataclasses import asdict

    from midalign.experiments.sib200 import Sib200Config, main

    cfg = asdict(Sib200Config.quick(model=tiny_model_dir, data_dir=SAMPLE, dtype="float32"))
    run = {"seed": 0, "method": "baseline", "retrieval": {}, "train_seconds": 1.0, "eval_seconds": 1.0, "eval": {}}
    common = ["--quick", "--model", tiny_model_dir, "--data-dir", SAMPLE, "--dtype", "float32",
              "--fig-dir", str(tmp_path / "fig"), "--output-dir", str(tmp_path / "a" / "b" / "work")]  # fmt: skip
    unfinished = {k: v for k, v in run.items() if k != "eval"}
    for bad, message in (({**run, "method": "../../../escaped"}, "unknown method"),
                         (unfinished, r"not a finished baseline run \(missing eval\)")):  # fmt: skip
        (tmp_path / "old.json").write_text(json.dumps({"config": cfg, "runs": [bad]}))
        with pytest.raises(ValueError, match=r"old\.json: runs\[0\]: " + message):
            main([*common, "--reuse-results", str(tmp_path / "old.json")])
        assert not (tmp_path / "escaped").exists() and not (tmp_path / "a" / "b" / "work" / "base").exists()


def test_a_planted_overlap_is_counted_and_dropped_before_any_training(tmp_path):
    """A German test sentence that is also an English training row (translations count: any language) is found by
    text and dropped from the evaluated ids of every language; the results record the count."""
    import shutil

    from midalign.experiments.sib200 import Sib200Config, eval_subset, leak_check

    data = tmp_path / "sib"
    shutil.copytree(SAMPLE, data)
    test_de = (data / "deu_Latn" / "test.tsv").read_text().splitlines()
    victim_id, _, victim_text = test_de[1].split("\t")
    train_en = data / "eng_Latn" / "train.tsv"
    train_en.write_text(train_en.read_text() + f"99999\tscience/technology\t{victim_text.upper()}\n")
    cfg = Sib200Config(data_dir=str(data), aligned=("deu_Latn",), languages=("eng_Latn", "deu_Latn"))
    leaks = leak_check(cfg, ["eng_Latn", "deu_Latn"])
    assert leaks["leaked_ids"] == [victim_id] and leaks["by_source"]["task rows"]["by_text"] == 1
    sub = eval_subset(cfg)
    assert int(victim_id) not in sub["ids"] and sub["leaked_dropped"] == 1 and sub["size"] == 5


def test_a_seed_set_mixing_precisions_is_refused_unless_asked(tmp_path, tiny_model_dir):
    from midalign.experiments.sib200 import main

    argv = ["--quick", "--model", tiny_model_dir, "--data-dir", SAMPLE, "--output-dir", str(tmp_path / "w"),
            "--fig-dir", str(tmp_path / "fig"), "--dtype", "float32", "--methods", "baseline"]  # fmt: skip
    main(argv)
    done = tmp_path / "w" / "seed0" / "baseline" / "result.json"
    run = json.loads(done.read_text())
    # a second seed computed in another precision (as when a run resumes on a machine with bf16 units)
    other = tmp_path / "w" / "seed1" / "baseline"
    other.mkdir(parents=True)
    (other / "result.json").write_text(json.dumps({**run, "seed": 1, "dtype": "bfloat16"}))
    with pytest.raises(ValueError, match="mix precisions"):
        main([*argv, "--seeds", "0,1", "--report-only", "--overwrite"])
    mixed = main([*argv, "--seeds", "0,1", "--report-only", "--overwrite", "--allow-mixed-dtypes"])
    assert mixed["summary"]["dtype_by_seed"] == {"0": "float32", "1": "bfloat16"}


def test_a_retrieval_sentence_in_the_pairs_is_dropped_and_sentences_match_by_id(tmp_path):
    """The held-out retrieval sentences get the same check against the pairs (a Chinese test sentence planted in the
    German pair file is found through its id's other renderings), and the sample is stratified, not a prefix."""
    import shutil

    from midalign.data.subsets import label_profile
    from midalign.experiments.sib200 import Sib200Config, retrieval_subset

    data = tmp_path / "sib"
    shutil.copytree(SAMPLE, data)
    test_zh = (data / "zho_Hans" / "test.tsv").read_text().splitlines()
    victim_id, _, victim_text = test_zh[2].split("\t")
    train_de = data / "deu_Latn" / "train.tsv"
    train_de.write_text(train_de.read_text() + f"88888\tsports\t  {victim_text}  \n")
    langs = ["eng_Latn", "deu_Latn", "zho_Hans"]
    cfg = Sib200Config(data_dir=str(data), aligned=("deu_Latn",), languages=tuple(langs))
    sub = retrieval_subset(cfg, langs)
    assert sub["leakage"]["leaked_ids"] == [victim_id] and sub["leaked_dropped"] == 1
    assert int(victim_id) not in sub["ids"] and len(sub["ids"]) == len(test_zh) - 2  # header + the leaked one
    rows = [line.split("\t") for line in (data / "eng_Latn" / "test.tsv").read_text().splitlines()[1:]]
    labels = {int(i): c for i, c, _ in rows}
    small = retrieval_subset(Sib200Config(data_dir=str(data), aligned=("deu_Latn",), retrieval_size=4), langs)
    prefix = [int(i) for i, _, _ in rows[:4]]
    assert small["ids"] != prefix or len(set(labels[i] for i in prefix)) > 1
    assert len(label_profile([labels[i] for i in small["ids"]])) >= min(4, len(set(labels.values())))


def test_summary_intervals_are_seed_level_t_with_a_clustered_bootstrap_and_correlations_carry_their_intervals():
    """Three seeds, two methods, English and four transfer languages: the primary interval of a paired difference is
    the t-interval of the per-seed means (by hand), the bootstrap resamples sentence clusters, and the correlation of
    base retrieval with accuracy carries its Fisher interval, rho and leave-one-out range."""
    from midalign.experiments.sib200 import Sib200Config, markdown_table, summarize

    langs = ["eng_Latn", "deu_Latn", "fra_Latn", "zho_Hans", "arb_Arab"]
    targets = langs[1:]
    cfg = Sib200Config(aligned=(), languages=tuple(langs), methods=("baseline", "alignment"), seeds=(0, 1, 2))
    # per language, 4 sentences; baseline gets the first k right, alignment one more on seed-dependent languages
    right = {"eng_Latn": 4, "deu_Latn": 3, "fra_Latn": 2, "zho_Hans": 1, "arb_Arab": 2}

    def run(method, seed):
        ev = {}
        for x in langs:
            k = right[x] + (1 if method == "alignment" and (seed + len(x)) % 3 == 0 and right[x] < 4 else 0)
            correct = [1.0] * k + [0.0] * (4 - k)
            ev[x] = {"correct": correct, "accuracy": k / 4, "macro_f1": k / 4}
        retr = {x: {"raw": 0.5, "centered": 0.5} for x in targets}
        return {"method": method, "seed": seed, "dtype": "float32", "eval": ev, "retrieval": retr,
                "train_seconds": 1.0, "eval_seconds": 1.0}  # fmt: skip

    runs = [run(m, s) for s in (0, 1, 2) for m in ("baseline", "alignment")]
    base = {"retrieval": {x: {"raw": r, "centered": r / 2} for x, r in zip(targets, (0.9, 0.6, 0.2, 0.5))}}
    summary = summarize(runs, base, cfg, langs)
    d = summary["paired"]["alignment - baseline"]
    per_seed = [statistics.fmean(
        (runs[2 * s + 1]["eval"][x]["accuracy"] - runs[2 * s]["eval"][x]["accuracy"]) for x in targets)
        for s in (0, 1, 2)]  # fmt: skip
    by_hand = statistics.fmean(per_seed), statistics.stdev(per_seed) * 4.302653 / 3**0.5
    t = d["t"]["transfer"]
    assert t["mean"] == pytest.approx(by_hand[0]) and t["half_width"] == pytest.approx(by_hand[1], rel=1e-5)
    boot = d["groups"]["transfer"]
    assert boot[0] == pytest.approx(by_hand[0]) and boot[1] <= boot[0] <= boot[2]
    c = summary["correlation_base_retrieval_vs_baseline_accuracy"]["raw"]
    assert c["pearson"] == pytest.approx(statistics.correlation([0.9, 0.6, 0.2, 0.5], [0.75, 0.5, 0.25, 0.5]))
    assert c["fisher_interval"] is not None and c["spearman"] is not None and c["leave_one_out"]["min"] <= c["pearson"]
    assert "Spearman rho" in markdown_table(summary, cfg, langs)
