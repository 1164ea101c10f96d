"""The task loss with logits only at supervised positions vs over every position: time and peak RSS of one
forward+backward of a task micro-batch, side by side in one run.

Shapes: random weights shaped like SmolLM2-135M (30 layers, hidden 576, vocab 49,152, tied) and Gemma 3 270M
(18 layers, hidden 640, vocab 262,144, tied), LoRA r=8 on the seven projections, batch 8 of MASSIVE-like rows:
prompts of 96-124 tokens and targets of 8-16. Each (shape, variant) runs in its own process so that peak RSS
(ru_maxrss) is its own; rounds interleave the variants; medians are reported.

    python benchmarks/task_loss.py [--repeats 3] [--rounds 3] [--json outputs/fig/task_loss.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import _results

SHAPES = ("smollm2", "gemma3")  # midalign.models.REAL_SHAPES


def _child(shape: str, supervised_only: bool, repeats: int) -> dict:
    import torch

    from midalign.models import apply_lora, random_model
    from midalign.training import task_loss

    torch.set_num_threads(2)
    model = apply_lora(random_model(shape), {"lora_dropout": 0.0}).train()
    g = torch.Generator().manual_seed(0)
    prompts = torch.randint(96, 125, (8,), generator=g).tolist()
    targets = torch.randint(8, 17, (8,), generator=g).tolist()
    length = max(p + t for p, t in zip(prompts, targets))
    ids = torch.randint(3, model.config.vocab_size, (8, length), generator=g)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    for i, (p, t) in enumerate(zip(prompts, targets)):
        mask[i, : p + t] = 1
        labels[i, p : p + t] = ids[i, p : p + t]
    times = []
    for _ in range(repeats + 1):  # the first is a warm-up
        model.zero_grad()
        t0 = time.perf_counter()
        total, n = task_loss(model, ids, mask, labels, supervised_only=supervised_only)
        (total / n).backward()
        times.append(time.perf_counter() - t0)
    return {
        "seconds": statistics.median(times[1:]),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "loss": (total / n).item(),
        "tokens": int(mask.sum()),
        "targets": int(n),
    }


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="timed forward+backward passes per process")
    p.add_argument("--rounds", type=int, default=3, help="processes per (shape, variant), interleaved")
    p.add_argument("--shapes", default="smollm2,gemma3")
    p.add_argument("--child", nargs=2, metavar=("SHAPE", "VARIANT"), help=argparse.SUPPRESS)
    _results.add_args(p, "task_loss")
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child[0], args.child[1] == "supervised", args.repeats)))
        return
    _results.claim(args.json, args.overwrite)
    shapes = args.shapes.split(",")
    results: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for shape in shapes:
            for variant in ("full", "supervised"):
                cmd = [sys.executable, __file__, "--child", shape, variant, "--repeats", str(args.repeats)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                results.setdefault((shape, variant), []).append(json.loads(out))
    summary = {}
    print("| shape | logits over | s / task micro-batch (median) | peak RSS MB (median) | loss |")
    print("|---|---|---|---|---|")
    for shape in shapes:
        for variant in ("full", "supervised"):
            rs = results[(shape, variant)]
            print(
                f"| {shape} | {'every position' if variant == 'full' else 'supervised positions'} | "
                f"{statistics.median(r['seconds'] for r in rs):.3f} | "
                f"{statistics.median(r['peak_rss_mb'] for r in rs):.0f} | {rs[0]['loss']:.4f} |"
            )
        med = {
            (v, k): statistics.median(r[k] for r in results[(shape, v)])
            for v in ("full", "supervised")
            for k in ("seconds", "peak_rss_mb")
        }
        time_ratio = med["supervised", "seconds"] / med["full", "seconds"]
        rss_ratio = med["supervised", "peak_rss_mb"] / med["full", "peak_rss_mb"]
        print(f"| {shape} | ratio supervised / full | {time_ratio:.2f}x | {rss_ratio:.2f}x | |")
        losses = {v: results[(shape, v)][0]["loss"] for v in ("full", "supervised")}
        summary[shape] = {
            **{f"{v}_{k}": med[v, k] for v in ("full", "supervised") for k in ("seconds", "peak_rss_mb")},
            "time_ratio": time_ratio,
            "rss_ratio": rss_ratio,
            "loss_abs_diff": abs(losses["full"] - losses["supervised"]),
        }
    runs = {f"{shape}/{variant}": rs for (shape, variant), rs in results.items()}
    _results.write(args.json, {"repeats": args.repeats, "rounds": args.rounds, "batch": 8, "prompt_tokens": [96, 124],
                               "target_tokens": [8, 16], "runs": runs, "summary": summary}, threads=2)  # fmt: skip


if __name__ == "__main__":
    main()
