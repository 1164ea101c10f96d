"""The powered experiment (issue 30's design) on a synthetic parallel label task and a tiny model: the screen's
selection rule, randomized roles, the pilot rule, the stopping rule, and screen -> pilot -> plan -> run (sharded,
resumable) -> report end to end, with the validity harness's guarantees checked on the way."""

import json
import random

import pytest

from midalign.experiments import powered

LABELS = ["science/technology", "travel", "politics", "sports", "health", "entertainment", "geography"]
WORDS = ["alpha", "beta", "gamma", "delta", "omega", "sigma", "kappa", "lambda", "theta", "zeta"]


def make_task_dir(root, langs, sizes=(14, 8, 14)):
    """A SIB-200-shaped release: every language holds the same ids (parallel), splits sorted by label."""
    rng = random.Random(0)
    next_id = 1
    for split, n in zip(("train", "dev", "test"), sizes):
        ids = [(next_id + i, LABELS[i * len(LABELS) // n]) for i in range(n)]  # sorted by label, like the release
        next_id += n
        for lang in langs:
            d = root / lang
            d.mkdir(parents=True, exist_ok=True)
            (d / "labels.txt").write_text("\n".join(LABELS) + "\n")
            lines = ["index_id\tcategory\ttext"] + [
                f"{i}\t{lab}\t{lang[:3]} {' '.join(rng.choice(WORDS) for _ in range(5))} {lab} {i}" for i, lab in ids
            ]
            (d / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return str(root)


def test_selection_is_stratified_seeded_and_spreads_scripts():
    centered = {f"l{i:02d}_{'Latn' if i % 3 else 'Cyrl'}": i / 40 for i in range(40)}  # 0.0 .. 0.975
    sel = powered.select_languages(centered, n=8, low=0.1, high=0.9, bins=4, seed=0)
    assert all(0.1 <= centered[x] <= 0.9 for x in sel["selected"]) and len(sel["selected"]) == 8
    assert len(sel["excluded_low"]) == 4 and len(sel["excluded_high"]) == 3
    for stratum, picked in zip(sel["strata"], sel["selected_strata"]):
        assert len(picked) == 2 and set(picked) <= set(stratum)
    scripts = [x.split("_")[1] for x in sel["selected"]]
    assert scripts.count("Cyrl") >= 3  # a third of the pool, drawn as often as Latin while it lasts
    assert sel == powered.select_languages(centered, n=8, low=0.1, high=0.9, bins=4, seed=0)
    roles = powered.assign_roles(sel["selected_strata"], seed=1)
    assert sorted(roles["A"] + roles["B"]) == sel["selected"]
    for picked in sel["selected_strata"]:  # half of every stratum in each role
        assert len(set(picked) & set(roles["A"])) == 1
    assert powered.aligned_half(4) == "A" and powered.aligned_half(7) == "B"
    with pytest.raises(ValueError, match="are needed"):
        powered.select_languages(centered, n=40, low=0.1, high=0.9, bins=4, seed=0)


def test_pilot_rule_and_stopping_rule():
    summary = {
        "baseline_2x": {"english_dev_accuracy": 0.80, "aligned_dev_retrieval_centered": 0.3},
        "center_batch_w1": {"english_dev_accuracy": 0.76, "aligned_dev_retrieval_centered": 0.9},  # too costly
        "center_standardize_w1": {"english_dev_accuracy": 0.79, "aligned_dev_retrieval_centered": 0.7},
        "center_batch_w0.3": {"english_dev_accuracy": 0.81, "aligned_dev_retrieval_centered": 0.6},
    }
    choice, why = powered.choose_from_pilot(summary)
    assert choice == "center_standardize_w1" and "2 of 3" in why
    # sd 0.02 per seed: t(0.975, n-1) * 0.02 / sqrt(n) <= 0.015 first at n = 10 (2.262 * 0.02 / 3.162 = 0.0143)
    rule = powered.stopping_rule([0.0, 0.02, -0.02, 0.01, -0.01, 0.03, -0.03, 0.0, 0.02, -0.02], 10, 0.015, 30)
    assert rule["seeds_needed"] == 10 and rule["continue_to"] == 10
    wide = powered.stopping_rule([0.0, 0.1, -0.1, 0.05], 10, 0.015, 30)
    assert wide["reachable"] is False and wide["continue_to"] == 10
    mid = powered.stopping_rule([0.0, 0.03, -0.03, 0.02, -0.02, 0.01, -0.01, 0.03, -0.03, 0.0], 10, 0.015, 30)
    assert 10 < mid["continue_to"] <= 30 and mid["continue_to"] % 2 == 0


def test_units_run_by_name_or_shard():
    plan = {"arms": ["baseline_2x", "alignment"], "seeds": [0, 1]}
    assert powered._units(plan, "alignment:1", None) == [("base", -1), ("alignment", 1)]
    shards = [powered._units(plan, None, f"{k}/2") for k in (1, 2)]
    assert sorted(shards[0] + shards[1]) == sorted(powered._units(plan, None, None))
    with pytest.raises(ValueError, match="ARM:SEED"):
        powered._units(plan, "alignment:7", None)
    with pytest.raises(ValueError, match="K/N"):
        powered._units(plan, None, "3/2")


@pytest.mark.slow
def test_screen_pilot_plan_run_report_end_to_end(tmp_path, tiny_model_dir, monkeypatch):
    langs = ["eng_Latn", "deu_Latn", "fra_Latn", "rus_Cyrl", "ukr_Cyrl", "zho_Hans"]
    data = make_task_dir(tmp_path / "data", langs)
    work, fig = str(tmp_path / "work"), str(tmp_path / "fig")
    common = ["--data-dir", data, "--model", tiny_model_dir, "--dtype", "float32", "--work-dir", work,
              "--n-languages", "4", "--screen-bins", "2", "--screen-low", "0", "--screen-high", "1",
              "--steps", "1", "--batch-size", "4", "--seeds", "0,1", "--pilot-seeds", "100",
              "--eval-batch-size", "8"]  # fmt: skip
    sel = powered.main(["screen", *common])
    assert len(sel["selected"]) == 4 and len(sel["roles"]["A"]) == 2
    assert (tmp_path / "work" / "screen.png").stat().st_size > 0
    pilot = powered.main(["pilot", *common, "--only", "baseline_2x,center_batch_w1"])
    assert set(pilot["summary"]) == {"baseline_2x", "center_batch_w1"} and "choice" not in pilot
    assert json.loads((tmp_path / "work" / "pilot" / "plan.json").read_text())["status"] == "exploratory"
    record = powered.main(["plan", *common])
    subset = record["plan"]["evaluation"]["subset"]
    assert subset["size"] == 14 and subset["labels"]["counts"]["geography"] == 2  # the whole split, every label
    assert record["plan"]["evaluation"]["leakage"]["leaked_ids"] == []  # splits are disjoint by id and text
    with pytest.raises(ValueError, match="plan is fixed"):
        powered.main(["plan", *common[:-2], "--eval-batch-size", "4"])
    powered.main(["run", *common, "--shard", "1/2"])
    powered.main(["run", *common, "--shard", "2/2"])
    result = powered.main(["report", *common, "--fig-dir", fig])
    assert result["units_done"] == ["alignment:0", "alignment:1", "alignment_center:0", "alignment_center:1",
                                    "baseline_2x:0", "baseline_2x:1"]  # fmt: skip
    assert result["timeline"]["runs_before_plan"] == 0 and result["dtype"] == "float32"
    primary = result["summary"]["endpoints"]["primary: alignment_center - baseline_2x, aligned half"]
    assert primary["seeds"] == [0, 1] and primary["df"] == 1 and primary["bootstrap"]["n_clusters"] == 14
    # the per-seed primary difference is the mean over that seed's own aligned half
    runs = {(r["arm"], r["seed"]): r for r in result["runs"]}
    half0 = runs[("alignment_center", 0)]["aligned"]
    want0 = sum(runs[("alignment_center", 0)]["eval"][x]["accuracy"] - runs[("baseline_2x", 0)]["eval"][x]["accuracy"]
                for x in half0) / len(half0)  # fmt: skip
    assert primary["per_seed"][0] == pytest.approx(want0)
    assert runs[("alignment", 1)]["aligned"] == record["plan"]["languages"]["roles"]["B"]
    # a result from another plan, or a tampered one, is refused by the report
    path = tmp_path / "work" / "runs" / "seed1" / "alignment" / "result.json"
    r = json.loads(path.read_text())
    path.write_text(json.dumps({**r, "arm": "../../escape"}))
    with pytest.raises(ValueError, match="unknown arm"):
        powered.main(["report", *common, "--fig-dir", fig, "--overwrite"])
