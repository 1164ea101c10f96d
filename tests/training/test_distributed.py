"""Two CPU processes (gloo) train with every schedule: no crash, no desynchronisation."""

import importlib.util
import json
import os
import socket
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from midalign.models import DEFAULT_LORA_CONFIG, apply_lora, tiny_model
from midalign.training import SCHEDULES
from tests.conftest import ROOT


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(tmp_path, data_file, extra=(), launcher=None):
    cmd = launcher or [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_addr",
        "127.0.0.1",
        "--master_port",
        str(_free_port()),
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(
        [*cmd, str(ROOT / "tests" / "training" / "ddp_worker.py"), data_file, str(tmp_path), *extra],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=1200,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


def _check(tmp_path, tokenizer):
    initial = apply_lora(tiny_model("llama", vocab_size=len(tokenizer)), {**DEFAULT_LORA_CONFIG, "lora_dropout": 0.0})
    start = {n: p.detach().float() for n, p in initial.named_parameters() if p.requires_grad}
    for schedule in sorted(SCHEDULES):
        r0 = load_file(tmp_path / f"{schedule}-rank0.safetensors")
        r1 = load_file(tmp_path / f"{schedule}-rank1.safetensors")
        assert r0.keys() == r1.keys() == start.keys()
        for name in r0:
            torch.testing.assert_close(r0[name], r1[name], rtol=0, atol=0, msg=f"{schedule}: {name} differs")
        assert any(not torch.equal(r0[n], start[n]) for n in r0), schedule
        logs = json.loads((tmp_path / f"{schedule}-logs.json").read_text())
        assert logs[-1]["step"] == 3
        if SCHEDULES[schedule].uses_align:
            assert any("loss/align" in h for h in logs), schedule
        if schedule == "task_only":  # the logged objective is the global token mean, not a multiple of it
            for h in (h for h in logs if "loss/task" in h):
                assert abs(h["loss"] - h["loss/task"]) < 0.25 * h["loss/task"], h


@pytest.mark.slow
def test_ddp_two_processes_every_schedule(tmp_path, tokenizer, data_files):
    _launch(tmp_path, data_files["both"])
    _check(tmp_path, tokenizer)


@pytest.mark.slow
@pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None, reason="DeepSpeed is not installed (pip install -e .[deepspeed])"
)
def test_deepspeed_zero2_two_processes_every_schedule(tmp_path, tokenizer, data_files):
    _launch(tmp_path, data_files["both"], extra=[str(ROOT / "config" / "deepspeed_config.json")])
    _check(tmp_path, tokenizer)
