"""The benchmarks' results files. Every figure on the Benchmarks page is rendered from one (``docs/render.py``),
so each script writes what it measured, with the command, machine and date, through these helpers:

* :func:`add_args`: ``--json PATH`` (default ``outputs/fig/<name>.json``; the committed ``fig/`` is regenerated with
  ``--json fig/<name>.json --overwrite``) and ``--overwrite``;
* :func:`claim`: refuse, before anything runs, to replace an earlier run's file unless ``--overwrite``;
* :func:`write`: the result plus ``command``, ``date``, ``cpu``, ``torch`` and ``threads``, atomically, NaN refused.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys

_OWN_FLAGS = ("--json", "--overwrite")


def add_args(parser: argparse.ArgumentParser, name: str) -> None:
    parser.add_argument("--json", default=os.path.join("outputs", "fig", f"{name}.json"),
                        help="write the figures here (default: %(default)s)")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier run's --json file")


def claim(path: str, overwrite: bool) -> None:
    """Exit with one line (no traceback) if ``path`` holds an earlier run's results and ``overwrite`` is off."""
    if os.path.exists(path) and not overwrite:
        raise SystemExit(f"--json {path}: holds an earlier run's results; give another --json, or --overwrite")


def command(argv: list[str] | None = None) -> str:
    """The command that reproduces the run, without the output flags (``--json X``, ``--overwrite``)."""
    argv = list(sys.argv if argv is None else argv)
    kept, skip = [], False
    for a in argv[1:]:
        if skip:
            skip = False
            continue
        if a in _OWN_FLAGS:
            skip = a == "--json"
            continue
        if a.startswith("--json="):
            continue
        kept.append(a)
    script = os.path.relpath(os.path.abspath(argv[0]), os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return " ".join(["python", script.replace(os.sep, "/"), *kept])


def write(path: str, result: dict, threads: int | None = None) -> None:
    import torch

    from midalign.data.jsonl import write_json
    from midalign.models.hardware import cpu_description

    threads = threads if threads is not None else torch.get_num_threads()
    meta = {"command": command(), "date": datetime.date.today().isoformat(), "cpu": cpu_description(),
            "torch": torch.__version__, "threads": threads}  # fmt: skip
    write_json(path, {**meta, **result})
    print(f"wrote {path}")
