import json

import pytest

pytestmark = pytest.mark.slow


def test_quick_mode_end_to_end(tmp_path):
    from midalign.experiments.transfer import main

    result = main(
        [
            "--quick",
            "--output-dir",
            str(tmp_path / "work"),
            "--fig-dir",
            str(tmp_path / "fig"),
            "--pretrain-steps",
            "150",
            "--finetune-steps",
            "30",
        ]
    )
    summary = result["summary"]
    methods = ("baseline", "baseline_2x", "alignment")
    assert {(r["method"], r["language"]) for r in summary} == {
        (m, lang) for m in methods for lang in ("src", "sov", "cyr")
    }
    assert all(0.0 <= r["f1_mean"] <= 1.0 for r in summary)
    runs = result["runs"]
    assert [r["method"] for r in runs] == list(methods)
    assert runs[2]["final_align_loss"] is not None and runs[0]["final_align_loss"] is None
    assert len(runs[0]["retrieval_by_layer"]["sov"]) == 5  # embeddings + 4 layers
    saved = json.loads((tmp_path / "fig" / "transfer_quick.json").read_text())
    assert saved["config"]["seeds"] == [0] and saved["config"]["answer"] == "source"
    rows = [json.loads(x) for x in open(tmp_path / "work" / "seed0" / "baseline" / "train.json")]
    assert len(rows) == 600 and all(r["text"].endswith(" </s>") for r in rows)
    assert (tmp_path / "fig" / "transfer_quick.png").stat().st_size > 1000


def test_answers_copied_from_the_input(tmp_path):
    """``--answer input``: MASSIVE-style targets (values in the input's language), scored with span slot F1."""
    from midalign.experiments.transfer import main

    argv = ["--quick", "--answer", "input", "--no-long-baseline", "--pretrain-steps", "60", "--finetune-steps", "10"]
    result = main([*argv, "--output-dir", str(tmp_path / "work"), "--fig-dir", str(tmp_path / "fig")])
    assert result["config"]["answer"] == "input" and [r["method"] for r in result["runs"]] == ["baseline", "alignment"]
    rows = [json.loads(x) for x in open(tmp_path / "work" / "seed0" / "baseline" / "train.json")]
    assert all(r["text"].startswith(" None") or " : " in r["text"] for r in rows)
    assert all(0.0 <= r["f1_mean"] <= 1.0 for r in result["summary"])


def test_resumes_per_run_refuses_to_replace_results_and_takes_the_shared_flag_names(tmp_path, capsys):
    """Each (seed, method) is a resumable run; a rerun pretrains nothing; results already in --fig-dir are refused
    without --overwrite; the flags are the other experiments' (``--alignment-layer``, ``--output-dir``; the model's
    depth is ``--num-layers``: ``--layers`` is a list of layers elsewhere); another setting in the same --output-dir
    is refused."""
    from midalign.experiments.transfer import main

    argv = ["--quick", "--no-long-baseline", "--pretrain-steps", "20", "--finetune-steps", "4", "--alignment-layer",
            "1", "--num-layers", "2", "--output-dir", str(tmp_path / "work"),
            "--fig-dir", str(tmp_path / "fig")]  # fmt: skip
    first = main(argv)
    assert first["config"]["align_layer"] == 1 and first["config"]["layers"] == 2
    with pytest.raises(FileExistsError, match="transfer_quick.json holds an earlier run's results"):
        main(argv)
    capsys.readouterr()
    again = main([*argv, "--overwrite"])
    assert capsys.readouterr().out.count("done earlier") == 2 and again["runs"] == first["runs"]
    from midalign.cli import main as cli

    for old, new in (("--alignment-layer", "--align-layer"), ("--num-layers", "--layers")):
        capsys.readouterr()
        with pytest.raises(SystemExit) as err:  # the old spellings are gone: the command line says the new name
            cli(["experiment", "transfer", *[new if a == old else a for a in argv]])
        assert err.value.code == 2 and f"{new} is now spelled {old}" in capsys.readouterr().err
    with pytest.raises(ValueError, match=r"other settings \(finetune_steps: file 4 vs now 5\)"):
        main([*argv, "--finetune-steps", "5", "--overwrite"])
