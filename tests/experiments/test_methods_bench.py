"""`midalign bench methods --quick` end to end on a tiny model and the shared xSID files, and every method's composed
model checked against composing its parts by hand (LoRA deltas added to the weights, sparse entries scattered)."""

import json
import os

import pytest
import torch
from safetensors.torch import load_file

pytestmark = pytest.mark.slow

LANGS = ["en", "de", "zh", "da"]
METHODS = ["baseline", "baseline_2x", "alignment", "merging", "madx", "lt_sft", "incline"]


@pytest.fixture(scope="module")
def quick(tmp_path_factory, tiny_model_dir, xsid_dir):
    from midalign.experiments.methods import main

    root = tmp_path_factory.mktemp("methods")
    # large learning rates so that every trained component moves the outputs visibly (2 steps only)
    argv = ["--quick", "--model", tiny_model_dir, "--data-dir", xsid_dir, "--output-dir", str(root / "work"),
            "--fig-dir", str(root / "fig"), "--learning-rate", "0.05", "--sft-learning-rate", "0.01"]  # fmt: skip
    return {"argv": argv, "result": main(argv), "work": root / "work", "fig": root / "fig", "model": tiny_model_dir}


def _logits(model, tokenizer, text="book a table for two tomorrow"):
    enc = tokenizer([text], return_tensors="pt")
    with torch.no_grad():
        return model(**enc).logits


def _base(model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_dir).eval()


def _add_lora_by_hand(model, adapter_dir, weight=1.0):
    """W += weight * alpha/r * B @ A for every module of the adapter, read straight from its files."""
    cfg = json.loads((adapter_dir / "adapter_config.json").read_text())
    scale = cfg["lora_alpha"] / cfg["r"]
    tensors = load_file(adapter_dir / "adapter_model.safetensors")
    modules = dict(model.named_modules())
    with torch.no_grad():
        for key, a in tensors.items():
            if not key.endswith("lora_A.weight"):
                continue
            b = tensors[key.replace("lora_A", "lora_B")]
            name = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
            modules[name].weight += weight * scale * (b @ a)
    return model


def _add_sparse_by_hand(model, path):
    from safetensors import safe_open

    state = model.state_dict()
    with safe_open(str(path), framework="pt") as fh, torch.no_grad():
        for key in fh.keys():
            if key.endswith("::indices"):
                name = key.removesuffix("::indices")
                flat = state[name].view(-1)
                idx, val = fh.get_tensor(key), fh.get_tensor(name + "::values")
                for i, v in zip(idx.tolist(), val.tolist()):
                    flat[i] += v
    return model


def test_every_method_runs_and_is_summarized(quick):
    result = quick["result"]
    assert [(r["seed"], r["method"]) for r in result["runs"]] == [(0, m) for m in METHODS]
    for run in result["runs"]:
        assert set(run["f1"]) == set(LANGS) and all(0.0 <= v <= 1.0 for v in run["f1"].values())
        assert run["train_seconds"] >= 0 and run["dtype"] == "float32"
    assert result["env"]["dtype"] == result["summary"]["dtype"] == "float32"
    by = {r["method"]: r for r in result["runs"]}
    assert by["merging"]["chosen"]["weight"] in (0.5, 1.0) and set(by["merging"]["dev_f1"]) == {"0.5", "1"}
    assert by["incline"]["chosen"]["sigma"] in (0.1, 0.5)
    # costs: LoRA r=8 on the tiny model; MAD-X counts the language and the task LoRA; LT-SFT the same entry budget
    assert by["madx"]["trainable_params"] == 2 * by["baseline"]["trainable_params"]
    assert by["baseline_2x"]["trainable_params"] == by["baseline"]["trainable_params"]
    steps = {m: json.loads((quick["work"] / "seed0" / m / "train" / "trainer_state.json").read_text())["global_step"]
             for m in ("baseline", "baseline_2x")}  # fmt: skip
    assert steps["baseline_2x"] == 2 * steps["baseline"]
    assert by["lt_sft"]["trainable_params"] == by["madx"]["trainable_params"]
    assert by["incline"]["trainable_params"] == 0 and by["incline"]["stored_bytes_per_language"] > 0
    summary = result["summary"]
    assert summary["groups"] == {"english": ["en"], "aligned": ["de", "zh"], "transfer": ["da"]}
    # paired differences against the task-only controls, per seed (one seed here: a mean, no interval)
    d = summary["paired_t"]["madx - baseline"]["transfer"]
    want = by["madx"]["f1"]["da"] - by["baseline"]["f1"]["da"]
    assert d["per_seed"] == [pytest.approx(want)] and d["low"] is None
    boot = summary["paired"]["madx - baseline"]["transfer"]  # the sensitivity check: clustered bootstrap
    assert boot[0] == pytest.approx(want) and boot[1] <= boot[0] <= boot[2]
    assert result["plan"]["status"] == "exploratory"
    table = (quick["fig"] / "methods_quick.md").read_text()
    assert (
        table.startswith("Compute dtype: float32.")
        and "\n| method | English | de | zh | aligned avg | transfer avg |" in table
    )
    assert all(f"| {m} |" in table for m in METHODS)
    assert (quick["fig"] / "methods_quick.png").stat().st_size > 0
    saved = json.loads((quick["fig"] / "methods_quick.json").read_text())
    assert saved["summary"]["methods"]["madx"]["f1"] == summary["methods"]["madx"]["f1"]
    # INCLINE leaves languages without a map alone: their scores are the baseline's
    assert by["incline"]["scores"]["en"] == by["baseline"]["scores"]["en"]
    assert by["incline"]["scores"]["da"] == by["baseline"]["scores"]["da"]


def test_rerun_resumes_every_method(quick, capsys):
    from midalign.experiments.methods import main

    capsys.readouterr()
    again = main([*quick["argv"], "--overwrite"])
    assert capsys.readouterr().out.count("done earlier") == len(METHODS)
    assert again["runs"] == quick["result"]["runs"]


def test_merging_is_task_plus_weighted_alignment_adapter(quick, tokenizer):
    from midalign.models import load_model_with_adapters

    seed = quick["work"] / "seed0"
    w = next(r for r in quick["result"]["runs"] if r["method"] == "merging")["chosen"]["weight"]
    composed = load_model_with_adapters(quick["model"], [str(seed / "merging" / f"composed_w{w:g}")])
    by_hand = _add_lora_by_hand(_base(quick["model"]), seed / "baseline" / "train" / "adapter_model")
    by_hand = _add_lora_by_hand(by_hand, seed / "merging" / "align" / "adapter_model", w)
    base = _logits(_base(quick["model"]), tokenizer)
    got = _logits(composed, tokenizer)
    assert (got - base).abs().max() > 1e-3  # the adapters change the outputs
    torch.testing.assert_close(got, _logits(by_hand, tokenizer), atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("lang", ["de", "en"])
def test_madx_is_language_plus_task_adapter(quick, tokenizer, lang):
    from midalign.models import load_model_with_adapters

    work = quick["work"]
    composed = load_model_with_adapters(quick["model"], [str(work / "seed0" / "madx" / f"composed_{lang}")])
    by_hand = _add_lora_by_hand(_base(quick["model"]), work / "shared" / f"lora_{lang}" / "adapter_model")
    by_hand = _add_lora_by_hand(by_hand, work / "seed0" / "madx" / "train" / "adapter_model")
    got = _logits(composed, tokenizer)
    assert (got - _logits(_base(quick["model"]), tokenizer)).abs().max() > 1e-3
    torch.testing.assert_close(got, _logits(by_hand, tokenizer), atol=1e-4, rtol=1e-4)


def test_madx_task_adapter_was_trained_over_the_frozen_english_adapter(quick):
    # the English language adapter is unchanged by the task run (it was merged and frozen, not trained)
    work = quick["work"]
    before = load_file(work / "shared" / "lora_en" / "adapter_model" / "adapter_model.safetensors")
    task = load_file(work / "seed0" / "madx" / "train" / "adapter_model" / "adapter_model.safetensors")
    assert set(before) == set(task)  # same modules, separate weights
    assert not all(torch.equal(before[k], task[k]) for k in before)


def test_lt_sft_is_base_plus_language_and_task_differences(quick, tokenizer):
    from midalign.compose import SparseDiff, apply_sparse_diffs
    from midalign.experiments.methods import lora_parameter_count

    work = quick["work"]
    lang, task = work / "shared" / "sft_de.safetensors", work / "seed0" / "lt_sft" / "task.safetensors"
    composed = apply_sparse_diffs(_base(quick["model"]), [SparseDiff.load(str(lang)), SparseDiff.load(str(task))])
    by_hand = _add_sparse_by_hand(_add_sparse_by_hand(_base(quick["model"]), lang), task)
    got = _logits(composed, tokenizer)
    assert (got - _logits(_base(quick["model"]), tokenizer)).abs().max() > 1e-3
    torch.testing.assert_close(got, _logits(by_hand, tokenizer), atol=1e-5, rtol=1e-5)
    # k = the LoRA adapter's parameter count; the phase-2 difference lives on the phase-1 mask; no embeddings
    k = lora_parameter_count(_base(quick["model"]))
    diff, mask = SparseDiff.load(str(task)), SparseDiff.load(str(work / "seed0" / "lt_sft" / "task_mask.safetensors"))
    assert len(diff) == len(mask) == k
    assert all(torch.equal(diff.entries[n][0], mask.entries[n][0]) for n in mask.entries)
    assert not any("embed" in n or "lm_head" in n for n in diff.entries)
    assert not os.path.exists(work / "seed0" / "lt_sft" / "task_run")  # the full fine-tuned weights are removed


def test_incline_maps_are_least_squares_fits(quick, tokenizer, xsid_dir):
    from midalign.inference.incline import pooled_mlp_outputs
    from midalign.models import load_model_with_adapters
    from midalign.tasks import xsid

    work = quick["work"]
    model = load_model_with_adapters(quick["model"], [str(work / "seed0" / "baseline" / "train" / "adapter_model")])
    maps = load_file(work / "seed0" / "incline" / "incline_maps.safetensors")
    sents = xsid.load_xsid("zh", "valid", xsid_dir)[:-3]  # the quick run's dev split is the last 3
    x = pooled_mlp_outputs(model, tokenizer, [s.text for s in sents])
    y = pooled_mlp_outputs(model, tokenizer, [s.text_en for s in sents])
    w = maps["zh"].double()
    assert w.shape == (x.shape[0], x.shape[2], x.shape[2])
    for layer in range(x.shape[0]):  # normal equations: X^T (X W - Y) = 0
        grad = x[layer].T @ (x[layer] @ w[layer] - y[layer])
        assert grad.abs().max() < 1e-3 * (x[layer].T @ y[layer]).abs().max()


def test_bad_method_is_refused(tmp_path):
    from midalign.experiments.methods import main

    with pytest.raises(SystemExit):
        main(["--methods", "baseline,adapterfusion", "--output-dir", str(tmp_path)])


def test_report_only_runs_nothing_and_reports_what_is_done(quick, tmp_path):
    from midalign.experiments.methods import main

    i = quick["argv"].index("--fig-dir")
    argv = quick["argv"][:i] + quick["argv"][i + 2 :] + ["--report-only", "--fig-dir", str(tmp_path)]
    argv = [*argv, "--seeds", "0,1"]  # seed 1 was never run: reported as missing, not trained
    out = main(argv)
    assert [(r["seed"], r["method"]) for r in out["runs"]] == [(0, m) for m in METHODS]
    assert not (quick["work"] / "seed1").exists()
    assert (tmp_path / "methods_quick.md").read_text().count("| baseline |") == 2  # main table + transfer table


def test_each_method_is_registered_once():
    from midalign.experiments import methods

    assert methods.METHODS == tuple(methods.RUNNERS) == methods.MethodsBenchConfig().methods
    with pytest.raises(ValueError, match="registered twice"):
        methods.method("incline")(lambda ctx, seed, out_dir: ({}, {}))
