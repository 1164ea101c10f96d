"""Time and peak memory of one forward+backward, side by side in one run:

* task      — a task micro-batch (causal-LM loss over the full model),
* align     — an alignment micro-batch through ``midalign.layer_output`` (layers 1..k only),
* naive     — the same alignment loss from a full forward with ``output_hidden_states=True``.

Model: random weights shaped like SmolLM2-135M (30 layers, hidden 576, vocab 49152) with LoRA (r=8, all
projections), alignment layer 15, batch 8, pairs of ~24 tokens, task sequences of 64 tokens. Each variant runs in
its own process so that peak RSS (ru_maxrss) is its own.

    python benchmarks/alignment_step.py [--repeats 5] [--json outputs/fig/alignment_step.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import _results


def _model():
    from midalign.models import apply_lora, random_model

    model = apply_lora(random_model("smollm2"), {"lora_dropout": 0.0})
    model.train()
    return model


def _run_variant(variant: str, repeats: int) -> dict:
    import torch

    from midalign import alignment_loss, layer_output, pool
    from midalign.training import causal_lm_loss

    torch.manual_seed(0)
    model = _model()
    batch, pair_len, task_len, layer = 8, 24, 64, 15
    ids = torch.randint(0, 49152, (2 * batch, pair_len))
    mask = torch.ones_like(ids)
    task_ids = torch.randint(0, 49152, (batch, task_len))

    def step():
        if variant == "task":
            logits = model(input_ids=task_ids).logits
            loss = causal_lm_loss(logits, task_ids)[0] / task_ids.numel()
        else:
            if variant == "align":
                h = layer_output(model, ids, mask, layer)
            else:
                h = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[layer]
            p = pool(h, mask)
            loss = alignment_loss(p[:batch], p[batch:])
        loss.backward()
        model.zero_grad(set_to_none=True)

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step()  # warm-up (also the peak-memory sample)
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    times.sort()
    return {"variant": variant, "median_s": times[len(times) // 2], "peak_rss_increase_mb": (rss1 - rss0) / 1024}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--variant", help=argparse.SUPPRESS)
    _results.add_args(ap, "alignment_step")
    args = ap.parse_args()
    if args.variant:
        print(json.dumps(_run_variant(args.variant, args.repeats)))
        return
    _results.claim(args.json, args.overwrite)
    results = {}
    for variant in ("task", "align", "naive"):
        out = subprocess.run(
            [sys.executable, __file__, "--variant", variant, "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            check=True,
        )
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"{'variant':<8} {'fwd+bwd (s, median)':>20} {'peak RSS increase (MB)':>24}")
    for r in results.values():
        print(f"{r['variant']:<8} {r['median_s']:>20.3f} {r['peak_rss_increase_mb']:>24.1f}")
    a, n = results["align"], results["naive"]
    print(f"align / naive time:   {a['median_s'] / n['median_s']:.2f}x  (target <= 0.5x)")
    print(
        f"align / naive memory: {a['peak_rss_increase_mb'] / max(n['peak_rss_increase_mb'], 1e-9):.2f}x (target < 1x)"
    )
    print(f"align / task time:    {a['median_s'] / results['task']['median_s']:.2f}x")
    import torch

    _results.write(args.json, {"repeats": args.repeats, "batch": 8, "pair_tokens": 24, "task_tokens": 64,
                               "layer": 15, "variants": results}, threads=torch.get_num_threads())  # fmt: skip


if __name__ == "__main__":
    main()
