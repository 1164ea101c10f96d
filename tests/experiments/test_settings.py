"""Every experiment's settings are validated before any run -- a recorded setting is
always the one used (no ``cfg.layer or default``) -- and ``--quick`` has its own default work dir."""

import pytest


@pytest.mark.parametrize("flag,value", [("--alignment-layer", "0"), ("--test-size", "-1"), ("--test-size", "0"),
                                        ("--max-steps", "0"), ("--batch-size", "0")])  # fmt: skip
@pytest.mark.parametrize("experiment", ["xsid", "methods"])
def test_xsid_and_methods_refuse_bad_settings_before_any_run(tmp_path, experiment, flag, value):
    import importlib

    main = importlib.import_module(f"midalign.experiments.{experiment}").main
    with pytest.raises(ValueError, match=flag):
        main(["--quick", flag, value, "--output-dir", str(tmp_path / "w"), "--fig-dir", str(tmp_path / "f")])
    assert not (tmp_path / "w").exists() and not (tmp_path / "f").exists()


def test_methods_refuses_a_zero_dev_size(tmp_path):
    from midalign.experiments.methods import MethodsBenchConfig

    with pytest.raises(ValueError, match="--dev-size must be an integer >= 1, got 0"):
        MethodsBenchConfig.quick(dev_size=0)


def test_xsid_layer_beyond_the_model_is_refused_before_training(tmp_path, tiny_model_dir, xsid_dir, monkeypatch):
    from midalign.experiments import xsid

    monkeypatch.setattr(xsid, "train", lambda argv: pytest.fail("trained"))
    with pytest.raises(ValueError, match=r"--alignment-layer 99: this model has 4 decoder layers; choose 1\.\.4"):
        xsid.main(["--quick", "--model", tiny_model_dir, "--data-dir", xsid_dir, "--alignment-layer", "99",
                   "--output-dir", str(tmp_path / "w"), "--fig-dir", str(tmp_path / "f")])  # fmt: skip


@pytest.mark.parametrize("argv,message", [
    (["--alignment-layer", "0"], r"--alignment-layer 0: the model has 4 decoder layers"),
    (["--alignment-layer", "5"], r"--alignment-layer 5: the model has 4 decoder layers"),
    (["--finetune-steps", "0"], r"--finetune-steps must be an integer >= 1, got 0"),
    (["--pairs", "-1"], r"--pairs must be an integer >= 1, got -1"),
])  # fmt: skip
def test_transfer_refuses_bad_settings_before_any_run(tmp_path, argv, message):
    from midalign.experiments.transfer import main

    with pytest.raises(ValueError, match=message):
        main(["--quick", *argv, "--output-dir", str(tmp_path / "w"), "--fig-dir", str(tmp_path / "f")])
    assert not (tmp_path / "w").exists()


def test_transfer_layer_is_the_one_recorded_and_quick_has_its_own_work_dir(tmp_path, monkeypatch):
    from midalign.experiments import transfer

    assert transfer.TransferConfig(align_layer=1).layer == 1  # not the default (2): 0/None no longer conflated
    assert transfer.TransferConfig().layer == 2
    seen = []
    monkeypatch.setattr(transfer, "run_benchmark", lambda cfg, work_dir, *a, **k: seen.append(work_dir))
    transfer.main(["--quick"])
    transfer.main([])
    assert seen == ["outputs/bench_transfer_quick", "outputs/bench_transfer"]
