"""A user's mistake on the command line is one clear line and exit 2, never a traceback."""

import subprocess

import pytest

from tests.training.helpers import paper_run_argv


def test_missing_model_directory_is_one_clear_line(tmp_path):
    from midalign.models import load_model

    with pytest.raises(FileNotFoundError, match=r"^model '/no/such/model': no such directory") as err:
        load_model("/no/such/model")
    assert err.value.__cause__ is None and err.value.__context__ is None


def test_a_missing_default_model_says_how_to_prepare_it_and_installs_nothing(tmp_path, monkeypatch):

    from midalign.models import resolve_model_path

    monkeypatch.setenv("MIDALIGN_CACHE", str(tmp_path))

    def no_pip(*a, **k):
        raise AssertionError("nothing may be installed outside prepare-model")

    monkeypatch.setattr(subprocess, "run", no_pip)
    with pytest.raises(FileNotFoundError, match="run `midalign prepare-model` once"):
        resolve_model_path(None)


def test_cli_user_errors_are_one_line_with_exit_2(tmp_path, tiny_model_dir, data_files, capsys):
    from midalign.cli import main

    with pytest.raises(SystemExit) as err:
        main(["train", *paper_run_argv(tiny_model_dir, data_files, tmp_path / "o", "--alignment_temperature", "0")])
    assert err.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["midalign train: --alignment_temperature must be > 0, got 0.0"]
    with pytest.raises(SystemExit) as err:
        main(["train", *paper_run_argv(tiny_model_dir, data_files, tmp_path / "o", "--additional_loss_lay", "2")])
    assert err.value.code == 2  # no prefix matching of flags: a typo is an error
    assert "not used by the HfArgumentParser: ['--additional_loss_lay'" in capsys.readouterr().err
