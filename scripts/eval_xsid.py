"""xSID slot F1 / exact match (and intent accuracy) from a predictions file. Logic: midalign.tasks.xsid_cli."""

from midalign.tasks.xsid_cli import evaluate

if __name__ == "__main__":
    evaluate()
