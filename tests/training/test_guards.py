"""Training refuses or warns up front instead of training on something wrong: rows that do not fit their schedule,
targets cut by the block size, non-finite losses, tokenizers without pad or eos, alignment without negatives."""

import json
import shutil

import pytest

from midalign import AlignmentTrainer, AlignmentTrainingArguments
from midalign.training.run import parse_args, run_training
from tests.conftest import write_jsonl
from tests.training.helpers import paper_run_argv, run_argv

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


def test_a_one_row_last_batch_does_not_crash_alignment(tmp_path, tiny_model_dir, data_files):
    rows = [json.loads(line) for line in open(data_files["both"], encoding="utf-8")][:5]  # 5 rows, batch 2
    path = write_jsonl(tmp_path / "five.json", rows)
    trainer = run_training(
        *parse_args(run_argv(tiny_model_dir, path, tmp_path / "out", "--alignment_schedule", "align_only",
                          "--contrastive_data_mode", "2", "--num_train_epochs", "2", "--save_strategy", "no"))
    )  # fmt: skip
    # 3 micro-batches per epoch, the last of each with one pair: skipped, counted, logged
    assert trainer.state.global_step == 6 and trainer.skipped_alignment_batches == 2
    skipped = [h["align/skipped"] for h in trainer.state.log_history if "align/skipped" in h]
    assert skipped.count(1.0) == 2 and skipped.count(0.0) == 4


def test_targets_that_do_not_fit_the_block_size_are_an_error(tmp_path, tiny_model_dir):
    rows = [{"prefix": "short prompt ", "text": "answer"}] * 2 + [{"prefix": "word " * 60, "text": "answer"}]
    path = write_jsonl(tmp_path / "long.json", rows)
    argv = run_argv(tiny_model_dir, path, tmp_path / "out", "--only_train_language_modeling", "--max_steps", "1",
                 "--block_size", "16")  # fmt: skip
    with pytest.raises(ValueError, match=rf"1 task example\(s\) do not fit in --block_size 16; first {path}:3"):
        run_training(*parse_args(argv))
    with pytest.raises(ValueError, match="--block_size -1"):
        parse_args([*argv[:-2], "--block_size", "-1"])
    # 0 = no limit: the same data trains
    trainer = run_training(*parse_args([*argv[:-2], "--block_size", "0", "--save_strategy", "no"]))
    assert trainer.state.global_step == 1


def test_a_non_finite_loss_stops_the_run_and_saves_nothing(tmp_path, tiny_model_dir, data_files):
    out = tmp_path / "out"
    # 1e39 is a finite flag value (a Python float) but overflows float32: the alignment loss becomes inf
    argv = paper_run_argv(tiny_model_dir, data_files, out, "--max_steps", "2", "--save_strategy", "no",
                 "--alignment_weight", "1e39")  # fmt: skip
    with pytest.raises(FloatingPointError, match="non-finite alignment loss \\(inf\\) at optimizer step 2"):
        run_training(*parse_args(argv))
    assert not (out / "adapter_model.safetensors").exists()


def test_a_tokenizer_without_pad_or_eos_is_refused_up_front(tmp_path, tiny_model_dir, data_files):

    from transformers import AutoTokenizer

    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.pad_token = None
    tok.eos_token = None
    tok.save_pretrained(model_dir)
    with pytest.raises(ValueError, match="neither a pad nor an eos token"):
        run_training(*parse_args(paper_run_argv(str(model_dir), data_files, tmp_path / "o", "--max_steps", "1")))


@pytest.mark.parametrize("case", ["one-row alignment file", "batch of one"])
def test_alignment_without_negatives_is_warned(tmp_path, tiny_model_dir, data_files, caplog, case):
    """Item 2: an alignment file of one row (every batch holds the same pair) or batches of one pair give a constant
    contrastive loss with zero gradient; the first alignment batch says so."""
    from tests.conftest import write_jsonl

    if case == "one-row alignment file":
        one = write_jsonl(
            tmp_path / "one.json", [{"text_parallel_0": "good morning", "text_parallel_1": "guten Morgen"}]
        )
        extra = ["--train_file", data_files["task"], "--alignment_file", one, "--contrastive_data_mode", "0"]
    else:
        extra = ["--per_device_train_batch_size", "1"]
    with caplog.at_level("WARNING", logger="midalign"):
        run_training(
            *parse_args(paper_run_argv(tiny_model_dir, data_files, tmp_path / "out", "--max_steps", "2", *extra))
        )
    expected = (
        "2 copies of one pair" if case == "one-row alignment file" else "of one pair has no negatives and is skipped"
    )
    assert expected in caplog.text and caplog.text.count("no negatives") == 1


def test_first_batch_verdict_never_suggests_the_remedy_already_in_use(tmp_path, tiny_model_dir, data_files, caplog):
    """With --alignment_center batch the first-batch line reports the centred loss; it must not advise centring."""
    argv = paper_run_argv(
        tiny_model_dir, data_files, tmp_path / "out", "--max_steps", "2", "--alignment_center", "batch"
    )
    with caplog.at_level("INFO", logger="midalign"):
        run_training(*parse_args(argv))
    lines = [r.getMessage() for r in caplog.records if "alignment loss at the first batch" in r.getMessage()]
    assert len(lines) == 1 and "consider --alignment_center batch" not in lines[0]
    assert "with --alignment_center batch" in lines[0] or "< chance" in lines[0]


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
