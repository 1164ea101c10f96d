import pytest

from midalign.inference.engine import generate_batch, greedy_decode, length_sorted_batches
from midalign.models import tiny_model


def test_length_sorted_batches():
    assert length_sorted_batches([3, 9, 1, 9, 5], 2) == [[1, 3], [4, 0], [2]]


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_greedy_decode_equals_hf_generate(tokenizer, arch):
    model = tiny_model(arch, vocab_size=len(tokenizer), seed=3)
    prompts = ["wake me up", "play some jazz music in the kitchen now", "a", "what is the weather like in berlin"]
    # choose as end token the 3rd token row 0 generates freely: row 0 then stops early, the others may not
    enc = tokenizer(prompts[:1], return_tensors="pt", add_special_tokens=False)
    eos = [greedy_decode(model, enc["input_ids"], enc["attention_mask"], 3, set())[0][2]]
    ours, n1 = generate_batch(model, tokenizer, prompts, max_new_tokens=12, eos_token_id=eos, use_hf_generate=False)
    ref, n2 = generate_batch(model, tokenizer, prompts, max_new_tokens=12, eos_token_id=eos, use_hf_generate=True)
    assert ours == ref and n1 == n2
    assert n1 < 12 * len(prompts)  # at least one sequence stopped early, so rows really left the batch
