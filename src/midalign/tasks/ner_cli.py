"""JSON-output NER on Universal NER: inference + scoring, and training-data export.

    python -m scripts.run_inference_eval_ner --base-model-name M --peft-model-id A --lang da --split test \\
        --output-path da_ner.json [--data-dir DIR] [--no-default-template] [--evaluation-only]
"""

from __future__ import annotations

import argparse
import json
import os

from . import ner

__all__ = ["main", "export", "cli"]


def _data_args(p):
    p.add_argument("--lang", default="en", help=f"one of {', '.join(ner.UNER_CONFIGS)}")
    p.add_argument(
        "--split", "--partition", dest="split", default="test", choices=["train", "dev", "validation", "test"]
    )
    p.add_argument("--data-dir", default=None, help="local Universal NER files (CoNLL / IOB2); default: hub")


def _joiner(lang: str) -> str:
    return "" if lang == "zh" else " "


def _split(name: str, local: bool) -> str:
    if local:
        return "dev" if name == "validation" else name
    return "validation" if name == "dev" else name


def main(argv: list[str] | None = None) -> dict:
    from ..inference.task_cli import add_model_args, generate_task

    p = argparse.ArgumentParser(prog="run_inference_eval_ner", description=__doc__)
    add_model_args(p, batch_size=16, max_new_tokens=256)
    _data_args(p)
    p.add_argument(
        "--output",
        "--output-path",
        dest="output_path",
        default=None,
        help="JSON-lines output (resumable); default <lang>_ner.json",
    )
    p.add_argument("--evaluation-only", action="store_true", help="re-score an existing --output-path")
    args = p.parse_args(argv)
    sents = ner.load_uner(args.lang, _split(args.split, args.data_dir is not None), args.data_dir)[: args.limit]
    joiner = _joiner(args.lang)
    golds = [ner.entities_from_bio(s["tokens"], s["tags"], joiner) for s in sents]
    output = args.output_path or f"{args.lang}_ner.json"
    if args.evaluation_only:
        from ..inference.task_cli import read_outputs

        rows = read_outputs(output)
    else:
        examples = [
            {"user": joiner.join(s["tokens"]), "system": ner.SYSTEM_PROMPT, "gold": ner.gold_json(g)}
            for s, g in zip(sents, golds)
        ]
        rows = generate_task(args, examples, output)
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
    from ..inference.task_cli import write_training_rows
    from ..models import load_tokenizer

    p = argparse.ArgumentParser(prog="midalign ner export", description=export.__doc__)
    _data_args(p)
    p.add_argument("--model", default=None)
    p.add_argument("--no-default-template", action="store_true")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    examples = (
        (
            _joiner(lang).join(s["tokens"]),
            ner.SYSTEM_PROMPT,
            ner.gold_json(ner.entities_from_bio(s["tokens"], s["tags"], _joiner(lang))),
        )
        for lang in args.lang.split(",")
        for s in ner.load_uner(lang, _split(args.split, args.data_dir is not None), args.data_dir)
    )
    return write_training_rows(load_tokenizer(args.model), examples, args.output, not args.no_default_template)


def cli(argv: list[str]) -> None:
    """``midalign ner [eval] ...`` (inference + F1; the word ``eval`` is optional) or ``midalign ner export ...``."""
    if argv and argv[0] == "export":
        export(argv[1:])
    else:
        main(argv[1:] if argv and argv[0] == "eval" else argv)
