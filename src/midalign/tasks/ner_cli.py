"""JSON-output NER on Universal NER: inference + scoring, and training-data export.

    python -m scripts.run_inference_eval_ner --base-model-name M --peft-model-id A --lang da --split test \\
        --output-path da_ner.json [--data-dir DIR] [--no-default-template] [--evaluation-only]
"""

from __future__ import annotations

import argparse
import json
import os

from . import ner

__all__ = ["main", "export"]


def _data_args(p):
    p.add_argument("--lang", default="en", help=f"one of {', '.join(ner.UNER_CONFIGS)}")
    p.add_argument("--split", default="test", choices=["train", "dev", "validation", "test"])
    p.add_argument("--data-dir", default=None, help="local Universal NER files (CoNLL / IOB2); default: hub")


def _split(name: str, local: bool) -> str:
    if local:
        return "dev" if name == "validation" else name
    return "validation" if name == "dev" else name


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="run_inference_eval_ner", description=__doc__)
    p.add_argument("--base-model-name", default=None)
    p.add_argument("--peft-model-id", action="append", default=[])
    _data_args(p)
    p.add_argument("--output-path", default=None, help="JSON-lines output (resumable); default <lang>_ner.json")
    p.add_argument("--no-default-template", action="store_true")
    p.add_argument("--evaluation-only", action="store_true")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--limit", type=int, default=None)
    args = p.parse_args(argv)
    sents = ner.load_uner(args.lang, _split(args.split, args.data_dir is not None), args.data_dir)[: args.limit]
    joiner = "" if args.lang == "zh" else " "
    golds = [ner.entities_from_bio(s["tokens"], s["tags"], joiner) for s in sents]
    output = args.output_path or f"{args.lang}_ner.json"
    if args.evaluation_only:
        from .massive_cli import read_outputs

        rows = read_outputs(output)
    else:
        from ..inference import build_prompt, run_generation
        from ..models import load_model_with_adapters, load_tokenizer

        tokenizer = load_tokenizer(args.base_model_name)
        model = load_model_with_adapters(args.base_model_name, args.peft_model_id, torch_dtype=args.dtype)
        default = not args.no_default_template
        items = [
            {
                "id": i,
                "prompt": build_prompt(tokenizer, joiner.join(s["tokens"]), ner.SYSTEM_PROMPT, default),
                "gold": ner.gold_json(g),
            }
            for i, (s, g) in enumerate(zip(sents, golds))
        ]
        rows = run_generation(
            model,
            tokenizer,
            items,
            output,
            batch_size=args.batch_size,
            max_new_tokens=args.max_new_tokens,
            add_special_tokens=not default,
        )
    if len(rows) != len(golds):
        raise SystemExit(f"{output}: {len(rows)} outputs for {len(golds)} sentences")
    scores = ner.score_entities(golds, [r["prediction"] for r in rows])
    path = os.path.splitext(output)[0] + "_scores.json"
    with open(path, "w") as fh:
        json.dump(scores, fh, indent=2)
    print(json.dumps(scores, indent=2))
    return scores


def export(argv: list[str] | None = None) -> int:
    """Universal NER sentences -> the paper's training JSON lines ({"prefix", "text"})."""
    from ..inference import build_prompt
    from ..models import load_tokenizer
    from .prompts import end_of_turn

    p = argparse.ArgumentParser(prog="midalign ner export", description=export.__doc__)
    _data_args(p)
    p.add_argument("--model", default=None)
    p.add_argument("--no-default-template", action="store_true")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    tokenizer = load_tokenizer(args.model)
    eot = end_of_turn(tokenizer)
    n = 0
    with open(args.output, "w", encoding="utf-8") as fh:
        for lang in args.lang.split(","):
            joiner = "" if lang == "zh" else " "
            for s in ner.load_uner(lang, _split(args.split, args.data_dir is not None), args.data_dir):
                prefix = build_prompt(
                    tokenizer, joiner.join(s["tokens"]), ner.SYSTEM_PROMPT, not args.no_default_template
                )
                text = ner.gold_json(ner.entities_from_bio(s["tokens"], s["tags"], joiner)) + eot
                fh.write(json.dumps({"prefix": prefix, "text": text}, ensure_ascii=False) + "\n")
                n += 1
    print(f"wrote {n} rows to {args.output}")
    return n
