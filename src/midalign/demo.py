"""``midalign demo`` / ``make demo``: the method end to end on the embedded SmolLM2 and data_example/.

Measures held-out cross-lingual retrieval at the aligned layer (raw cosine, and with each side centered on its own
mean, which is blind to the one direction all pooled vectors share), then trains LoRA with the paper's alternate
schedule twice from the same seed -- the paper's loss (``--alignment_center none``) and the remedy
(``--alignment_center batch``) -- measures again after each, and prints a short report. ``--output FILE`` also
writes it where the docs render it from (``make demo-results``: ``fig/demo.json``)."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from .analysis import retrieval_accuracy_at_1, sentence_embeddings
from .data import read_rows
from .experiments.harness import write_json

__all__ = ["heldout_retrieval", "run_demo", "main"]


def heldout_retrieval(
    model, tokenizer, pairs: list[dict], layer: int, pooling: str = "mean", centered: bool = False
) -> dict[str, float]:
    """Accuracy@1 of cosine retrieval at ``layer`` within each language pair of ``pairs`` (rows with
    ``text_parallel_0`` (English), ``text_parallel_1`` and ``lang``), both directions, and their averages.
    ``centered``: each side minus its own mean first."""
    result: dict[str, float] = {}
    for lang in sorted({p["lang"] for p in pairs}):
        rows = [p for p in pairs if p["lang"] == lang]
        e0 = sentence_embeddings(model, tokenizer, [p["text_parallel_0"] for p in rows], [layer], pooling=pooling)
        e1 = sentence_embeddings(model, tokenizer, [p["text_parallel_1"] for p in rows], [layer], pooling=pooling)
        x0, x1 = e0[layer], e1[layer]
        if centered:
            x0, x1 = x0 - x0.mean(0), x1 - x1.mean(0)
        result[f"en->{lang}"] = retrieval_accuracy_at_1(x0, x1)
        result[f"{lang}->en"] = retrieval_accuracy_at_1(x1, x0)
    for direction in ("en->", "->en"):
        vals = [v for k, v in result.items() if direction in k]
        result[f"mean {direction.replace('->', '->x' if direction == 'en->' else 'x->')}"] = sum(vals) / len(vals)
    return result


def _first_last(history: list[dict], key: str) -> tuple[float | None, float | None]:
    vals = [h[key] for h in history if key in h]
    return (vals[0], vals[-1]) if vals else (None, None)


def _retrieval(model, tokenizer, pairs, layer, pooling) -> dict[str, dict[str, float]]:
    return {kind: heldout_retrieval(model, tokenizer, pairs, layer, pooling, centered=kind == "centered")
            for kind in ("raw", "centered")}  # fmt: skip


def run_demo(
    output_dir: str,
    max_steps: int,
    batch_size: int,
    grad_accum: int,
    learning_rate: float,
    data_dir: Path,
    model: str | None = None,
    pooling: str = "mean_skip_first",
    centers: tuple[str, ...] = ("none", "batch"),
) -> dict:
    """Retrieval before, then one training per ``--alignment_center`` in ``centers`` (same seed and data, adapter
    in ``<output_dir>/<center>``) and retrieval after each; the report is also ``<output_dir>/demo_report.json``."""
    import torch

    from .alignment import num_decoder_layers
    from .models import load_model, load_tokenizer, resolve_model_path
    from .training import default_alignment_layer
    from .training.run import parse_args, run_training

    model_path = resolve_model_path(model)
    tokenizer = load_tokenizer(model_path)
    pairs = read_rows(str(data_dir / "heldout_pairs.json"), ("text_parallel_0", "text_parallel_1", "lang"))
    base = load_model(model_path)
    layer = default_alignment_layer(num_decoder_layers(base))
    t0 = time.time()
    before = _retrieval(base, tokenizer, pairs, layer, pooling)
    del base
    report = {
        "command": "midalign demo",
        "model": model_path,
        "layer": layer,
        "pooling": pooling,
        "steps": max_steps,
        "batch_size": batch_size,
        "gradient_accumulation_steps": grad_accum,
        "learning_rate": learning_rate,
        "seed": 1,
        "threads": torch.get_num_threads(),
        "heldout_sentences_per_language": len(pairs) // max(len({p["lang"] for p in pairs}), 1),
        "retrieval_before": before,
        "runs": {},
    }
    for center in centers:
        out = str(Path(output_dir) / center)
        argv = [
            "--model_name_or_path", model_path, "--train_file", str(data_dir / "train_baseline_with_alignment.json"),
            "--output_dir", out, "--overwrite_output_dir", "--max_steps", str(max_steps),
            "--per_device_train_batch_size", str(batch_size), "--gradient_accumulation_steps", str(grad_accum),
            "--learning_rate", str(learning_rate), "--lr_scheduler_type", "constant", "--warmup_steps", "0",
            "--logging_steps", str(min(5, max_steps)), "--save_strategy", "no", "--report_to", "none",
            "--disable_tqdm", "False",
            "--alternate_training", "--contrastive_data_mode", "2", "--seed", "1", "--do_train",
            "--contrastive_pooling_type", pooling, "--alignment_center", center,
        ]  # fmt: skip
        t1 = time.time()
        trainer = run_training(*parse_args(argv))
        hist = trainer.state.log_history
        report["runs"][center] = {
            "loss/task": _first_last(hist, "loss/task"),
            "loss/align": _first_last(hist, "loss/align"),
            "retrieval_after": _retrieval(trainer.model, tokenizer, pairs, layer, pooling),
            "adapter": str(Path(out) / "adapter_model"),
            "train_seconds": round(time.time() - t1, 1),
        }
        del trainer
    report["seconds"] = round(time.time() - t0, 1)
    Path(output_dir).mkdir(parents=True, exist_ok=True)
    write_json(str(Path(output_dir) / "demo_report.json"), report)
    return report


def _print(report: dict) -> None:
    b = report["retrieval_before"]
    print("\n==== midalign demo ====")
    print(
        f"model {report['model']}, alignment layer {report['layer']} ({report['pooling']} pooling), "
        f"{report['steps']} steps per run "
        f"(batch {report['batch_size']} x accumulation {report['gradient_accumulation_steps']}), {report['seconds']} s"
    )
    for center, run in report["runs"].items():
        name = "paper loss" if center == "none" else f"--alignment_center {center}"
        first, last = run["loss/align"]
        print(f"{name}: loss/align first log {first:.3f} -> last log {last:.3f}; adapter {run['adapter']}")
    n = report["heldout_sentences_per_language"]
    print(f"held-out retrieval accuracy@1, mean over languages ({n} sentences each; chance {1 / n:.4f}):")
    print(f"  {'':<28}{'before':>8}" + "".join(f"{c:>10}" for c in report["runs"]))
    for kind in ("raw", "centered"):
        for key in ("mean en->x", "mean x->en"):
            row = f"  {kind + ' ' + key:<28}{b[kind][key]:>8.3f}"
            row += "".join(f"{run['retrieval_after'][kind][key]:>10.3f}" for run in report["runs"].values())
            print(row)


def main(argv: list[str] | None = None) -> None:
    from .training.run import example_data_dir

    p = argparse.ArgumentParser(prog="midalign demo", description=__doc__)
    p.add_argument("--output-dir", default="outputs/demo")
    p.add_argument("--max-steps", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--grad-accum", type=int, default=2)
    p.add_argument("--learning-rate", type=float, default=1e-3)
    p.add_argument("--model", default=None, help="default: the embedded SmolLM2-135M-Instruct")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument(
        "--alignment-pooling",
        dest="pooling",
        default="mean_skip_first",
        help="mean_skip_first (default here: SmolLM2's first position carries massive activations that "
        "make plain means of all sentences nearly identical), mean (the paper), or bos",
    )
    from .alignment import CENTERING

    p.add_argument("--alignment-center", default="none,batch",
                   help="comma-separated --alignment_center values, one training each (default: the paper's loss "
                   f"and the remedy; choices {', '.join(CENTERING)}; docs: Remedies)")  # fmt: skip
    p.add_argument("--output", dest="results", default=None,
                   help="also write the report here (make demo-results: fig/demo.json); an existing file is refused "
                   "unless --overwrite")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="replace an existing --output file")
    args = p.parse_args(argv)
    if args.results and os.path.exists(args.results) and not args.overwrite:
        p.error(f"--output {args.results} holds an earlier run's report; give another file, or --overwrite")
    centers = tuple(c for c in args.alignment_center.split(",") if c)
    bad = [c for c in centers if c not in CENTERING]
    if bad or not centers:
        p.error(f"--alignment-center {args.alignment_center!r}: comma-separated values of {', '.join(CENTERING)}")
    for flag in ("max_steps", "batch_size", "grad_accum"):
        if getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} {getattr(args, flag)}: must be >= 1")
    report = run_demo(
        args.output_dir,
        args.max_steps,
        args.batch_size,
        args.grad_accum,
        args.learning_rate,
        args.data_dir or example_data_dir(),
        args.model,
        args.pooling,
        centers,
    )
    if args.results:
        write_json(args.results, report)
    _print(report)


if __name__ == "__main__":
    main()
