"""Anisotropy diagnosis: hand-made anisotropic pairs, the verdict, and the command on a tiny model."""

import math

import pytest
import torch

from midalign.analysis.anisotropy import anisotropy_stats, verdict


def _anisotropic(n=16, h=8, shared=1000.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    small = torch.randn(n, h, generator=g)
    base = torch.zeros(h)
    base[0] = shared
    return base + small, base + small + 0.05 * torch.randn(n, h, generator=g)


def test_a_shared_direction_puts_the_loss_at_chance_and_centering_recovers_it():
    p0, p1 = _anisotropic()
    r = anisotropy_stats(p0, p1, batch_size=8)
    assert r["pair_cos"] > 0.999 and r["unrelated_cos"] > 0.999
    assert r["top1_share"] > 0.99
    assert r["infonce_init"] == pytest.approx(math.log(8), abs=0.01)
    assert r["infonce_init_centered"] < 0.5
    assert r["centered_pair_cos"] > 0.9 and abs(r["centered_unrelated_cos"]) < 0.2
    assert r["retrieval_centered"] == 1.0
    assert r["infonce_init_standardized"] < 0.5
    assert r["verdict"].startswith("the loss starts at chance") and "--alignment_center" in r["verdict"]


def test_a_length_driven_massive_dimension_defeats_batch_centering_but_not_standardizing():
    # SmolLM2 + mean pooling: after batch centering one huge dimension (size ~ 1/length, unrelated to the pairing)
    # dominates; standardizing puts it back on the scale of the others.
    g = torch.Generator().manual_seed(0)
    small = torch.randn(16, 8, generator=g)
    p0, p1 = small.clone(), small + 0.05 * torch.randn(16, 8, generator=g)
    p0[:, 0] = 1000 + 300 * torch.randn(16, generator=g)
    p1[:, 0] = 1000 + 300 * torch.randn(16, generator=g)  # independent of p0's: lengths differ across languages
    r = anisotropy_stats(p0, p1, batch_size=8)
    assert r["infonce_init_centered"] > 1.0 and r["infonce_init_standardized"] < 0.5
    assert "--alignment_center standardize" in r["verdict"]


def test_isotropic_pairs_are_seen():
    g = torch.Generator().manual_seed(1)
    p0 = torch.randn(16, 8, generator=g)
    r = anisotropy_stats(p0, p0 + 0.01 * torch.randn(16, 8, generator=g))
    assert r["infonce_init"] < 0.1 and r["retrieval_raw"] == 1.0
    assert verdict(r).startswith("the loss sees the pairs")


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="batch-size must be >= 2"):
        anisotropy_stats(torch.randn(4, 3), torch.randn(4, 3), batch_size=1)
    with pytest.raises(ValueError, match="N >= 2"):
        anisotropy_stats(torch.randn(1, 3), torch.randn(1, 3))


def test_command_writes_table_and_figure(tmp_path, tiny_model_dir, capsys):
    from midalign.analysis.cli import main
    from tests.conftest import ROOT

    out = main(["anisotropy", "--model", tiny_model_dir, "--input", str(ROOT / "data_example" / "parallel.jsonl"),
                "--lang", "en,de,zh", "--limit", "16", "--layers", "1,2", "--output-dir", str(tmp_path)])  # fmt: skip
    rows = out["base"]
    assert [r["layer"] for r in rows] == [1, 2] and rows[0]["n"] == 32  # en<->de and en<->zh
    assert (tmp_path / "anisotropy.png").stat().st_size > 0
    assert "verdict" in (tmp_path / "anisotropy.csv").read_text()
    assert "layer  2" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["anisotropy", "--model", tiny_model_dir, "--input", str(ROOT / "data_example" / "parallel.jsonl"),
              "--loss-batch-size", "1"])  # fmt: skip


def test_command_refuses_to_replace_earlier_results(tmp_path, tiny_model_dir, capsys):
    from midalign.cli import main
    from tests.conftest import ROOT

    (tmp_path / "anisotropy.csv").write_text("earlier")
    data = str(ROOT / "data_example" / "parallel.jsonl")
    argv = ["analyze", "anisotropy", "--model", tiny_model_dir, "--input", data, "--limit", "8",
            "--layers", "1", "--output-dir", str(tmp_path)]  # fmt: skip
    with pytest.raises(SystemExit) as err:
        main(argv)
    assert err.value.code == 2 and "anisotropy.csv holds an earlier run's results" in capsys.readouterr().err
    assert (tmp_path / "anisotropy.csv").read_text() == "earlier"
    main([*argv, "--overwrite"])
    assert "verdict" in (tmp_path / "anisotropy.csv").read_text()
