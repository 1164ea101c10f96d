"""Run by tests/inference/test_distributed.py: resumable generation on a tiny model, in one process (python) or
several (torchrun). MIDALIGN_TEST_DIE_AFTER=k makes every process exit abruptly after its k-th batch."""

import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from midalign.inference import engine


def main(model_dir: str, rows_file: str, output: str) -> None:
    torch.set_num_threads(1)
    engine.init_distributed_from_env()
    die_after = int(os.environ.get("MIDALIGN_TEST_DIE_AFTER", "0"))
    if die_after:
        real, calls = engine.generate_batch, []

        def dying(*args, **kwargs):
            if len(calls) == die_after:
                os._exit(3)  # as a kill would: no cleanup, no barrier
            calls.append(1)
            return real(*args, **kwargs)

        engine.generate_batch = dying
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    with open(rows_file) as fh:
        rows = [json.loads(line) for line in fh]
    engine.run_generation(model, tokenizer, rows, output, batch_size=3, max_new_tokens=6, progress=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
