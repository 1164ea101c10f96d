"""``midalign export-lm-eval``: a label task's languages as lm-evaluation-harness YAML tasks over local files, so a
user can check our numbers in the tool they trust (``lm_eval --include_path OUT --tasks midalign_sib200``)."""

from __future__ import annotations

import argparse

__all__ = ["main"]


def main(argv: list[str] | None = None) -> list[str]:
    from ..models.loading import load_tokenizer
    from .spec import LABEL_TASKS, get_label_task

    p = argparse.ArgumentParser(prog="midalign export-lm-eval", description=__doc__.split("\n\n")[0],
                                allow_abbrev=False)  # fmt: skip
    p.add_argument("--task", default="sib200", choices=sorted(LABEL_TASKS))
    p.add_argument("--data-dir", default=None, help="the task's data folder (SIB-200: data/annotated)")
    p.add_argument("--model", default=None,
                   help="whose tokenizer renders the prompts (chat template or plain format; default: the embedded "
                   "gemma-3-270m)")  # fmt: skip
    p.add_argument("--lang", default=None, help="comma-separated languages (default: every language on disk)")
    p.add_argument("--split", default="test")
    p.add_argument("--output-dir", required=True, help="where the YAML tasks and their JSON-lines files go")
    args = p.parse_args(argv)
    task = get_label_task(args.task)
    data_dir = task.resolve_data_dir(args.data_dir)
    if args.split not in task.splits:
        raise ValueError(f"--split {args.split!r}: choose one of {', '.join(task.splits)}")
    present = task.languages(data_dir)
    langs = args.lang.split(",") if args.lang else present
    missing = [x for x in langs if x not in present]
    if missing:
        raise ValueError(f"--lang {','.join(missing)}: not in {data_dir} ({len(present)} languages there)")
    if args.model is None:
        from ..models import GEMMA3_MODEL_NAME, prepared_model_path

        args.model = prepared_model_path(GEMMA3_MODEL_NAME)
    names = task.export_lm_eval(load_tokenizer(args.model), data_dir, langs, args.split, args.output_dir)
    print(f"wrote {len(names)} lm-eval tasks (group midalign_{task.name}) to {args.output_dir}: "
          f"lm_eval --include_path {args.output_dir} --tasks midalign_{task.name} ...")  # fmt: skip
    return names
