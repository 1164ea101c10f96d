"""`midalign demo` end to end on the tiny model: the paper's loss and the remedy trained side by side from one seed,
held-out retrieval raw and centered before and after each, the report written where the docs read it."""

import json

import pytest


def test_demo_trains_paper_loss_and_remedy_and_writes_the_report(tmp_path, tiny_model_dir, capsys):
    from midalign.demo import main

    results = tmp_path / "fig" / "demo.json"
    main(["--model", tiny_model_dir, "--output-dir", str(tmp_path / "demo"), "--max-steps", "2", "--batch-size", "4",
          "--grad-accum", "1", "--output", str(results)])  # fmt: skip
    report = json.loads(results.read_text())
    assert report == json.loads((tmp_path / "demo" / "demo_report.json").read_text())
    assert list(report["runs"]) == ["none", "batch"]
    n = report["heldout_sentences_per_language"]
    for kind in ("raw", "centered"):
        for value in report["retrieval_before"][kind].values():
            assert 0 <= value <= 1
    assert report["retrieval_before"]["raw"]["en->de"] * n == pytest.approx(
        round(report["retrieval_before"]["raw"]["en->de"] * n)
    )
    for center, run in report["runs"].items():
        assert (tmp_path / "demo" / center / "adapter_model" / "adapter_model.safetensors").is_file()
        assert set(run["retrieval_after"]) == {"raw", "centered"}
        assert all(x is not None for x in run["loss/align"])
    out = capsys.readouterr().out
    assert "paper loss: loss/align" in out and "--alignment_center batch: loss/align" in out
    assert "centered mean x->en" in out


def test_demo_refuses_bad_flags(tmp_path, capsys):
    from midalign.demo import main

    with pytest.raises(SystemExit):
        main(["--alignment-center", "none,sideways", "--output-dir", str(tmp_path)])
    assert "sideways" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--max-steps", "0", "--output-dir", str(tmp_path)])


def test_demo_never_replaces_an_earlier_report_unless_told(tmp_path, capsys):
    from midalign.demo import main

    results = tmp_path / "demo.json"
    results.write_text('{"earlier": true}')
    with pytest.raises(SystemExit) as err:  # refused at parse time, before any training
        main(["--output-dir", str(tmp_path / "demo"), "--output", str(results)])
    assert err.value.code == 2 and "holds an earlier run's report" in capsys.readouterr().err
    assert results.read_text() == '{"earlier": true}' and not (tmp_path / "demo").exists()
