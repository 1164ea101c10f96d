"""``python -m scripts.run_inference_eval_wmt23 --base-model-name M --peft-model-id A --source-lang cs --lang en
--output-path cs-en_wmt23.json [--no-default-template] [--evaluation-only]``: translate, then score."""

from __future__ import annotations

import argparse
import json
import os

from . import translation

__all__ = ["main"]


def main(argv: list[str] | None = None) -> dict:
    from ..inference.task_cli import add_model_args, generate_task

    p = argparse.ArgumentParser(prog="run_inference_eval_wmt23", description=__doc__)
    add_model_args(p, batch_size=16, max_new_tokens=512)
    p.add_argument("--source-lang", default="en", help="source language code (cs, de, zh, ... or ces, deu, cmn)")
    p.add_argument("--lang", default="en", help="target language code")
    p.add_argument(
        "--output",
        "--output-path",
        dest="output_path",
        default=None,
        help="JSON-lines output (resumable); default <src>-<tgt>_wmt23.json",
    )
    p.add_argument(
        "--output-dir",
        "--result-directory",
        dest="result_directory",
        default=None,
        help="where scores go (default: next to --output-path)",
    )
    p.add_argument(
        "--dataset",
        default="hf",
        choices=["hf", "sacrebleu"],
        help=f"hf: {translation.HF_WMT23}; sacrebleu: sacrebleu's wmt23 test sets",
    )
    p.add_argument("--source-file", default=None, help="local source sentences, one per line")
    p.add_argument("--reference-file", default=None, help="local references, line-aligned with --source-file")
    p.add_argument("--use-default-template", action="store_true", help="accepted for compatibility (the default)")
    p.add_argument("--evaluation-only", action="store_true", help="re-score an existing --output-path")
    args = p.parse_args(argv)
    src_lang, tgt_lang = translation.resolve_lang(args.source_lang), translation.resolve_lang(args.lang)
    output = args.output_path or f"{src_lang}-{tgt_lang}_wmt23.json"
    result_dir = args.result_directory or os.path.dirname(os.path.abspath(output))
    sources, references, note = translation.load_pairs(
        src_lang, tgt_lang, source_file=args.source_file, reference_file=args.reference_file, dataset=args.dataset
    )
    sources, references = sources[: args.limit], references[: args.limit]
    print(f"data: {note} ({len(sources)} sentences)")
    if args.evaluation_only:
        from ..inference.task_cli import read_outputs

        rows = read_outputs(output)
    else:
        system = translation.system_prompt(src_lang, tgt_lang)
        examples = [{"user": s, "system": system, "src": s, "ref": r} for s, r in zip(sources, references)]
        rows = generate_task(args, examples, output)
    if len(rows) != len(references):
        raise SystemExit(f"{output}: {len(rows)} outputs for {len(references)} references")
    hyps = [" ".join(str(r["prediction"]).split("\n")).strip() for r in rows]
    scores = translation.score_translation(hyps, references, tgt_lang)
    scores["data"] = note
    translation.write_scores(result_dir, src_lang, tgt_lang, scores)
    print(json.dumps(scores, indent=2, ensure_ascii=False))
    print("COMET: run scripts/score_comet.py on this output in the COMET environment (see README).")
    return scores
