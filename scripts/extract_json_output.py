"""Inference output (JSON lines) -> one prediction per line. Logic: midalign.tasks.massive_cli."""

from midalign.tasks.massive_cli import extract

if __name__ == "__main__":
    extract()
