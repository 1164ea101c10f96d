"""Every command and sub-command answers --help with its options (exit 0); a missing path is one line."""

import ast
import subprocess
import sys

import pytest

from midalign.cli import COMMANDS, main
from tests.conftest import ROOT

SUBCOMMANDS = {
    "experiment": ["transfer", "xsid", "methods", "sib200", "powered"],
    "massive": ["infer", "extract", "eval", "export"],
    "analyze": ["retrieval", "subspaces", "facts", "anisotropy"],
    "sparse": ["diff", "apply"],
    "sib200": ["infer", "eval", "export", "pairs"],
    "xsid": ["infer", "eval", "export", "pairs"],
    "ner": ["export"],
}
CASES = [[c] for c in COMMANDS] + [[c, s] for c, subs in SUBCOMMANDS.items() for s in subs]


@pytest.mark.parametrize("words", CASES, ids=[" ".join(w) for w in CASES])
def test_help_exits_0_and_shows_options(words, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([*words, "--help"])
    assert exit_.value.code in (0, None)
    out = capsys.readouterr().out
    assert "usage" in out.lower()
    # options (or sub-commands) are listed; extract takes two positional files
    assert "PREDICTIONS.txt" in out if words == ["massive", "extract"] else ("--" in out or "{" in out)


def test_extract_script_help():
    proc = subprocess.run([sys.executable, "scripts/extract_json_output.py", "--help"], cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert proc.returncode == 0 and "PREDICTIONS.txt" in proc.stdout


def test_unknown_subcommand_is_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["massive", "nope"])
    assert exit_.value.code == 2 and "unknown command 'nope'" in capsys.readouterr().out


def test_missing_path_is_one_line():
    with pytest.raises(SystemExit) as exit_:
        main(["xsid", "eval", "--pred-slots-file", "p.txt", "--data-dir", "/no/such/xsid"])
    assert str(exit_.value.code).startswith("midalign xsid: --data-dir /no/such/xsid: no such directory")


def test_every_command_target_exists_and_cli_only_dispatches():
    """cli.py holds a table of module:function targets and nothing else of substance: every target imports."""
    import ast
    import importlib

    for name, (target, _) in COMMANDS.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name
    tree = ast.parse((ROOT / "src" / "midalign" / "cli.py").read_text())
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert functions == ["main"]


RECIPES = {"cli.py", "demo.py", "training/run.py", "inference/task_cli.py", "analysis/cli.py", "compose/cli.py",
           "models/cli.py", "experiments/transfer.py", "experiments/xsid.py", "experiments/harness.py",
           "experiments/powered.py", "tasks/cli.py"}  # fmt: skip
LAYERS = {"alignment": 0, "data": 0, "models": 0, "compose": 1, "training": 2, "inference": 2, "tasks": 3,
          "analysis": 3, "experiments": 4}  # fmt: skip


def test_components_never_parse_arguments_and_never_import_upwards():
    import re

    src = ROOT / "src" / "midalign"
    for path in sorted(src.rglob("*.py")):
        rel = path.relative_to(src).as_posix()
        text = path.read_text()
        is_recipe = rel in RECIPES or rel.startswith("tasks/") and rel.endswith("_cli.py")
        if not is_recipe:
            assert "argparse" not in text and "HfArgumentParser" not in text, f"{rel} parses arguments"
        layer = LAYERS.get(rel.split("/")[0])
        if layer is None:
            continue
        for target in re.findall(r"^\s*from \.\.(\w+)", text, flags=re.M):
            assert LAYERS.get(target, -1) <= layer, f"{rel} imports from {target}, a layer above it"


def test_the_command_line_loads_neither_torch_nor_transformers_and_runs_as_a_module():
    code = "import sys, midalign.cli; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]  # `midalign --help` answers without loading them
    out = subprocess.run([sys.executable, "-m", "midalign", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "usage: midalign <command>" in out.stdout
    import midalign

    assert midalign.AlignmentTrainer.__name__ == "AlignmentTrainer" and "AlignmentTrainer" in dir(midalign)


def _module_level_imports(path, package_root):
    """The package modules ``path`` imports at module level (relative imports resolved)."""
    rel = path.relative_to(package_root).with_suffix("")
    parts = list(rel.parts[:-1]) if rel.name != "__init__" else list(rel.parts[:-1])
    own = ".".join(["midalign", *rel.parts]).removesuffix(".__init__")
    found = set()
    for node in ast.parse(path.read_text()).body:  # module level only: function-local imports are lazy on purpose
        if isinstance(node, ast.ImportFrom) and node.level:
            base = parts[: len(parts) - node.level + 1] if node.level > 1 else parts
            target = ".".join(["midalign", *base, *(node.module.split(".") if node.module else [])])
            found.add(target)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("midalign"):
            found.add(node.module)
    return own, found


def test_the_package_import_graph_has_no_cycle():
    src = ROOT / "src" / "midalign"
    graph = {}
    for path in src.rglob("*.py"):
        own, deps = _module_level_imports(path, src)
        graph[own] = deps
    modules = set(graph)

    def resolve(name):  # "midalign.training.lm_loss" or a package "midalign.training"
        return name if name in modules else None

    state: dict[str, int] = {}
    cycle: list[str] = []

    def visit(node, stack):
        state[node] = 1
        for dep in sorted(d for d in map(resolve, graph.get(node, ())) if d and d != node):
            if state.get(dep) == 1:
                # a package's __init__ importing its own submodules is not a cycle of the graph we care about
                if not (dep + ".").startswith(node + ".") and not node.startswith(dep + "."):
                    cycle.extend([*stack, node, dep])
                    return True
            elif state.get(dep) is None and visit(dep, [*stack, node]):
                return True
        state[node] = 2
        return False

    for node in sorted(graph):
        if state.get(node) is None and visit(node, []):
            break
    assert not cycle, " -> ".join(cycle)
