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
  strings, at batch ``--lm-eval-batch-size`` and at ``n x labels`` (every request of a round in one batch, the rows
  our batch holds);
* ``vllm``        -- with ``--vllm-python`` (the vLLM environment's Python, ``make vllm-env``): vLLM's prompt
  log-probabilities of prompt + label, one request per (prompt, label) on the same token ids as ours, summed over
  the label's tokens (``VllmWorker.score``), all requests of a round in one call.

Two label forms: ``eos`` (the label plus the end-of-sequence token, what our training targets and ``sib200 infer``
score) and ``plain`` (the bare label, lm-eval's usual multiple-choice form, where one-token labels let lm-eval reuse
one forward per prompt). Rounds are interleaved (ours, lm_eval, ours, ...); the median round is reported with the
fastest and slowest, and the load average before and after (a busy machine makes ratios, not speeds). Prints
sentences/s of each and the ratios, and the agreement: identical predictions and the largest |log-likelihood
difference| per (sentence, label).

``--agreement-only --langs eng_Latn,zho_Hans,...`` (default eng_Latn,zho_Hans,arb_Arab,mar_Deva): exact vs
first-token predictions, their accuracies and seconds, on the whole test split of each language (the shortcut's
agreement, per language).

    python benchmarks/scoring.py [--model PATH] [--data-dir ../shared/data/sib-200] [--lang eng_Latn] [--n 16]
        [--rounds 2] [--batch-size 16] [--lm-eval-batch-size 16] [--threads 2] [--json fig/scoring.json]
"""

from __future__ import annotations

import argparse
import os
import random
import time

import _results


def _median(values):
    return sorted(values)[len(values) // 2]


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
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lm-eval-batch-size", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "auto"])
    ap.add_argument("--skip-lm-eval", action="store_true")
    ap.add_argument("--vllm-python", default=None, help="add vLLM's column: the vLLM environment's Python")
    ap.add_argument("--vllm-bind", default=None,
                    help="vLLM's OpenMP thread binding (VLLM_CPU_OMP_THREADS_BIND; default: cores 0..threads-1, no "
                    "core reserved, so it computes on as many threads as ours)")  # fmt: skip
    ap.add_argument("--agreement-only", action="store_true", help="exact vs first-token on whole test splits")
    ap.add_argument("--langs", default="eng_Latn,zho_Hans,arb_Arab,mar_Deva", help="--agreement-only: languages")
    _results.add_args(ap, "scoring")
    args = ap.parse_args()
    _results.claim(args.json, args.overwrite)
    torch.set_num_threads(args.threads)
    dtype = resolve_dtype(args.dtype)
    path = args.model or prepared_model_path(GEMMA3_MODEL_NAME)
    tok = load_tokenizer(path)
    model = load_model(path, torch_dtype=None if dtype == "float32" else dtype).eval()
    labels = sib200.load_labels(args.data_dir)
    forms = {"eos": [render_target(tok, lab) for lab in labels], "plain": [f" {lab}" for lab in labels]}
    result = {"model": os.path.basename(os.path.normpath(path)), "dtype": dtype, "labels": len(labels)}
    if args.agreement_only:
        result["agreement"] = {}
        missing = [x for x in args.langs.split(",") if x not in sib200.available_languages(args.data_dir)]
        if missing:
            raise SystemExit(f"--langs: {', '.join(missing)} not in {args.data_dir} (before anything ran)")
        for lang in args.langs.split(","):
            rows = sib200.load_sib200(lang, "test", args.data_dir)
            prompts = [render_prefix(tok, e.text, sib200.SYSTEM_PROMPT) for e in rows]
            gold = torch.tensor([labels.index(e.category) for e in rows])
            t0 = time.perf_counter()
            exact = scoring.score_continuations(model, tok, prompts, forms["eos"], batch_size=args.batch_size)
            t1 = time.perf_counter()
            first = scoring.score_continuations(model, tok, prompts, forms["eos"], batch_size=args.batch_size,
                                                method="first_token")  # fmt: skip
            t2 = time.perf_counter()
            same = int((exact.argmax(1) == first.argmax(1)).sum())
            counts = [int((gold == k).sum()) for k in range(len(labels))]
            result["agreement"][lang] = {
                "n": len(rows), "identical": same, "share": same / len(rows),
                "accuracy_exact": float((exact.argmax(1) == gold).float().mean()),
                "accuracy_first_token": float((first.argmax(1) == gold).float().mean()),
                "majority_accuracy": max(counts) / len(rows), "chance": 1 / len(labels),
                "seconds_exact": t1 - t0, "seconds_first_token": t2 - t1,
            }  # fmt: skip
            print(lang, result["agreement"][lang], flush=True)
        _results.write(args.json, result, threads=args.threads)
        return
    rows = sib200.load_sib200(args.lang, "test", args.data_dir)
    keep = set(sample_ids([e.index_id for e in rows], args.n, 0, {e.index_id: e.category for e in rows}))
    rows = [e for e in rows if e.index_id in keep]
    random.Random(0).shuffle(rows)
    prompts = [render_prefix(tok, e.text, sib200.SYSTEM_PROMPT) for e in rows]

    def ours(targets, method="exact", real=True):
        scoring.HEAD_AT_REAL_POSITIONS = real
        try:
            return scoring.score_continuations(model, tok, prompts, targets, batch_size=args.batch_size, method=method)
        finally:
            scoring.HEAD_AT_REAL_POSITIONS = True

    variants = {}
    for form, targets in forms.items():
        variants[f"ours/{form}"] = lambda t=targets: ours(t)
        if form == "eos":
            variants["ours_padded/eos"] = lambda t=targets: ours(t, real=False)
            variants["first_token/eos"] = lambda t=targets: ours(t, "first_token")
    if not args.skip_lm_eval:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM

        for bs in sorted({args.lm_eval_batch_size, len(prompts) * len(labels)}):
            lm = HFLM(pretrained=model, tokenizer=tok, batch_size=bs, device="cpu")
            for form, targets in forms.items():
                pairs = [(p, t) for p in prompts for t in targets]
                requests = [Instance("loglikelihood", {}, pair, i) for i, pair in enumerate(pairs)]

                def lm_eval(lm=lm, requests=requests):
                    out = lm.loglikelihood(requests, disable_tqdm=True)
                    return torch.tensor([ll for ll, _ in out]).view(len(prompts), len(labels))

                variants[f"lm_eval_b{bs}/{form}"] = lm_eval
    worker = None
    if args.vllm_python:
        from midalign.inference.scoring import continuation_ids
        from midalign.inference.vllm_engine import VllmWorker

        # the same threads as ours: vLLM's CPU backend otherwise binds its model worker itself (on 2 cores: 1 thread,
        # the other core reserved for its scheduler), and a ratio of different thread counts is not a comparison
        vllm_env = {"VLLM_CPU_OMP_THREADS_BIND": args.vllm_bind or f"0-{args.threads - 1}",
                    "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "OMP_NUM_THREADS": str(args.threads)}  # fmt: skip
        result["vllm_env"] = vllm_env
        worker = VllmWorker(
            path,
            max_new_tokens=1,
            stop_token_ids=[],
            python=args.vllm_python,
            dtype=dtype,
            memory_utilization=0.25,
            env=vllm_env,
        )  # the CPU backend reserves this share of RAM
        worker.__enter__()
        result["vllm"] = worker.version
        for form, targets in forms.items():
            encoded = [continuation_ids(tok, p, targets) for p in prompts]
            pairs = [(ids, cont) for ids, conts in encoded for cont in conts]

            def vllm(pairs=pairs):
                return torch.tensor(worker.score(pairs), dtype=torch.float64).view(len(prompts), len(labels))

            variants[f"vllm/{form}"] = vllm
    seconds = {k: [] for k in variants}
    scores = {}
    result.update(lang=args.lang, n=len(rows), batch_size=args.batch_size, lm_eval_batch_size=args.lm_eval_batch_size,
                  rounds=args.rounds, seconds=seconds, load_average_before=list(os.getloadavg()))  # fmt: skip
    with torch.no_grad():
        for r in range(args.rounds):
            for name, fn in variants.items():
                t0 = time.perf_counter()
                scores[name] = fn()
                seconds[name].append(time.perf_counter() - t0)
                print(f"round {r} {name}: {seconds[name][-1]:.1f} s", flush=True)
            # written after every round: a run cut short (out of memory, a time limit) keeps the rounds it finished
            _summarize(result, seconds, scores, len(rows), rounds_done=r + 1)
            _results.write(args.json, result, threads=args.threads)
    if worker is not None:
        worker.__exit__(None, None, None)
    for name, entry in result["variants"].items():
        print(f"{name}: {entry}")


def _summarize(result: dict, seconds: dict, scores: dict, n: int, rounds_done: int) -> None:
    """Medians, spreads, ratios to ours and agreement with ours of every variant, into ``result``."""
    import statistics

    result.update(rounds_done=rounds_done, load_average_after=list(os.getloadavg()), variants={})
    med = {k: _median(v) for k, v in seconds.items()}
    for name, s in scores.items():
        form = name.split("/")[1]
        exact = scores[f"ours/{form}"]
        pred = exact.argmax(1)
        other = s.argmax(1)
        entry = {"median_seconds": med[name], "min_seconds": min(seconds[name]), "max_seconds": max(seconds[name]),
                 "sd_seconds": statistics.stdev(seconds[name]) if len(seconds[name]) > 1 else 0.0,
                 "sentences_per_second": n / med[name],
                 "identical_predictions": float((other == pred).float().mean()),
                 "time_over_ours": med[name] / med[f"ours/{form}"]}  # fmt: skip
        if not name.startswith("first_token"):
            entry["max_abs_loglik_diff"] = float((s.double() - exact.double()).abs().max())
            top2 = exact.topk(2, dim=1).values
            ties = (top2[:, 0] - top2[:, 1]).abs() < 1e-4
            entry["differing_non_tie_predictions"] = int(((other != pred) & ~ties).sum())
        result["variants"][name] = entry


if __name__ == "__main__":
    main()
