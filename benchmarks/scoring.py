"""Exact label scoring, side by side in one run, against the tool people already use (lm-evaluation-harness):

* ``ours``        -- midalign's scorer (``score_continuations``): one forward per prompt with the shared system
  prompt cached, the K labels scored from one cache, the LM head at the prompt's last position and at the labels'
  real (unpadded) positions only;
* ``ours_padded`` -- the same with the LM head at every padded label position (the scorer before the real-position
  gather), to measure that change alone;
* ``first_token`` -- ours with the first-token shortcut (an approximation, never the default): its agreement with
  exact scoring is reported;
* ``lm_eval``     -- lm-eval's ``hf`` backend (``HFLM.loglikelihood``, what a ``multiple_choice`` task with
  ``target_delimiter: ""`` sends it), one request per (prompt, label), on the same model object, prompts and label
  strings.

Rounds are interleaved (ours, lm_eval, ours, ...). Prints sentences/s of each and the ratios, and the agreement:
identical predictions and the largest |log-likelihood difference| per (sentence, label).

    python benchmarks/scoring.py [--model PATH] [--data-dir ../shared/data/sib-200] [--lang eng_Latn] [--n 16]
        [--rounds 2] [--batch-size 16] [--lm-eval-batch-size 16] [--threads 2] [--json fig/scoring.json]
"""

from __future__ import annotations

import argparse
import os
import random
import time

import _results


def main() -> None:
    import torch

    from midalign.data.subsets import sample_ids
    from midalign.inference import scoring
    from midalign.inference.prompts import render_prefix, render_target
    from midalign.models import GEMMA3_MODEL_NAME, load_model, load_tokenizer, prepared_model_path
    from midalign.models.hardware import resolve_dtype
    from midalign.tasks import sib200

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the embedded gemma-3-270m")
    ap.add_argument("--data-dir", default=os.environ.get("MIDALIGN_SIB200_DIR", "../shared/data/sib-200"))
    ap.add_argument("--lang", default="eng_Latn")
    ap.add_argument("--n", type=int, default=16, help="test sentences, a seeded sample stratified by topic")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lm-eval-batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "auto"])
    ap.add_argument("--skip-lm-eval", action="store_true")
    _results.add_args(ap, "scoring")
    args = ap.parse_args()
    _results.claim(args.json, args.overwrite)
    torch.set_num_threads(args.threads)
    dtype = resolve_dtype(args.dtype)
    path = args.model or prepared_model_path(GEMMA3_MODEL_NAME)
    tok = load_tokenizer(path)
    model = load_model(path, torch_dtype=None if dtype == "float32" else dtype).eval()
    rows = sib200.load_sib200(args.lang, "test", args.data_dir)
    keep = set(sample_ids([e.index_id for e in rows], args.n, 0, {e.index_id: e.category for e in rows}))
    rows = [e for e in rows if e.index_id in keep]
    random.Random(0).shuffle(rows)
    labels = sib200.load_labels(args.data_dir)
    prompts = [render_prefix(tok, e.text, sib200.SYSTEM_PROMPT) for e in rows]
    targets = [render_target(tok, lab) for lab in labels]

    def ours(method="exact", real=True):
        scoring.HEAD_AT_REAL_POSITIONS = real
        try:
            return scoring.score_continuations(model, tok, prompts, targets, batch_size=args.batch_size, method=method)
        finally:
            scoring.HEAD_AT_REAL_POSITIONS = True

    variants = {"ours": ours, "ours_padded": lambda: ours(real=False), "first_token": lambda: ours("first_token")}
    if not args.skip_lm_eval:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM

        lm = HFLM(pretrained=model, tokenizer=tok, batch_size=args.lm_eval_batch_size, device="cpu")
        pairs = [(p, t) for p in prompts for t in targets]
        requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]

        def lm_eval():
            out = lm.loglikelihood(requests, disable_tqdm=True)
            return torch.tensor([ll for ll, _ in out]).view(len(prompts), len(targets))

        variants["lm_eval"] = lm_eval
    seconds = {k: [] for k in variants}
    scores = {}
    with torch.no_grad():
        for r in range(args.rounds):
            for name, fn in variants.items():
                t0 = time.perf_counter()
                scores[name] = fn()
                seconds[name].append(time.perf_counter() - t0)
                print(f"round {r} {name}: {seconds[name][-1]:.1f} s", flush=True)
    exact = scores["ours"]
    pred = exact.argmax(1)
    result = {"model": os.path.basename(os.path.normpath(path)), "dtype": dtype, "lang": args.lang, "n": len(rows),
              "labels": len(labels), "batch_size": args.batch_size, "lm_eval_batch_size": args.lm_eval_batch_size,
              "rounds": args.rounds, "seconds": seconds, "variants": {}}  # fmt: skip
    best = {k: min(v) for k, v in seconds.items()}
    for name, s in scores.items():
        other = s.argmax(1)
        entry = {"best_seconds": best[name], "sentences_per_second": len(rows) / best[name],
                 "identical_predictions": float((other == pred).float().mean()),
                 "ours_speedup": best[name] / best["ours"]}  # fmt: skip
        if name != "first_token":
            entry["max_abs_loglik_diff"] = float((s - exact).abs().max())
            # a differing prediction only counts as a tie when the two top labels are within 1e-4 in either tool
            top2 = exact.topk(2, dim=1).values
            ties = (top2[:, 0] - top2[:, 1]).abs() < 1e-4
            entry["differing_non_tie_predictions"] = int(((other != pred) & ~ties).sum())
        result["variants"][name] = entry
        print(f"{name}: {entry}")
    _results.write(args.json, result, threads=args.threads)


if __name__ == "__main__":
    main()
