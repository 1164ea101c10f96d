"""``--engine vllm`` through the task commands' generation path, with a stand-in ``vllm`` package run by the worker
in a subprocess, as the real one runs in ``.venv-vllm``: same prompt token ids, stop tokens, output rows, resume and
provenance as midalign's engine; clear errors for a missing environment, several adapters or a failing worker.
(The real vLLM run and its speed are measured by ``benchmarks/vllm.py``, not here: CI has no vLLM environment.)"""

import argparse
import os
import stat
import sys

import pytest

from midalign.inference.task_cli import add_model_args, generate_task
from tests.conftest import ROOT

FAKE = ROOT / "tests" / "assets" / "fake_vllm"


@pytest.fixture
def fake_python(tmp_path):
    """A "Python of the vLLM environment": ours, with the stand-in vllm on its path."""
    path = tmp_path / "python"
    path.write_text(f'#!/bin/sh\nPYTHONPATH="{FAKE}" exec "{sys.executable}" "$@"\n')
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return str(path)


def _args(tiny_model_dir, *extra):
    p = argparse.ArgumentParser()
    add_model_args(p)
    return p.parse_args(["--base-model-name", tiny_model_dir, "--max-new-tokens", "5", *extra])


EXAMPLES = [{"id": f"s{i}", "user": "hello " * (i + 1), "system": "Answer.", "gold": i} for i in range(5)]


def test_vllm_engine_writes_the_same_rows_and_resumes(tmp_path, tiny_model_dir, fake_python):
    from midalign.inference.task_cli import prompt_rows
    from midalign.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_model_dir)
    _, special = prompt_rows(tokenizer, EXAMPLES)
    out = str(tmp_path / "out.jsonl")
    args = _args(tiny_model_dir, "--engine", "vllm", "--vllm-python", fake_python)
    rows = generate_task(args, EXAMPLES, out)
    assert [r["id"] for r in rows] == [e["id"] for e in EXAMPLES] and [r["gold"] for r in rows] == list(range(5))
    for r in rows:  # the worker got our token ids and our stop tokens
        ids = tokenizer(r["prompt"], add_special_tokens=special)["input_ids"]
        assert r["prediction"].startswith(f"n={len(ids)} last={ids[-1]} lora=False max=5 stops=[")
    assert '"engine": "vllm"' in open(out + ".run.json").read()
    # resume: drop the last two rows; a rerun generates only those, the result is the same
    lines = open(out).read().splitlines()
    with open(out, "w") as fh:
        fh.write("\n".join(lines[:3]) + "\n")
    assert generate_task(args, EXAMPLES, out) == rows
    # the midalign engine refuses to resume a vLLM file (other provenance)
    with pytest.raises(ValueError):
        generate_task(_args(tiny_model_dir), EXAMPLES, out)


def test_vllm_engine_errors_are_clear(tmp_path, tiny_model_dir, fake_python):
    out = str(tmp_path / "out.jsonl")
    with pytest.raises(FileNotFoundError, match="make vllm-env"):
        generate_task(_args(tiny_model_dir, "--engine", "vllm", "--vllm-python", str(tmp_path / "nope")), EXAMPLES, out)
    two = ["--peft-model-id", "a", "--peft-model-id", "b"]
    with pytest.raises(ValueError, match="one LoRA adapter"):
        generate_task(_args(tiny_model_dir, "--engine", "vllm", "--vllm-python", fake_python, *two), EXAMPLES, out)
    # the worker's own failure (the stand-in refuses float16) is named, with the model
    with pytest.raises(RuntimeError, match=r"--engine vllm failed on .*: ValueError: fake vllm: no float16"):
        generate_task(_args(tiny_model_dir, "--engine", "vllm", "--vllm-python", fake_python, "--dtype", "float16"),
                      EXAMPLES, out)  # fmt: skip
    assert not os.path.exists(out)


def test_a_python_without_vllm_is_one_line_not_a_traceback(tmp_path, tiny_model_dir, xsid_dir, capfd):
    """Issue 31, item 8: ``--vllm-python`` naming a Python without vllm: the CLI prints one line naming it and what
    to do, exit 2 (the worker's failure is a ValueError too, not only a RuntimeError the CLI does not catch)."""
    from midalign.cli import main

    with pytest.raises(SystemExit) as err:
        main(
            [
                "xsid",
                "infer",
                "--base-model-name",
                tiny_model_dir,
                "--lang",
                "en",
                "--data-dir",
                xsid_dir,
                "--output-path",
                str(tmp_path / "out.jsonl"),
                "--engine",
                "vllm",
                "--vllm-python",
                sys.executable,
            ]
        )
    message = capfd.readouterr().err.splitlines()[-1]  # the worker's own log comes first
    assert err.value.code == 2, message
    assert f"--engine vllm: {sys.executable} has no vllm" in message and "make vllm-env" in message


def test_vllm_scores_continuations_from_its_prompt_logprobs(tiny_model_dir, fake_python):
    """The worker's ``score`` request: each continuation's tokens' log-probabilities after its prompt, summed (the
    stand-in model gives token t the log-probability -0.5 - t % 7 at any position)."""
    sys.path.insert(0, str(FAKE))
    try:
        from vllm import fake_logprob
    finally:
        sys.path.remove(str(FAKE))
        sys.modules.pop("vllm", None)
    from midalign.inference.vllm_engine import VllmWorker

    pairs = [([2, 10, 11], [12, 13]), ([2, 10], [5]), ([2, 3, 4, 5], [6, 7, 8])]
    with VllmWorker(tiny_model_dir, max_new_tokens=1, stop_token_ids=[], python=fake_python) as worker:
        got = worker.score(pairs)
        assert worker.generate([[2, 10]])  # generation still answers on the same worker
    by_hand = [sum(fake_logprob(t) for t in cont) for _, cont in pairs]
    assert got == pytest.approx(by_hand) and by_hand[0] == pytest.approx(-0.5 - 5 - 0.5 - 6)
