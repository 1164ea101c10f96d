"""mkdocs hook: publish the repository's ``fig/`` (figures and result tables written by the commands) under
``fig/`` of the site, so pages link the very files the experiments wrote (nothing is copied into docs/ by hand)."""

from __future__ import annotations

import os

from mkdocs.structure.files import File

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def on_files(files, config):
    fig = os.path.join(ROOT, "fig")
    for name in sorted(os.listdir(fig)) if os.path.isdir(fig) else []:
        if name.endswith((".png", ".json", ".csv")):
            files.append(File(f"fig/{name}", ROOT, config["site_dir"], config["use_directory_urls"]))
    return files
