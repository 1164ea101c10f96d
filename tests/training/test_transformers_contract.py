"""The members of transformers.Trainer that AlignmentTrainer overrides or calls, three of them private, are listed
in one place (midalign.training.hf_contract); this test fails naming the member when a transformers release
changes one, instead of a training run failing later."""

import inspect

from transformers import Trainer

from midalign.training.hf_contract import TRAINER_CONTRACT, bound_argument, contract_violations
from midalign.training.trainer import AlignmentTrainer


def test_the_installed_transformers_keeps_what_the_trainer_relies_on():
    assert contract_violations() == []
    assert {name for name, (_, private) in TRAINER_CONTRACT.items() if private} == {
        "_prepare_inputs", "_load_from_checkpoint", "evaluation_loop"}  # fmt: skip


def test_every_trainer_member_the_alignment_trainer_overrides_is_in_the_contract():
    own = {name for name, value in vars(AlignmentTrainer).items() if callable(value) and hasattr(Trainer, name)}
    own -= {"__init__"}
    assert own <= set(TRAINER_CONTRACT), f"overrides outside the contract: {sorted(own - set(TRAINER_CONTRACT))}"


def test_a_changed_member_is_named():
    class Changed(Trainer):
        def _prepare_inputs(self, batch, device):  # renamed and extended parameters
            return batch

    problems = contract_violations(Changed)
    assert problems == ["transformers.Trainer._prepare_inputs (private member) takes ('batch',), AlignmentTrainer "
                        "expects ('inputs',)"]  # fmt: skip


def test_the_eval_prefix_is_read_however_it_is_passed():
    loop = Trainer.evaluation_loop
    assert bound_argument(loop, ("dl", "Evaluation", None, None, "test"), {}, "metric_key_prefix", "eval") == "test"
    assert bound_argument(loop, ("dl", "Evaluation"), {"metric_key_prefix": "dev"}, "metric_key_prefix", "x") == "dev"
    assert bound_argument(loop, ("dl", "Evaluation"), {}, "metric_key_prefix", "eval") == "eval"
    assert "metric_key_prefix" in inspect.signature(loop).parameters
