"""Task inference in one process vs N processes (``torchrun``), same threads in total, side by side in one run.

Runs the paper's MASSIVE command (``python -m scripts.run_inference_massive``) on ``data_example/massive`` with the
embedded SmolLM2: one process with T threads, then N processes with T / N threads each, in interleaved rounds; prints
the wall-clock of each (model loading included, as a user sees it), the median ratio, and whether the output files
are byte-identical.

    python benchmarks/inference_procs.py [--nproc 2] [--threads 2] [--limit 96] [--rounds 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _results

ROOT = Path(__file__).resolve().parents[1]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run(nproc: int, threads: int, output: str, args) -> float:
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--nproc_per_node", str(nproc), "--master_addr", "127.0.0.1",
                     "--master_port", str(_port())]  # fmt: skip
    cmd = [*launcher, "-m", "scripts.run_inference_massive", "--data-dir", str(ROOT / "data_example" / "massive"),
           "--partition", "test", "--limit", str(args.limit), "--batch-size", str(args.batch_size),
           "--max-new-tokens", str(args.max_new_tokens), "--output-path", output]  # fmt: skip
    if args.model:
        cmd += ["--base-model-name", args.model]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="threads in total (per process: threads / nproc)")
    ap.add_argument("--limit", type=int, default=96)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=2)
    _results.add_args(ap, "inference_procs")
    args = ap.parse_args()
    _results.claim(args.json, args.overwrite)
    times: dict[int, list[float]] = {1: [], args.nproc: []}
    identical = []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            outs = {}
            for nproc in (1, args.nproc):
                outs[nproc] = os.path.join(tmp, f"round{r}-{nproc}.jsonl")
                times[nproc].append(_run(nproc, max(args.threads // nproc, 1), outs[nproc], args))
                print(f"round {r}: {nproc} process(es): {times[nproc][-1]:.1f} s", flush=True)
            identical.append(Path(outs[1]).read_bytes() == Path(outs[args.nproc]).read_bytes())
    one, many = statistics.median(times[1]), statistics.median(times[args.nproc])
    print(f"\n{args.limit} MASSIVE prompts, batch {args.batch_size}, <= {args.max_new_tokens} new tokens, "
          f"{args.threads} threads in total")  # fmt: skip
    print(f"1 process x {args.threads} threads: median {one:.1f} s")
    print(f"{args.nproc} processes x {max(args.threads // args.nproc, 1)} thread(s): median {many:.1f} s")
    print(f"ratio (N processes / 1 process): {many / one:.2f}x time; byte-identical outputs: {all(identical)}")
    _results.write(args.json, {"prompts": args.limit, "batch_size": args.batch_size, "max_new_tokens":
                               args.max_new_tokens, "nproc": args.nproc, "rounds": args.rounds,
                               "seconds": {"1": times[1], str(args.nproc): times[args.nproc]},
                               "median_seconds": {"1": one, str(args.nproc): many}, "ratio": many / one,
                               "identical": identical}, threads=args.threads)  # fmt: skip


if __name__ == "__main__":
    main()
