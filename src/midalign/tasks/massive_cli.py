"""Command-line pipeline for MASSIVE, behind the paper-compatible scripts:

    python -m scripts.run_inference_massive --base-model-name M --peft-model-id A --lang xx --partition test \\
        --output-path out.json [--no-default-template]
    python scripts/extract_json_output.py out.json preds.txt
    python -m scripts.eval_massive --pred-slots-file preds.txt --lang xx --partition test
"""

from __future__ import annotations

import argparse
import json
import sys

from . import massive

__all__ = ["infer", "extract", "evaluate", "export", "read_outputs"]


def _data_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--lang",
        default="en",
        help="language code (en, de, zh, ja, ...) or locale; comma-separated for several (eval and export)",
    )
    p.add_argument("--partition", default="test", help="train, validation (dev) or test")
    p.add_argument("--data-dir", default=None, help="local MASSIVE release (<dir>/<locale>.jsonl); default: hub")
    p.add_argument("--revision", default=massive.HUB_REVISION, help="hub revision of AmazonScience/massive")


def infer(argv: list[str] | None = None) -> list[dict]:
    from ..inference import build_prompt, run_generation
    from ..models import load_model_with_adapters, load_tokenizer

    p = argparse.ArgumentParser(prog="run_inference_massive", description="MASSIVE slot-filling inference.")
    p.add_argument("--base-model-name", default=None, help="hub id or directory; default: embedded SmolLM2")
    p.add_argument(
        "--peft-model-id",
        action="append",
        default=[],
        help="LoRA adapter (directory or hub id); repeat to stack several",
    )
    _data_args(p)
    p.add_argument("--output-path", default="output_inference_massive.json", help="JSON-lines output (resumable)")
    p.add_argument(
        "--no-default-template",
        action="store_true",
        help="the paper's training format: no BOS in the prompt string, a line break after each "
        "end-of-turn token (generalised to any chat template)",
    )
    p.add_argument("--batch-size", "--bsz", type=int, default=32)
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--limit", type=int, default=None, help="only the first N examples")
    p.add_argument("--revision-model", default="main", help="hub revision of the base model")
    args = p.parse_args(argv)
    rows = massive.load_massive(args.lang, args.partition, args.data_dir, args.revision)[: args.limit]
    tokenizer = load_tokenizer(args.base_model_name, revision=args.revision_model)
    model = load_model_with_adapters(
        args.base_model_name, args.peft_model_id, torch_dtype=args.dtype, revision=args.revision_model
    )
    default = not args.no_default_template
    items = [
        {
            "id": r.get("id", i),
            "prompt": build_prompt(tokenizer, massive.slot_prompt(r["utt"]), massive.SYSTEM_PROMPT, default),
            "utt": r["utt"],
            "gold": massive.gold_target(r["annot_utt"]),
        }
        for i, r in enumerate(rows)
    ]
    out = run_generation(
        model,
        tokenizer,
        items,
        args.output_path,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        add_special_tokens=not default,
    )
    print(f"wrote {len(out)} predictions to {args.output_path}")
    return out


def read_outputs(path: str) -> list[dict]:
    """Inference outputs: JSON lines (ours, the paper's) or one JSON array; ordered by ``index`` when present."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    stripped = text.lstrip()
    if stripped.startswith("["):
        rows = json.loads(stripped)
    else:
        rows = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{path}:{lineno}: malformed JSON ({err.msg})") from None
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or "prediction" not in r:
            raise ValueError(f"{path}: row {i + 1} has no 'prediction' field")
    if all("index" in r for r in rows):
        rows.sort(key=lambda r: r["index"])
    return rows


def extract(argv: list[str] | None = None) -> None:
    """One prediction per line. Line breaks inside a prediction become spaces, so line i is always example i."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        raise SystemExit("usage: extract_json_output.py OUTPUT.json PREDICTIONS.txt")
    rows = read_outputs(argv[0])
    with open(argv[1], "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(" ".join(str(r["prediction"]).split()) + "\n")
    print(f"wrote {len(rows)} predictions to {argv[1]}")


def evaluate(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="eval_massive", description="Slot F1 / exact match on MASSIVE.")
    p.add_argument(
        "--pred-slots-file",
        required=True,
        help="one prediction per line; comma-separated, one file per --lang, for several languages",
    )
    _data_args(p)
    p.add_argument("--output-json", default=None, help="also write the scores here")
    args = p.parse_args(argv)
    langs = args.lang.split(",")
    files = args.pred_slots_file.split(",")
    if len(files) != len(langs):
        raise SystemExit(f"--pred-slots-file gives {len(files)} files for {len(langs)} languages in --lang")
    per_lang, all_gold, all_pred = {}, [], []
    for lang, path in zip(langs, files):
        gold = massive.load_massive(lang, args.partition, args.data_dir, args.revision)
        with open(path, encoding="utf-8") as fh:
            preds = fh.read().split("\n")
        if preds and preds[-1] == "":
            preds = preds[:-1]
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
    from ..inference import build_prompt
    from ..models import load_tokenizer
    from ..tasks.prompts import end_of_turn

    p = argparse.ArgumentParser(prog="midalign massive export", description=export.__doc__)
    _data_args(p)
    p.add_argument("--model", default=None, help="tokenizer whose chat template renders the prompts")
    p.add_argument("--no-default-template", action="store_true")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    tokenizer = load_tokenizer(args.model)
    eot = end_of_turn(tokenizer)
    n = 0
    with open(args.output, "w", encoding="utf-8") as fh:
        for lang in args.lang.split(","):
            for r in massive.load_massive(lang, args.partition, args.data_dir, args.revision):
                prefix = build_prompt(
                    tokenizer, massive.slot_prompt(r["utt"]), massive.SYSTEM_PROMPT, not args.no_default_template
                )
                row = {"prefix": prefix, "text": massive.gold_target(r["annot_utt"]) + eot}
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
    print(f"wrote {n} rows to {args.output}")
    return n
