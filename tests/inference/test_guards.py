"""Inference: generation stops where the model ends its turn; bad limits refused; one output path, one run."""

import pytest

from midalign.locking import LockedError, exclusive


def test_generation_stops_at_the_model_end_of_turn_too(tokenizer):
    from midalign.inference.engine import stop_token_ids
    from midalign.models import tiny_model

    model = tiny_model("llama", vocab_size=len(tokenizer), seed=0)
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, 7]
    assert stop_token_ids(model, tokenizer) == sorted({tokenizer.eos_token_id, 7})
    model.generation_config.eos_token_id = 9
    assert stop_token_ids(model, tokenizer) == sorted({tokenizer.eos_token_id, 9})


@pytest.mark.parametrize("flags", [["--limit", "-1"], ["--batch-size", "0"], ["--batch-size", "-3"]])
def test_infer_refuses_non_positive_limit_and_batch_size(flags, capsys):
    import argparse

    from midalign.inference.task_cli import add_model_args

    p = argparse.ArgumentParser()
    add_model_args(p)
    with pytest.raises(SystemExit):
        p.parse_args(flags)
    assert "expected an integer >= 1" in capsys.readouterr().err


def test_a_second_inference_run_on_one_output_path_is_refused(tmp_path, tokenizer):
    from midalign.inference.scoring import run_scoring
    from midalign.models import tiny_model

    model = tiny_model("llama", vocab_size=len(tokenizer), seed=0).eval()
    out = str(tmp_path / "pred.jsonl")
    with exclusive(out, directory=False, what="output file"):
        with pytest.raises(LockedError, match="pred.jsonl is in use by another run"):
            run_scoring(model, tokenizer, [{"id": 0, "prompt": "a"}], [" b"], out)
    assert len(run_scoring(model, tokenizer, [{"id": 0, "prompt": "a"}], [" b"], out)) == 1
