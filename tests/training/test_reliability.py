"""Faults a new user hit (issue: nothing silently wrong): each test failed before its fix."""

import json
import shutil

import pytest
import torch

from midalign.training.run import parse_args, run_training
from tests.conftest import write_jsonl


def _argv(tiny_model_dir, train_file, out, *extra):
    return [
        "--model_name_or_path", tiny_model_dir, "--train_file", train_file, "--output_dir", str(out),
        "--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--logging_steps", "1",
        "--report_to", "none", "--disable_tqdm", "True", "--seed", "0", "--alignment_layer", "2", *extra,
    ]  # fmt: skip


def _adapter(out):
    from safetensors.torch import load_file

    return load_file(str(out / "adapter_model.safetensors"))


@pytest.mark.parametrize("how", ["True", "true", "output_dir"])
def test_resume_with_true_or_the_output_dir(tmp_path, tiny_model_dir, data_files, how):
    common = ["--alternate_training", "--contrastive_data_mode", "2", "--max_steps", "4",
              "--save_strategy", "steps", "--save_steps", "2"]  # fmt: skip
    full = tmp_path / "full"
    run_training(*parse_args(_argv(tiny_model_dir, data_files["both"], full, *common)))
    # what a run killed after its step-2 checkpoint leaves behind: that checkpoint only
    part = tmp_path / "part"
    part.mkdir()
    shutil.copytree(full / "checkpoint-2", part / "checkpoint-2")
    target = str(part) if how == "output_dir" else how
    run_training(*parse_args(_argv(tiny_model_dir, data_files["both"], part, *common, "--resume_from_checkpoint",
                                   target)))  # fmt: skip
    a, b = _adapter(full), _adapter(part)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_resume_with_nothing_to_resume_is_a_clear_error(tmp_path, tiny_model_dir, data_files):
    argv = _argv(tiny_model_dir, data_files["task"], tmp_path / "new", "--only_train_language_modeling",
                 "--max_steps", "1", "--resume_from_checkpoint", "True")  # fmt: skip
    (tmp_path / "new").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no checkpoint-"):
        run_training(*parse_args(argv))


def test_a_one_row_last_batch_does_not_crash_alignment(tmp_path, tiny_model_dir, data_files):
    rows = [json.loads(line) for line in open(data_files["both"], encoding="utf-8")][:5]  # 5 rows, batch 2
    path = write_jsonl(tmp_path / "five.json", rows)
    trainer = run_training(
        *parse_args(_argv(tiny_model_dir, path, tmp_path / "out", "--alignment_schedule", "align_only",
                          "--contrastive_data_mode", "2", "--num_train_epochs", "2", "--save_strategy", "no"))
    )  # fmt: skip
    # 3 micro-batches per epoch, the last of each with one pair: skipped, counted, logged
    assert trainer.state.global_step == 6 and trainer.skipped_alignment_batches == 2
    skipped = [h["align/skipped"] for h in trainer.state.log_history if "align/skipped" in h]
    assert skipped.count(1.0) == 2 and skipped.count(0.0) == 4


def test_targets_that_do_not_fit_the_block_size_are_an_error(tmp_path, tiny_model_dir):
    rows = [{"prefix": "short prompt ", "text": "answer"}] * 2 + [{"prefix": "word " * 60, "text": "answer"}]
    path = write_jsonl(tmp_path / "long.json", rows)
    argv = _argv(tiny_model_dir, path, tmp_path / "out", "--only_train_language_modeling", "--max_steps", "1",
                 "--block_size", "16")  # fmt: skip
    with pytest.raises(ValueError, match=rf"1 task example\(s\) do not fit in --block_size 16; first {path}:3"):
        run_training(*parse_args(argv))
    with pytest.raises(ValueError, match="--block_size -1"):
        parse_args([*argv[:-2], "--block_size", "-1"])
    # 0 = no limit: the same data trains
    trainer = run_training(*parse_args([*argv[:-2], "--block_size", "0", "--save_strategy", "no"]))
    assert trainer.state.global_step == 1


def test_missing_model_directory_is_one_clear_line(tmp_path):
    from midalign.models import load_model

    with pytest.raises(FileNotFoundError, match=r"^model '/no/such/model': no such directory") as err:
        load_model("/no/such/model")
    assert err.value.__cause__ is None and err.value.__context__ is None


def test_a_missing_default_model_says_how_to_prepare_it_and_installs_nothing(tmp_path, monkeypatch):
    import subprocess

    from midalign.models import resolve_model_path

    monkeypatch.setenv("MIDALIGN_CACHE", str(tmp_path))

    def no_pip(*a, **k):
        raise AssertionError("nothing may be installed outside prepare-model")

    monkeypatch.setattr(subprocess, "run", no_pip)
    with pytest.raises(FileNotFoundError, match="run `midalign prepare-model` once"):
        resolve_model_path(None)
