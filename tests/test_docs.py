"""The docs pages rendered from results files are up to date with fig/*.json (numbers are never typed by hand)."""

import importlib.util
import re
import subprocess
import sys

from tests.conftest import ROOT


def test_rendered_pages_match_the_results_files():
    out = subprocess.run([sys.executable, str(ROOT / "docs" / "render.py"), "--check"], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_docs_page_is_in_the_nav():
    import yaml

    nav = (ROOT / "mkdocs.yml").read_text()
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    missing = [p for p in pages if p not in nav]
    assert not missing, f"docs pages not in mkdocs.yml nav: {missing}"
    assert yaml.safe_load(nav.replace("!!python", "")) is not None


def test_the_xsid_remedy_section_says_what_its_intervals_say(tmp_path, monkeypatch):
    import importlib.util
    import json

    spec = importlib.util.spec_from_file_location("render", ROOT / "docs" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    monkeypatch.setattr(render, "FIG", tmp_path)
    assert render.block_xsid_remedy().startswith("Not run yet")
    paired = {"seeds": [0, 1, 2], "english": [-0.02, -0.05, 0.01], "aligned": [0.04, 0.01, 0.08],
              "transfer": [0.01, -0.03, 0.05]}  # fmt: skip
    config = {"methods": ["baseline_2x", "alignment_center"], "languages": ["en", "de"], "remedy": "batch",
              "steps": 32, "seeds": [0, 1, 2], "test_size": 32}  # fmt: skip
    summary = {"paired": {"alignment_center - baseline_2x": paired}, "wall_clock_seconds_this_invocation": 600}
    result = {"config": config, "summary": summary}
    (tmp_path / "xsid_remedy.json").write_text(json.dumps(result))
    (tmp_path / "xsid_remedy.md").write_text("| method |\n")
    text = render.block_xsid_remedy()
    assert "| method |" in text and "64 optimizer steps" in text and "10 min" in text
    assert "aligned languages 4.0 [1.0, 8.0] points (higher, interval above zero)" in text
    assert "transfer languages 1.0 [-3.0, 5.0] points (no difference beyond noise" in text
    assert "xSID, `alignment_center - baseline_2x`** (3 seeds" in render.block_headline()


# A decimal in a page's prose is either rendered from a results file (between the render markers) or a literal in
# code (a flag value, a setting). What remains are versions and citations, named here.
_NOT_MEASURED = re.compile(r"(?:arXiv|MASSIVE|xSID|BY|BY-SA|transformers|torch|vLLM|Python) $")


def _typed_decimals(text: str) -> list[str]:
    text = re.sub(r"<!-- BEGIN rendered:(\w+).*?<!-- END rendered:\1 -->", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    text = re.sub(r"`[^`\n]*`", "", text)
    text = re.sub(r"\]\([^)]*\)", "]", text)  # link targets
    found = []
    for m in re.finditer(r"(?<![\w.])\d+\.\d+(?![\w.])", text):
        if not _NOT_MEASURED.search(text[max(0, m.start() - 14) : m.start()]):
            line = text[: m.start()].count("\n") + 1
            found.append(f"{m.group()} (line ~{line}: {text[max(0, m.start() - 40) : m.end() + 20]!r})")
    return found


def test_the_typed_decimal_checker_sees_prose_and_skips_code_and_rendered_blocks():
    text = ("F1 0.95 here\n`--lr 0.1`\n```\nx = 0.5\n```\n<!-- BEGIN rendered:t -->\n0.33\n<!-- END rendered:t -->\n"
            "xSID 0.7, [arXiv 2502.14830](https://arxiv.org/abs/2502.14830)")  # fmt: skip
    assert [d.split(" ")[0] for d in _typed_decimals(text)] == ["0.95"]


def test_no_measured_number_is_typed_by_hand_in_the_docs():
    spec = importlib.util.spec_from_file_location("render", ROOT / "docs" / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    typed = {}
    for path in render.BLOCK_FILES:  # the pages render.py writes whole (render.PAGES) are generated text
        found = _typed_decimals(path.read_text(encoding="utf-8"))
        if found:
            typed[path.name] = found
    assert not typed, (
        "decimals typed by hand (render them from a results file, or put a setting in `code`): "
        + "; ".join(f"{k}: {', '.join(v[:5])}" for k, v in typed.items())
    )
