"""Checkpoints, resume and output-directory locks: a run resumes from its newest complete checkpoint, never
replaces another run's results, and a kill mid-save loses nothing (midalign.training.checkpoints, midalign.locking)."""

import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch

from midalign.locking import LockedError, exclusive
from midalign.training.run import parse_args, run_training
from tests.conftest import ROOT
from tests.training.helpers import adapter_weights, paper_run_argv, run_argv


@pytest.mark.parametrize("how", ["True", "true", "output_dir"])
def test_resume_with_true_or_the_output_dir(tmp_path, tiny_model_dir, data_files, how):
    common = ["--alternate_training", "--contrastive_data_mode", "2", "--max_steps", "4",
              "--save_strategy", "steps", "--save_steps", "2"]  # fmt: skip
    full = tmp_path / "full"
    run_training(*parse_args(run_argv(tiny_model_dir, data_files["both"], full, *common)))
    # what a run killed after its step-2 checkpoint leaves behind: that checkpoint only
    part = tmp_path / "part"
    part.mkdir()
    shutil.copytree(full / "checkpoint-2", part / "checkpoint-2")
    target = str(part) if how == "output_dir" else how
    run_training(*parse_args(run_argv(tiny_model_dir, data_files["both"], part, *common, "--resume_from_checkpoint",
                                   target)))  # fmt: skip
    a, b = adapter_weights(full), adapter_weights(part)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=k)


def test_resume_with_nothing_to_resume_is_a_clear_error(tmp_path, tiny_model_dir, data_files):
    argv = run_argv(tiny_model_dir, data_files["task"], tmp_path / "new", "--only_train_language_modeling",
                 "--max_steps", "1", "--resume_from_checkpoint", "True")  # fmt: skip
    (tmp_path / "new").mkdir()
    with pytest.raises(FileNotFoundError, match="holds no checkpoint-"):
        run_training(*parse_args(argv))


def test_resume_true_after_a_finished_run_takes_its_latest_checkpoint(tmp_path, tiny_model_dir, data_files):
    out = tmp_path / "out"
    run_training(*parse_args(paper_run_argv(tiny_model_dir, data_files, out, "--max_steps", "2", "--save_steps", "1")))
    assert (out / "trainer_state.json").is_file()  # the finished run's own state, not a checkpoint
    args = parse_args(
        paper_run_argv(tiny_model_dir, data_files, out, "--max_steps", "3", "--resume_from_checkpoint", "True")
    )
    assert args[2].resolve_resume() == str(out / "checkpoint-2")


def test_a_torn_newest_checkpoint_is_skipped_with_a_warning(tmp_path, tiny_model_dir, data_files, caplog):
    out = tmp_path / "out"
    run_training(*parse_args(paper_run_argv(tiny_model_dir, data_files, out, "--max_steps", "2", "--save_steps", "1")))
    assert (out / "checkpoint-2" / "midalign_checkpoint_complete.json").is_file()
    (out / "checkpoint-2" / "midalign_checkpoint_complete.json").unlink()  # a kill before the save finished
    args = parse_args(
        paper_run_argv(tiny_model_dir, data_files, out, "--max_steps", "3", "--resume_from_checkpoint", "True")
    )
    with caplog.at_level("WARNING", logger="midalign"):
        assert args[2].resolve_resume() == str(out / "checkpoint-1")
    assert "skipping" in caplog.text and "checkpoint-2" in caplog.text


def test_a_finished_run_is_not_replaced_without_overwrite(tmp_path, tiny_model_dir, data_files):
    out = tmp_path / "out"
    run_training(
        *parse_args(paper_run_argv(tiny_model_dir, data_files, out, "--max_steps", "1", "--save_strategy", "no"))
    )
    before = adapter_weights(out)
    with pytest.raises(FileExistsError, match="holds a finished run"):
        run_training(
            *parse_args(paper_run_argv(tiny_model_dir, data_files, out, "--max_steps", "1", "--save_strategy", "no"))
        )
    after = adapter_weights(out)
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_a_second_run_on_a_locked_output_dir_is_refused(tmp_path, tiny_model_dir, data_files):
    out = tmp_path / "out"
    with exclusive(str(out), directory=True, what="--output_dir"):
        with pytest.raises(LockedError, match=f"--output_dir {out} is in use by another run \\(pid {os.getpid()}"):
            run_training(*parse_args(paper_run_argv(tiny_model_dir, data_files, out, "--max_steps", "1")))
    # released: the run goes through
    run_training(
        *parse_args(paper_run_argv(tiny_model_dir, data_files, out, "--max_steps", "1", "--save_strategy", "no"))
    )


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


@pytest.mark.slow
def test_kill_during_checkpoint_saves_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_model_dir, data_files):
    # every run in its own process with one thread: the reference, the killed runs and their resumes compute with
    # the same numerics (on some CPUs a 1-thread and a 2-thread GEMM differ in the last bit, which atol=0 would see)
    common = ["--max_steps", "6", "--save_steps", "1", "--learning_rate", "1e-2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def cmd(out, *extra):
        return [sys.executable, str(ROOT / "scripts" / "run_clm_lora.py"),
                *paper_run_argv(tiny_model_dir, data_files, out, *common, *extra)]  # fmt: skip

    full = tmp_path / "full"
    subprocess.run(cmd(full), env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    want = adapter_weights(full)
    rng = random.Random(0)
    for attempt in range(3):
        out = tmp_path / f"killed{attempt}"
        proc = subprocess.Popen(cmd(out), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # kill once the first checkpoint exists, at a random moment of the following saves
        deadline = time.time() + 120
        while not (out / "checkpoint-1").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 0.6))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        if (out / "adapter_model.safetensors").exists() and (out / "train_results.json").exists():
            continue  # finished before the kill: nothing to resume
        subprocess.run(cmd(out, "--resume_from_checkpoint", "True"), env=env, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        got = adapter_weights(out)
        assert got.keys() == want.keys()
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=0, atol=0, msg=f"attempt {attempt}: {k}")


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
