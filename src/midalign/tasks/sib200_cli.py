"""Command line for SIB-200 topic classification, like the other tasks' infer / eval / export / pairs:

    midalign sib200 infer --model M --adapter A --lang deu_Latn --split test --data-dir D --output-path out.jsonl
    midalign sib200 eval --predictions out.jsonl --lang deu_Latn --split test --data-dir D
    midalign sib200 export --lang eng_Latn --split train --model M --output train.jsonl
    midalign sib200 pairs --lang deu_Latn,zho_Hans --split train --data-dir D --output pairs.jsonl

``infer`` scores the 7 label strings after each prompt (exact, no sampling) and writes one JSON line per sentence,
batch by batch, fsync'd: a killed run resumes where it stopped, and a file from another model, adapter or language
is refused. ``eval`` reads that file (or one label per line) and prints accuracy and macro-F1.
"""

from __future__ import annotations

import argparse
import json
import os

from . import sib200

__all__ = ["infer", "evaluate", "export", "pairs", "main"]


def _data_args(p: argparse.ArgumentParser, *, several: bool = False, split: str = "test") -> None:
    p.add_argument("--lang", default="eng_Latn",
                   help="a language folder of --data-dir (FLORES code, e.g. deu_Latn)"
                   + ("; comma-separated for several" if several else ""))  # fmt: skip
    p.add_argument("--split", "--partition", dest="split", default=split, choices=sib200.SPLITS)
    p.add_argument("--data-dir", default=None, help=f"the release's data/annotated folder; default ${sib200.ENV}")


def _langs(args) -> list[str]:
    langs = [x for x in args.lang.split(",") if x]
    if not langs:
        raise ValueError("--lang: give at least one language")
    return langs


def infer(argv: list[str] | None = None) -> list[dict]:
    """Predict the topic of every sentence by label scoring (resumable JSON-lines output)."""
    from ..inference.task_cli import add_base_model_args, base_model_provenance, positive_int
    from ..models.hardware import resolve_dtype
    from ..models.loading import adapter_fingerprint, load_model_with_adapters, load_tokenizer, resolve_model_path

    p = argparse.ArgumentParser(prog="midalign sib200 infer", description=infer.__doc__)
    add_base_model_args(p)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "auto"],
                   help="base weights' dtype; auto = bf16 only where the hardware has bf16 units")  # fmt: skip
    p.add_argument("--batch-size", "--bsz", type=positive_int, default=8)
    p.add_argument("--limit", type=positive_int, default=None,
                   help="only N sentences: a seeded sample stratified by topic (--limit-seed), the same ids in every "
                   "language; never a prefix (the release sorts its files by topic)")  # fmt: skip
    p.add_argument("--limit-seed", type=int, default=0, help="seed of the --limit sample (default 0)")
    p.add_argument("--scoring", default="exact", choices=["exact", "first_token"],
                   help="exact: every token of each label (default); first_token: the labels' first tokens only "
                   "(faster, an approximation)")  # fmt: skip
    p.add_argument("--revision-model", default="main", help="hub revision of the base model")
    _data_args(p)
    p.add_argument("--output-path", default="output_inference_sib200.jsonl", help="JSON-lines output (resumable)")
    args = p.parse_args(argv)
    if len(_langs(args)) != 1:
        p.error("--lang: infer takes one language (one output file per language)")
    data_dir = sib200.resolve_data_dir(args.data_dir)
    examples = sib200.load_sib200(args.lang, args.split, data_dir)
    if args.limit is not None:
        from ..data.subsets import sample_ids

        # ids and topics from the English file, so that every language gets the same sentences
        pivot = (
            {e.index_id: e.category for e in sib200.load_sib200("eng_Latn", args.split, data_dir)}
            if ("eng_Latn" in sib200.available_languages(data_dir))
            else {e.index_id: e.category for e in examples}
        )
        keep = set(sample_ids(sorted(pivot), args.limit, args.limit_seed, pivot))
        examples = [e for e in examples if e.index_id in keep]
    labels = sib200.load_labels(data_dir, args.lang)
    dtype = resolve_dtype(args.dtype)
    base = resolve_model_path(args.base_model_name)
    tokenizer = load_tokenizer(args.base_model_name, revision=args.revision_model)
    model = load_model_with_adapters(args.base_model_name, args.peft_model_id, torch_dtype=dtype,
                                     revision=args.revision_model)  # fmt: skip
    provenance = {
        **base_model_provenance(base),
        "revision": args.revision_model,
        "adapters": [adapter_fingerprint(a) for a in args.peft_model_id],
        "dtype": dtype,
        "task": "sib200",
        "lang": args.lang,
        "split": args.split,
        **({"limit": args.limit, "limit_seed": args.limit_seed} if args.limit is not None else {}),
    }
    predicted = sib200.predict(model, tokenizer, examples, labels, args.output_path, batch_size=args.batch_size,
                               provenance=provenance, method=args.scoring)  # fmt: skip
    scores = sib200.score_sib([e.category for e in examples], predicted, labels)
    print(f"wrote {len(predicted)} predictions to {args.output_path} (accuracy {scores['accuracy']:.3f})")
    return [{"id": f"{e.lang}:{e.index_id}", "gold": e.category, "prediction": y} for e, y in zip(examples, predicted)]


def read_predicted_labels(path: str, labels: list[str], examples: list[sib200.SibExample]) -> list[str]:
    """Predicted labels from ``infer``'s JSON lines (checked against the split's sentence ids) or from a text file
    with one label per line; a wrong count, id or label is an error naming the file and line."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if lines and lines[0].lstrip().startswith("{"):
        from ..inference.task_cli import read_outputs

        rows = read_outputs(path)
        by_id = {}
        for i, r in enumerate(rows, 1):
            y = r["prediction"]
            if isinstance(y, int) and not isinstance(y, bool) and 0 <= y < len(labels):
                y = labels[y]
            if y not in labels:
                raise ValueError(f"{path}: row {i}: prediction {y!r} is neither a label nor a label index 0-"
                                 f"{len(labels) - 1}")  # fmt: skip
            by_id[str(r.get("id", i - 1))] = y
        want = [f"{e.lang}:{e.index_id}" for e in examples]
        missing = [w for w in want if w not in by_id]
        if missing:
            raise ValueError(f"{path}: no prediction for {len(missing)} of {len(want)} sentences of "
                             f"{examples[0].lang} (first: {missing[0]}); is it another language's or split's "
                             "output, or an unfinished run (rerun infer to resume)?")  # fmt: skip
        return [by_id[w] for w in want]
    if len(lines) != len(examples):
        raise ValueError(f"{path}: {len(lines)} lines, but the split has {len(examples)} sentences "
                         "(one label per line expected)")  # fmt: skip
    for n, y in enumerate(lines, 1):
        if y.strip() not in labels:
            raise ValueError(f"{path}:{n}: {y!r} is not a label; labels: {', '.join(labels)}")
    return [y.strip() for y in lines]


def evaluate(argv: list[str] | None = None) -> dict:
    """Accuracy and macro-F1 of predictions (infer's output or one label per line); several languages pooled."""
    p = argparse.ArgumentParser(prog="midalign sib200 eval", description=evaluate.__doc__)
    p.add_argument(
        "--predictions",
        "--pred-file",
        required=True,
        help="infer's output (JSON lines) or one label per line; comma-separated, one per --lang",
    )
    _data_args(p, several=True)
    p.add_argument("--output-json", default=None, help="also write the scores here")
    args = p.parse_args(argv)
    langs, files = _langs(args), args.predictions.split(",")
    if len(files) != len(langs):
        p.error(f"--predictions gives {len(files)} files for {len(langs)} languages in --lang")
    for path in files:  # every file checked before any is read
        if os.path.isdir(path):
            raise ValueError(f"--predictions {path}: a directory; give infer's output file (JSON lines) or a file "
                             "with one label per line")  # fmt: skip
        if not os.path.isfile(path):
            raise FileNotFoundError(f"--predictions {path}: no such file")
    data_dir = sib200.resolve_data_dir(args.data_dir)
    labels = sib200.load_labels(data_dir)
    per_lang, gold_all, pred_all = {}, [], []
    for lang, path in zip(langs, files):
        examples = sib200.load_sib200(lang, args.split, data_dir)
        predicted = read_predicted_labels(path, labels, examples)
        gold = [e.category for e in examples]
        per_lang[lang] = sib200.score_sib(gold, predicted, labels)
        gold_all += gold
        pred_all += predicted
    scores = sib200.score_sib(gold_all, pred_all, labels)
    if len(langs) > 1:
        scores["per_language"] = per_lang
    text = json.dumps(scores, indent=2, ensure_ascii=False)
    print(text)
    if args.output_json:
        from ..data.jsonl import write_json

        write_json(args.output_json, scores)
    return scores


def export(argv: list[str] | None = None) -> int:
    """SIB-200 sentences -> the paper's training rows ({"prefix", "text": " <topic><eos>"}) in a model's format."""
    from ..data.jsonl import write_jsonl
    from ..models import load_tokenizer

    p = argparse.ArgumentParser(prog="midalign sib200 export", description=export.__doc__)
    _data_args(p, several=True, split="train")
    p.add_argument("--model", default=None, help="tokenizer whose chat template (or the plain format) renders prompts")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    data_dir = sib200.resolve_data_dir(args.data_dir)
    examples = [e for lang in _langs(args) for e in sib200.load_sib200(lang, args.split, data_dir)]
    rows = sib200.task_rows(load_tokenizer(args.model), examples)
    write_jsonl(args.output, rows)
    print(f"wrote {len(rows)} rows to {args.output}")
    return len(rows)


def pairs(argv: list[str] | None = None) -> int:
    """English <-> x pairs by ``index_id`` (the same sentence in both), for --alignment_file, shuffled across
    languages with --seed so that batches mix languages."""
    from ..data.jsonl import write_jsonl

    p = argparse.ArgumentParser(prog="midalign sib200 pairs", description=pairs.__doc__)
    _data_args(p, several=True, split="train")
    p.add_argument("--pivot", default="eng_Latn", help="the language every pair starts from (text_parallel_0)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (-1: keep language blocks in file order)")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    data_dir = sib200.resolve_data_dir(args.data_dir)
    rows = sib200.parallel_pairs(_langs(args), args.split, data_dir, args.pivot, args.seed if args.seed >= 0 else None)
    if not rows:
        raise ValueError(f"--lang {args.lang}: no sentence shares an index_id with {args.pivot} in {args.split}")
    write_jsonl(args.output, rows)
    print(f"wrote {len(rows)} pairs to {args.output}")
    return len(rows)


COMMANDS = {"infer": infer, "eval": evaluate, "export": export, "pairs": pairs}


def main(argv: list[str]) -> None:
    from ..dispatch import dispatch

    dispatch("midalign sib200", COMMANDS, argv,
             {k: (f.__doc__ or "").strip().split("\n")[0] for k, f in COMMANDS.items()})  # fmt: skip
