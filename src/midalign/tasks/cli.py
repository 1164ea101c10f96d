"""``midalign infer|eval|export|pairs --task NAME``: one command line for every registered task.

    midalign infer  --task sib200 --model M --adapter A --lang deu_Latn --split test --data-dir D --output out.jsonl
    midalign eval   --task sib200 --predictions out.jsonl --lang deu_Latn --split test --data-dir D
    midalign export --task nusax --lang english --split train --model M --output train.jsonl
    midalign pairs  --task nusax --lang javanese,sundanese --split train --data-dir D --output pairs.jsonl

Label tasks (:mod:`midalign.tasks.spec`: SIB-200, NusaX-Senti, any task a user registers) run here: ``infer``
scores the task's label strings after each prompt (exact, no sampling) and writes one JSON line per item, batch by
batch, fsync'd, so a killed run resumes where it stopped and a file from another model, adapter or language is
refused; ``eval`` reads that file (or one label per line) and prints accuracy and macro-F1 with the label profile
(majority class, chance) an accuracy is read against. Generation tasks (xsid, massive, ner, wmt23) keep their own
flags: ``midalign infer --task xsid ...`` runs ``midalign xsid infer ...``. ``midalign sib200 <command>`` is
``midalign <command> --task sib200``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os

__all__ = ["infer", "evaluate", "export", "pairs", "COMMANDS", "task_command"]

# generation tasks: their own command module (flags of the paper's scripts), and which generic verbs they have
GENERATION = {
    "xsid": ("midalign.tasks.xsid_cli:main", ("infer", "eval", "export", "pairs")),
    "massive": ("midalign.tasks.massive_cli:cli", ("infer", "eval", "export")),
    "ner": ("midalign.tasks.ner_cli:cli", ("eval", "export")),
    "wmt23": ("midalign.tasks.translation_cli:main", ("eval",)),
}


def _task_names() -> list[str]:
    from .spec import LABEL_TASKS

    return sorted(set(LABEL_TASKS) | set(GENERATION))


def _split_task(argv: list[str]) -> tuple[str | None, list[str]]:
    """``--task NAME`` (or ``--task=NAME``) out of argv; None when absent."""
    rest, name, i = [], None, 0
    while i < len(argv):
        a = argv[i]
        if a == "--task" and i + 1 < len(argv):
            name, i = argv[i + 1], i + 2
            continue
        if a.startswith("--task="):
            name, i = a.split("=", 1)[1], i + 1
            continue
        rest.append(a)
        i += 1
    if name is not None and name not in _task_names():
        raise ValueError(f"--task {name!r}: choose one of {', '.join(_task_names())}")
    return name, rest


def _delegate(verb: str, name: str, argv: list[str]):
    target, verbs = GENERATION[name]
    if verb not in verbs:
        raise ValueError(f"--task {name}: `{verb}` is not available for this task (it has: {', '.join(verbs)})")
    module, function = target.split(":")
    fn = getattr(importlib.import_module(module), function)
    return fn(argv if name == "wmt23" else [verb, *argv])


def _data_args(p: argparse.ArgumentParser, task, *, several: bool = False, split: str = "test") -> None:
    p.add_argument("--task", default=task.name, help=f"the task (here {task.name}); one of {', '.join(_task_names())}")
    p.add_argument("--lang", default=task.pivot,
                   help=f"a language of --data-dir (default {task.pivot})"
                   + ("; comma-separated for several" if several else ""))  # fmt: skip
    p.add_argument("--split", "--partition", dest="split", default=split, choices=task.splits)
    p.add_argument("--data-dir", default=None, help=f"the task's data folder ({task.description})")


def _langs(args) -> list[str]:
    langs = [x for x in args.lang.split(",") if x]
    if not langs:
        raise ValueError("--lang: give at least one language")
    return langs


def _parser(verb: str, task, description: str | None) -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog=f"midalign {verb} --task {task.name}", description=description,
                                   allow_abbrev=False)  # fmt: skip


def _label_task(verb: str, argv: list[str], default: str | None):
    """The label task of ``argv`` (or the generation task's command, run), and the rest of argv."""
    from .spec import LABEL_TASKS, get_label_task

    name, rest = _split_task(argv)
    if default is not None and name not in (None, default):
        raise ValueError(f"`midalign {default} {verb}` runs the task {default}; --task {name} names another "
                         f"(use `midalign {verb} --task {name}`)")  # fmt: skip
    name = name or default
    if name is None:
        if any(a in ("-h", "--help") for a in argv):
            print(f"usage: midalign {verb} --task NAME [options]   (`midalign {verb} --task NAME --help` for the "
                  f"task's options)\n\ntasks: {', '.join(_task_names())}")  # fmt: skip
            raise SystemExit(0)
        raise ValueError(f"`midalign {verb}` needs --task NAME; one of {', '.join(_task_names())}")
    if name not in LABEL_TASKS:
        return None, _delegate(verb, name, rest)
    return get_label_task(name), rest


def infer(argv: list[str] | None = None, *, task_name: str | None = None) -> list[dict] | None:
    """Predict every item's label by label scoring (resumable JSON-lines output)."""
    from ..inference.task_cli import add_base_model_args, base_model_provenance, positive_int

    task, argv = _label_task("infer", list(argv or []), task_name)
    if task is None:
        return argv
    from ..models.hardware import resolve_dtype
    from ..models.loading import adapter_fingerprint, load_model_with_adapters, load_tokenizer, resolve_model_path

    p = _parser("infer", task, infer.__doc__)
    add_base_model_args(p)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16", "auto"],
                   help="base weights' dtype; auto = bf16 only where the hardware has bf16 units")  # fmt: skip
    p.add_argument("--batch-size", type=positive_int, default=8)
    _limit_args(p)
    p.add_argument("--scoring", default="exact", choices=["exact", "first_token"],
                   help="exact: every token of each label (default); first_token: the labels' first tokens only "
                   "(faster, an approximation)")  # fmt: skip
    p.add_argument("--revision-model", default="main", help="hub revision of the base model")
    _data_args(p, task)
    p.add_argument("--output", "--output-path", dest="output", default=f"output_inference_{task.name}.jsonl",
                   help="JSON-lines output (resumable)")  # fmt: skip
    args = p.parse_args(argv)
    if len(_langs(args)) != 1:
        p.error("--lang: infer takes one language (one output file per language)")
    data_dir = task.resolve_data_dir(args.data_dir)
    items = task.load(args.lang, args.split, data_dir)
    if args.limit is not None:
        items = _limit(task, items, args, data_dir)
    labels = task.labels(data_dir)
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
        "task": task.name,
        "lang": args.lang,
        "split": args.split,
        **({"limit": args.limit, "limit_seed": args.limit_seed} if args.limit is not None else {}),
    }
    predicted = task.predict(model, tokenizer, items, labels, args.output, batch_size=args.batch_size,
                             provenance=provenance, method=args.scoring)  # fmt: skip
    scores = task.score([it.label for it in items], predicted, labels)
    print(f"wrote {len(predicted)} predictions to {args.output} (accuracy {scores['accuracy']:.3f})")
    return [{"id": f"{it.lang}:{it.id}", "gold": it.label, "prediction": y} for it, y in zip(items, predicted)]


def _limit_args(p: argparse.ArgumentParser) -> None:
    from ..inference.task_cli import positive_int

    p.add_argument("--limit", type=positive_int, default=None,
                   help="only N items: a seeded sample stratified by label (--limit-seed), the same ids in every "
                   "language; never a prefix (releases are often sorted by label)")  # fmt: skip
    p.add_argument("--limit-seed", type=int, default=0, help="seed of the --limit sample (default 0)")


def _limit(task, items: list, args, data_dir: str) -> list:
    """``--limit N``: a seeded sample of N of ``items`` stratified by label, drawn on the pivot language's ids and
    labels when the task is parallel and the pivot is on disk (so every language gets the same items)."""
    from ..data.subsets import sample_ids
    from .spec import id_order

    lang = items[0].lang if items else task.pivot
    use_pivot = task.parallel and lang != task.pivot and task.pivot in task.languages(data_dir)
    source = task.load(task.pivot, args.split, data_dir) if use_pivot else items
    labels = {it.id: it.label for it in source}
    keep = set(sample_ids(id_order(labels), args.limit, args.limit_seed, labels))
    return [it for it in items if it.id in keep]


def read_predicted_labels(path: str, labels: list[str], items: list) -> list[str]:
    """Predicted labels from ``infer``'s JSON lines (checked against the split's item ids) or from a text file with
    one label per line; a wrong count, id or label is an error naming the file and line."""
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    if lines and lines[0].lstrip().startswith("{"):
        from ..inference.task_cli import read_outputs

        by_id, gold = {}, {}
        for i, r in enumerate(read_outputs(path), 1):
            y = r["prediction"]
            if isinstance(y, int) and not isinstance(y, bool) and 0 <= y < len(labels):
                y = labels[y]
            if y not in labels:
                raise ValueError(f"{path}: row {i}: prediction {y!r} is neither a label nor a label index 0-"
                                 f"{len(labels) - 1}")  # fmt: skip
            by_id[str(r.get("id", i - 1))] = y
            gold[str(r.get("id", i - 1))] = r.get("gold")
        want = [f"{it.lang}:{it.id}" for it in items]
        missing = [w for w in want if w not in by_id]
        if missing:
            raise ValueError(f"{path}: no prediction for {len(missing)} of {len(want)} items of {items[0].lang} "
                             f"(first: {missing[0]}); is it another language's or split's output, or an unfinished "
                             "run (rerun infer to resume)?")  # fmt: skip
        wrong = [w for w, it in zip(want, items) if gold[w] is not None and gold[w] != it.label]
        if wrong:
            raise ValueError(f"{path}: {len(wrong)} rows carry another gold label than the data (first: {wrong[0]}); "
                             "the file was written for another split or data folder")  # fmt: skip
        return [by_id[w] for w in want]
    if len(lines) != len(items):
        raise ValueError(f"{path}: {len(lines)} lines, but the split has {len(items)} items "
                         "(one label per line expected)")  # fmt: skip
    for n, y in enumerate(lines, 1):
        if y.strip() not in labels:
            raise ValueError(f"{path}:{n}: {y!r} is not a label; labels: {', '.join(labels)}")
    return [y.strip() for y in lines]


def evaluate(argv: list[str] | None = None, *, task_name: str | None = None) -> dict | None:
    """Accuracy and macro-F1 of predictions (infer's output or one label per line), with the evaluated label
    profile (majority-class accuracy, chance); several languages pooled."""
    task, argv = _label_task("eval", list(argv or []), task_name)
    if task is None:
        return argv
    from ..data.subsets import label_profile

    p = _parser("eval", task, evaluate.__doc__)
    p.add_argument(
        "--predictions",
        required=True,
        help="infer's output (JSON lines) or one label per line; comma-separated, one per --lang",
    )
    _data_args(p, task, several=True)
    _limit_args(p)
    p.add_argument("--output", dest="output", default=None, help="also write the scores here (JSON)")
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
    data_dir = task.resolve_data_dir(args.data_dir)
    labels = task.labels(data_dir)
    per_lang, gold_all, pred_all = {}, [], []
    for lang, path in zip(langs, files):
        _check_provenance(path, task.name, lang, args)
        items = task.load(lang, args.split, data_dir)
        if args.limit is not None:
            items = _limit(task, items, args, data_dir)
        predicted = read_predicted_labels(path, labels, items)
        gold = [it.label for it in items]
        per_lang[lang] = task.score(gold, predicted, labels)
        gold_all += gold
        pred_all += predicted
    scores = task.score(gold_all, pred_all, labels)
    profile = label_profile(gold_all, labels)
    scores["majority_accuracy"], scores["chance"] = profile["majority_accuracy"], profile["chance"]
    scores["label_counts"] = profile["counts"]
    if len(langs) > 1:
        scores["per_language"] = per_lang
    print(json.dumps(scores, indent=2, ensure_ascii=False))
    if args.output:
        from ..data.jsonl import write_json

        write_json(args.output, scores)
    return scores


def _check_provenance(path: str, task: str, lang: str, args) -> None:
    """Refuse predictions whose recorded run (infer's ``<file>.run.json``) is of another task, language, split or
    sample than the scores asked for."""
    from ..inference.store import provenance_path, stored_provenance

    stored = stored_provenance(path)
    if stored is None:
        return
    asked = {"task": task, "lang": lang, "split": args.split, "limit": args.limit,
             "limit_seed": args.limit_seed if args.limit is not None else None}  # fmt: skip
    differ = [f"{k} {stored.get(k)!r} (asked: {v!r})" for k, v in asked.items()
              if k in stored or (k in ("limit", "limit_seed") and "task" in stored)
              if stored.get(k) != v]  # fmt: skip
    if differ:
        raise ValueError(f"--predictions {path}: its run recorded {', '.join(differ)} ({provenance_path(path)}); "
                         "give the same --task, --lang, --split and --limit/--limit-seed as infer")  # fmt: skip


def export(argv: list[str] | None = None, *, task_name: str | None = None) -> int | None:
    """A task's items -> the paper's training rows ({"prefix", "text": " <label><eos>"}) in a model's format."""
    task, argv = _label_task("export", list(argv or []), task_name)
    if task is None:
        return argv
    from ..data.jsonl import write_jsonl
    from ..models import load_tokenizer

    p = _parser("export", task, export.__doc__)
    _data_args(p, task, several=True, split="train")
    p.add_argument("--model", default=None, help="tokenizer whose chat template (or the plain format) renders prompts")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    data_dir = task.resolve_data_dir(args.data_dir)
    items = [it for lang in _langs(args) for it in task.load(lang, args.split, data_dir)]
    rows = [{"prefix": r["prefix"], "text": r["text"]} for r in task.task_rows(load_tokenizer(args.model), items)]
    write_jsonl(args.output, rows)
    print(f"wrote {len(rows)} rows to {args.output}")
    return len(rows)


def pairs(argv: list[str] | None = None, *, task_name: str | None = None) -> int | None:
    """Pivot <-> x pairs by item id (the same item in both), for --alignment_file, shuffled across languages with
    --seed so that batches mix languages."""
    task, argv = _label_task("pairs", list(argv or []), task_name)
    if task is None:
        return argv
    from ..data.jsonl import write_jsonl

    p = _parser("pairs", task, pairs.__doc__)
    _data_args(p, task, several=True, split="train")
    p.add_argument("--pivot", default=task.pivot, help="the language every pair starts from (text_parallel_0)")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (-1: keep language blocks in file order)")
    p.add_argument("--output", required=True)
    args = p.parse_args(argv)
    data_dir = task.resolve_data_dir(args.data_dir)
    rows = task.pairs(_langs(args), args.split, data_dir, args.seed if args.seed >= 0 else None, pivot=args.pivot)
    if not rows:
        raise ValueError(f"--lang {args.lang}: no item shares an id with {args.pivot} in {args.split}")
    write_jsonl(args.output, [{k: r[k] for k in ("text_parallel_0", "text_parallel_1", "lang")} for r in rows])
    print(f"wrote {len(rows)} pairs to {args.output}")
    return len(rows)


COMMANDS = {"infer": infer, "eval": evaluate, "export": export, "pairs": pairs}


def task_command(name: str):
    """``midalign NAME <command> ...`` = ``midalign <command> --task NAME ...`` (the per-task command of a label
    task: ``midalign sib200 infer ...``)."""

    def main(argv: list[str]) -> None:
        from ..dispatch import dispatch

        commands = {verb: (lambda a, f=fn: f(a, task_name=name)) for verb, fn in COMMANDS.items()}
        dispatch(f"midalign {name}", commands, argv,
                 {k: (f.__doc__ or "").strip().split("\n")[0] for k, f in COMMANDS.items()})  # fmt: skip

    return main


def sib200(argv: list[str]) -> None:
    """``midalign sib200 infer|eval|export|pairs``."""
    task_command("sib200")(argv)
