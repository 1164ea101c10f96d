"""Renderers of the docs' numbers, one module per result type. Each registers its blocks with
``@common.block("name")``; ``docs/render.py`` imports every module here and fills the pages' blocks. A new experiment
is a page (Markdown with ``<!-- BEGIN rendered:name -->`` blocks) and a module here: no other file changes."""
