"""Greedy generation throughput, side by side in one run, on the same prompts of mixed lengths:

* paper  — the paper's batching: fixed input order, batch 64, ``model.generate``;
* sorted — prompts sorted by length only (an ablation of ours);
* ours   — midalign's engine: prompts sorted by length and the shared prompt prefix (chat template + system prompt)
  prefilled once and reused by every batch (``PrefixCache``), batch 64, outputs restored to input order
  (``--early-exit``: with our greedy loop in which finished sequences leave the batch).

Prints generated tokens/s of each, the ratios to paper, and how many greedy outputs are identical to paper's.

    python benchmarks/inference.py [--model PATH] [--adapter DIR] [--n 128] [--max-new-tokens 24] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import time

import _results


def main() -> None:
    from midalign.inference import (
        PrefixCache,
        build_prompt,
        common_prefix_length,
        generate_batch,
        length_sorted_batches,
    )
    from midalign.models import load_model_with_adapters, load_tokenizer
    from midalign.tasks.massive import SYSTEM_PROMPT
    from midalign.training.run import example_data_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    ap.add_argument("--adapter", default=None, help="a LoRA adapter (e.g. one trained on data_example)")
    ap.add_argument("--early-exit", action="store_true", help="ours with midalign.inference.greedy_decode")
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-new-tokens", type=int, default=24)
    _results.add_args(ap, "inference")
    args = ap.parse_args()
    _results.claim(args.json, args.overwrite)

    tok = load_tokenizer(args.model)
    model = load_model_with_adapters(args.model, [args.adapter] if args.adapter else None)
    rows = [json.loads(x) for x in open(example_data_dir() / "massive" / "en-US.jsonl")]
    rng = random.Random(0)
    utts = []
    for _ in range(args.n):  # mixed lengths: 1 to 6 utterances joined
        utts.append(" and ".join(rng.choice(rows)["utt"] for _ in range(rng.choice([1, 1, 2, 3, 6]))))
    prompts = [build_prompt(tok, u, SYSTEM_PROMPT) for u in utts]

    def run(batches, hf=True, prefix_cache=False):
        out, n_tok = [None] * len(prompts), 0
        t = time.perf_counter()
        if prefix_cache:  # as run_generation does: the run's common prefix, computed once (timed)
            prefix_cache = PrefixCache(model)
            prefix_cache.prime([tok(p, add_special_tokens=False)["input_ids"] for p in prompts])
        for b in batches:
            texts, n = generate_batch(
                model,
                tok,
                [prompts[i] for i in b],
                max_new_tokens=args.max_new_tokens,
                use_hf_generate=hf,
                prefix_cache=prefix_cache,
            )
            n_tok += n
            for i, text in zip(b, texts):
                out[i] = text
        return out, n_tok, time.perf_counter() - t

    fixed = [list(range(i, min(i + args.batch_size, len(prompts)))) for i in range(0, len(prompts), args.batch_size)]
    lengths = [len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    sorted_batches = length_sorted_batches(lengths, args.batch_size)
    generate_batch(model, tok, prompts[:2], max_new_tokens=2)  # warm-up
    results = {
        "paper (fixed order)": run(fixed),
        "sorted (length-sorted only)": run(sorted_batches),
        "ours (sorted + prefix cache)": run(sorted_batches, hf=not args.early_exit, prefix_cache=True),
    }
    shared = common_prefix_length([tok(p, add_special_tokens=False)["input_ids"] for p in prompts])
    print(
        f"{len(prompts)} prompts, {min(lengths)}-{max(lengths)} prompt tokens ({shared} shared), "
        f"batch {args.batch_size}, max_new_tokens {args.max_new_tokens}"
        + (", ours with the early-exit greedy loop" if args.early_exit else "")
    )
    paper_out, paper_tok, paper_s = results["paper (fixed order)"]
    variants = {}
    for name, (out, n_tok, secs) in results.items():
        same = sum(a == b for a, b in zip(paper_out, out))
        speed = n_tok / secs
        variants[name.split(" ")[0]] = {"label": name, "tokens": n_tok, "seconds": secs, "tokens_per_s": speed,
                                        "vs_paper": speed / (paper_tok / paper_s),
                                        "identical_to_paper": same}  # fmt: skip
        print(
            f"{name:30s} {n_tok} tokens in {secs:5.1f} s = {n_tok / secs:6.1f} tokens/s  "
            f"{(n_tok / secs) / (paper_tok / paper_s):.2f}x  identical to paper: {same}/{len(prompts)}"
        )
    ours_out, ours_tok, ours_s = results["ours (sorted + prefix cache)"]
    print(f"speed-up ours/paper: {(ours_tok / ours_s) / (paper_tok / paper_s):.2f}x (target >= 1.5x)")
    import torch

    _results.write(args.json, {"model": args.model or "SmolLM2-135M-Instruct (embedded)", "adapter": args.adapter,
                               "early_exit": args.early_exit, "prompts": len(prompts), "batch_size": args.batch_size,
                               "max_new_tokens": args.max_new_tokens, "prompt_tokens": [min(lengths), max(lengths)],
                               "shared_prefix_tokens": shared, "dtype": str(model.dtype).replace("torch.", ""),
                               "variants": variants}, threads=torch.get_num_threads())  # fmt: skip


if __name__ == "__main__":
    main()
