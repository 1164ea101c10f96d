"""The validity harness: representative subsets, seed-level intervals, clustered bootstrap, leakage, dtype, plans."""

import json
import math
import statistics

import pytest

from midalign.data import subsets
from midalign.experiments import leakage, plan, stats


# ---- intervals -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("p", "df", "expected"),
    [
        (0.975, 2, 4.302653),
        (0.975, 4, 2.776445),
        (0.975, 9, 2.262157),
        (0.975, 29, 2.045230),
        (0.95, 1, 6.313752),
        (0.025, 4, -2.776445),
    ],
)
def test_t_quantile_matches_the_tables(p, df, expected):
    assert stats.t_quantile(p, df) == pytest.approx(expected, abs=1e-5)


def test_t_interval_three_seeds_by_hand():
    # the SIB-200 audit's per-seed paired means: the page said [-6.6, 8.9]; the seed-level interval is far wider
    got = stats.t_interval([-6.6, 9.0, -0.2])
    mean = (-6.6 + 9.0 - 0.2) / 3
    sd = math.sqrt(sum((v - mean) ** 2 for v in (-6.6, 9.0, -0.2)) / 2)
    half = 4.302653 * sd / math.sqrt(3)
    assert got["mean"] == pytest.approx(mean)
    assert got["low"] == pytest.approx(mean - half, abs=1e-4) and got["high"] == pytest.approx(mean + half, abs=1e-4)
    assert got["low"] == pytest.approx(-18.7467, abs=1e-3) and got["high"] == pytest.approx(20.2134, abs=1e-3)
    assert got["df"] == 2 and got["method"] == "t"


def test_t_interval_five_seeds_by_hand():
    got = stats.t_interval([1, 2, 3, 4, 5])
    assert got["mean"] == 3
    assert got["half_width"] == pytest.approx(2.776445 * math.sqrt(2.5) / math.sqrt(5), abs=1e-5)
    assert got["low"] == pytest.approx(1.036757, abs=1e-5)


def test_t_interval_one_seed_has_no_interval_and_nan_is_refused():
    assert stats.t_interval([0.3])["low"] is None
    with pytest.raises(ValueError, match="non-finite"):
        stats.t_interval([0.1, float("nan")])


def test_paired_seed_interval_needs_the_same_seeds():
    got = stats.paired_seed_interval({0: 0.5, 1: 0.7}, {0: 0.4, 1: 0.4})
    assert got["per_seed"] == pytest.approx([0.1, 0.3]) and got["seeds"] == [0, 1]
    with pytest.raises(ValueError, match="same seeds"):
        stats.paired_seed_interval({0: 0.5}, {1: 0.4})


def test_cluster_bootstrap_draws_one_id_for_every_language():
    # item "a" is +1 in both languages, "b" is -1 in both: if languages were resampled independently, the mixed
    # draws (a in one language, b in the other) would give 0; drawing clusters, every resample is a mean of +-1 per
    # drawn cluster, the same in both languages, so the per-language means are always equal.
    values = {0: {"de": {"a": 1.0, "b": -1.0}, "fr": {"a": 1.0, "b": -1.0}}}
    got = stats.cluster_bootstrap(values, resamples=400, seed=1)
    assert got["mean"] == 0 and got["n_clusters"] == 2
    # the possible statistics with 2 clusters drawn twice are -1, 0, +1: a percentile interval sits on them
    assert got["low"] in (-1.0, 0.0) and got["high"] in (0.0, 1.0)
    # a language whose items disagree with the other's ids is refused
    with pytest.raises(ValueError, match="other item ids"):
        stats.cluster_bootstrap({0: {"de": {"a": 1.0}}, 1: {"de": {"b": 1.0}}})


def test_correlation_summary_has_fisher_interval_rank_and_leave_one_out():
    x = [0.1, 0.2, 0.3, 0.4, 0.9]
    y = [0.5, 0.4, 0.6, 0.5, 0.95]  # the last language makes the correlation
    got = stats.correlation_summary(x, y, ["a", "b", "c", "d", "e"])
    assert got["pearson"] == pytest.approx(0.918202, abs=1e-5)  # numpy.corrcoef
    low, high = got["fisher_interval"]
    assert low < got["pearson"] < high
    assert got["leave_one_out"]["most_influential"] == "e"
    assert got["leave_one_out"]["min"] == pytest.approx(0.316228, abs=1e-5)
    assert got["spearman"] == pytest.approx(0.666886, abs=1e-5)  # ranks 1..5 vs 2.5,1,4,2.5,5


def test_verdict_says_beyond_noise_only_when_the_interval_excludes_zero():
    assert stats.verdict({"mean": 0.02, "low": -0.01, "high": 0.05}).startswith("no difference beyond noise")
    assert stats.verdict({"mean": 0.02, "low": 0.01, "high": 0.03}) == "higher by 2.0 points [+1.0, +3.0]"
    assert stats.verdict({"mean": -0.02, "low": -0.03, "high": -0.01}) == "lower by 2.0 points [-3.0, -1.0]"
    assert "dominated by the seed variance" in stats.seed_caveat(3)
    assert stats.seed_caveat(5) is None


# ---- subsets ---------------------------------------------------------------------------------------------------
def _sorted_split():
    # category-sorted like SIB-200's test.tsv: 51 / 40 / 30 / 25 / 22 / 19 / 17
    sizes = {"sci": 51, "travel": 40, "politics": 30, "sports": 25, "health": 22, "ent": 19, "geo": 17}
    rows = [(f"{lab}{i}", lab) for lab, n in sizes.items() for i in range(n)]
    return rows, sizes


def test_stratified_subset_of_a_sorted_file_covers_every_label_in_proportion():
    rows, sizes = _sorted_split()
    ids = [i for i, _ in rows]
    labels = dict(rows)
    picked = subsets.sample_ids(ids, 68, seed=0, labels=labels)
    assert len(picked) == 68
    counts = {lab: sum(labels[i] == lab for i in picked) for lab in sizes}
    for lab, n in sizes.items():  # proportional to within one item
        assert abs(counts[lab] - 68 * n / 204) < 1, (lab, counts)
    subsets.check_representative([labels[i] for i in picked], [lab for _, lab in rows], "test")
    # the prefix the old harness took is refused
    with pytest.raises(ValueError, match="no item of labels"):
        subsets.check_representative([lab for _, lab in rows[:68]], [lab for _, lab in rows], "test")
    # seeded: the same seed gives the same ids, another seed other ids
    assert subsets.sample_ids(ids, 68, 0, labels) == picked != subsets.sample_ids(ids, 68, 1, labels)


def test_majority_class_over_half_is_refused_when_the_split_has_none():
    split = ["a"] * 40 + ["b"] * 30 + ["c"] * 30
    with pytest.raises(ValueError, match="> 50%"):
        subsets.check_representative(["a"] * 6 + ["b", "c"], split, "x")


def test_label_profile_gives_majority_and_chance():
    prof = subsets.label_profile(["a", "a", "b"], ["a", "b", "c", "d"])
    assert prof["counts"] == {"a": 2, "b": 1, "c": 0, "d": 0}
    assert prof["majority_label"] == "a" and prof["majority_accuracy"] == pytest.approx(2 / 3)
    assert prof["chance"] == 0.25


# ---- leakage ---------------------------------------------------------------------------------------------------
def test_a_planted_overlap_is_found_by_text_in_any_language_and_by_id():
    eval_items = {
        "de": [("1", "Der Hund  schläft."), ("2", "Es regnet.")],
        "fr": [("1", "Le chien dort."), ("2", "Il pleut.")],
    }
    found = leakage.find_leaks(
        eval_items,
        {
            "task rows": ([], ["der hund schläft."]),  # case and whitespace differ: still the same sentence
            "alignment pairs": (["7"], ["Quelque chose."]),
        },
    )
    assert found["leaked_ids"] == ["1"]
    assert found["by_source"]["task rows"] == {"by_id": 0, "by_text": 1, "by_near_text": 0, "ids": ["1"]}
    by_id = leakage.find_leaks(eval_items, {"pairs": (["2"], [])})
    assert by_id["leaked_ids"] == ["2"] and by_id["n_items"] == 2
    assert leakage.normalize_text("Ｆｕｌｌ\u3000WIDTH") == "full width"


# ---- one precision, one plan -----------------------------------------------------------------------------------
def test_a_seed_set_mixing_dtypes_is_refused():
    runs = [{"env": {"dtype": "bfloat16"}}, {"env": {"dtype": "float32"}}]
    with pytest.raises(ValueError, match="mix precisions"):
        plan.check_one_dtype(runs)
    assert plan.check_one_dtype(runs, allow_mixed=True) == "bfloat16/float32"
    assert plan.check_one_dtype([{"dtype": "float32"}, {"env": {"dtype": "float32"}}]) == "float32"


def test_a_plan_is_fixed_once_written(tmp_path):
    record = plan.write_plan(str(tmp_path), {"seeds": [0, 1], "arms": ["baseline_2x", "alignment"]})
    assert record["sha"] == plan.plan_hash({"seeds": [0, 1], "arms": ["baseline_2x", "alignment"]})
    assert json.loads((tmp_path / "plan.json").read_text())["status"] == "confirmatory"
    # the same plan again: accepted (a resume)
    assert plan.write_plan(str(tmp_path), {"arms": ["baseline_2x", "alignment"], "seeds": (0, 1)}) == record
    with pytest.raises(ValueError, match=r"seeds: plan \[0, 1\] vs now \[0, 1, 2\]"):
        plan.write_plan(str(tmp_path), {"seeds": [0, 1, 2], "arms": ["baseline_2x", "alignment"]})
    with pytest.raises(ValueError, match="status"):
        plan.write_plan(str(tmp_path), {"seeds": [0, 1], "arms": ["baseline_2x", "alignment"]}, status="exploratory")


def test_timeline_counts_results_older_than_the_plan(tmp_path):
    record = plan.write_plan(str(tmp_path), {"a": 1})
    runs = [{"finished": "2000-01-01T00:00:00Z"}, {"finished": "2999-01-01T00:00:00Z"}]
    got = plan.timeline(record, runs)
    assert got["runs_before_plan"] == 1 and got["n_runs"] == 2


def test_a_benchs_training_dtype_is_read_from_its_extra_flags():
    from midalign.experiments.harness import train_dtype

    assert train_dtype([]) == "float32"
    assert train_dtype(["--bf16", "True"]) == train_dtype(["--bf16=true"]) == "bfloat16"
    assert train_dtype(["--bf16", "False", "--lora_r", "4"]) == "float32"
    assert train_dtype(["--torch_dtype", "bfloat16"]) == "bfloat16"


def test_the_synthetic_transfer_experiment_reports_a_paired_seed_level_t_interval():
    from midalign.experiments.transfer import paired

    f1 = {  # seed -> method -> per-target F1
        0: {"baseline_2x": {"a": 0.0, "b": 0.1}, "alignment": {"a": 0.2, "b": 0.1}},
        1: {"baseline_2x": {"a": 0.1, "b": 0.0}, "alignment": {"a": 0.1, "b": 0.2}},
        2: {"baseline_2x": {"a": 0.0, "b": 0.0}, "alignment": {"a": 0.3, "b": 0.1}},
    }
    rows = [{"seed": s, "method": m, "f1": v} for s, ms in f1.items() for m, v in ms.items()]
    p = paired(rows, ["a", "b"])
    assert p["ref"] == "baseline_2x" and p["seeds"] == [0, 1, 2]
    diffs = [0.1, 0.1, 0.2]  # per seed, mean over targets of alignment - baseline_2x
    half = 4.302653 * statistics.stdev(diffs) / 3**0.5
    m = p["mean_over_targets"]
    assert m["per_seed"] == pytest.approx(diffs) and m["half_width"] == pytest.approx(half, rel=1e-5)
    assert p["targets"]["a"]["per_seed"] == pytest.approx([0.2, 0.0, 0.3])
    # three seeds all favouring alignment still do not exclude 0 at t(2): the verdict says so
    assert "no difference beyond noise" in p["verdict"] and "3 seeds" in p["caveat"]


def test_near_duplicates_are_leaks_in_any_script_and_unrelated_sentences_are_not():
    # SIB-200 has one: test 184 ("Jarque was practicing ... He was staying in the team hotel ahead of a match planned
    # for Sunday against Bolonia.") contains train 185 ("He was staying in the team hotel ahead of a match planned
    # for Sunday against Bolonia.")
    train = ["He was staying in the team hotel ahead of a match planned for Sunday against Bolonia.",
             "وكان يقيم في فندق الفريق قبل مباراة مقررة يوم الأحد ضد بولونيا."]  # fmt: skip
    items = {
        "eng_Latn": [("184", "Jarque was practicing at Coverciano earlier in the day. He was staying in the team hotel "
                             "ahead of a match planned for Sunday against Bolonia."),
                     ("7", "The team hotel was close to the stadium, and the match was planned for Sunday.")],
        "arb_Arab": [("184", "كان جارك يتدرب في وقت سابق من اليوم. وكان يقيم في فندق الفريق قبل مباراة تقرر "
                             "إقامتها يوم الأحد ضد بولونيا."), ("7", "كان الفندق قريبا من الملعب.")],
    }  # fmt: skip
    found = leakage.find_leaks(items, {"task rows": ((), train)})
    assert found["leaked_ids"] == ["184"]
    assert found["by_source"]["task rows"] == {"by_id": 0, "by_text": 0, "by_near_text": 1, "ids": ["184"]}
    # one changed word is still the same sentence; a text too short to judge is compared exactly only
    assert leakage.near_duplicates(["He was staying in the team hotel ahead of a game planned for Sunday."], train)
    assert leakage.near_duplicates(["hotel"], ["hotel room"]) == [False]


def test_a_stratified_cluster_bootstrap_keeps_each_strata_count_of_seeds():
    # even seeds +1, odd seeds -1 on every item: unstratified draws tilt to either side; stratified ones cannot
    values = {s: {"x": {"a": 1.0 if s % 2 == 0 else -1.0, "b": 1.0 if s % 2 == 0 else -1.0}} for s in range(4)}
    free = stats.cluster_bootstrap(values, resamples=300)
    strat = stats.cluster_bootstrap(values, resamples=300, strata={s: s % 2 for s in range(4)})
    assert free["low"] < 0 < free["high"] and strat["low"] == strat["high"] == 0.0
    assert strat["method"] == "cluster bootstrap (seeds stratified)"
    with pytest.raises(ValueError, match="no stratum"):
        stats.cluster_bootstrap(values, strata={0: 0})
