"""Command-line pipeline for xSID, mirroring MASSIVE's three paper commands:

    python -m scripts.run_inference_xsid --base-model-name M --peft-model-id A --lang de --partition test \\
        --data-dir xsid/data/xSID-0.7 --output-path out.json
    python scripts/extract_json_output.py out.json preds.txt
    python -m scripts.eval_xsid --pred-slots-file preds.txt --lang de --partition test --data-dir D

plus ``midalign xsid export`` (training rows from e.g. ``en.valid``) and ``midalign xsid pairs`` (parallel
sentences ``x`` <-> their English originals, for the alignment loss).
"""

from __future__ import annotations

import argparse
import json

from . import xsid

__all__ = ["infer", "evaluate", "export", "pairs", "examples", "main"]


def _data_args(p: argparse.ArgumentParser, *, several: bool = False) -> None:
    p.add_argument(
        "--lang",
        default="en",
        help=f"one of {', '.join(xsid.XSID_LANGUAGES)}" + ("; comma-separated for several" if several else ""),
    )
    p.add_argument("--split", "--partition", dest="partition", default="test", help="valid (dev) or test")
    p.add_argument(
        "--data-dir", default=None, help=f"the xSID release folder (data/xSID-0.7); default ${xsid.XSID_DIR_ENV}"
    )
    p.add_argument(
        "--dialect",
        default=xsid.NO_DEFAULT_DIALECT,
        help="Norwegian (no) only: the rendering to keep (B = Bokmål, one per sentence; 'all' keeps every one)",
    )
    p.add_argument("--intent", action="store_true", help="the answer starts with 'intent: <intent>' (scored too)")


def _load(args, lang: str) -> list[xsid.XsidSentence]:
    return xsid.load_xsid(lang, args.partition, args.data_dir, dialect=None if args.dialect == "all" else args.dialect)


def examples(sentences: list[xsid.XsidSentence], intent: bool = False) -> list[dict]:
    """Inference examples (prompt parts + fields copied to the output rows)."""
    return [
        {
            "id": s.id,
            "user": s.text,
            "system": xsid.SYSTEM_PROMPT,
            "utt": s.text,
            "gold": xsid.gold_target(s, intent),
        }
        for s in sentences
    ]


def infer(argv: list[str] | None = None) -> list[dict]:
    from ..inference.task_cli import add_model_args, generate_task

    p = argparse.ArgumentParser(prog="run_inference_xsid", description="xSID slot-filling inference (resumable).")
    add_model_args(p, batch_size=32, max_new_tokens=64)
    _data_args(p)
    p.add_argument(
        "--output",
        "--output-path",
        dest="output_path",
        default="output_inference_xsid.json",
        help="JSON-lines output (resumable)",
    )
    args = p.parse_args(argv)
    sentences = _load(args, args.lang)[: args.limit]
    out = generate_task(args, examples(sentences, args.intent), args.output_path)
    print(f"wrote {len(out)} predictions to {args.output_path}")
    return out


def evaluate(argv: list[str] | None = None) -> dict:
    from ..inference.task_cli import read_predictions

    p = argparse.ArgumentParser(prog="eval_xsid", description="Slot F1 / exact match (and intent accuracy) on xSID.")
    p.add_argument(
        "--predictions",
        "--pred-slots-file",
        dest="pred_slots_file",
        required=True,
        help="one prediction per line; comma-separated, one per --lang",
    )
    _data_args(p, several=True)
    p.add_argument("--output", dest="output_json", default=None, help="also write the scores here")
    args = p.parse_args(argv)
    langs, files = args.lang.split(","), args.pred_slots_file.split(",")
    if len(files) != len(langs):
        p.error(f"--pred-slots-file gives {len(files)} files for {len(langs)} languages in --lang")
    per_lang, all_sent, all_pred = {}, [], []
    for lang, path in zip(langs, files):
        sentences, preds = _load(args, lang), read_predictions(path)
        if len(preds) != len(sentences):
            raise SystemExit(
                f"{path}: {len(preds)} lines, but xSID {lang}.{args.partition} has {len(sentences)} sentences "
                "(one prediction per line expected)"
            )
        if not sentences:
            raise SystemExit(f"xSID {lang}.{args.partition}: no sentences to score")
        per_lang[lang] = xsid.score_xsid(sentences, preds).to_dict()
        per_lang[lang].pop("per_language")
        all_sent += sentences
        all_pred += preds
    scores = xsid.score_xsid(all_sent, all_pred).to_dict()
    scores["per_language"] = per_lang if len(langs) > 1 else {}
    if len(langs) == 1:
        scores.pop("per_language")
    text = json.dumps(scores, indent=2, ensure_ascii=False)
    print(text)
    if args.output_json:
        with open(args.output_json, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    return scores


def export(argv: list[str] | None = None) -> int:
    """xSID sentences -> the paper's training rows ({"prefix", "text"}) in a model's prompt format."""
    from ..inference.task_cli import write_training_rows
    from ..models import load_tokenizer

    p = argparse.ArgumentParser(prog="midalign xsid export", description=export.__doc__)
    _data_args(p, several=True)
    p.set_defaults(partition="valid")
    p.add_argument("--model", default=None, help="tokenizer whose chat template (or the plain format) renders prompts")
    p.add_argument("--no-default-template", action="store_true")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    rows = (
        (s.text, xsid.SYSTEM_PROMPT, xsid.gold_target(s, args.intent))
        for lang in args.lang.split(",")
        for s in _load(args, lang)
    )
    return write_training_rows(load_tokenizer(args.model), rows, args.output, not args.no_default_template)


def write_pairs(sentences: list[xsid.XsidSentence], output: str) -> int:
    """``{"text_parallel_0": English original, "text_parallel_1": translation, "lang": its language}`` per line (an
    ``--alignment_file``; training warns about a ``lang`` it never draws)."""
    from ..data.jsonl import write_jsonl

    rows = [{"text_parallel_0": s.text_en, "text_parallel_1": s.text, "lang": s.lang} for s in sentences if s.text_en]
    write_jsonl(output, rows)  # whole, atomically
    return len(rows)


def pairs(argv: list[str] | None = None) -> int:
    """Parallel pairs (English original, translation) from xSID files, for --alignment_file."""
    p = argparse.ArgumentParser(prog="midalign xsid pairs", description=pairs.__doc__)
    _data_args(p, several=True)
    p.set_defaults(partition="valid")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    sentences = [s for lang in args.lang.split(",") if lang != "en" for s in _load(args, lang)]
    n = write_pairs(sentences, args.output)
    print(f"wrote {n} pairs to {args.output}")
    return n


COMMANDS = {"infer": infer, "eval": evaluate, "export": export, "pairs": pairs}


def main(argv: list[str]) -> None:
    from ..dispatch import dispatch

    dispatch(
        "midalign xsid", COMMANDS, argv, {k: (f.__doc__ or "").strip().split("\n")[0] for k, f in COMMANDS.items()}
    )
