"""What every task's command line shares: model/generation flags, prompt rendering + resumable generation, and
writing the paper's training rows."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable

__all__ = [
    "add_base_model_args",
    "add_model_args",
    "generate_task",
    "prompt_rows",
    "read_outputs",
    "read_predictions",
    "write_training_rows",
]


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (``--batch-size 0``, ``--limit -1`` are errors, not odd behaviour)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_base_model_args(p: argparse.ArgumentParser) -> None:
    """``--model`` (alias ``--base-model-name``) and ``--adapter`` (alias ``--peft-model-id``, repeatable): the
    model a task command runs, in every task command's vocabulary."""
    p.add_argument("--model", "--base-model-name", dest="base_model_name", default=None,
                   help="base model: hub id or directory; default: embedded SmolLM2")  # fmt: skip
    p.add_argument(
        "--adapter",
        "--peft-model-id",
        dest="peft_model_id",
        action="append",
        default=[],
        help="LoRA adapter (directory or hub id); repeat to stack several (merged in turn)",
    )


def add_model_args(p: argparse.ArgumentParser, *, batch_size: int = 16, max_new_tokens: int = 128) -> None:
    add_base_model_args(p)
    p.add_argument(
        "--no-default-template",
        action="store_true",
        help="the paper's training format: no BOS in the prompt string (when the tokenizer adds it), "
        "a line break after each end-of-turn token (generalised to any chat template)",
    )
    p.add_argument(
        "--no-prefix-cache",
        action="store_true",
        help="run prefill over every prompt token instead of reusing the states of the prefix all prompts share "
        "(chat template + system prompt); the cache is exact up to floating-point summation order",
    )
    p.add_argument("--batch-size", type=positive_int, default=batch_size)
    p.add_argument("--max-new-tokens", type=positive_int, default=max_new_tokens)
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--engine", default="midalign", choices=["midalign", "vllm"],
                   help="midalign's own engine, or vLLM in its own environment (make vllm-env)")  # fmt: skip
    p.add_argument("--vllm-python", default=None, help="--engine vllm: the vLLM environment's Python "
                   "(default $MIDALIGN_VLLM_PYTHON, else .venv-vllm/bin/python)")  # fmt: skip
    p.add_argument("--revision-model", default="main", help="hub revision of the base model")
    p.add_argument("--limit", type=positive_int, default=None, help="only the first N examples (N >= 1)")


def prompt_rows(tokenizer, examples: list[dict], default_template: bool = True) -> tuple[list[dict], bool]:
    """Examples (``user``, ``system`` and fields to copy) -> generation rows ``{"id", "prompt", ...}``, and whether
    the prompts are to be tokenized with the tokenizer's special tokens (chat-template prompts carry theirs; plain
    and paper-format prompts get the tokenizer's)."""
    from .prompts import has_chat_template
    from .templates import build_prompt

    rows = [
        {
            "id": ex.get("id", i),
            "prompt": build_prompt(tokenizer, ex["user"], ex["system"], default_template),
            **{k: v for k, v in ex.items() if k not in ("id", "user", "system")},
        }
        for i, ex in enumerate(examples)
    ]
    return rows, not default_template or not has_chat_template(tokenizer)


def generate_task(args: argparse.Namespace, examples: list[dict], output: str) -> list[dict]:
    """``examples``: dicts with ``user`` and ``system`` (the prompt) plus fields copied to the output rows.
    Returns the output rows in input order (see :func:`midalign.inference.run_generation`)."""
    from ..models.loading import load_model_with_adapters, load_tokenizer, resolve_model_path
    from .engine import init_distributed_from_env

    base = resolve_model_path(args.base_model_name)
    tokenizer = load_tokenizer(args.base_model_name, revision=args.revision_model)
    if getattr(args, "engine", "midalign") == "vllm":
        return _generate_vllm(args, examples, output, base, tokenizer)
    init_distributed_from_env()  # under torchrun --nproc_per_node N: each process generates a share
    model = load_model_with_adapters(
        args.base_model_name, args.peft_model_id, torch_dtype=args.dtype, revision=args.revision_model
    )
    import torch

    if torch.cuda.is_available() and torch.distributed.is_initialized():
        model.to(f"cuda:{torch.cuda.current_device()}")
    default = not args.no_default_template
    items, add_special_tokens = prompt_rows(tokenizer, examples, default)
    import contextlib

    from ..locking import exclusive

    rank = torch.distributed.get_rank() if torch.distributed.is_initialized() else 0
    lock = exclusive(output, directory=False, what="--output") if rank == 0 else contextlib.nullcontext()
    with lock:
        return _generate(model, tokenizer, items, output, args, add_special_tokens, default, base)


def base_model_provenance(base: str) -> dict:
    """The base model of an output file's provenance: a local directory by path and content (new weights saved to
    the same path are another model: its resume is refused), a hub id by name."""
    from ..models.loading import model_fingerprint

    if not os.path.isdir(base):
        return {"base_model": base}
    return {"base_model": os.path.abspath(base), "base_model_fingerprint": model_fingerprint(base)}


def _provenance(args, base: str, default: bool) -> dict:
    from ..models.loading import adapter_fingerprint

    prov = {
        **base_model_provenance(base),
        "revision": args.revision_model,
        "adapters": [adapter_fingerprint(a) for a in args.peft_model_id],  # content, wherever it lives
        "default_template": default,
        "max_new_tokens": args.max_new_tokens,
        "dtype": args.dtype,
    }
    if getattr(args, "engine", "midalign") != "midalign":  # unchanged for the default engine: old files resume
        prov["engine"] = args.engine
    return prov


def _generate(model, tokenizer, items, output, args, add_special_tokens, default, base):
    from .engine import run_generation

    return run_generation(
        model,
        tokenizer,
        items,
        output,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        add_special_tokens=add_special_tokens,
        prefix_cache=not args.no_prefix_cache,
        provenance=_provenance(args, base, default),
    )


def _generate_vllm(args, examples, output, base, tokenizer) -> list[dict]:
    """``--engine vllm``: the same prompt rows, token ids, stop tokens, output file, resume and provenance; vLLM
    decodes (in chunks of at least 64 prompts, each written when done)."""
    from types import SimpleNamespace

    from transformers import GenerationConfig

    from ..locking import exclusive
    from .engine import run_generation, stop_token_ids
    from .vllm_engine import VllmWorker

    if args.peft_model_id and len(args.peft_model_id) > 1:
        raise ValueError(
            f"--engine vllm serves one LoRA adapter; got {len(args.peft_model_id)} --peft-model-id. Merge them "
            "first (midalign compose) or use --engine midalign"
        )
    try:
        config = GenerationConfig.from_pretrained(base, revision=args.revision_model)
    except OSError:
        config = None
    stops = stop_token_ids(SimpleNamespace(generation_config=config), tokenizer)
    default = not args.no_default_template
    items, add_special_tokens = prompt_rows(tokenizer, examples, default)
    worker = VllmWorker(base, max_new_tokens=args.max_new_tokens, stop_token_ids=stops,
                        adapters=list(args.peft_model_id or []), dtype=args.dtype, python=args.vllm_python)  # fmt: skip
    with exclusive(output, directory=False, what="--output"), worker:
        return run_generation(None, tokenizer, items, output, batch_size=max(args.batch_size, 64),
                              max_new_tokens=args.max_new_tokens, add_special_tokens=add_special_tokens,
                              provenance=_provenance(args, base, default), backend=worker.generate)  # fmt: skip


def write_training_rows(
    tokenizer, examples: Iterable[tuple[str, str | None, str]], output: str, default_template: bool = True
) -> int:
    """(user, system, target) -> the paper's training rows ``{"prefix", "text": target + end-of-turn}``
    (see :mod:`midalign.inference.prompts` for models without a chat template)."""
    from ..data.jsonl import write_jsonl
    from .prompts import render_target
    from .templates import build_prompt

    # every input read and rendered first; the output written whole (atomically) only then: a bad language or row
    # never leaves a valid-looking partial file in place of the user's
    rows = [
        {"prefix": build_prompt(tokenizer, user, system, default_template), "text": render_target(tokenizer, target)}
        for user, system, target in examples
    ]
    write_jsonl(output, rows)
    print(f"wrote {len(rows)} rows to {output}")
    return len(rows)


def read_outputs(path: str) -> list[dict]:
    """Inference outputs: JSON lines (ours, the paper's) or one JSON array; ordered by ``index`` when present."""
    with open(path, encoding="utf-8") as fh:
        text = fh.read()
    stripped = text.lstrip()
    if stripped.startswith("["):
        rows = json.loads(stripped)
    else:
        from ..data.jsonl import json_lines

        rows = [row for _, row in json_lines(path, text.splitlines())]
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or "prediction" not in r:
            raise ValueError(f"{path}: row {i + 1} has no 'prediction' field")
    if all("index" in r for r in rows):
        rows.sort(key=lambda r: r["index"])
    return rows


def read_predictions(path: str) -> list[str]:
    """One prediction per line (the file ``extract_json_output.py`` writes)."""
    with open(path, encoding="utf-8") as fh:
        preds = fh.read().split("\n")
    return preds[:-1] if preds and preds[-1] == "" else preds
