"""Render the numbers of the docs from the results files the commands wrote (never typed by hand).

    python docs/render.py          # rewrite every page's rendered blocks from fig/*.json
    python docs/render.py --check  # exit 1 if a committed page differs from what the results files give

Every page is Markdown written by hand; its numbers sit in blocks between ``<!-- BEGIN rendered:NAME ... -->`` and
``<!-- END rendered:NAME -->``, filled by the renderer registered as NAME in ``docs/renderers/`` (one module per
result type) or, for ``md_<name>``, by an experiment's own table ``fig/<name>.md`` verbatim. A missing results file
renders as "Not run/measured yet" with its command. Sources, all under ``fig/``: the experiments' files (``midalign
experiment {xsid,methods,sib200,transfer,powered}``), the benchmarks' (``python benchmarks/<name>.py --json
fig/<name>.json``), ``anisotropy_*.json`` (``midalign analyze anisotropy``), the Evaluation / Composition / Analysis
measurements (``docs/results.sh``) and ``demo.json`` (``make demo-results``).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import renderers  # noqa: E402  (docs/ is not a package: its folder goes on the path first)
from renderers import common  # noqa: E402

for _module in pkgutil.iter_modules(renderers.__path__):
    importlib.import_module(f"renderers.{_module.name}")

ROOT, DOCS = common.ROOT, common.DOCS
BLOCKS = common.BLOCKS
# every page may hold rendered blocks
BLOCK_FILES = (ROOT / "README.md", *sorted(DOCS.glob("*.md")))


def _with_blocks(text: str) -> str:
    def fill(m):
        name = m.group(2)
        if name.startswith("md_"):  # an experiment's own table (fig/<name>.md), verbatim
            body = (common.FIG / f"{name[3:]}.md").read_text(encoding="utf-8").rstrip("\n")
        elif name in BLOCKS:
            body = BLOCKS[name]()
        else:
            raise SystemExit(f"a page names the rendered block {name!r}, which no module in docs/renderers/ registers")
        return f"{m.group(1)}\n{body}\n{m.group(3)}"

    pattern = r"(<!-- BEGIN rendered:(\w+)[^>]*-->)\n.*?\n?(<!-- END rendered:\2 -->)"
    return re.sub(pattern, fill, text, flags=re.S)


def main(argv: list[str]) -> int:
    stale = []
    for path in BLOCK_FILES:
        text = _with_blocks(path.read_text(encoding="utf-8"))
        if "--check" in argv:
            if path.read_text(encoding="utf-8") != text:
                stale.append(str(path.relative_to(ROOT)))
        else:
            path.write_text(text, encoding="utf-8")
    if stale:
        print(f"stale docs pages (run `python docs/render.py`): {', '.join(stale)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
