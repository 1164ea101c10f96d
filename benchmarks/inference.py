"""Greedy generation throughput, side by side in one run, on the same prompts of mixed lengths:

* paper  — the paper's batching: fixed input order, batch 64, ``model.generate``;
* ours   — midalign's engine: prompts sorted by length, batch 64, outputs restored to input order
  (``--early-exit``: our greedy loop in which finished sequences leave the batch).

Prints generated tokens/s of each, the ratio, and how many greedy outputs are identical.

    python benchmarks/inference.py [--model PATH] [--n 128] [--max-new-tokens 24]
"""

from __future__ import annotations

import argparse
import json
import random
import time


def main() -> None:
    from midalign.inference import build_prompt, generate_batch, length_sorted_batches
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
    args = ap.parse_args()

    tok = load_tokenizer(args.model)
    model = load_model_with_adapters(args.model, [args.adapter] if args.adapter else None)
    rows = [json.loads(x) for x in open(example_data_dir() / "massive" / "en-US.jsonl")]
    rng = random.Random(0)
    utts = []
    for _ in range(args.n):  # mixed lengths: 1 to 6 utterances joined
        utts.append(" and ".join(rng.choice(rows)["utt"] for _ in range(rng.choice([1, 1, 2, 3, 6]))))
    prompts = [build_prompt(tok, u, SYSTEM_PROMPT) for u in utts]

    def run(batches, hf):
        out, n_tok = [None] * len(prompts), 0
        t = time.perf_counter()
        for b in batches:
            texts, n = generate_batch(
                model, tok, [prompts[i] for i in b], max_new_tokens=args.max_new_tokens, use_hf_generate=hf
            )
            n_tok += n
            for i, text in zip(b, texts):
                out[i] = text
        return out, n_tok, time.perf_counter() - t

    fixed = [list(range(i, min(i + args.batch_size, len(prompts)))) for i in range(0, len(prompts), args.batch_size)]
    lengths = [len(tok(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    sorted_batches = length_sorted_batches(lengths, args.batch_size)
    generate_batch(model, tok, prompts[:2], max_new_tokens=2)  # warm-up
    paper_out, paper_tok, paper_s = run(fixed, hf=True)
    ours_out, ours_tok, ours_s = run(sorted_batches, hf=not args.early_exit)
    same = sum(a == b for a, b in zip(paper_out, ours_out))
    print(
        f"{len(prompts)} prompts, {min(lengths)}-{max(lengths)} prompt tokens, batch {args.batch_size}, "
        f"max_new_tokens {args.max_new_tokens}"
    )
    print(f"paper (fixed order): {paper_tok} tokens in {paper_s:.1f} s = {paper_tok / paper_s:.1f} tokens/s")
    print(f"ours (length-sorted): {ours_tok} tokens in {ours_s:.1f} s = {ours_tok / ours_s:.1f} tokens/s")
    print(
        f"speed-up: {(ours_tok / ours_s) / (paper_tok / paper_s):.2f}x (target >= 1.5x); "
        f"identical greedy outputs: {same}/{len(prompts)}"
    )


if __name__ == "__main__":
    main()
