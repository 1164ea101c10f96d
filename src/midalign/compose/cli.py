"""``midalign compose`` and ``midalign sparse {diff,apply}`` (old name ``sft``): argument parsing over
:mod:`midalign.compose`."""

from __future__ import annotations

import argparse
import math

from ..dispatch import dispatch

__all__ = ["compose_main", "sft_main"]


def compose_main(argv: list[str]) -> None:
    import json

    from . import combine_adapters

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
    if args.rank is not None and args.rank < 1:
        p.error(f"--rank must be >= 1 (omit it for the largest), got {args.rank}")
    bad = [w for w in weights if not math.isfinite(w)]
    if bad:
        p.error(f"--weight must be finite numbers, got {bad}")
    print(json.dumps(combine_adapters(args.adapter, weights, args.output, method=args.method, rank=args.rank)))


def sft_main(argv: list[str]) -> None:
    from ..models import load_model, load_tokenizer
    from .sparse import SparseDiff, apply_sparse_diffs, sparse_diff

    if not argv or argv[0] not in ("diff", "apply"):
        dispatch("midalign sparse", {"diff": None, "apply": None}, argv)
    p = argparse.ArgumentParser(prog=f"midalign sparse {argv[0]}", allow_abbrev=False)
    p.add_argument(
        "--model",
        dest="base",
        default=None,
        help="base model (hub id or directory); default: embedded SmolLM2",
    )
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
        if not all(math.isfinite(w) for w in weights):
            p.error(f"--weight must be finite numbers, got {weights}")
        if len(weights) != len(args.diff):
            p.error(f"{len(args.diff)} --diff but {len(weights)} --weight; give one weight per difference")
        model = apply_sparse_diffs(load_model(args.base), [SparseDiff.load(d) for d in args.diff], weights)
        model.save_pretrained(args.output)
        load_tokenizer(args.base).save_pretrained(args.output)
        print(f"wrote {args.output}")
