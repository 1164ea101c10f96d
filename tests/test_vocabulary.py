"""One spelling per concept: every command's parser, walked through `midalign <command> [<sub-command>]`, uses the
vocabulary of :mod:`midalign.vocabulary`; a retired spelling is one error that names the new one."""

import argparse
import contextlib
import importlib
import io
import sys

import pytest

from midalign.cli import COMMANDS
from midalign.vocabulary import FIELD_FLAGS, PAPER_ALIASES, RETIRED, check_retired, flag


class _Parser(Exception):
    pass


def _capture(fn, argv):
    """The parser ``fn(argv)`` builds (its parse is intercepted), or the sub-commands it dispatches to."""
    import midalign.dispatch

    seen = {}

    def grab(self, *a, **k):
        raise _Parser(self)

    def dispatch(prog, commands, argv, helps=None):
        seen["subs"] = commands
        raise _Parser(None)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(argparse.ArgumentParser, "parse_args", grab)
        mp.setattr(argparse.ArgumentParser, "parse_known_args", grab)
        original = midalign.dispatch.dispatch
        for module in [m for name, m in sys.modules.items() if name.startswith("midalign")]:
            if getattr(module, "dispatch", None) is original:  # imported at module level too
                mp.setattr(module, "dispatch", dispatch)
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                fn(argv)
        except _Parser as got:
            return got.args[0], seen.get("subs")
        except SystemExit:  # a command without argparse (massive extract: two file names, no options)
            return None, None
    raise AssertionError(f"{fn} built no parser for {argv}")


def all_parsers() -> dict[str, argparse.ArgumentParser]:
    from midalign.tasks.cli import _task_names

    parsers = {}
    for name, (target, _) in COMMANDS.items():
        if name == "lm-eval":  # lm-evaluation-harness's own flags, passed through
            continue
        module, function = target.split(":")
        fn = getattr(importlib.import_module(module), function)
        if name in ("infer", "eval", "export", "pairs"):
            for task in _task_names():
                try:
                    parser, subs = _capture(fn, ["--task", task])
                except ValueError:  # a verb the generation task does not have
                    continue
                if parser is None:
                    parser, _ = _capture(subs[name], []) if subs and name in subs else (None, None)
                if parser is not None:
                    parsers[f"{name} --task {task}"] = parser
            continue
        parser, subs = _capture(fn, [])
        if parser is not None:
            parsers[name] = parser
        for sub, sub_fn in (subs or {}).items():
            sub_parser, _ = _capture(sub_fn, []) if sub_fn is not None else _capture(fn, [sub])
            if sub_parser is not None:
                parsers[f"{name} {sub}"] = sub_parser
    return parsers


@pytest.fixture(scope="module")
def parsers():
    return all_parsers()


def test_every_command_is_walked(parsers):
    for expected in ("experiment sib200", "experiment powered", "experiment transfer", "xsid eval", "massive eval",
                     "sib200 infer", "infer --task nusax", "eval --task xsid", "analyze retrieval", "demo", "wmt",
                     "train", "compose", "sparse diff"):  # fmt: skip
        assert expected in parsers, expected
    assert len(parsers) > 30


def test_no_command_uses_a_retired_spelling(parsers):
    found = [(name, s) for name, p in parsers.items() for a in p._actions for s in a.option_strings if s in RETIRED]
    assert not found, f"retired spellings still in use: {found}"


def test_paper_aliases_sit_beside_the_one_name(parsers):
    for name, p in parsers.items():
        for action in p._actions:
            for s in action.option_strings:
                if s in PAPER_ALIASES:
                    assert PAPER_ALIASES[s] in action.option_strings, f"{name}: {s} without {PAPER_ALIASES[s]}"


def test_the_shared_concepts_have_one_name(parsers):
    """Where a command has the concept, it spells it so: alignment settings as `midalign train` spells them, a
    written file --output, a written folder --output-dir, languages --lang."""
    by_dest = {"pooling": "--alignment-pooling", "temperature": "--alignment-temperature",
               "remedy": "--alignment-center", "languages": "--lang", "langs": "--lang",
               "work_dir": "--output-dir", "results": "--output", "output_json": "--output"}  # fmt: skip
    for name, p in parsers.items():
        for action in p._actions:
            if action.dest in by_dest and action.option_strings:
                assert by_dest[action.dest] in action.option_strings, f"{name}: {action.option_strings}"
    for field, spelled in FIELD_FLAGS.items():
        assert flag(field) == spelled
    assert flag("test_size") == "--test-size"
    experiment = {s for a in parsers["experiment sib200"]._actions for s in a.option_strings}
    train = {s for a in parsers["train"]._actions for s in a.option_strings}
    for concept in ("--alignment-layer", "--alignment-weight", "--alignment-temperature", "--alignment-pooling",
                    "--alignment-center", "--max-steps"):  # fmt: skip
        assert concept in experiment and concept in train, concept


def test_a_retired_spelling_is_one_error_naming_the_new_one(capsys):
    from midalign.cli import main

    with pytest.raises(SystemExit) as err:
        main(["experiment", "sib200", "--work-dir", "x"])
    assert err.value.code == 2
    assert "--work-dir is now spelled --output-dir" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--langs is now spelled --lang"):
        check_retired(["--input", "f.jsonl", "--langs=en,de"], "analyze retrieval")
    check_retired(["--", "--langs"], "x")  # after `--` nothing is a flag


def test_the_paper_flags_are_the_same_setting():
    from midalign.inference.task_cli import add_model_args

    p = argparse.ArgumentParser(allow_abbrev=False)
    add_model_args(p)
    new = p.parse_args(["--model", "m", "--adapter", "a", "--adapter", "b"])
    old = p.parse_args(["--base-model-name", "m", "--peft-model-id", "a", "--peft-model-id", "b"])
    assert vars(new) == vars(old) and new.base_model_name == "m" and new.peft_model_id == ["a", "b"]
    for module in ("massive_cli", "xsid_cli"):
        p = argparse.ArgumentParser(allow_abbrev=False)
        importlib.import_module(f"midalign.tasks.{module}")._data_args(p)
        assert p.parse_args(["--split", "test"]).partition == p.parse_args(["--partition", "test"]).partition
