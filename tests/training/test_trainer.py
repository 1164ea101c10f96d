import json
import os

import pytest
import torch
from peft import PeftModel

from midalign import alignment_loss, pool
from midalign.models import tiny_model
from midalign.training import causal_lm_loss
from midalign.training.schedules import SCHEDULES, Objectives

from .helpers import LAYER, make_trainer

T, A, B = Objectives(True, False), Objectives(False, True), Objectives(True, True)


def test_declared_schedule_properties_agree_with_their_plans():
    for schedule in SCHEDULES.values():
        plans = [schedule.plan(i, s) for i in range(64) for s in range(8)]
        assert schedule.uses_task == any(p.task for p in plans), schedule.name
        assert schedule.uses_align == any(p.align for p in plans), schedule.name
        # shares: the fraction of micro-batches (over steps) that run each objective, or 1 for both when joint
        assert schedule.task_share == pytest.approx(sum(p.task for p in plans) / len(plans)), schedule.name
        assert schedule.align_share == pytest.approx(sum(p.align for p in plans) / len(plans)), schedule.name


def test_schedule_plans():
    plan = lambda name, n, step=0: [SCHEDULES[name].plan(i, step) for i in range(n)]  # noqa: E731
    assert plan("alternate", 5) == [T, A, T, A, T]
    assert plan("task_only", 3) == [T] * 3
    assert plan("align_only", 3) == [A] * 3
    assert plan("joint", 2) == [B, B]
    assert plan("alternate_steps", 2, step=0) == [T, T] and plan("alternate_steps", 2, step=1) == [A, A]


def _reference_grads(model, record, step, temperature=0.1):
    """The intended gradient of one optimizer step, computed independently: task losses from the model's own
    logits, alignment from a full forward's hidden_states[k] pooled by hand."""
    items = [(p, b) for s, p, b in record if s == step]
    g = len(items)
    n_task = sum(p.task for p, _ in items)
    tokens = sum(b["labels"][:, 1:].ne(-100).sum() for p, b in items if p.task)
    total = 0.0
    for p, b in items:
        if p.task:
            s, _ = causal_lm_loss(
                model(input_ids=b["input_ids"], attention_mask=b["attention_mask"]).logits, b["labels"]
            )
            total = total + s / tokens * (n_task / g)
        if p.align:
            pooled = []
            for side in ("parallel_0", "parallel_1"):
                ids, mask = b[f"input_ids_{side}"], b[f"attention_mask_{side}"]
                hs = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[LAYER]
                pooled.append((hs * mask[..., None]).sum(1) / mask.sum(1, keepdim=True))
            total = total + alignment_loss(*pooled, temperature=temperature) / g
    model.zero_grad()
    total.backward()
    return {
        n: (p.grad if p.grad is not None else torch.zeros_like(p))
        for n, p in model.named_parameters()
        if p.requires_grad
    }


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("ga", [1, 3, 4])
def test_accumulated_gradient_matches_hand_computed_reference(tmp_path, tokenizer, data_files, schedule, ga):
    steps = 2
    trainer, initial, capture = make_trainer(tmp_path, tokenizer, data_files["both"], schedule, ga=ga, max_steps=steps)
    trainer.train()
    assert len(capture.grads) == steps
    for step in range(steps):  # lr = 0: the model does not change, so each step can be recomputed from `initial`
        ref = _reference_grads(initial, trainer.record, step)
        got = capture.grads[step]
        assert ref.keys() == got.keys()
        nonzero = 0
        for name in ref:
            torch.testing.assert_close(got[name], ref[name], rtol=1e-4, atol=1e-6, msg=name)
            nonzero += bool(ref[name].abs().sum() > 0)
        assert nonzero > 0


def test_alternate_phase_carries_across_steps_with_odd_accumulation(tmp_path, tokenizer, data_files):
    trainer, _, _ = make_trainer(tmp_path, tokenizer, data_files["both"], "alternate", ga=3, max_steps=2)
    trainer.train()
    assert [(s, p) for s, p, _ in trainer.record] == [(0, T), (0, A), (0, T), (1, A), (1, T), (1, A)]


def test_logged_values_are_per_objective_means(tmp_path, tokenizer, data_files):
    trainer, initial, _ = make_trainer(
        tmp_path, tokenizer, data_files["both"], "alternate", ga=2, max_steps=2, logging_steps=1
    )
    trainer.train()
    logs = [h for h in trainer.state.log_history if "loss/task" in h]
    assert len(logs) == 2
    for step, log in enumerate(logs):
        (_, _, tb), (_, _, ab) = [r for r in trainer.record if r[0] == step]
        with torch.no_grad():
            s, n = causal_lm_loss(
                initial(input_ids=tb["input_ids"], attention_mask=tb["attention_mask"]).logits, tb["labels"]
            )
            pooled = []
            for side in ("parallel_0", "parallel_1"):
                ids, mask = ab[f"input_ids_{side}"], ab[f"attention_mask_{side}"]
                hs = initial(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[LAYER]
                pooled.append(pool(hs, mask))
            align = alignment_loss(*pooled).item()
        assert log["loss/task"] == pytest.approx((s / n).item(), rel=1e-4)
        assert log["loss/align"] == pytest.approx(align, rel=1e-4)
        assert 0.0 <= log["align/acc"] <= 1.0
        assert log["loss"] == pytest.approx(0.5 * (s / n).item() + 0.5 * align, rel=1e-4)


def test_task_only_logs_no_alignment_values(tmp_path, tokenizer, data_files):
    trainer, _, _ = make_trainer(
        tmp_path, tokenizer, data_files["task"], "task_only", mode=0, ga=2, max_steps=1, logging_steps=1
    )
    trainer.train()
    log = next(h for h in trainer.state.log_history if "loss" in h)
    assert "loss/task" in log and "loss/align" not in log and "align/acc" not in log
    assert log["loss"] == pytest.approx(log["loss/task"], rel=0.2)


def test_lora_weights_change_and_base_weights_do_not(tmp_path, tokenizer, data_files):
    trainer, initial, _ = make_trainer(tmp_path, tokenizer, data_files["both"], "alternate", ga=2, max_steps=3, lr=1e-2)
    trainer.train()
    before = dict(initial.named_parameters())
    changed = 0
    for name, p in trainer.model.named_parameters():
        if p.requires_grad:
            changed += not torch.equal(p, before[name])
        else:
            assert torch.equal(p, before[name]), name
    assert changed > 0


def _resume_matches_full_run(tmp_path, tokenizer, data_files, schedule, ga, edit_state=None):
    """Train 4 steps with a checkpoint at step 2; resume a fresh trainer from it: same plans, batches, weights."""
    full, _, _ = make_trainer(
        tmp_path / "a", tokenizer, data_files["both"], schedule, ga=ga, max_steps=4, lr=1e-3, save_steps=2
    )
    full.train()
    ckpt = tmp_path / "a" / "out" / "checkpoint-2"
    assert (ckpt / "adapter_model" / "adapter_model.safetensors").is_file()
    state_path = ckpt / "trainer_state.json"
    state = json.loads(state_path.read_text())
    # the clock is stored with the global step, in the one file transformers writes last
    assert state["stateful_callbacks"]["ScheduleClock"] == {
        "args": {"schedule": schedule},
        "attributes": {"micro_batches": 2 * ga},
    }
    if edit_state:
        edit_state(state)
        state_path.write_text(json.dumps(state))
    resumed, _, _ = make_trainer(
        tmp_path / "b", tokenizer, data_files["both"], schedule, ga=ga, max_steps=4, lr=1e-3, save_steps=2
    )
    resumed.train(resume_from_checkpoint=str(ckpt))
    assert [n for n, _ in resumed.model.named_parameters()] == [n for n, _ in full.model.named_parameters()]
    assert [(s, p) for s, p, _ in resumed.record] == [(s, p) for s, p, _ in full.record if s >= 2]
    for (_, _, b1), (_, _, b2) in zip(resumed.record, [r for r in full.record if r[0] >= 2]):
        assert torch.equal(b1["input_ids"], b2["input_ids"])
    for (n, p1), (_, p2) in zip(full.model.named_parameters(), resumed.model.named_parameters()):
        torch.testing.assert_close(p1, p2, msg=n)
    return resumed


@pytest.mark.parametrize("schedule", sorted(SCHEDULES))
@pytest.mark.parametrize("ga", [1, 3])
def test_resume_continues_the_schedule_in_phase(tmp_path, tokenizer, data_files, schedule, ga):
    _resume_matches_full_run(tmp_path, tokenizer, data_files, schedule, ga)


def test_resume_without_the_clock_derives_it_from_the_global_step(tmp_path, tokenizer, data_files, caplog):
    # a checkpoint of an older version (no clock in trainer_state.json) must not restart the alternation task-first
    def drop(state):
        del state["stateful_callbacks"]["ScheduleClock"]

    with caplog.at_level("WARNING", logger="midalign"):
        _resume_matches_full_run(tmp_path, tokenizer, data_files, "alternate", 3, edit_state=drop)
    assert "carries no schedule clock" in caplog.text


def test_resume_under_another_schedule_is_refused(tmp_path, tokenizer, data_files):
    first, _, _ = make_trainer(tmp_path / "a", tokenizer, data_files["both"], "alternate", max_steps=2, save_steps=2)
    first.train()
    other, _, _ = make_trainer(tmp_path / "b", tokenizer, data_files["both"], "joint", max_steps=3)
    with pytest.raises(ValueError, match="trained with --alignment_schedule alternate, this run asks for joint"):
        other.train(resume_from_checkpoint=str(tmp_path / "a" / "out" / "checkpoint-2"))


def test_saved_adapter_reloads_with_identical_outputs(tmp_path, tokenizer, data_files):
    trainer, initial, _ = make_trainer(tmp_path, tokenizer, data_files["both"], "alternate", ga=2, max_steps=2, lr=1e-2)
    trainer.train()
    trainer.save_model()
    out = tmp_path / "out"
    for path in (out, out / "adapter_model"):
        fresh_base = tiny_model("llama", vocab_size=len(tokenizer), seed=0)  # same init as the trained base
        reloaded = PeftModel.from_pretrained(fresh_base, str(path)).eval()
        ids = torch.randint(3, len(tokenizer), (2, 7))
        with torch.no_grad():
            torch.testing.assert_close(reloaded(input_ids=ids).logits, trainer.model.eval()(input_ids=ids).logits)
    assert os.path.isfile(out / "adapter_model" / "adapter_config.json")


def test_compute_loss_refuses_a_batch_without_its_plan(tmp_path, tokenizer, data_files):
    """The plan travels with each micro-batch: a batch that did not come through get_batch_samples is an error, not
    a silently re-planned (and mis-weighted) step; a batch that did carries its objectives and weights."""
    from midalign.training.trainer import PLAN_KEY, MicroBatchPlan

    trainer, _, _ = make_trainer(tmp_path, tokenizer, data_files["both"], "alternate", ga=3)
    batches, tokens = trainer.get_batch_samples(iter(trainer.get_train_dataloader()), 3, "cpu")
    plans = [b[PLAN_KEY] for b in batches]
    assert [p.objectives for p in plans] == [(True, False), (False, True), (True, False)]
    assert all(isinstance(p, MicroBatchPlan) and p.task_scale == 2 / 3 and p.align_scale == 1 / 3 for p in plans)
    assert int(tokens) == sum(int(b["labels"][:, 1:].ne(-100).sum()) for b in (batches[0], batches[2]))
    trainer.model.train()
    loss = trainer.compute_loss(trainer.model, dict(batches[0]), num_items_in_batch=tokens)
    assert loss.requires_grad and loss.item() > 0
    bare = {k: v for k, v in batches[0].items() if k != PLAN_KEY}
    with pytest.raises(RuntimeError, match="without its schedule plan"):
        trainer.compute_loss(trainer.model, bare, num_items_in_batch=tokens)
    with pytest.raises(RuntimeError, match="num_items_in_batch"):
        trainer.compute_loss(trainer.model, dict(batches[0]))


@pytest.mark.parametrize("schedule", ["alternate", "joint", "task_only"])
def test_eval_loss_mixes_objectives_like_the_training_loss(tmp_path, tokenizer, data_files, schedule):
    from midalign.training.schedules import get_schedule

    trainer, _, _ = make_trainer(tmp_path, tokenizer, data_files["both"], schedule)
    trainer.eval_dataset = trainer.train_dataset
    m = trainer.evaluate()
    s = get_schedule(schedule)
    expected = s.task_share * m["eval_loss/task"] + s.align_share * m.get("eval_loss/align", 0.0)
    assert m["eval_loss"] == pytest.approx(expected, rel=1e-4)
