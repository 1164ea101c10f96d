"""The docs pages rendered from results files are up to date with fig/*.json (numbers are never typed by hand)."""

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
