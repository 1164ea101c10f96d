"""The experiment harness: resumable runs, and never mixing or replacing another run's results."""

import json

import pytest

from midalign.experiments import harness


def test_run_once_runs_once(tmp_path):
    calls = []
    first = harness.run_once(str(tmp_path / "r"), "r", lambda: calls.append(1) or {"x": 1})
    again = harness.run_once(str(tmp_path / "r"), "r", lambda: calls.append(1) or {"x": 2})
    assert calls == [1] and again == first and first["x"] == 1 and "seconds" in first


def test_claim_results_refuses_an_earlier_runs_files(tmp_path):
    harness.claim_results(str(tmp_path), "exp")  # nothing there yet
    (tmp_path / "exp.png").write_bytes(b"x")
    with pytest.raises(FileExistsError, match=r"exp.png holds an earlier run's results; .*--overwrite"):
        harness.claim_results(str(tmp_path), "exp")
    harness.claim_results(str(tmp_path), "exp", overwrite=True)
    harness.claim_results(str(tmp_path), "other")  # another --name is free


def test_claim_work_dir_refuses_other_settings_and_lets_seeds_grow(tmp_path):
    work = str(tmp_path / "w")
    harness.claim_work_dir(work, {"steps": 2, "seeds": (0,), "methods": ("a",), "dtype": "x"}, per_run=("dtype",))
    record = json.loads((tmp_path / "w" / "experiment.json").read_text())
    assert record["config"]["steps"] == 2 and record["config"]["seeds"] == [0]
    # more seeds and methods, another per-run setting: the same experiment, resumed
    harness.claim_work_dir(work, {"steps": 2, "seeds": (0, 1), "methods": ("a", "b"), "dtype": "y"}, per_run=("dtype",))
    with pytest.raises(ValueError, match=r"--output-dir .*other settings \(steps: file 2 vs now 3\); give another"):
        harness.claim_work_dir(work, {"steps": 3, "seeds": (0,), "methods": ("a",), "dtype": "x"}, per_run=("dtype",))
    (tmp_path / "w" / "experiment.json").write_text("[1]")
    with pytest.raises(ValueError, match="not an experiment record"):
        harness.claim_work_dir(work, {"steps": 2})


def test_publish_writes_json_table_and_figure(tmp_path, capsys):
    drawn = []
    harness.publish(str(tmp_path / "f"), "exp", {"a": 1}, table="| a |\n", plot=drawn.append)
    assert json.loads((tmp_path / "f" / "exp.json").read_text()) == {"a": 1}
    assert (tmp_path / "f" / "exp.md").read_text() == "| a |\n" and "| a |" in capsys.readouterr().out
    assert drawn == [str(tmp_path / "f" / "exp.png")]
    with pytest.raises(ValueError):  # NaN is not JSON: refused, never written as NaN
        harness.publish(str(tmp_path / "f"), "bad", {"a": float("nan")})
    assert not (tmp_path / "f" / "bad.json").exists()


def test_the_default_results_dir_is_not_the_committed_fig():
    assert harness.FIG_DIR == "outputs/fig"


def test_bootstrap_f1_ci_recomputes_the_ratio_and_pairs_sides():
    # two seeds, two languages, 3 sentences each: [correct, predicted, gold] spans per sentence
    a = {0: {"x": [[1, 1, 1], [0, 1, 1], [2, 2, 2]], "y": [[0, 0, 1], [1, 1, 1], [0, 1, 0]]},
         1: {"x": [[1, 1, 1], [1, 1, 1], [2, 2, 2]], "y": [[1, 1, 1], [1, 1, 1], [0, 0, 0]]}}  # fmt: skip
    # by hand: seed 0: x 2*3/(4+4)=0.75, y 2*1/(2+2)=0.5 -> 0.625; seed 1: x 1.0, y 1.0 -> 1.0; mean 0.8125
    value, low, high = harness.bootstrap_f1_ci(a, langs=["x", "y"], resamples=200)
    assert value == pytest.approx(0.8125) and low <= value <= high and 0 <= low and high <= 1
    diff = harness.bootstrap_f1_ci(a, a, langs=["x", "y"], resamples=50)
    assert diff == [0.0, 0.0, 0.0]  # a side against itself: every resample is 0
    b = {s: {lang: [[0, c[1], c[2]] for c in rows] for lang, rows in v.items()} for s, v in a.items()}
    d, lo, hi = harness.bootstrap_f1_ci(a, b, langs=["x"], resamples=200)
    assert d == pytest.approx((0.75 + 1.0) / 2) and lo > 0  # b never right: a is better in every resample
    with pytest.raises(ValueError, match="same seeds"):
        harness.bootstrap_f1_ci(a, {0: a[0]}, langs=["x"])


def test_bootstrap_f1_ci_draws_one_sentence_for_every_language():
    # sentence i is one parallel sentence: x gets sentence 0 right and 1 wrong, y the opposite. A cluster draw keeps
    # the two languages' F1 summing to 1 in every resample, so their mean is exactly 0.5 every time; independent
    # per-language draws would spread it.
    a = {0: {"x": [[1, 1, 1], [0, 1, 1]], "y": [[0, 1, 1], [1, 1, 1]]}}
    assert harness.bootstrap_f1_ci(a, langs=["x", "y"], resamples=300) == [0.5, 0.5, 0.5]
    with pytest.raises(ValueError, match="different numbers of sentences"):
        harness.bootstrap_f1_ci({0: {"x": a[0]["x"], "y": a[0]["y"][:1]}}, langs=["x", "y"])


def _check(run, where):
    harness.validate_run(run, where, ("a", "b"), lambda m: ("eval",) if m == "a" else ())


def test_reuse_results_validates_every_run_before_writing_anything(tmp_path):
    """Issue 31, item 1: a reused run is checked (known method, integer seed, the fields of a finished run, finite
    numbers) and must land inside the work dir; a bad one is refused naming the file and the run, nothing written."""
    work = tmp_path / "w"

    def reuse(runs, **kw):
        path = tmp_path / "r.json"
        path.write_text(json.dumps({"config": {"steps": 2}, "runs": runs}).replace('"NaN"', "NaN"))
        return harness.reuse_results(str(path), str(work), {"steps": 2}, lambda r: f"seed{r['seed']}/{r['method']}",
                                     check=_check, **kw)  # fmt: skip

    good = {"seed": 0, "method": "a", "eval": {"x": 1.0}}
    for bad, message in (
        ({**good, "method": "../../../escaped"}, r"runs\[1\]: unknown method '../../../escaped'"),
        ({**good, "seed": "0"}, r"runs\[1\]: seed '0' is not an integer"),
        ({"seed": 0, "method": "a"}, r"runs\[1\]: not a finished a run \(missing eval\)"),
        ({**good, "eval": {"x": "NaN"}}, r"runs\[1\]\.eval\.x: non-finite number nan"),
        ([1], r"runs\[1\]: a run must be a JSON object"),
    ):
        with pytest.raises(ValueError, match=r"--reuse-results .*r\.json: " + message):
            reuse([good, bad])
        assert not work.exists() and not (tmp_path.parent / "escaped").exists()
    with pytest.raises(ValueError, match=r"is not inside --output-dir"):  # an unchecked run may not escape either
        path = tmp_path / "r.json"
        path.write_text(json.dumps({"config": {}, "runs": [{"seed": 0, "method": "../../x"}]}))
        harness.reuse_results(str(path), str(work), {}, lambda r: f"seed{r['seed']}/{r['method']}")
    assert reuse([good, {"seed": 1, "method": "b"}]) == [str(work / "seed0/a"), str(work / "seed1/b")]


def test_a_resumed_result_is_checked_and_an_empty_one_named(tmp_path):
    """Issue 31, items 1 and 10: a result.json in the work dir that is empty, or not a finished run, is refused
    naming the file (not "Expecting value: line 1 column 1")."""
    done = tmp_path / "r" / "result.json"
    done.parent.mkdir()
    done.write_text("")
    with pytest.raises(ValueError, match=r"r/result\.json: not valid JSON"):
        harness.run_once(str(tmp_path / "r"), "r", lambda: {"x": 1})
    done.write_text(json.dumps({"seed": 0, "method": "a"}))
    with pytest.raises(ValueError, match=r"r/result\.json: not a finished a run \(missing eval\)"):
        harness.run_once(str(tmp_path / "r"), "r", lambda: {"x": 1}, check=_check)


def test_config_flags_come_from_the_dataclass_in_the_one_vocabulary(capsys):
    """Every field of an experiment's config is a flag, spelled as midalign.vocabulary says, typed from its
    annotation; what was not given stays the config's default; a bad list is one error naming the flag."""
    import argparse

    from midalign.experiments.harness import add_config_flags, config_overrides
    from midalign.experiments.methods import MethodsBenchConfig

    p = argparse.ArgumentParser(allow_abbrev=False)
    names = add_config_flags(p, MethodsBenchConfig, skip=("extra_train_args",))
    spelled = {s for a in p._actions for s in a.option_strings}
    assert {"--max-steps", "--alignment-layer", "--alignment-weight", "--alignment-center", "--paper-arm-center",
            "--lang", "--merge-weights", "--keep-leaked", "--no-keep-leaked"} <= spelled  # fmt: skip
    # the methods comparison reads the alignment run's centering only (no remedy arm): one flag, values checked
    from midalign.experiments.harness import experiment_cli
    from midalign.experiments.methods import main as methods_main

    kw = dict(prog="p", description="d", cfg_cls=MethodsBenchConfig, methods=("baseline",), languages_help="",
              quick_help="", work_dir="w", skip=("remedy",), choices={"center": ["none", "batch"]})  # fmt: skip
    cfg, _ = experiment_cli(["--paper-arm-center", "batch"], **kw)
    assert cfg.center == "batch"
    for bad in (["--alignment-center", "batch"], ["--paper-arm-center", "foo"]):
        with pytest.raises(SystemExit):
            experiment_cli(bad, **kw)
    with pytest.raises(SystemExit):
        methods_main(["--alignment-center", "batch"])  # the real command has no such flag either
    capsys.readouterr()
    assert not spelled & {"--steps", "--layer", "--weight", "--remedy", "--center", "--languages"}
    args = p.parse_args(["--max-steps", "3", "--merge-weights", "0.5,1", "--seeds", "4,5", "--keep-leaked",
                         "--lang", "en,de"])  # fmt: skip
    got = config_overrides(p, MethodsBenchConfig, args, names)
    assert got == {"steps": 3, "merge_weights": (0.5, 1.0), "seeds": (4, 5), "keep_leaked": True,
                   "languages": ("en", "de")}  # fmt: skip
    cfg = MethodsBenchConfig(**got)
    assert cfg.steps == 3 and cfg.test_size == MethodsBenchConfig().test_size  # the rest: the defaults
    with pytest.raises(SystemExit):
        config_overrides(p, MethodsBenchConfig, p.parse_args(["--seeds", "0,x"]), names)
    assert "--seeds '0,x': expected comma-separated integers" in capsys.readouterr().err
