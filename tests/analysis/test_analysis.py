import json

import pytest
import torch

from midalign.analysis import mexa_alignment_score, retrieval_accuracy_at_1, sentence_embeddings
from midalign.analysis.subspaces import RunningMoments, fit_subspace, project, replace_layer_output


def test_retrieval_on_synthetic_embeddings_with_known_answers():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(10, 16, generator=g)
    assert retrieval_accuracy_at_1(a, a + 0.01 * torch.randn(10, 16, generator=g)) == 1.0
    b = a.clone()
    b[[0, 1]] = b[[1, 0]]  # two rows swapped: exactly those two fail
    assert retrieval_accuracy_at_1(a, b) == pytest.approx(0.8)
    assert mexa_alignment_score(a, b) == pytest.approx(0.8)


def test_mexa_is_stricter_than_accuracy():
    # cos: [[.90, .60, -.60], [.98, .96, 0], [.44, .80, .80]]. Row 0 retrieves its partner, but column 0 is won
    # by row 1, so MEXA rejects it; row 1 fails; row 2 ties (a failure for both).
    a = torch.tensor([[1.0, 0.0], [0.8, 0.6], [0.0, 1.0]])
    b = torch.tensor([[0.9, 0.44], [0.6, 0.8], [-0.6, 0.8]])
    assert retrieval_accuracy_at_1(a, b) == pytest.approx(1 / 3)
    assert mexa_alignment_score(a, b) == 0.0


def test_running_moments_match_batch_statistics():
    x = torch.randn(500, 6, dtype=torch.float64)
    m = RunningMoments(6)
    for chunk in x.split(37):
        m.update(chunk)
    torch.testing.assert_close(m.mean, x.mean(0))
    torch.testing.assert_close(m.covariance, torch.cov(x.T, correction=0))


def test_subspace_recovers_planted_rank_and_projects_exactly():
    g = torch.Generator().manual_seed(0)
    dim, rank, n = 20, 3, 4000
    basis, _ = torch.linalg.qr(torch.randn(dim, rank, generator=g, dtype=torch.float64))
    mu = torch.randn(dim, generator=g, dtype=torch.float64) * 5
    scales = torch.tensor([5.0, 3.0, 2.0], dtype=torch.float64)
    x = (torch.randn(n, rank, generator=g, dtype=torch.float64) * scales) @ basis.T + mu
    x_noisy = x + 1e-3 * torch.randn(n, dim, generator=g, dtype=torch.float64)
    m = RunningMoments(dim)
    m.update(x_noisy)
    sub = fit_subspace(m, share=0.999)
    assert sub.k == rank
    # points of the planted affine subspace are fixed points of the projection
    torch.testing.assert_close(project(x[:50], sub), x[:50], atol=1e-2, rtol=0)
    # a point off the subspace lands on it: projecting twice changes nothing
    off = torch.randn(5, dim, generator=g, dtype=torch.float64)
    once = project(off, sub)
    torch.testing.assert_close(project(once, sub), once)
    # mean-shifted projection keeps the given centre
    c = torch.zeros(dim, dtype=torch.float64)
    torch.testing.assert_close(project(c[None], sub, center=c)[0], c)
    assert fit_subspace(m, share=0.5).k == 1


def test_replace_layer_output_changes_only_that_layer(tokenizer):
    from midalign.models import tiny_model

    model = tiny_model("llama", vocab_size=len(tokenizer))
    ids = torch.randint(3, 500, (2, 6))
    base = model(ids).logits
    with replace_layer_output(model, 2, lambda h: h, skip_first=True):
        torch.testing.assert_close(model(ids).logits, base)
    with replace_layer_output(model, 2, lambda h: torch.zeros_like(h), skip_first=False):
        assert not torch.allclose(model(ids).logits, base)
    torch.testing.assert_close(model(ids).logits, base)  # hook removed


def test_sentence_embeddings_single_layer_equals_all_layers_and_keeps_order(tokenizer):
    from midalign.models import tiny_model

    model = tiny_model("qwen2", vocab_size=len(tokenizer))
    sents = ["a", "wake me up at nine am on friday", "play jazz", "set an alarm for seven thirty tomorrow"]
    every = sentence_embeddings(model, tokenizer, sents, None, batch_size=3)
    one = sentence_embeddings(model, tokenizer, sents, [2], batch_size=2)
    assert sorted(every) == list(range(5))
    torch.testing.assert_close(one[2], every[2], rtol=1e-4, atol=1e-5)
    alone = sentence_embeddings(model, tokenizer, [sents[1]], [2])
    torch.testing.assert_close(alone[2][0], one[2][1], rtol=1e-4, atol=1e-5)


@pytest.fixture
def parallel_file(tmp_path):
    rows = [
        {"id": i, "split": "heldout" if i < 6 else "train", "en": e, "de": d}
        for i, (e, d) in enumerate(
            [
                ("wake me up at seven", "weck mich um sieben"),
                ("play some jazz", "spiel etwas Jazz"),
                ("turn off the lights", "mach das Licht aus"),
                ("what is the weather", "wie ist das Wetter"),
                ("set an alarm", "stell einen Wecker"),
                ("call my sister", "ruf meine Schwester an"),
                ("good night", "gute Nacht"),
            ]
        )
    ]
    path = tmp_path / "parallel.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_retrieval_command_writes_tables_and_plot(tmp_path, tiny_model_dir, parallel_file, tokenizer):
    from midalign.analysis.cli import retrieval
    from midalign.models import apply_lora, load_model

    adapter = tmp_path / "adapter"
    apply_lora(
        load_model(tiny_model_dir), {"r": 4, "init_lora_weights": False, "target_modules": ["q_proj"]}
    ).save_pretrained(adapter)
    out = tmp_path / "fig"
    series = retrieval(
        [
            "--model",
            tiny_model_dir,
            "--input",
            parallel_file,
            "--split",
            "heldout",
            "--adapter",
            str(adapter),
            "--label",
            "aligned",
            "--output-dir",
            str(out),
            "--per-direction",
        ]
    )
    assert set(series) == {"base", "aligned"}
    rows = json.loads((out / "retrieval.json").read_text())
    assert {r["series"] for r in rows} == {"base", "aligned"}
    assert {(r["source"], r["target"]) for r in rows} == {("en", "de"), ("de", "en")}
    assert {r["layer"] for r in rows} == set(range(5))
    assert all(0 <= r["accuracy"] <= 1 and r["mexa"] <= r["accuracy"] + 1e-9 for r in rows)
    assert (out / "retrieval.png").stat().st_size > 1000 and (out / "retrieval.csv").is_file()


def test_subspaces_command_on_tiny_model(tmp_path, tiny_model_dir, parallel_file):
    from midalign.analysis.cli import subspaces

    out = tmp_path / "fig"
    rows = subspaces(
        [
            "--model",
            tiny_model_dir,
            "--input",
            parallel_file,
            "--output-dir",
            str(out),
            "--layers",
            "1,3",
            "--share",
            "0.99999",
        ]
    )
    assert {r["layer"] for r in rows} == {1, 3} and {r["language"] for r in rows} == {"en", "de"}
    for r in rows:  # a subspace keeping all the variance changes (almost) nothing
        assert r["ratio_own"] == pytest.approx(1.0, abs=1e-3)
        assert 1 <= r["k"] <= 32
    assert (out / "subspaces.png").stat().st_size > 1000


def test_parallel_loading_errors(tmp_path, parallel_file):
    from midalign.analysis.parallel import load_parallel

    with pytest.raises(ValueError, match="no field for languages"):
        load_parallel(parallel_file, langs=["en", "fr"])
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("x\ny\n")
    b.write_text("x\n")
    with pytest.raises(ValueError, match="line counts differ"):
        load_parallel(files=f"en={a},de={b}")
    with pytest.raises(ValueError, match="exactly one"):
        load_parallel(parallel_file, files=f"en={a}")


def test_limit_must_be_positive(parallel_file):
    """Issue 31, item 5: ``--limit -1`` no longer drops the last sentence, ``--limit 0`` no longer means "all"."""
    from midalign.analysis.parallel import load_parallel

    for bad in (-1, 0):
        with pytest.raises(ValueError, match=rf"--limit must be an integer >= 1 .*got {bad}"):
            load_parallel(parallel_file, limit=bad)
    assert len(load_parallel(parallel_file, limit=2)["en"]) == 2 and len(load_parallel(parallel_file)["en"]) == 7


def test_bad_analysis_input_is_one_line_naming_file_line_and_field(tmp_path, tiny_model_dir, parallel_file, capsys):
    """Issue 31, item 7: a later row missing a --lang field, a null field, two empty --files, subspaces --layers 99:
    file:line and the field (or the flag), one line, exit 2 -- not KeyError/TypeError/IndexError."""
    from midalign.cli import main

    rows = [json.loads(x) for x in open(parallel_file)]
    missing, null = tmp_path / "missing.jsonl", tmp_path / "null.jsonl"
    missing.write_text("".join(json.dumps(r) + "\n" for r in [rows[0], {"en": "x"}]))
    null.write_text("".join(json.dumps(r) + "\n" for r in [rows[0], rows[1], {**rows[2], "de": None}]))
    (tmp_path / "a.txt").write_text("")
    (tmp_path / "b.txt").write_text("")
    cases = [
        (["--input", str(missing), "--lang", "en,de"], f"{missing}:2: field 'de' is missing"),
        (["--input", str(null)], f"{null}:3: field 'de' is None, not a string"),
        (["--files", f"en={tmp_path / 'a.txt'},de={tmp_path / 'b.txt'}"], "no sentences"),
        (["--input", parallel_file, "--limit", "-1"], "--limit must be an integer >= 1"),
    ]
    for command in ("retrieval", "subspaces"):
        for argv, message in cases:
            with pytest.raises(SystemExit) as err:
                main(["analyze", command, "--model", tiny_model_dir, *argv, "--output-dir", str(tmp_path / "o")])
            assert err.value.code == 2 and message in capsys.readouterr().err, (command, argv)
    with pytest.raises(SystemExit) as err:
        main(["analyze", "subspaces", "--model", tiny_model_dir, "--input", parallel_file, "--layers", "99",
              "--output-dir", str(tmp_path / "o")])  # fmt: skip
    assert err.value.code == 2 and "--layers [99]: out of range; this model has layers 0..4" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_missing_matplotlib_is_named_before_any_work(tmp_path, tiny_model_dir, parallel_file, monkeypatch, capsys):
    """Issue 31, item 6: without the ``analysis`` extra, ``analyze`` names it before any work (no JSON left that
    blocks the rerun); an experiment writes its JSON and table and skips the figure with one line."""
    import sys

    from midalign.analysis.cli import retrieval
    from midalign.experiments import harness

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    with pytest.raises(SystemExit, match=r"analyze retrieval: .*matplotlib.*midalign\[analysis\].*nothing was run"):
        retrieval(["--model", tiny_model_dir, "--input", parallel_file, "--output-dir", str(tmp_path / "o")])
    assert not (tmp_path / "o").exists()
    harness.publish(str(tmp_path / "fig"), "exp", {"a": 1}, table="| a |\n", plot=lambda path: pytest.fail("drawn"))
    assert (tmp_path / "fig" / "exp.json").is_file() and (tmp_path / "fig" / "exp.md").is_file()
    assert "exp.png skipped: matplotlib is not installed" in capsys.readouterr().out
