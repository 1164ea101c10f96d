"""bf16 on the CPU's matrix units vs float32, side by side in one run (interleaved rounds, medians, ratios).

1. ``F.linear`` at Gemma 3's LM head ([16, 1, 640] x [262144, 640]) in bf16: a contiguous input vs the strided
   view ``logits_to_keep`` produces (torch 2.13's slow path; midalign makes the head input contiguous at load).
2. SIB-200 label scoring with the real Gemma 3 270M (``midalign.tasks.sib200.predict``), float32 vs bfloat16
   weights: sentences/s, and the quality cost (share of identical predictions, accuracy of each).
3. A LoRA training micro-batch (task loss, fwd+bwd) on the real Gemma 3 270M, float32 weights vs bf16 base weights
   + float32 LoRA under autocast (what ``--bf16 True`` does on a CPU).

    python benchmarks/bf16.py [--sentences 32] [--rounds 2] [--threads 2] [--data-dir ../shared/data/sib-200]
    python benchmarks/bf16.py --matmul-only      # 0. alone: is bf16 native on this CPU? (fig/bf16_matmul.json)
    python benchmarks/bf16.py --output fig/bf16_avx512_bf16.json   # one file per kind of bf16 unit (AMX, AVX-512)

0. float32 vs bfloat16 matmuls, which say whether the CPU has bf16 units (the rows below assume it has).

Writes ``fig/bf16.json``. Needs the prepared Gemma 3 (``midalign prepare-model --model gemma-3-270m``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time


def _time(fn, repeats: int = 1) -> float:
    fn()  # warm-up (oneDNN primitives, caches)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def bench_head(rounds: int) -> dict:
    import torch
    import torch.nn.functional as F

    w = torch.randn(262144, 640, dtype=torch.bfloat16)
    contiguous = torch.randn(16, 1, 640, dtype=torch.bfloat16)
    view = torch.randn(16, 40, 640, dtype=torch.bfloat16)[:, -1:, :]
    res = {"contiguous": [], "strided_view": []}
    for _ in range(rounds):
        res["contiguous"].append(_time(lambda: F.linear(contiguous, w), 3))
        res["strided_view"].append(_time(lambda: F.linear(view, w)))
    out = {k: statistics.median(v) for k, v in res.items()}
    out["ratio_view_over_contiguous"] = out["strided_view"] / out["contiguous"]
    return out


def bench_scoring(data_dir: str, n: int, rounds: int, tmp: str) -> dict:
    from midalign.models import GEMMA3_MODEL_NAME, load_model, load_tokenizer, prepared_model_path
    from midalign.tasks import sib200

    path = prepared_model_path(GEMMA3_MODEL_NAME)
    tok = load_tokenizer(path)
    labels = sib200.load_labels(data_dir)
    from midalign.data.subsets import sample_ids

    def sample(lang):  # stratified by topic (the release sorts test.tsv by topic: a prefix holds one or two)
        rows = sib200.load_sib200(lang, "test", data_dir)
        keep = set(sample_ids([e.index_id for e in rows], n // 2, 0, {e.index_id: e.category for e in rows}))
        return [e for e in rows if e.index_id in keep]

    examples = [e for lang in ("deu_Latn", "zho_Hans") for e in sample(lang)]
    models = {dt: load_model(path, torch_dtype=dt).eval() for dt in ("float32", "bfloat16")}
    times = {dt: [] for dt in models}
    preds = {}
    for r in range(rounds):
        for dt, model in models.items():
            out = os.path.join(tmp, f"sib_{dt}_{r}.jsonl")
            for f in (out, out + ".run.json"):
                if os.path.exists(f):
                    os.remove(f)
            t = time.perf_counter()
            preds[dt] = sib200.predict(model, tok, examples, labels, out, batch_size=16)
            times[dt].append(time.perf_counter() - t)
    gold = [e.category for e in examples]
    res = {}
    for dt, v in times.items():
        sec = statistics.median(v)
        acc = sib200.score_sib(gold, preds[dt], labels)["accuracy"]
        res[dt] = {"seconds": sec, "sentences_per_second": len(examples) / sec, "accuracy": acc}
    res["identical_predictions"] = sum(a == b for a, b in zip(preds["float32"], preds["bfloat16"])) / len(examples)
    res["ratio_bf16_over_fp32"] = res["bfloat16"]["seconds"] / res["float32"]["seconds"]
    res["n_sentences"] = len(examples)
    return res


def bench_training(rounds: int) -> dict:
    import torch

    from midalign.models import GEMMA3_MODEL_NAME, apply_lora, load_model, prepared_model_path
    from midalign.training import task_loss

    path = prepared_model_path(GEMMA3_MODEL_NAME)
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 20000, (16, 68), generator=g)
    mask = torch.ones_like(ids)
    labels = torch.full_like(ids, -100)
    labels[:, -4:] = ids[:, -4:]
    variants = {}
    for name, dtype in (("float32", "float32"), ("bf16_base_fp32_lora_autocast", "bfloat16")):
        model = apply_lora(load_model(path, torch_dtype=dtype), {"lora_dropout": 0.0}).train()

        def step(model=model, dtype=dtype):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=dtype == "bfloat16"):
                total, n = task_loss(model, ids, mask, labels)
            (total / n).backward()
            model.zero_grad(set_to_none=True)

        variants[name] = step
    times = {k: [] for k in variants}
    for _ in range(rounds):
        for k, fn in variants.items():
            times[k].append(_time(fn))
    res = {k: statistics.median(v) for k, v in times.items()}
    res["ratio_bf16_over_fp32"] = res["bf16_base_fp32_lora_autocast"] / res["float32"]
    res["batch"] = "16 x 68 tokens, 4 target tokens per row (SIB-200-like)"
    return res


def bench_matmul(rounds: int) -> dict:
    """float32 vs bfloat16 matmuls: square 1024 and a Gemma 3 MLP projection (1088 tokens x 640 -> 2048)."""
    import torch

    g = torch.Generator().manual_seed(0)
    shapes = {"1024x1024 @ 1024x1024": ((1024, 1024), (1024, 1024)), "1088x640 @ 640x2048": ((1088, 640), (640, 2048))}
    out = {}
    for name, (sa, sb) in shapes.items():
        a, b = torch.randn(*sa, generator=g), torch.randn(*sb, generator=g)
        ab, bb = a.bfloat16(), b.bfloat16()
        times = {"float32": [], "bfloat16": []}
        for _ in range(rounds):
            times["float32"].append(_time(lambda a=a, b=b: a @ b))
            times["bfloat16"].append(_time(lambda a=ab, b=bb: a @ b))
        med = {k: statistics.median(v) for k, v in times.items()}
        out[name] = {**med, "ratio_bf16_over_fp32": med["bfloat16"] / med["float32"]}
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sentences", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--data-dir", default=os.environ.get("MIDALIGN_SIB200_DIR", "../shared/data/sib-200"))
    p.add_argument("--output", default=None, help="default fig/bf16.json (fig/bf16_matmul.json with --matmul-only)")
    p.add_argument(
        "--matmul-only",
        action="store_true",
        help="only the matmul section (minutes on a CPU without bf16 units, where the rest takes hours)",
    )
    args = p.parse_args()
    args.output = args.output or ("fig/bf16_matmul.json" if args.matmul_only else "fig/bf16.json")
    import tempfile

    import torch

    torch.set_num_threads(args.threads)
    import sys

    from midalign.models.hardware import cpu_description

    result = {"command": " ".join(["python benchmarks/bf16.py", *sys.argv[1:]]), "threads": args.threads,
              "rounds": args.rounds, "torch": torch.__version__, "cpu": cpu_description()}  # fmt: skip
    result["matmul"] = bench_matmul(args.rounds)
    print("matmul:", json.dumps(result["matmul"]), flush=True)
    if args.matmul_only:
        _write(args.output, result)
        return
    result["lm_head_linear"] = bench_head(args.rounds)
    print("LM head F.linear bf16:", json.dumps(result["lm_head_linear"]), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        result["sib200_scoring"] = bench_scoring(args.data_dir, args.sentences, args.rounds, tmp)
    print("SIB-200 scoring:", json.dumps(result["sib200_scoring"]), flush=True)
    result["training_step"] = bench_training(args.rounds)
    print("training step:", json.dumps(result["training_step"]), flush=True)
    _write(args.output, result)


def _write(path: str, result: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as fh:
        json.dump(result, fh, indent=1)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
