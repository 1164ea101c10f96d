"""Generation under torchrun: 2 gloo processes write the same file, byte for byte, as one process; a killed
multi-process run resumes from the parts it left."""

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT
from tests.training.test_distributed import _free_port

pytestmark = pytest.mark.slow

WORDS = "book a table for two tomorrow at eight in the evening near the station please".split()


def _run(model_dir, rows, output, nproc=1, die_after=0):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    if die_after:
        env["MIDALIGN_TEST_DIE_AFTER"] = str(die_after)
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1",
                     "--master_port", str(_free_port())]  # fmt: skip
    cmd = [*launcher, str(ROOT / "tests" / "inference" / "generation_worker.py"), model_dir, str(rows), str(output)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("dist-gen")
    rows = root / "rows.jsonl"
    with open(rows, "w") as fh:
        for i in range(20):  # lengths 2..15 words, shuffled by the id order
            n = 2 + (i * 7) % 14
            fh.write(json.dumps({"id": f"r{i}", "prompt": " ".join(WORDS[:n]), "gold": i}) + "\n")
    reference = root / "single.jsonl"
    proc = _run(tiny_model_dir, rows, reference)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"root": root, "rows": rows, "reference": reference.read_bytes(), "model": tiny_model_dir}


def test_two_processes_write_the_single_process_file(setup):
    out = setup["root"] / "two.jsonl"
    proc = _run(setup["model"], setup["rows"], out, nproc=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_bytes() == setup["reference"]
    assert len(out.read_text().splitlines()) == 20
    assert not list(setup["root"].glob("two.jsonl.part-*"))  # merged and removed


def test_killed_two_process_run_resumes_to_the_same_file(setup):
    out = setup["root"] / "killed.jsonl"
    proc = _run(setup["model"], setup["rows"], out, nproc=2, die_after=1)
    assert proc.returncode != 0
    parts = sorted(setup["root"].glob("killed.jsonl.part-*-of-2"))
    assert len(parts) == 2 and all(len(p.read_text().splitlines()) == 3 for p in parts)  # one batch each
    with open(parts[1], "a") as fh:
        fh.write('{"id": "r1", "prompt": "torn')  # killed mid-write
    proc = _run(setup["model"], setup["rows"], out, nproc=2)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert out.read_bytes() == setup["reference"]
    assert not list(setup["root"].glob("killed.jsonl.part-*"))
    # and a multi-process run's leftovers are finished by a single process as well
    out1 = setup["root"] / "killed_then_single.jsonl"
    assert _run(setup["model"], setup["rows"], out1, nproc=2, die_after=1).returncode != 0
    assert _run(setup["model"], setup["rows"], out1).returncode == 0
    assert out1.read_bytes() == setup["reference"]
