"""--alignment_center through the training command, and what --bf16 / --fp16 do on the CPU."""

import os

import pytest
import torch

from midalign.alignment import PooledStats, center, pool
from midalign.alignment.centering import STATS_FILE
from midalign.training.run import parse_args, run_training


def _argv(tiny_model_dir, data_files, out, *extra):
    return [
        "--model_name_or_path", tiny_model_dir, "--train_file", data_files["task"],
        "--alignment_file", data_files["pairs"], "--output_dir", str(out), "--max_steps", "2",
        "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "2", "--learning_rate", "1e-3",
        "--logging_steps", "1", "--report_to", "none", "--disable_tqdm", "True", "--alignment_layer", "2",
        *(() if "--resume_from_checkpoint" in extra else ("--overwrite_output_dir", "True")), *extra,
    ]  # fmt: skip


def test_batch_centering_trains_and_logs(tmp_path, tiny_model_dir, data_files):
    trainer = run_training(*parse_args(_argv(tiny_model_dir, data_files, tmp_path, "--alignment_center", "batch",
                                             "--save_strategy", "no")))  # fmt: skip
    aligns = [h["loss/align"] for h in trainer.state.log_history if "loss/align" in h]
    assert aligns and all(torch.isfinite(torch.tensor(aligns)))
    assert trainer.alignment_stats is None
    assert not os.path.exists(tmp_path / STATS_FILE)


@pytest.mark.parametrize("mode", ["fixed", "standardize"])
def test_fixed_statistics_are_measured_saved_and_used(tmp_path, tiny_model_dir, data_files, mode):
    trainer = run_training(*parse_args(_argv(tiny_model_dir, data_files, tmp_path, "--alignment_center", mode,
                                             "--save_strategy", "steps", "--save_steps", "1")))  # fmt: skip
    stats = trainer.alignment_stats
    assert stats is not None and stats.count == 16 and stats.mean.shape == (2, 32)
    saved = PooledStats.load(str(tmp_path / STATS_FILE))
    assert torch.equal(saved.mean, stats.mean)
    # and in every checkpoint, for resume
    assert PooledStats.load(str(tmp_path / "checkpoint-1" / STATS_FILE)).count == 16
    # the trainer's loss uses the centred representations: hand-check on a batch
    p0, p1 = torch.randn(4, 32), torch.randn(4, 32)
    c0, c1 = trainer._centered(p0, p1)
    torch.testing.assert_close(c0, center(p0, mode, 0, stats))
    torch.testing.assert_close(c1, center(p1, mode, 1, stats))
    assert not torch.allclose(c1, p1)


def test_fixed_statistics_are_the_base_models_pooled_mean(tmp_path, tiny_model_dir, data_files):
    # recompute by hand: the pooled layer-2 mean of the 16 pairs' text_parallel_0 sides under the base model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from midalign.alignment import layer_output
    from midalign.data.jsonl import read_rows

    trainer = run_training(*parse_args(_argv(tiny_model_dir, data_files, tmp_path, "--alignment_center", "fixed",
                                             "--max_steps", "0", "--save_strategy", "no")))  # fmt: skip
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    rows = read_rows(data_files["pairs"], ("text_parallel_0", "text_parallel_1"))
    vecs = []
    with torch.no_grad():
        for r in rows:
            enc = tok(r["text_parallel_0"], return_tensors="pt")
            vecs.append(pool(layer_output(model, enc["input_ids"], enc["attention_mask"], 2), enc["attention_mask"]))
    torch.testing.assert_close(trainer.alignment_stats.mean[0], torch.cat(vecs).mean(0), atol=1e-5, rtol=1e-4)


def test_resume_reuses_the_saved_statistics(tmp_path, tiny_model_dir, data_files, monkeypatch):
    run_training(*parse_args(_argv(tiny_model_dir, data_files, tmp_path, "--alignment_center", "fixed",
                                   "--save_strategy", "steps", "--save_steps", "1")))  # fmt: skip
    first = PooledStats.load(str(tmp_path / "checkpoint-2" / STATS_FILE))
    from midalign.training import trainer as trainer_mod

    def boom(self, dataset=None):
        raise AssertionError("statistics re-measured on resume")

    monkeypatch.setattr(trainer_mod.AlignmentTrainer, "measure_alignment_stats", boom)
    argv = _argv(tiny_model_dir, data_files, tmp_path, "--alignment_center", "fixed", "--max_steps", "3",
                 "--save_strategy", "steps", "--save_steps", "1", "--resume_from_checkpoint",
                 str(tmp_path / "checkpoint-2"))  # fmt: skip
    trainer = run_training(*parse_args(argv))
    assert torch.equal(trainer.alignment_stats.mean, first.mean)


def test_bf16_on_cpu_stores_base_in_bf16_and_lora_in_fp32(tmp_path, tiny_model_dir, data_files):
    trainer = run_training(*parse_args(_argv(tiny_model_dir, data_files, tmp_path, "--bf16", "True",
                                             "--save_strategy", "no")))  # fmt: skip
    dtypes = {n: p.dtype for n, p in trainer.model.named_parameters()}
    assert {d for n, d in dtypes.items() if "lora_" in n} == {torch.float32}
    assert {d for n, d in dtypes.items() if "lora_" not in n} == {torch.bfloat16}
    aligns = [h["loss/align"] for h in trainer.state.log_history if "loss/align" in h]
    assert aligns and all(torch.isfinite(torch.tensor(aligns)))


def test_fp16_on_cpu_is_refused(tmp_path, tiny_model_dir, data_files):
    with pytest.raises(ValueError, match="--fp16 True on the CPU"):
        parse_args(_argv(tiny_model_dir, data_files, tmp_path, "--fp16", "True"))


@pytest.mark.parametrize("flag", ["--alignment_temperature", "--alignment_weight", "--learning_rate"])
@pytest.mark.parametrize("value", ["nan", "inf"])
def test_non_finite_flags_are_refused(tmp_path, tiny_model_dir, data_files, flag, value):
    with pytest.raises(ValueError, match=f"{flag} must be a finite number"):
        parse_args(_argv(tiny_model_dir, data_files, tmp_path, flag, value))


def test_bf16_alignment_loss_matches_fp32(tiny_model_dir, tokenizer):
    # The same model in fp32 and bf16: pooled (fp32 sums) cosine InfoNCE agrees to bf16 precision.
    from transformers import AutoModelForCausalLM

    from midalign.alignment import alignment_loss, layer_output

    texts = ["the cat sat", "a dog ran far away", "rain tomorrow", "call mom at noon"]
    enc = tokenizer(texts, return_tensors="pt", padding=True)
    losses = {}
    for dtype in (torch.float32, torch.bfloat16):
        model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=dtype).eval()
        with torch.no_grad():
            h = layer_output(model, enc["input_ids"], enc["attention_mask"], 2)
            p = pool(h, enc["attention_mask"])
        assert p.dtype == torch.float32
        losses[dtype] = alignment_loss(p, p.flip(0)).item()
    assert abs(losses[torch.float32] - losses[torch.bfloat16]) < 0.05


def test_diagnostics_log_gradient_cosine_base_accuracy_and_the_first_batch_verdict(tokenizer, data_files, tmp_path,
                                                                                    caplog):  # fmt: skip
    import logging

    import torch.nn.functional as F

    from tests.training.helpers import make_trainer

    trainer, _, capture = make_trainer(tmp_path, tokenizer, data_files["both"], "alternate", ga=2, bs=4, lr=0.0,
                                       max_steps=1, alignment_diagnostics=True, logging_steps=1)  # fmt: skip
    sums = {}
    original = trainer.log

    def keep(logs, start_time=None):
        sums.update({k: v.clone() for k, v in trainer._grad_sums.items()})
        return original(logs, start_time)

    trainer.log = keep
    with caplog.at_level(logging.INFO, logger="midalign"):
        trainer.train()
    logs = next(h for h in trainer.state.log_history if "grad/cos_task_align" in h)
    assert -1.0 <= logs["grad/cos_task_align"] <= 1.0 and 0.0 <= logs["align/acc_base"] <= 1.0
    # the two per-objective sums add up to the step's gradient, and the logged cosine is theirs
    total = torch.cat([g.float().reshape(-1) for g in capture.grads[0].values()])
    torch.testing.assert_close(sums["task"] + sums["align"], total, atol=1e-6, rtol=1e-5)
    assert logs["grad/cos_task_align"] == pytest.approx(F.cosine_similarity(sums["task"], sums["align"], dim=0).item())
    assert any("alignment loss at the first batch" in r.getMessage() for r in caplog.records)
