"""Tasks: prompts, gold targets, parsing and metrics per task."""
