"""Nothing silently wrong, round 3 (issue 22): each test failed on main before its fix."""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch

from midalign.locking import LockedError, exclusive
from midalign.training.run import parse_args, run_training
from tests.conftest import ROOT


def _argv(tiny_model_dir, data_files, out, *extra):
    return [
        "--model_name_or_path", tiny_model_dir, "--train_file", data_files["both"], "--output_dir", str(out),
        "--per_device_train_batch_size", "2", "--learning_rate", "1e-3", "--logging_steps", "1",
        "--report_to", "none", "--disable_tqdm", "True", "--seed", "0", "--alignment_layer", "2",
        "--alternate_training", "--contrastive_data_mode", "2", *extra,
    ]  # fmt: skip


def _adapter(path):
    from safetensors.torch import load_file

    return load_file(os.path.join(path, "adapter_model.safetensors"))


def test_resume_true_after_a_finished_run_takes_its_latest_checkpoint(tmp_path, tiny_model_dir, data_files):
    out = tmp_path / "out"
    run_training(*parse_args(_argv(tiny_model_dir, data_files, out, "--max_steps", "2", "--save_steps", "1")))
    assert (out / "trainer_state.json").is_file()  # the finished run's own state, not a checkpoint
    args = parse_args(_argv(tiny_model_dir, data_files, out, "--max_steps", "3", "--resume_from_checkpoint", "True"))
    assert args[2].resolve_resume() == str(out / "checkpoint-2")


def test_a_torn_newest_checkpoint_is_skipped_with_a_warning(tmp_path, tiny_model_dir, data_files, caplog):
    out = tmp_path / "out"
    run_training(*parse_args(_argv(tiny_model_dir, data_files, out, "--max_steps", "2", "--save_steps", "1")))
    assert (out / "checkpoint-2" / "midalign_checkpoint_complete.json").is_file()
    (out / "checkpoint-2" / "midalign_checkpoint_complete.json").unlink()  # a kill before the save finished
    args = parse_args(_argv(tiny_model_dir, data_files, out, "--max_steps", "3", "--resume_from_checkpoint", "True"))
    with caplog.at_level("WARNING", logger="midalign"):
        assert args[2].resolve_resume() == str(out / "checkpoint-1")
    assert "skipping" in caplog.text and "checkpoint-2" in caplog.text


def test_a_finished_run_is_not_replaced_without_overwrite(tmp_path, tiny_model_dir, data_files):
    out = tmp_path / "out"
    run_training(*parse_args(_argv(tiny_model_dir, data_files, out, "--max_steps", "1", "--save_strategy", "no")))
    before = _adapter(out)
    with pytest.raises(FileExistsError, match="holds a finished run"):
        run_training(*parse_args(_argv(tiny_model_dir, data_files, out, "--max_steps", "1", "--save_strategy", "no")))
    after = _adapter(out)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_second_run_on_a_locked_output_dir_is_refused(tmp_path, tiny_model_dir, data_files):
    out = tmp_path / "out"
    with exclusive(str(out), directory=True, what="--output_dir"):
        with pytest.raises(LockedError, match=f"--output_dir {out} is in use by another run \\(pid {os.getpid()}"):
            run_training(*parse_args(_argv(tiny_model_dir, data_files, out, "--max_steps", "1")))
    # released: the run goes through
    run_training(*parse_args(_argv(tiny_model_dir, data_files, out, "--max_steps", "1", "--save_strategy", "no")))


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    code = (
        "import sys, time; from midalign.locking import exclusive\n"
        f"with exclusive({str(tmp_path / 'o')!r}, directory=True):\n    print('held', flush=True); time.sleep(60)"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout.readline().strip() == "held"
    with pytest.raises(LockedError):
        with exclusive(str(tmp_path / "o"), directory=True):
            pass
    proc.kill()
    proc.wait()
    with exclusive(str(tmp_path / "o"), directory=True):  # the stale lock file is taken over
        pass


def test_a_non_finite_loss_stops_the_run_and_saves_nothing(tmp_path, tiny_model_dir, data_files):
    out = tmp_path / "out"
    # 1e39 is a finite flag value (a Python float) but overflows float32: the alignment loss becomes inf
    argv = _argv(tiny_model_dir, data_files, out, "--max_steps", "2", "--save_strategy", "no",
                 "--alignment_weight", "1e39")  # fmt: skip
    with pytest.raises(FloatingPointError, match="non-finite alignment loss \\(inf\\) at optimizer step 2"):
        run_training(*parse_args(argv))
    assert not (out / "adapter_model.safetensors").exists()


def test_cli_user_errors_are_one_line_with_exit_2(tmp_path, tiny_model_dir, data_files, capsys):
    from midalign.cli import main

    with pytest.raises(SystemExit) as err:
        main(["train", *_argv(tiny_model_dir, data_files, tmp_path / "o", "--alignment_temperature", "0")])
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["midalign train: --alignment_temperature must be > 0, got 0.0"]
    with pytest.raises(SystemExit) as err:
        main(["train", *_argv(tiny_model_dir, data_files, tmp_path / "o", "--additional_loss_lay", "2")])
    assert err.value.code == 2  # no prefix matching of flags: a typo is an error
    assert "not used by the HfArgumentParser: ['--additional_loss_lay'" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_during_checkpoint_saves_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_model_dir, data_files):
    common = ["--max_steps", "6", "--save_steps", "1", "--learning_rate", "1e-2"]
    full = tmp_path / "full"
    run_training(*parse_args(_argv(tiny_model_dir, data_files, full, *common)))
    want = _adapter(full)
    rng = random.Random(0)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for attempt in range(3):
        out = tmp_path / f"killed{attempt}"
        cmd = [sys.executable, str(ROOT / "scripts" / "run_clm_lora.py"), *_argv(tiny_model_dir, data_files, out,
               *common)]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # kill once the first checkpoint exists, at a random moment of the following saves
        deadline = time.time() + 120
        while not (out / "checkpoint-1").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        resume = _argv(tiny_model_dir, data_files, out, *common, "--resume_from_checkpoint", "True")
        if (out / "adapter_model.safetensors").exists() and (out / "train_results.json").exists():
            continue  # finished before the kill: nothing to resume
        run_training(*parse_args(resume))
        got = _adapter(out)
        assert got.keys() == want.keys()
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=0, atol=0, msg=f"attempt {attempt}: {k}")


def test_latin1_gzip_and_lone_surrogates_name_the_file_and_line(tmp_path):
    import gzip

    from midalign.data import ContrastiveDataMode
    from midalign.data.jsonl import DataFormatError, read_rows

    latin = tmp_path / "latin.json"
    latin.write_bytes('{"prefix": "a", "text": "b"}\n{"prefix": "caf\xe9", "text": "b"}\n'.encode("latin-1"))
    with pytest.raises(DataFormatError, match=r"latin.json:2: not UTF-8 \(byte 0xe9"):
        read_rows(str(latin), ContrastiveDataMode.TASK.fields)
    gz = tmp_path / "rows.json"
    gz.write_bytes(gzip.compress(b'{"prefix": "a", "text": "b"}\n'))
    with pytest.raises(DataFormatError, match="rows.json: a gzip file"):
        read_rows(str(gz), ContrastiveDataMode.TASK.fields)
    sur = tmp_path / "sur.json"
    sur.write_text('{"prefix": "a", "text": "b"}\n{"prefix": "x\\ud800y", "text": "b"}\n', encoding="utf-8")
    with pytest.raises(DataFormatError, match=r"sur.json:2: field 'prefix' holds a lone surrogate"):
        read_rows(str(sur), ContrastiveDataMode.TASK.fields)


def test_a_tokenizer_without_pad_or_eos_is_refused_up_front(tmp_path, tiny_model_dir, data_files):
    import shutil

    from transformers import AutoTokenizer

    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model_dir)
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.pad_token = None
    tok.eos_token = None
    tok.save_pretrained(model_dir)
    with pytest.raises(ValueError, match="neither a pad nor an eos token"):
        run_training(*parse_args(_argv(str(model_dir), data_files, tmp_path / "o", "--max_steps", "1")))


def test_generation_stops_at_the_model_end_of_turn_too(tokenizer):
    from midalign.inference.engine import stop_token_ids
    from midalign.models import tiny_model

    model = tiny_model("llama", vocab_size=len(tokenizer), seed=0)
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, 7]
    assert stop_token_ids(model, tokenizer) == sorted({tokenizer.eos_token_id, 7})
    model.generation_config.eos_token_id = 9
    assert stop_token_ids(model, tokenizer) == sorted({tokenizer.eos_token_id, 9})


@pytest.mark.parametrize("flags", [["--weight", "nan"], ["--weight", "inf"], ["--method", "svd", "--rank", "-1"],
                                   ["--method", "svd", "--rank", "0"]])  # fmt: skip
def test_compose_refuses_non_finite_weights_and_bad_ranks(tmp_path, flags, capsys):
    from midalign.compose.cli import compose_main

    with pytest.raises(SystemExit) as err:
        compose_main(["--adapter", str(tmp_path / "a"), *flags, "--output", str(tmp_path / "o")])
    assert err.value.code == 2
    err_text = capsys.readouterr().err
    assert "--weight must be finite" in err_text or "--rank must be >= 1" in err_text
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("flags", [["--limit", "-1"], ["--batch-size", "0"], ["--batch-size", "-3"]])
def test_infer_refuses_non_positive_limit_and_batch_size(flags, capsys):
    import argparse

    from midalign.inference.task_cli import add_model_args

    p = argparse.ArgumentParser()
    add_model_args(p)
    with pytest.raises(SystemExit):
        p.parse_args(flags)
    assert "expected an integer >= 1" in capsys.readouterr().err


def test_compose_treats_relative_and_absolute_base_paths_as_one_model(tmp_path, tiny_model_dir, monkeypatch):
    from midalign.compose.lora import _base_identity

    monkeypatch.chdir(os.path.dirname(tiny_model_dir))
    rel = os.path.basename(tiny_model_dir)
    assert _base_identity(rel) == _base_identity(tiny_model_dir)
    assert _base_identity("google/gemma-3-270m") == "google/gemma-3-270m"


def test_a_second_inference_run_on_one_output_path_is_refused(tmp_path, tokenizer):
    from midalign.inference.scoring import run_scoring
    from midalign.models import tiny_model

    model = tiny_model("llama", vocab_size=len(tokenizer), seed=0).eval()
    out = str(tmp_path / "pred.jsonl")
    with exclusive(out, directory=False, what="output file"):
        with pytest.raises(LockedError, match="pred.jsonl is in use by another run"):
            run_scoring(model, tokenizer, [{"id": 0, "prompt": "a"}], [" b"], out)
    assert len(run_scoring(model, tokenizer, [{"id": 0, "prompt": "a"}], [" b"], out)) == 1


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
        run_training(*parse_args(_argv(tiny_model_dir, data_files, tmp_path / "out", "--max_steps", "2", *extra)))
    expected = (
        "2 copies of one pair" if case == "one-row alignment file" else "of one pair has no negatives and is skipped"
    )
    assert expected in caplog.text and caplog.text.count("no negatives") == 1


def test_first_batch_verdict_never_suggests_the_remedy_already_in_use(tmp_path, tiny_model_dir, data_files, caplog):
    """With --alignment_center batch the first-batch line reports the centred loss; it must not advise centring."""
    argv = _argv(tiny_model_dir, data_files, tmp_path / "out", "--max_steps", "2", "--alignment_center", "batch")
    with caplog.at_level("INFO", logger="midalign"):
        run_training(*parse_args(argv))
    lines = [r.getMessage() for r in caplog.records if "alignment loss at the first batch" in r.getMessage()]
    assert len(lines) == 1 and "consider --alignment_center batch" not in lines[0]
    assert "with --alignment_center batch" in lines[0] or "< chance" in lines[0]
