"""``midalign <command>``: dispatch only. Each command is a ``module:function`` taking the remaining arguments; the
modules own their argument parsing and are imported only when their command runs."""

from __future__ import annotations

import importlib
import os
import sys

__all__ = ["COMMANDS", "main"]

COMMANDS: dict[str, tuple[str, str]] = {
    "infer": ("midalign.tasks.cli:infer", "predict with a model (+ adapters) on any task: `infer --task NAME`"),
    "eval": ("midalign.tasks.cli:evaluate", "score predictions on any task: `eval --task NAME --predictions F ...`"),
    "export": ("midalign.tasks.cli:export", "a task's items as the paper's training rows: `export --task NAME`"),
    "pairs": ("midalign.tasks.cli:pairs", "a parallel task's pairs for --alignment_file: `pairs --task NAME`"),
    "experiment": (
        "midalign.experiments:main",
        "`experiment sib200|xsid|methods`: real-data transfer experiments (Gemma 3 270M); `experiment transfer`: "
        "synthetic",
    ),
    "wmt": (
        "midalign.tasks.translation_cli:main",
        "WMT23 translation inference + BLEU/chrF (flags of scripts/run_inference_eval_wmt23.py)",
    ),
    "ner": (
        "midalign.tasks.ner_cli:cli",
        "Universal NER as JSON: `ner eval ...` (inference + F1) or `ner export ...` (training data)",
    ),
    "xsid": (
        "midalign.tasks.xsid_cli:main",
        "xSID slot filling (15 languages): infer, eval, export (training rows), pairs (en <-> x)",
    ),
    "sib200": (
        "midalign.tasks.cli:sib200",
        "SIB-200 topic classification (195 languages): `midalign <infer|eval|export|pairs> --task sib200`",
    ),
    "massive": ("midalign.tasks.massive_cli:cli", "MASSIVE slot filling: infer, extract, eval, export (training data)"),
    "analyze": (
        "midalign.analysis.cli:main",
        "representation analysis: `analyze retrieval`, `analyze subspaces` or `analyze facts`",
    ),
    "demo": (
        "midalign.demo:main",
        "train with alignment on data_example with the embedded model; report retrieval before/after",
    ),
    "sparse": (
        "midalign.compose.cli:sft_main",
        "composable sparse fine-tuning (LT-SFT): `sparse diff` (keep the largest changes) or `sparse apply`",
    ),
    "compose": (
        "midalign.compose.cli:compose_main",
        "weighted sum of LoRA adapters written as a new adapter (task arithmetic)",
    ),
    "prepare-model": (
        "midalign.models.cli:main",
        "prepare an embedded model (--model gemma-3-270m) in the cache; print its path",
    ),
    "train": ("midalign.training.run:main", "train with alignment (all scripts/run_clm_lora.py flags)"),
    "export-lm-eval": (
        "midalign.tasks.lm_eval_export_cli:main",
        "a label task (sib200) as lm-evaluation-harness YAML tasks over local files, one per language",
    ),
    "lm-eval": (
        "midalign.inference.lm_eval_cli:main",
        "lm-evaluation-harness with the `midalign` model backend: `midalign lm-eval --model midalign --model_args "
        "pretrained=DIR,adapter=DIR --tasks ...` (extra `lmeval`)",
    ),
}


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = "\n".join(f"  {name:<15} {help_}" for name, (_, help_) in COMMANDS.items())
        print(f"usage: midalign <command> [options]\n\ncommands:\n{lines}")
        raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
    module, function = COMMANDS[argv[0]][0].split(":")
    fn = getattr(importlib.import_module(module), function)
    from .locking import LockedError
    from .vocabulary import check_retired

    try:
        if argv[0] != "train":  # train's flags are the paper's and transformers' (HfArgumentParser)
            check_retired(argv[1:], argv[0])
        fn(argv[1:])
    except FileNotFoundError as err:  # a path the user gave (or a model not prepared): one line, no traceback
        raise SystemExit(f"midalign {argv[0]}: {err}") from None
    except (FileExistsError, ValueError, LockedError, FloatingPointError) as err:
        # a user's mistake (a path, a flag value, an occupied output) or a run stopped on purpose: one line, no
        # traceback (MIDALIGN_TRACEBACK=1 shows it); exit 2 for bad input, 1 for a run that stopped
        if os.environ.get("MIDALIGN_TRACEBACK"):
            raise
        print(f"midalign {argv[0]}: {err}", file=sys.stderr)
        raise SystemExit(1 if isinstance(err, (LockedError, FloatingPointError)) else 2) from None


if __name__ == "__main__":
    main()
