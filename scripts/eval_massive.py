"""MASSIVE slot F1 / exact match from a predictions file. Logic: midalign.tasks.massive_cli."""

from midalign.tasks.massive_cli import evaluate

if __name__ == "__main__":
    evaluate()
