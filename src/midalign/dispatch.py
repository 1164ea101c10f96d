"""Sub-command dispatch shared by every ``midalign <command> <sub-command>`` (one usage text, ``--help`` = exit 0)."""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["dispatch"]


def dispatch(prog: str, commands: dict[str, Callable], argv: list[str], helps: dict[str, str] | None = None):
    """Run ``commands[argv[0]](argv[1:])``. No argument or an unknown one prints the usage (exit 2); ``-h`` /
    ``--help`` prints it and exits 0."""
    if argv and argv[0] in commands:
        return commands[argv[0]](argv[1:])
    lines = [f"usage: {prog} {{{','.join(commands)}}} [options]   (`{prog} <name> --help` for its options)"]
    if helps:
        lines += [""] + [f"  {name:<10} {helps.get(name, '')}" for name in commands]
    print("\n".join(lines))
    if argv and argv[0] not in ("-h", "--help"):
        print(f"\n{prog}: unknown command {argv[0]!r}")
    raise SystemExit(0 if argv and argv[0] in ("-h", "--help") else 2)
