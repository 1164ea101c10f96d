"""Command-line pipeline for MASSIVE, behind the paper-compatible scripts:

    python -m scripts.run_inference_massive --base-model-name M --peft-model-id A --lang xx --partition test \\
        --output-path out.json [--no-default-template]
    python scripts/extract_json_output.py out.json preds.txt
    python -m scripts.eval_massive --pred-slots-file preds.txt --lang xx --partition test
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..inference.task_cli import read_outputs, read_predictions
from . import massive

__all__ = ["infer", "extract", "evaluate", "export", "cli"]


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lang",
        default="en",
        help="language code (en, de, zh, ja, ...) or locale; comma-separated for several (eval and export)",
    )
    p.add_argument("--split", "--partition", dest="partition", default="test", help="train, validation (dev) or test")
    p.add_argument("--data-dir", default=None, help="local MASSIVE release (<dir>/<locale>.jsonl); default: hub")
    p.add_argument("--revision", default=massive.HUB_REVISION, help="hub revision of AmazonScience/massive")


def infer(argv: list[str] | None = None) -> list[dict]:
    from ..inference.task_cli import add_model_args, generate_task

    p = argparse.ArgumentParser(prog="run_inference_massive", description="MASSIVE slot-filling inference.")
    add_model_args(p, batch_size=32, max_new_tokens=128)
    _data_args(p)
    p.add_argument(
        "--output",
        "--output-path",
        dest="output_path",
        default="output_inference_massive.json",
        help="JSON-lines output (resumable)",
    )
    args = p.parse_args(argv)
    rows = massive.load_massive(args.lang, args.partition, args.data_dir, args.revision)[: args.limit]
    examples = [
        {
            "id": r.get("id", i),
            "user": massive.slot_prompt(r["utt"]),
            "system": massive.SYSTEM_PROMPT,
            "utt": r["utt"],
            "gold": massive.gold_target(r["annot_utt"]),
        }
        for i, r in enumerate(rows)
    ]
    out = generate_task(args, examples, args.output_path)
    print(f"wrote {len(out)} predictions to {args.output_path}")
    return out


def extract(argv: list[str] | None = None) -> None:
    """One prediction per line. Line breaks inside a prediction become spaces, so line i is always example i."""
    argv = sys.argv[1:] if argv is None else argv
    usage = "usage: extract_json_output.py OUTPUT.json PREDICTIONS.txt"
    if argv and argv[0] in ("-h", "--help"):
        print(f"{usage}\n\n{extract.__doc__}\nOUTPUT.json: inference output (JSON lines or a JSON array).")
        raise SystemExit(0)
    flags = [a for a in argv if a.startswith("-")]
    if flags:
        raise SystemExit(f"{usage}\nextract takes two file names and no options; unknown option {flags[0]!r}")
    if len(argv) != 2:
        raise SystemExit(usage)
    if os.path.abspath(argv[0]) == os.path.abspath(argv[1]):
        raise SystemExit(f"{usage}\nPREDICTIONS.txt would overwrite OUTPUT.json ({argv[0]}); give another name")
    rows = read_outputs(argv[0])
    with open(argv[1], "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(" ".join(str(r["prediction"]).split()) + "\n")
    print(f"wrote {len(rows)} predictions to {argv[1]}")


def evaluate(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="eval_massive", description="Slot F1 / exact match on MASSIVE.")
    p.add_argument(
        "--predictions",
        "--pred-slots-file",
        dest="pred_slots_file",
        required=True,
        help="one prediction per line; comma-separated, one file per --lang, for several languages",
    )
    _data_args(p)
    p.add_argument("--output", dest="output_json", default=None, help="also write the scores here")
    args = p.parse_args(argv)
    langs = args.lang.split(",")
    files = args.pred_slots_file.split(",")
    if len(files) != len(langs):
        raise SystemExit(f"--pred-slots-file gives {len(files)} files for {len(langs)} languages in --lang")
    per_lang, all_gold, all_pred = {}, [], []
    for lang, path in zip(langs, files):
        gold = massive.load_massive(lang, args.partition, args.data_dir, args.revision)
        preds = read_predictions(path)
        if len(preds) != len(gold):
            raise SystemExit(
                f"{path}: {len(preds)} lines, but {massive.resolve_locale(lang)} {args.partition} has "
                f"{len(gold)} examples (one prediction per line expected)"
            )
        per_lang[massive.resolve_locale(lang)] = massive.score_slots(gold, preds).to_dict()
        all_gold += gold
        all_pred += preds
    scores = massive.score_slots(all_gold, all_pred).to_dict()
    if len(langs) > 1:
        for d in per_lang.values():
            d.pop("per_language")
        scores["per_language"] = per_lang
    else:
        scores.pop("per_language")
    text = json.dumps(scores, indent=2, ensure_ascii=False)
    print(text)
    if args.output_json:
        with open(args.output_json, "w") as fh:
            fh.write(text + "\n")
    return scores


def export(argv: list[str] | None = None) -> int:
    """MASSIVE rows -> the paper's training JSON lines ({"prefix", "text"}) for a model's chat template."""
    from ..inference.task_cli import write_training_rows
    from ..models import load_tokenizer

    p = argparse.ArgumentParser(prog="midalign massive export", description=export.__doc__)
    _data_args(p)
    p.add_argument("--model", default=None, help="tokenizer whose chat template renders the prompts")
    p.add_argument("--no-default-template", action="store_true")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    examples = (
        (massive.slot_prompt(r["utt"]), massive.SYSTEM_PROMPT, massive.gold_target(r["annot_utt"]))
        for lang in args.lang.split(",")
        for r in massive.load_massive(lang, args.partition, args.data_dir, args.revision)
    )
    return write_training_rows(load_tokenizer(args.model), examples, args.output, not args.no_default_template)


def cli(argv: list[str]) -> None:
    """``midalign massive {infer,extract,eval,export}``."""
    from ..dispatch import dispatch

    dispatch("midalign massive", {"infer": infer, "extract": extract, "eval": evaluate, "export": export}, argv)
