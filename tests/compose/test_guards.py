"""Composition refuses non-finite weights and bad ranks, and treats two spellings of one base path as one model."""

import os

import pytest


@pytest.mark.parametrize("flags", [["--weight", "nan"], ["--weight", "inf"], ["--method", "svd", "--rank", "-1"],
                                   ["--method", "svd", "--rank", "0"]])  # fmt: skip
def test_compose_refuses_non_finite_weights_and_bad_ranks(tmp_path, flags, capsys):
    from midalign.compose.cli import compose_main

    with pytest.raises(SystemExit) as err:
        compose_main(["--adapter", str(tmp_path / "a"), *flags, "--output", str(tmp_path / "o")])
    assert err.value.code == 2
    err_text = capsys.readouterr().err
    assert "--weight must be finite" in err_text or "--rank must be >= 1" in err_text
    assert not (tmp_path / "o").exists()


def test_compose_treats_relative_and_absolute_base_paths_as_one_model(tmp_path, tiny_model_dir, monkeypatch):
    from midalign.compose.lora import _base_identity

    monkeypatch.chdir(os.path.dirname(tiny_model_dir))
    rel = os.path.basename(tiny_model_dir)
    assert _base_identity(rel) == _base_identity(tiny_model_dir)
    assert _base_identity("google/gemma-3-270m") == "google/gemma-3-270m"
