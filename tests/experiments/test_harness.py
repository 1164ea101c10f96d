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
    with pytest.raises(ValueError, match=r"--work-dir .*other settings \(steps: file 2 vs now 3\); give another"):
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
