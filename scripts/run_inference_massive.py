"""MASSIVE slot-filling inference (paper-compatible flags). Logic: midalign.tasks.massive_cli."""

from midalign.tasks.massive_cli import infer

if __name__ == "__main__":
    infer()
