"""mkdocs hook: publish the repository's ``fig/`` (figures and result tables written by the commands) under
``fig/`` of the site, so pages link the very files the experiments wrote (nothing is copied into docs/ by hand)."""

from __future__ import annotations

import os

from mkdocs.structure.files import File

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def on_files(files, config):
    fig = os.path.join(ROOT, "fig")
    for folder, _, names in sorted(os.walk(fig)) if os.path.isdir(fig) else []:
        rel = os.path.relpath(folder, ROOT).replace(os.sep, "/")
        for name in sorted(names):  # fig/'s results, and the figures of its sub-folders (e.g. a work dir's screen)
            if name.endswith((".png", ".json", ".csv") if rel == "fig" else (".png",)):
                files.append(File(f"{rel}/{name}", ROOT, config["site_dir"], config["use_directory_urls"]))
    return files
