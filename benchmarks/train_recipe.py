"""The real training run, end to end: a plain transformers ``Trainer`` + peft baseline vs midalign's baseline vs
midalign's alternate recipe, side by side in one run.

Variants (each in its own process, rounds interleaved, medians reported):

- ``plain_hf``: what a user would write instead (and what the paper code's baseline equals): the same rows tokenized
  with the prompt masked, ``DataCollatorForSeq2Seq``, ``get_peft_model`` with ``config/lora_config.json``, a stock
  ``Trainer`` whose loss is the model's own (logits at every position);
- ``baseline``: ``scripts/run_clm_lora.py --only_train_language_modeling`` (the real entry point);
- ``alternate``: ``scripts/run_clm_lora.py --alternate_training --contrastive_data_mode 2`` (the paper's recipe);
- ``baseline_bf16``, ``alternate_bf16``: the same with ``--bf16 True`` (frozen base weights stored in bf16, LoRA
  weights and optimizer state in fp32, autocast): the dtype axis. In the default set only where the CPU has bf16
  matrix units (``midalign.models.hardware.cpu_bf16_native``); elsewhere bf16 runs on a scalar fallback many times
  slower than fp32 (``benchmarks/bf16.py --matmul-only`` measures by how much), so ask for them with ``--variants``.

All three: the embedded SmolLM2-135M-Instruct, ``data_example``, LoRA r=8 on the seven projections, batch 8,
gradient accumulation 2, block 256, fp32, the same optimizer steps, learning rate and schedule, no evaluation or
saving. Reported per variant: ``train_runtime``, task rows/s, task and pair tokens/s (real tokens, padding
excluded), seconds per task and per alignment micro-batch (``training_step``: forward + backward), peak RSS; then
ratios to ``plain_hf``. ``--profile`` adds one alternate run under ``torch.profiler`` and accounts for an alignment
micro-batch's time: the two truncated forwards (``layer_output``), the backward, and what is left (loss,
retrieval accuracy, zero-gradient term, input preparation).

This machine's speed drifts by tens of percent over minutes, so the order of the variants rotates each round and the
time ratios are taken within a round (their median is the headline), beside the ratio of the medians.

    python benchmarks/train_recipe.py [--steps 10] [--rounds 4] [--threads 2] [--profile] [--json FILE]

Writes ``--json`` (default ``outputs/fig/train_recipe.json``; the Benchmarks page renders ``fig/train_recipe.json``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _results

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ("plain_hf", "baseline", "alternate", "baseline_bf16", "alternate_bf16")
FP32_VARIANTS = VARIANTS[:3]
DATA = ROOT / "data_example"
MARK = "TRAIN_RECIPE_RESULT "


# --------------------------------------------------------------------------------------------------- child side
def _common(args) -> dict:
    return {
        "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 2,
        "max_steps": args.steps,
        "learning_rate": 5e-4,
        "weight_decay": 0.0,
        "warmup_steps": 0.03,
        "lr_scheduler_type": "inverse_sqrt",
        "logging_steps": 5,
        "seed": 1,
        "save_strategy": "no",
        "eval_strategy": "no",
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": True,
        "dataloader_num_workers": 0,
    }


def _instrument(record: list[dict], timers: dict[str, float], profile: bool) -> None:
    """Time every ``training_step`` (one micro-batch's forward + backward) and the pieces of an alignment
    micro-batch, by wrapping methods at class level (the code under test is not changed)."""
    import contextlib
    import functools

    import accelerate
    import torch
    from transformers import Trainer

    from midalign.training import AlignmentTrainer
    from midalign.training.trainer import PLAN_KEY

    scope = torch.profiler.record_function if profile else (lambda name: contextlib.nullcontext())

    def timed(cls, name, label):
        original = getattr(cls, name)

        @functools.wraps(original)
        def wrapper(*a, **k):
            t0 = time.perf_counter()
            with scope(label):
                out = original(*a, **k)
            timers[label] = timers.get(label, 0.0) + time.perf_counter() - t0
            return out

        setattr(cls, name, wrapper)

    step = Trainer.training_step

    @functools.wraps(step)
    def training_step(self, model, inputs, *a, **k):
        plan = inputs.get(PLAN_KEY)
        kind = "task" if plan is None else ("+".join(n for n in ("task", "align") if getattr(plan.objectives, n)))
        tokens = int(inputs["attention_mask"].sum()) if "task" in kind else 0
        pairs = sum(int(inputs[f"attention_mask_parallel_{s}"].sum()) for s in (0, 1)) if "align" in kind else 0
        for key in list(timers):
            timers[key] = 0.0
        t0 = time.perf_counter()
        with scope(f"micro-batch: {kind}"):
            out = step(self, model, inputs, *a, **k)
        entry = {"kind": kind, "seconds": time.perf_counter() - t0, "task_tokens": tokens, "pair_tokens": pairs}
        entry["rows"] = int(inputs["input_ids"].shape[0]) if "task" in kind else 0
        entry.update({f"part:{key}": value for key, value in timers.items()})
        record.append(entry)
        return out

    Trainer.training_step = training_step
    timed(accelerate.Accelerator, "backward", "backward")
    timed(AlignmentTrainer, "_align_forward", "layer_output x2 + pooling")
    timed(AlignmentTrainer, "_align_loss", "alignment loss + retrieval accuracy")
    timed(AlignmentTrainer, "_zero_for_unreached", "zero-gradient term")


def _plain_hf(args) -> dict:
    """A stock Trainer + peft on the task rows: the model's own loss over every position."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, DataCollatorForSeq2Seq, Trainer, TrainingArguments

    from midalign.data import read_rows, tokenize_task
    from midalign.models.default import default_model_path

    path = args.model or default_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    lora = json.loads((ROOT / "config" / "lora_config.json").read_text())
    model = get_peft_model(model, LoraConfig(**lora))
    rows = read_rows(str(DATA / "train_baseline.json"), ("prefix", "text"))
    train = [tokenize_task(tokenizer, r["prefix"], r["text"], 256) for r in rows]
    collator = DataCollatorForSeq2Seq(tokenizer, pad_to_multiple_of=8, label_pad_token_id=-100)
    with tempfile.TemporaryDirectory() as out:
        trainer = Trainer(
            model=model,
            args=TrainingArguments(output_dir=out, remove_unused_columns=False, **_common(args)),
            train_dataset=train,
            data_collator=collator,
        )
        return trainer.train().metrics


def _ours(args, variant: str) -> dict:
    import runpy

    from transformers import Trainer

    metrics: dict = {}
    train = Trainer.train

    def capture(self, *a, **k):
        out = train(self, *a, **k)
        metrics.update(out.metrics)
        return out

    Trainer.train = capture
    recipe, _, dtype = variant.partition("_")
    flags = {"baseline": ["--only_train_language_modeling"], "alternate": ["--alternate_training"]}[recipe]
    if dtype == "bf16":
        flags = [*flags, "--bf16", "True"]
    data = "train_baseline.json" if recipe == "baseline" else "train_baseline_with_alignment.json"
    with tempfile.TemporaryDirectory() as out:
        argv = ["run_clm_lora.py", "--train_file", str(DATA / data), "--use_lora", "True",
                "--lora_config", str(ROOT / "config" / "lora_config.json"), "--block_size", "256",
                "--output_dir", out, *flags]  # fmt: skip
        if recipe == "alternate":
            argv += ["--contrastive_data_mode", "2", "--contrastive_pooling_type", "mean_skip_first"]
        if args.model:
            argv += ["--model_name_or_path", args.model]
        for key, value in _common(args).items():
            argv += [f"--{key}", str(value)]
        sys.argv = argv
        runpy.run_path(str(ROOT / "scripts" / "run_clm_lora.py"), run_name="__main__")
    return metrics


def child(args) -> None:
    import resource

    import torch

    torch.set_num_threads(args.threads)
    record: list[dict] = []
    timers: dict[str, float] = {}
    _instrument(record, timers, args.profile)
    profiler = None
    if args.profile:
        profiler = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
        profiler.__enter__()
    metrics = _plain_hf(args) if args.child == "plain_hf" else _ours(args, args.child)
    result = {"variant": args.child, "metrics": metrics, "micro_batches": record}
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if profiler is not None:
        profiler.__exit__(None, None, None)
        averages = profiler.key_averages()
        row = lambda e: {"name": e.key, "count": e.count, "cpu_total_ms": e.cpu_time_total / 1e3,  # noqa: E731
                         "self_ms": e.self_cpu_time_total / 1e3}  # fmt: skip
        top = sorted(averages, key=lambda e: -e.self_cpu_time_total)[:25]
        result["profile_self_ms_total"] = sum(e.self_cpu_time_total for e in averages) / 1e3
        result["profile"] = [row(e) for e in top] + [
            row(e) for e in averages if e.key.startswith("micro-batch") or e.key in timers
        ]
    print(MARK + json.dumps(result), flush=True)


# -------------------------------------------------------------------------------------------------- parent side
def _run(variant: str, args, profile: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", variant, "--steps", str(args.steps), "--threads", str(args.threads)]
    if args.model:
        cmd += ["--model", args.model]
    if profile:
        cmd.append("--profile")
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith(MARK)]
    if proc.returncode or not lines:
        raise SystemExit(f"{' '.join(cmd)} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1][len(MARK) :])


def summarize(result: dict) -> dict:
    """One run's figures: time, throughput and per-micro-batch seconds (medians over micro-batches)."""
    mbs = result["micro_batches"]
    runtime = result["metrics"]["train_runtime"]
    out = {"train_runtime": runtime, "peak_rss_mb": result["peak_rss_mb"]}
    out["task_rows_per_s"] = sum(m["rows"] for m in mbs) / runtime
    out["task_tokens_per_s"] = sum(m["task_tokens"] for m in mbs) / runtime
    out["pair_tokens_per_s"] = sum(m["pair_tokens"] for m in mbs) / runtime
    for kind in ("task", "align"):
        times = [m["seconds"] for m in mbs if m["kind"] == kind]
        out[f"s_per_{kind}_micro_batch"] = statistics.median(times) if times else None
    out["s_outside_micro_batches"] = runtime - sum(m["seconds"] for m in mbs)
    return out


def _account(result: dict) -> list[tuple[str, float]]:
    """Mean seconds per alignment micro-batch, split into its measured parts and the rest."""
    align = [m for m in result["micro_batches"] if m["kind"] == "align"]
    if not align:
        return []
    mean = lambda key: statistics.fmean(m.get(key, 0.0) for m in align)  # noqa: E731
    parts = [(k[len("part:") :], mean(k)) for k in align[0] if k.startswith("part:")]
    total = mean("seconds")
    return [("whole micro-batch (training_step)", total), *parts, ("rest", total - sum(v for _, v in parts))]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct (prepared cache)")
    ap.add_argument("--steps", type=int, default=10, help="optimizer steps per run (each = 2 micro-batches)")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default=None, help=f"comma-separated of {', '.join(VARIANTS)} (default: all on a "
                    "CPU with bf16 units or a GPU, else the fp32 ones)")  # fmt: skip
    ap.add_argument("--profile", action="store_true", help="also profile one alternate run (torch.profiler)")
    _results.add_args(ap, "train_recipe")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        return child(args)
    _results.claim(args.json, args.overwrite)
    if args.variants is None:
        from midalign.models.hardware import cpu_bf16_native

        args.variants = ",".join(VARIANTS if cpu_bf16_native() else FP32_VARIANTS)
    variants = [v for v in args.variants.split(",") if v]
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        ap.error(f"--variants {bad}: choose from {', '.join(VARIANTS)}")
    runs: dict[str, list[dict]] = {v: [] for v in variants}
    for r in range(args.rounds):
        # the machine's speed drifts over minutes: rotate the order each round, and compare within rounds
        for variant in variants[r % len(variants) :] + variants[: r % len(variants)]:
            runs[variant].append(summarize(_run(variant, args)))
            s = runs[variant][-1]
            print(f"round {r} {variant:9s}: {s['train_runtime']:.1f} s, peak RSS {s['peak_rss_mb']:.0f} MB", flush=True)
    med = {v: {k: statistics.median(x[k] for x in rs) if rs[0][k] is not None else None for k in rs[0]}
           for v, rs in runs.items()}  # fmt: skip
    print(f"\n{args.steps} optimizer steps x (batch 8, gradient accumulation 2), {args.threads} threads, "
          f"medians of {args.rounds} rounds:")  # fmt: skip
    cols = ["train_runtime", "task_rows_per_s", "task_tokens_per_s", "pair_tokens_per_s", "s_per_task_micro_batch",
            "s_per_align_micro_batch", "s_outside_micro_batches", "peak_rss_mb"]  # fmt: skip
    print("| variant | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for v in variants:
        print(f"| {v} | " + " | ".join("-" if med[v][c] is None else f"{med[v][c]:.3g}" for c in cols) + " |")
    if "plain_hf" in med:
        for v in variants:
            if v == "plain_hf":
                continue
            ratios = [a["train_runtime"] / b["train_runtime"] for a, b in zip(runs[v], runs["plain_hf"])]
            rss = med[v]["peak_rss_mb"] / med["plain_hf"]["peak_rss_mb"]
            of_medians = med[v]["train_runtime"] / med["plain_hf"]["train_runtime"]
            print(f"{v} / plain_hf: time per round {', '.join(f'{x:.2f}' for x in ratios)} -> median "
                  f"{statistics.median(ratios):.2f}x (ratio of medians "
                  f"{of_medians:.2f}x); peak RSS {rss:.2f}x")  # fmt: skip
    bf16_ratios = {}
    for recipe in ("baseline", "alternate"):
        if recipe in runs and f"{recipe}_bf16" in runs:
            ratios = [a["train_runtime"] / b["train_runtime"] for a, b in zip(runs[f"{recipe}_bf16"], runs[recipe])]
            bf16_ratios[recipe] = {"per_round": ratios, "median": statistics.median(ratios)}
            print(f"{recipe}_bf16 / {recipe} (fp32): time per round {', '.join(f'{x:.2f}' for x in ratios)} -> "
                  f"median {statistics.median(ratios):.2f}x")  # fmt: skip
    ratios = {v: [a["train_runtime"] / b["train_runtime"] for a, b in zip(runs[v], runs["plain_hf"])]
              for v in variants if v != "plain_hf" and "plain_hf" in runs}  # fmt: skip
    out = {"steps": args.steps, "rounds": args.rounds, "variants": variants, "runs": runs, "medians": med,
           "time_vs_plain_hf": {v: {"per_round": r, "median": statistics.median(r),
                                    "of_medians": med[v]["train_runtime"] / med["plain_hf"]["train_runtime"],
                                    "peak_rss": med[v]["peak_rss_mb"] / med["plain_hf"]["peak_rss_mb"]}
                                for v, r in ratios.items()},
           "bf16_vs_fp32": bf16_ratios}  # fmt: skip
    if args.profile:
        result = _run("alternate", args, profile=True)
        print("\nalternate run under torch.profiler: mean seconds per alignment micro-batch")
        for name, value in _account(result):
            print(f"  {name:40s} {value:.4f}")
        out["profile"] = {"alignment_micro_batch": dict(_account(result)), "top_ops": result["profile"],
                          "self_ms_total": result["profile_self_ms_total"]}  # fmt: skip
        print("\nprofiler (self CPU ms, top ops, and the scopes):")
        for e in result["profile"]:
            print(
                f"  {e['name'][:60]:60s} count {e['count']:6d}  self {e['self_ms']:9.1f}  "
                f"total {e['cpu_total_ms']:9.1f}"
            )
    _results.write(args.json, out, threads=args.threads)


if __name__ == "__main__":
    main()
