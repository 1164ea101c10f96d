"""What every renderer shares: where results files live, how one is read, number formats, and the block registry.

A renderer is a function ``() -> str`` registered with ``@block("name")``; a page shows it between
``<!-- BEGIN rendered:name -->`` and ``<!-- END rendered:name -->``. ``FIG`` is read when a renderer runs (tests
point it at a folder of their own).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIG = ROOT / "fig"
DOCS = ROOT / "docs"

BLOCKS: dict[str, Callable[[], str]] = {}


def block(name: str):
    """Register a renderer as the block ``name`` (one name, one renderer)."""

    def register(fn: Callable[[], str]) -> Callable[[], str]:
        if name in BLOCKS:
            raise ValueError(f"rendered block {name!r} is registered twice")
        BLOCKS[name] = fn
        return fn

    return register


def _load(name: str):
    path = FIG / name
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _pct(v: float) -> str:
    return f"{100 * v:.1f}"


def _ci(v) -> str:
    return f"{100 * v[0]:.1f} [{100 * v[1]:.1f}, {100 * v[2]:.1f}]"


def _t(values: list[float]) -> str:
    """``mean [low, high]`` in % from per-seed values, a seed-level t-interval (``mean`` alone for one seed)."""
    from midalign.experiments.stats import t_interval

    t = t_interval(values)
    if t["low"] is None:
        return f"{100 * t['mean']:.1f} (one seed)"
    return f"{100 * t['mean']:.1f} [{100 * t['low']:.1f}, {100 * t['high']:.1f}]"


def _signed(v: float) -> str:
    """Points with an explicit sign and a true minus, e.g. ``+0.7``, ``−3.5``."""
    return f"{100 * v:+.1f}".replace("-", "−")


def _bench_head(b: dict, name: str) -> str:
    return (f"`{b['command']}` ({b['date']}, {b['cpu']}, {b['threads']} thread(s), torch {b['torch']}; "
            f"`fig/{name}`)")  # fmt: skip


def _not_measured(name: str, command: str) -> str:
    return f"Not measured yet: `{command} --json fig/{name}` writes the file this section is rendered from."
