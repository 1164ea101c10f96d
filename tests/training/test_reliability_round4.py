"""Nothing silently wrong, round 4 (issue 31): the Python API's rows are checked against the schedule up front."""

import pytest

from midalign import AlignmentTrainer, AlignmentTrainingArguments

TASK = {"prefix": "Input: play some jazz\nOutput:", "text": " music"}
PAIR = {"text_parallel_0": "the cat sleeps", "text_parallel_1": "die Katze schläft"}


@pytest.fixture
def model(tokenizer):
    from midalign.models import tiny_model

    return tiny_model("llama", vocab_size=len(tokenizer), num_layers=2)


def _trainer(tmp_path, model, tokenizer, rows, **kw):
    args = AlignmentTrainingArguments(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=2,
                                      report_to="none", **kw)  # fmt: skip
    return AlignmentTrainer(model=model, args=args, train_dataset=rows, processing_class=tokenizer)


@pytest.mark.parametrize("rows,bad,fits", [
    ([TASK] * 4, 0, "'task_only'"),  # task-only rows under the default alternate schedule
    ([TASK, {**TASK, **PAIR}, {**TASK, **PAIR}], 0, "'task_only'"),  # fields no longer decided by row 0 alone
    ([{**TASK, **PAIR}, {**TASK, **PAIR}, TASK], 2, "'task_only'"),  # a later row without its pair
    ([PAIR] * 4, 0, "'align_only'"),  # pair-only rows: no labels
])  # fmt: skip
def test_rows_are_checked_against_the_schedule_before_any_step(tmp_path, model, tokenizer, rows, bad, fits):
    with pytest.raises(ValueError, match=rf"train_dataset\[{bad}\]: missing .*alignment_schedule='alternate' trains "
                       rf".*fit alignment_schedule={fits}"):  # fmt: skip
        _trainer(tmp_path, model, tokenizer, rows)


def test_rows_that_fit_their_schedule_are_accepted(tmp_path, model, tokenizer):
    assert len(_trainer(tmp_path, model, tokenizer, [TASK] * 4, alignment_schedule="task_only").train_dataset) == 4
    assert len(_trainer(tmp_path, model, tokenizer, [PAIR] * 4, alignment_schedule="align_only").train_dataset) == 4
    assert len(_trainer(tmp_path, model, tokenizer, [{**TASK, **PAIR}] * 4).train_dataset) == 4


def test_a_datasets_dataset_is_checked_too(tmp_path, model, tokenizer):
    import datasets

    with pytest.raises(ValueError, match=r"train_dataset\[0\]: missing \['text_parallel_0', 'text_parallel_1'\]"):
        _trainer(tmp_path, model, tokenizer, datasets.Dataset.from_list([TASK] * 4))


def test_a_clean_exit_leaves_no_lock_file_and_the_lock_still_excludes(tmp_path):
    """Issue 31, "Also": lock files are removed on release (after success or an error), not left in every output
    and experiment directory; while held, a second run is still refused."""
    import os

    from midalign.locking import LockedError, exclusive

    out_dir, out_file = tmp_path / "run", tmp_path / "pred.jsonl"
    for path, directory in ((out_dir, True), (out_file, False)):
        with exclusive(str(path), directory=directory) as lock:
            assert os.path.isfile(lock)
            with pytest.raises(LockedError, match="in use by another run"):
                with exclusive(str(path), directory=directory):
                    pass
            assert os.path.isfile(lock)  # a refused second run does not remove the holder's lock
        assert not os.path.exists(lock)
        with pytest.raises(RuntimeError, match="boom"):
            with exclusive(str(path), directory=directory) as lock:
                raise RuntimeError("boom")
        assert not os.path.exists(lock)
    assert sorted(os.listdir(tmp_path)) == ["run"] and os.listdir(out_dir) == []
