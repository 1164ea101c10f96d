"""``midalign lm-eval ...``: lm-evaluation-harness's own command line with the ``midalign`` backend registered
(:mod:`midalign.inference.lm_eval_model`). A light module: lm-eval is an optional extra, named when missing."""

from __future__ import annotations

import importlib.util

__all__ = ["main"]


def main(argv: list[str]) -> None:
    if importlib.util.find_spec("lm_eval") is None:
        raise FileNotFoundError(
            "lm-evaluation-harness is not installed: pip install 'midalign[lmeval]' (or lm-eval==0.4.13)"
        )
    from .lm_eval_model import main as run

    run(argv)
