"""midalign as an lm-evaluation-harness backend: on a local-file multiple-choice task, the same accuracy and per-item
log-likelihoods through `--model hf` and `--model midalign`; an adapter changes the numbers as loading it by peft
does; the `midalign lm-eval` command runs lm-eval's command line with the backend registered."""

import json

import pytest

lm_eval = pytest.importorskip("lm_eval", reason="the lmeval extra is not installed")

ITEMS = [
    ("the cat sat on the mat", ["animals", "politics", "sports"], 0),
    ("parliament passed the budget", ["animals", "politics", "sports"], 1),
    ("the striker scored twice", ["animals", "politics", "sports"], 2),
    ("a new vaccine was approved", ["health", "travel", "geography"], 0),
    ("the flight to lisbon was late", ["health", "travel", "geography"], 1),
]


def _task_dir(tmp_path):
    tmp_path.mkdir(parents=True, exist_ok=True)
    data = tmp_path / "items.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"Topic of: {t}\nAnswer:", "choices": [f" {c}" for c in cs],
                                        "gold": g}) + "\n" for t, cs, g in ITEMS))  # fmt: skip
    (tmp_path / "tiny_mc.yaml").write_text(
        "task: midalign_tiny_mc\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
        f"    test: {data}\ntest_split: test\noutput_type: multiple_choice\ndoc_to_text: prompt\n"
        "doc_to_choice: choices\ndoc_to_target: gold\ntarget_delimiter: ''\nmetric_list:\n  - metric: acc\n"
    )
    return str(tmp_path)


def _evaluate(model, model_args, include):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    out = simple_evaluate(model=model, model_args=model_args, tasks=["midalign_tiny_mc"], device="cpu",
                          batch_size=4, task_manager=TaskManager(include_path=include), log_samples=True)  # fmt: skip
    samples = sorted(out["samples"]["midalign_tiny_mc"], key=lambda s: s["doc_id"])
    lls = [[r[0] for r in s["filtered_resps"]] for s in samples]
    return out["results"]["midalign_tiny_mc"]["acc,none"], lls


def _close(a, b, tol=1e-4):
    return all(abs(x - y) <= tol for ra, rb in zip(a, b) for x, y in zip(ra, rb)) and len(a) == len(b)


@pytest.mark.slow
def test_midalign_backend_equals_the_hf_backend_with_and_without_an_adapter(tmp_path, tiny_model_dir):
    import midalign.inference.lm_eval_model  # noqa: F401 -- registers "midalign"

    include = _task_dir(tmp_path / "task")
    acc_hf, ll_hf = _evaluate("hf", f"pretrained={tiny_model_dir}", include)
    acc_ma, ll_ma = _evaluate("midalign", f"pretrained={tiny_model_dir}", include)
    assert acc_ma == acc_hf and _close(ll_ma, ll_hf), (ll_ma, ll_hf)

    # a LoRA adapter with non-zero weights: numbers change, and equal hf's with the adapter loaded by peft
    import torch
    from peft import LoraConfig, get_peft_model

    from midalign.models import load_model

    peft_model = get_peft_model(load_model(tiny_model_dir), LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"))
    torch.manual_seed(0)
    for name, p in peft_model.named_parameters():
        if "lora_" in name:
            p.data.normal_(0, 0.2)
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    acc_hf_a, ll_hf_a = _evaluate("hf", f"pretrained={tiny_model_dir},peft={adapter}", include)
    acc_ma_a, ll_ma_a = _evaluate("midalign", f"pretrained={tiny_model_dir},adapter={adapter}", include)
    assert not _close(ll_ma_a, ll_ma)  # the adapter moved the scores
    assert acc_ma_a == acc_hf_a and _close(ll_ma_a, ll_hf_a, tol=1e-3), (ll_ma_a, ll_hf_a)


def test_the_backend_refuses_unknown_model_args(tiny_model_dir):
    from midalign.inference.lm_eval_model import MidalignLM

    with pytest.raises(ValueError, match="unknown arguments"):
        MidalignLM(pretrained=tiny_model_dir, adapters="x")


@pytest.mark.slow
def test_the_midalign_lm_eval_command_runs_lm_eval_with_the_backend(tmp_path, tiny_model_dir, capsys):
    from midalign.cli import main

    include = _task_dir(tmp_path / "task")
    out = tmp_path / "out"
    main(["lm-eval", "--model", "midalign", "--model_args", f"pretrained={tiny_model_dir}", "--tasks",
          "midalign_tiny_mc", "--include_path", include, "--batch_size", "2", "--output_path", str(out)])  # fmt: skip
    written = list(out.rglob("results_*.json"))
    assert written, capsys.readouterr().out
    results = json.loads(written[0].read_text())["results"]["midalign_tiny_mc"]
    assert 0 <= results["acc,none"] <= 1


@pytest.mark.slow
def test_exported_sib200_tasks_give_lm_eval_our_accuracy(tmp_path, tiny_model_dir):
    """`midalign export-lm-eval` writes tasks lm-eval loads; their accuracy through lm-eval equals `sib200 infer`'s
    on the same sentences (the prompts and label strings are ours)."""
    import midalign.inference.lm_eval_model  # noqa: F401
    from midalign.cli import main
    from midalign.tasks import sib200
    from tests.experiments.test_powered import make_task_dir

    data = make_task_dir(tmp_path / "data", ["eng_Latn", "deu_Latn"], sizes=(7, 7, 14))
    out = tmp_path / "lm_eval_tasks"
    main(["export-lm-eval", "--task", "sib200", "--data-dir", data, "--model", tiny_model_dir, "--lang", "deu_Latn",
          "--output-dir", str(out)])  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["midalign_sib200.yaml", "midalign_sib200_deu_Latn.jsonl",
                                                    "midalign_sib200_deu_Latn.yaml"]  # fmt: skip
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager

    got = simple_evaluate(model="midalign", model_args=f"pretrained={tiny_model_dir}",
                          tasks=["midalign_sib200_deu_Latn"], device="cpu", batch_size=4,
                          task_manager=TaskManager(include_path=str(out)))  # fmt: skip
    acc = got["results"]["midalign_sib200_deu_Latn"]["acc,none"]
    main(["sib200", "infer", "--model", tiny_model_dir, "--data-dir", data, "--lang", "deu_Latn",
          "--output-path", str(tmp_path / "pred.jsonl")])  # fmt: skip
    rows = [json.loads(line) for line in (tmp_path / "pred.jsonl").read_text().splitlines()]
    labels = sib200.load_labels(data)
    ours = sum(labels[r["prediction"]] == r["gold"] for r in rows) / len(rows)
    assert acc == pytest.approx(ours)
