"""One flag vocabulary across commands: `--model`, `--adapter`, `--split` everywhere, the paper's and the old names
(`--base-model-name`, `--peft-model-id`, `--partition`, `--base`) kept as working aliases of the same setting."""

import argparse

import pytest


def _parser(add):
    p = argparse.ArgumentParser(allow_abbrev=False)
    add(p)
    return p


def test_task_commands_accept_new_and_old_names():
    from midalign.inference.task_cli import add_model_args

    p = _parser(add_model_args)
    new = p.parse_args(["--model", "m", "--adapter", "a", "--adapter", "b"])
    old = p.parse_args(["--base-model-name", "m", "--peft-model-id", "a", "--peft-model-id", "b"])
    assert vars(new) == vars(old) and new.base_model_name == "m" and new.peft_model_id == ["a", "b"]


@pytest.mark.parametrize("module", ["massive_cli", "xsid_cli"])
def test_split_and_partition_are_one_flag(module):
    import importlib

    mod = importlib.import_module(f"midalign.tasks.{module}")
    p = _parser(mod._data_args)
    assert p.parse_args(["--split", "test"]).partition == p.parse_args(["--partition", "test"]).partition == "test"


def test_sparse_takes_model_or_base(tmp_path, capsys):
    from midalign.compose.cli import sft_main

    for flag in ("--model", "--base"):  # parsed, then refused for the missing --tuned: the flag itself is known
        with pytest.raises(SystemExit):
            sft_main(["diff", flag, "m", "--output", str(tmp_path / "o"), "--k", "1"])
        assert "--tuned" in capsys.readouterr().err
