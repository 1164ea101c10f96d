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
                # a random token makes every sentence its own (the leak check's near-duplicate pass sees through
                # texts that share most of their words)
                f"{i}\t{lab}\t{lang[:3]} {' '.join(rng.choice(WORDS) for _ in range(5))} {rng.getrandbits(64):016x} "
                f"{lab} {i}"
                for i, lab in ids
            ]
            (d / f"{split}.tsv").write_text("\n".join(lines) + "\n")
    return str(root)


def test_selection_is_proportional_by_script_group_stratified_seeded_and_one_variant_per_language():
    # 24 Latin, 16 other-script languages, centered retrieval spread 0..0.975; two variants of one language
    names = [f"l{i:02d}_{'Latn' if i % 5 < 3 else ('Cyrl' if i % 5 == 3 else 'Arab')}" for i in range(40)]
    centered = {x: i / 40 for i, x in enumerate(names)}
    centered["zzz_Hans"], centered["zzz_Hant"] = 0.5, 0.51
    sel = powered.select_languages(centered, n=8, low=0.1, high=0.9, bins=2, seed=0)
    assert all(0.1 <= centered[x] <= 0.9 for x in sel["selected"]) and len(sel["selected"]) == 8
    assert len(sel["excluded_low"]) == 4 and len(sel["excluded_high"]) == 3
    latin = [x for x in sel["selected"] if x.endswith("_Latn")]
    assert sel["latin_share"] == [4, 8] and len(latin) == 4  # 20 of 35 eligible are Latin: 4.6 -> 4 (cells of 4)
    for cell, picked in sel["cells"].items():
        assert len(picked) == 2 and set(picked) <= set(sel["strata"][cell])
    assert not {"zzz_Hans", "zzz_Hant"} <= set(sel["selected"])  # at most one variant of a language
    assert sel == powered.select_languages(centered, n=8, low=0.1, high=0.9, bins=2, seed=0)
    roles = powered.assign_roles(sel["cells"], seed=1)
    assert sorted(roles["A"] + roles["B"]) == sel["selected"]
    for picked in sel["cells"].values():  # half of every cell in each role
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


def test_units_run_by_name_or_shard_and_only_the_seeds_the_rule_allows(tmp_path):
    plan = {"arms": ["baseline_2x", "alignment"], "seeds": [0, 1, 2, 3], "config": {"first_seeds": 2}}
    seeds = powered.active_seeds(plan, str(tmp_path))
    assert seeds == [0, 1]  # the first batch until the rule has decided
    assert powered._units(plan, seeds, "alignment:1", None) == [("base", -1), ("alignment", 1)]
    shards = [powered._units(plan, seeds, None, f"{k}/2") for k in (1, 2)]
    assert sorted(shards[0] + shards[1]) == sorted(powered._units(plan, seeds, None, None))
    with pytest.raises(ValueError, match="ARM:SEED"):
        powered._units(plan, seeds, "alignment:3", None)  # seed 3 is not due yet
    with pytest.raises(ValueError, match="K/N"):
        powered._units(plan, seeds, None, "3/2")
    (tmp_path / "stopping.json").write_text(json.dumps({"continue_to": 4}))
    assert powered.active_seeds(plan, str(tmp_path)) == [0, 1, 2, 3]


@pytest.mark.slow
def test_screen_pilot_plan_run_report_end_to_end(tmp_path, tiny_model_dir, monkeypatch):
    langs = ["eng_Latn", "deu_Latn", "fra_Latn", "ita_Latn", "spa_Latn", "rus_Cyrl", "ukr_Cyrl", "zho_Hans"]
    data = make_task_dir(tmp_path / "data", langs)
    work, fig = str(tmp_path / "work"), str(tmp_path / "fig")
    common = ["--data-dir", data, "--model", tiny_model_dir, "--dtype", "float32", "--output-dir", work,
              "--n-languages", "4", "--screen-bins", "2", "--screen-low", "0", "--screen-high", "1",
              "--max-steps", "1", "--batch-size", "4", "--seeds", "0,1", "--first-seeds", "2", "--max-seeds", "2",
              "--pilot-seeds", "100", "--eval-batch-size", "8"]  # fmt: skip
    sel = powered.main(["screen", *common])
    assert len(sel["selected"]) == 4 and len(sel["roles"]["A"]) == 2
    assert (tmp_path / "work" / "screen.png").stat().st_size > 0
    pilot = powered.main(["pilot", *common, "--only", "baseline_2x,center_batch_w1"])
    assert set(pilot["summary"]) == {"baseline_2x", "center_batch_w1"} and "choice" not in pilot
    assert json.loads((tmp_path / "work" / "pilot" / "plan.json").read_text())["status"] == "exploratory"
    with pytest.raises(FileNotFoundError, match="pilot has not chosen"):
        powered.main(["plan", *common])  # the plan takes its settings from the pilot's choice ...
    record = powered.main(["plan", *common, "--settings-from-flags"])  # ... or, said so, from the flags
    assert record["plan"]["settings_source"].startswith("flags")
    assert record["plan"]["settings"]["alignment_schedule"] == "joint" and record["plan"]["layer"] == 2
    subset = record["plan"]["evaluation"]["subset"]
    assert subset["size"] == 14 and subset["labels"]["counts"]["geography"] == 2  # the whole split, every label
    assert record["plan"]["evaluation"]["leakage"]["leaked_ids"] == []  # splits are disjoint by id and text
    with pytest.raises(ValueError, match="plan is fixed"):
        powered.main(["plan", *common[:-2], "--eval-batch-size", "4", "--settings-from-flags"])
    monkeypatch.setattr(powered, "_code_changes", lambda commit: ["src/midalign/training/trainer.py"])
    with pytest.raises(ValueError, match="differs from the plan's commit"):
        powered.main(["run", *common, "--shard", "1/2"])
    monkeypatch.undo()
    # the test may run on an uncommitted tree: name the change (recorded in the units) whatever git says
    powered.main(["run", *common, "--shard", "1/2", "--accept-code-change", "test run"])
    powered.main(["run", *common, "--shard", "2/2", "--accept-code-change", "test run"])
    result = powered.main(["report", *common, "--fig-dir", fig])
    assert result["units_done"] == ["alignment:0", "alignment:1", "alignment_center:0", "alignment_center:1",
                                    "baseline_2x:0", "baseline_2x:1"]  # fmt: skip
    assert result["timeline"]["runs_before_plan"] == 0 and result["dtype"] == "float32"
    assert result["stopping"]["from_seeds"] == [0, 1]  # the first batch is complete: the rule decided, once
    assert json.loads((tmp_path / "work" / "stopping.json").read_text()) == result["stopping"]
    primary = result["summary"]["endpoints"]["primary: alignment_center - baseline_2x, aligned half"]
    assert primary["seeds"] == [0, 1] and primary["df"] == 1 and primary["bootstrap"]["n_clusters"] == 14
    assert set(primary["by_role"]) == {"A", "B"}
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


@pytest.mark.slow
@pytest.mark.parametrize("schedule", ["joint", "alternate"])
def test_joint_arms_train_on_exactly_the_baseline_task_batches(tmp_path, tiny_model_dir, data_files, monkeypatch,
                                                               schedule):  # fmt: skip
    """Same seed: the LoRA init and the task batches of an alignment arm under the `joint` schedule are those of
    baseline_2x (the contrast isolates the alignment term); under the paper's `alternate` they are not (its
    alignment micro-batches' task examples go unused)."""
    from midalign.experiments.protocol import ARMS, TrainSettings, train_unit
    from midalign.training.trainer import AlignmentTrainer

    seen: list = []
    original = AlignmentTrainer._task_loss

    def record(self, model, inputs):
        seen.append(inputs["input_ids"].tolist())
        return original(self, model, inputs)

    monkeypatch.setattr(AlignmentTrainer, "_task_loss", record)
    settings = TrainSettings(steps=3, batch_size=4, lora_dropout=0.0, alignment_schedule=schedule)
    files = {"train": data_files["task"], "pairs": data_files["pairs"]}
    batches = {}
    for arm in ("baseline_2x", "alignment_center"):
        seen.clear()
        train_unit(ARMS[arm], 7, settings, tiny_model_dir, files, str(tmp_path / schedule / arm), "float32")
        batches[arm] = list(seen)
    if schedule == "joint":
        assert batches["alignment_center"] == batches["baseline_2x"] and len(batches["baseline_2x"]) == 6
    else:
        assert len(batches["alignment_center"]) == 3 and batches["alignment_center"] != batches["baseline_2x"][:3]


def test_the_pilots_dev_items_are_fixed_by_its_first_finished_unit(tmp_path):
    """A later leak check (e.g. one that sees near-duplicates) must not score the remaining pilot seeds on other
    items than the finished ones: the finished units fix the set, and the record says what the check would change."""
    order = ["5", "3", "9", "1"]
    assert powered._pilot_dev_ids(str(tmp_path), "eng_Latn", ["5", "9"], order) == (["5", "9"], None)
    unit = tmp_path / "seed1000" / "baseline_2x"
    unit.mkdir(parents=True)
    (unit / "result.json").write_text(json.dumps({"eval": {"eng_Latn": {"correct": {"9": 1, "5": 0, "3": 1}}}}))
    ids, note = powered._pilot_dev_ids(str(tmp_path), "eng_Latn", ["5", "9"], order)
    assert ids == ["5", "3", "9"] and "drop ['3']" in note
    other = tmp_path / "seed1000" / "center_batch_w1"
    other.mkdir(parents=True)
    (other / "result.json").write_text(json.dumps({"eval": {"eng_Latn": {"correct": {"9": 1}}}}))
    with pytest.raises(ValueError, match="different dev items"):
        powered._pilot_dev_ids(str(tmp_path), "eng_Latn", ["5", "9"], order)
