"""``midalign analyze retrieval|subspaces|facts|anisotropy``: tables (JSON, CSV), figures (PNG) in ``--output-dir``."""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

__all__ = ["main"]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="base model (hub id or directory); default: embedded SmolLM2")
    p.add_argument(
        "--adapter", action="append", default=[], help="a LoRA adapter to analyse as one more series (repeatable)"
    )
    p.add_argument("--label", action="append", default=[], help="series label per --adapter (default: dir name)")
    p.add_argument("--no-base", action="store_true", help="do not analyse the base model itself")
    p.add_argument("--input", help="JSON lines with one field per language (e.g. data_example/parallel.jsonl)")
    p.add_argument("--lang", dest="langs", help="comma-separated language fields to use (default: all)")
    p.add_argument("--split", help="keep only rows whose 'split' field has this value (e.g. heldout)")
    p.add_argument("--files", help="aligned plain-text files: lang=path,lang=path")
    p.add_argument("--flores", help="FLORES+ language codes, e.g. eng_Latn,deu_Latn (hub)")
    p.add_argument("--flores-split", default="devtest", choices=["dev", "devtest"])
    p.add_argument("--limit", type=int, help="use the first N sentences per language")
    p.add_argument("--batch-size", type=int, default=32)
    _output_args(p, "the command name")


def _output_args(p, default_name: str) -> None:
    p.add_argument("--output-dir", default="outputs/fig", help="JSON, CSV and figure (default: %(default)s)")
    p.add_argument("--name", default=None, help=f"file name prefix (default: {default_name})")
    p.add_argument("--overwrite", action="store_true", help="replace results of the same --name in --output-dir")


def _require_matplotlib(command: str) -> None:
    """The figure needs the ``analysis`` extra: missing, it is named before any work (never after the JSON)."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise SystemExit(f"midalign analyze {command}: its figure needs matplotlib, which is not installed; "
                         "pip install 'midalign[analysis]' (nothing was run)") from None  # fmt: skip


def _claim(args, default_name: str) -> Path:
    """The output stem; results already there are refused (before any model is loaded) unless --overwrite."""
    from ..data.jsonl import claim_results

    name = args.name or default_name
    claim_results(args.output_dir, name, args.overwrite, exts=(".json", ".csv", ".png"), flag="--output-dir")
    return Path(args.output_dir) / name


def _series(args):
    from ..models import load_model_with_adapters, load_tokenizer

    for adapter in args.adapter:  # fail before hours of work on the first series, not after
        looks_local = adapter.startswith((".", "/", "~")) or os.path.isdir(os.path.dirname(adapter))
        if looks_local and not os.path.isfile(os.path.join(os.path.expanduser(adapter), "adapter_config.json")):
            raise SystemExit(f"--adapter {adapter}: no adapter_config.json there (expected a LoRA adapter directory)")
    tokenizer = load_tokenizer(args.model)
    if not args.no_base:
        yield "base", load_model_with_adapters(args.model), tokenizer
    labels = args.label + [None] * (len(args.adapter) - len(args.label))
    for adapter, label in zip(args.adapter, labels):
        yield label or Path(adapter.rstrip("/")).name, load_model_with_adapters(args.model, [adapter]), tokenizer


def _parallel(args):
    from .parallel import load_parallel

    return load_parallel(
        args.input,
        langs=args.langs.split(",") if args.langs else None,
        split=args.split,
        files=args.files,
        flores=args.flores.split(",") if args.flores else None,
        flores_split=args.flores_split,
        limit=args.limit,
    )


def _write(rows: list[dict], stem: Path) -> None:
    os.makedirs(stem.parent, exist_ok=True)
    stem.with_suffix(".json").write_text(json.dumps(rows, indent=1))
    keys = list(dict.fromkeys(k for r in rows for k in r))
    with open(stem.with_suffix(".csv"), "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)


def retrieval(argv: list[str]) -> dict:
    from .plots import plot_retrieval
    from .reports import retrieval_by_layer

    p = argparse.ArgumentParser(
        prog="midalign analyze retrieval", description="Per-layer cross-lingual retrieval accuracy@1 and MEXA score."
    )
    _common(p)
    p.add_argument("--alignment-pooling", dest="pooling", default="mean", choices=["mean", "mean_skip_first", "bos"])
    p.add_argument("--per-direction", action="store_true", help="plot one line per direction too")
    args = p.parse_args(argv)
    _require_matplotlib("retrieval")
    stem = _claim(args, "retrieval")
    parallel = _parallel(args)
    series, rows = {}, []
    for label, model, tok in _series(args):
        series[label] = retrieval_by_layer(
            model, tok, parallel, pooling=args.pooling, batch_size=args.batch_size, progress=True
        )
        rows += [{"series": label, **r} for r in series[label]]
    _write(rows, stem)
    plot_retrieval(
        series,
        str(stem.with_suffix(".png")),
        per_direction=args.per_direction,
        title=f"Retrieval by layer ({args.pooling} pooling, {len(next(iter(parallel.values())))} "
        f"sentences x {len(parallel)} languages)",
    )
    for label, srows in series.items():
        layers = sorted({r["layer"] for r in srows})
        mean = {
            k: sum(r["accuracy"] for r in srows if r["layer"] == k) / sum(r["layer"] == k for r in srows)
            for k in layers
        }
        best = max(mean, key=mean.get)
        print(
            f"{label}: best layer {best} (mean accuracy@1 {mean[best]:.3f}); "
            + " ".join(f"{k}:{v:.2f}" for k, v in mean.items())
        )
    print(f"wrote {stem}.json/.csv/.png")
    return series


def subspaces(argv: list[str]) -> list[dict]:
    from .plots import plot_subspaces
    from .reports import subspace_analysis

    p = argparse.ArgumentParser(
        prog="midalign analyze subspaces", description="Affine language subspaces per layer: k and perplexity ratios."
    )
    _common(p)
    p.add_argument("--layers", help="comma-separated layers (0 = embeddings); default: all")
    p.add_argument("--share", type=float, default=0.9, help="variance share that fixes k (default 0.9)")
    p.add_argument(
        "--keep-first",
        action="store_true",
        help="include the first position in statistics and projections (default: skipped, as it "
        "holds attention-sink activations in many LLMs)",
    )
    args = p.parse_args(argv)
    _require_matplotlib("subspaces")
    stem = _claim(args, "subspaces")
    parallel = _parallel(args)
    layers = [int(x) for x in args.layers.split(",")] if args.layers else None
    rows = []
    for label, model, tok in _series(args):
        rows += [
            {"series": label, **r}
            for r in subspace_analysis(
                model,
                tok,
                parallel,
                layers=layers,
                share=args.share,
                skip_first=not args.keep_first,
                batch_size=args.batch_size,
                progress=True,
            )
        ]
    _write(rows, stem)
    plot_subspaces([r for r in rows if r["series"] == rows[0]["series"]], str(stem.with_suffix(".png")))
    for layer in sorted({r["layer"] for r in rows}):
        sub = [r for r in rows if r["layer"] == layer and r["series"] == rows[0]["series"]]
        line = f"layer {layer:>2}: k " + "/".join(str(r["k"]) for r in sub)
        for key in ("ratio_own", "ratio_other", "ratio_shifted"):
            if key in sub[0]:
                line += f"  {key} {sum(r[key] for r in sub) / len(sub):.3g}"
        print(line)
    print(f"wrote {stem}.json/.csv/.png")
    return rows


def facts(argv: list[str]) -> dict:
    from ..training.run import example_data_dir
    from .facts import load_facts, probe_facts

    p = argparse.ArgumentParser(
        prog="midalign analyze facts",
        description="Cross-lingual fact probing: accuracy@1 / MRR per language, top-1 agreement and RankC per pair.",
    )
    p.add_argument("--model", default=None, help="base model (hub id or directory); default: embedded SmolLM2")
    p.add_argument("--adapter", action="append", default=[], help="a LoRA adapter to probe as one more series")
    p.add_argument("--label", action="append", default=[], help="series label per --adapter (default: dir name)")
    p.add_argument("--no-base", action="store_true", help="do not probe the base model itself")
    p.add_argument("--input", default=None, help="facts JSON lines (default: data_example/facts.jsonl)")
    p.add_argument("--lang", dest="langs", help="comma-separated languages to use (default: all in the file)")
    p.add_argument(
        "--reduce", default="sum", choices=["sum", "mean"], help="sentence score: log-likelihood sum or mean"
    )
    p.add_argument("--batch-size", type=int, default=32)
    _output_args(p, "facts")
    args = p.parse_args(argv)
    stem = _claim(args, "facts")
    path = args.input or str(example_data_dir() / "facts.jsonl")
    rows_in = load_facts(path, args.langs.split(",") if args.langs else None)
    results, rows = {}, []
    for label, model, tok in _series(args):
        res = probe_facts(model, tok, rows_in, batch_size=args.batch_size, reduce=args.reduce)
        results[label] = res
        for lang, v in res["languages"].items():
            rows.append({"series": label, "language": lang, "accuracy": v["accuracy"], "mrr": v["mrr"]})
        for pair, v in res["pairs"].items():
            rows.append({"series": label, "language": pair, **v})
        print(
            f"{label}: accuracy@1 "
            + " ".join(f"{lang} {v['accuracy']:.2f}" for lang, v in res["languages"].items())
            + f" | mean {res['mean_accuracy']:.3f}; mean RankC {res['mean_rankc']:.3f}; mean top-1 agreement "
            + f"{sum(v['top1_agreement'] for v in res['pairs'].values()) / max(len(res['pairs']), 1):.3f}"
        )
    _write(rows, stem)
    stem.with_suffix(".json").write_text(
        json.dumps({"input": path, "reduce": args.reduce, "series": results}, indent=1)
    )
    print(f"wrote {stem}.json/.csv")
    return results


def anisotropy(argv: list[str]) -> dict:
    from ..alignment import POOLING
    from .anisotropy import anisotropy_by_layer
    from .plots import plot_anisotropy

    p = argparse.ArgumentParser(
        prog="midalign analyze anisotropy",
        description="Before training: per layer, can the alignment loss see the pairs? Cosine of pairs vs "
        "unrelated sentences, norm share of the largest dimensions, InfoNCE at initialisation vs ln B, retrieval raw "
        "vs centered, and a verdict.",
        allow_abbrev=False,
    )
    _common(p)
    p.add_argument("--layers", help="comma-separated decoder layers (1-based); default: all")
    p.add_argument("--alignment-pooling", dest="pooling", default="mean", choices=sorted(POOLING))
    p.add_argument("--loss-batch-size", type=int, default=8, help="pairs per batch of the run (B; chance = ln B)")
    p.add_argument(
        "--alignment-temperature", dest="temperature", type=float, default=0.1, help="the run's τ (default 0.1)"
    )
    args = p.parse_args(argv)
    _require_matplotlib("anisotropy")
    stem = _claim(args, "anisotropy")
    if args.loss_batch_size < 2:
        p.error(f"--loss-batch-size must be >= 2 (in-batch negatives), got {args.loss_batch_size}")
    if not (args.temperature > 0 and args.temperature != float("inf")):
        p.error(f"--alignment-temperature must be a finite number > 0, got {args.temperature}")
    parallel = _parallel(args)
    langs = list(parallel)
    if len(langs) < 2:
        p.error(f"need a source and at least one target language; got {langs}")
    src_lang = langs[0]
    src = [s for lang in langs[1:] for s in parallel[src_lang]]
    tgt = [s for lang in langs[1:] for s in parallel[lang]]
    layers = [int(x) for x in args.layers.split(",")] if args.layers else None
    out, rows = {}, []
    for label, model, tok in _series(args):
        out[label] = anisotropy_by_layer(model, tok, src, tgt, layers=layers, pooling=args.pooling,
                                         batch_size=args.loss_batch_size, temperature=args.temperature,
                                         embed_batch_size=args.batch_size)  # fmt: skip
        rows += [{"series": label, "pairs": f"{src_lang}<->{','.join(langs[1:])}", **r} for r in out[label]]
        for r in out[label]:
            print(f"{label} layer {r['layer']:>2}: pair cos {r['pair_cos']:.3f} vs unrelated {r['unrelated_cos']:.3f} "
                  f"(centered {r['centered_pair_cos']:.3f} vs {r['centered_unrelated_cos']:.3f}); top-1 dim "
                  f"{r['top1_share']:.2f} of the norm; InfoNCE {r['infonce_init']:.3f} (centered "
                  f"{r['infonce_init_centered']:.3f}, standardized {r['infonce_init_standardized']:.3f}, ln B "
                  f"{r['chance']:.3f}); retrieval {r['retrieval_raw']:.2f} "
                  f"raw / {r['retrieval_centered']:.2f} centered -- {r['verdict']}")  # fmt: skip
    _write(rows, stem)
    plot_anisotropy(out, str(stem.with_suffix(".png")), title=f"{args.pooling} pooling, {len(src)} pairs")
    print(f"wrote {stem}.json/.csv/.png")
    return out


COMMANDS = {"retrieval": retrieval, "subspaces": subspaces, "facts": facts, "anisotropy": anisotropy}


def main(argv: list[str]):
    from ..dispatch import dispatch

    return dispatch("midalign analyze", COMMANDS, argv)
