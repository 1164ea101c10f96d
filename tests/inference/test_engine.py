import copy

import pytest
import torch

from midalign.inference.engine import (
    PrefixCache,
    common_prefix_length,
    generate_batch,
    greedy_decode,
    length_sorted_batches,
)
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


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 5], [1, 2, 3]]) == 2
    # identical sequences: the last token stays each row's own (its logits give the first generated token)
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2
    assert common_prefix_length([[7, 8, 9]]) == 2
    assert common_prefix_length([[1], [1]]) == 0
    assert common_prefix_length([[1, 2], [3, 2]]) == 0
    assert common_prefix_length([]) == 0


SYSTEM = "You are a careful assistant. Answer with the slots of the command, as label colon value pairs. "
SUFFIXES = ["wake me up at nine", "play jazz in the kitchen", "a", "what is the weather like in berlin tomorrow"]


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma2"])
def test_prefix_cache_states_equal_uncached_forward(tokenizer, arch):
    """Logits of a prompt's own tokens run on the cached prefix == the same positions of one uncached forward."""
    model = tiny_model(arch, vocab_size=len(tokenizer), seed=5).eval()
    seqs = [tokenizer(SYSTEM + s, add_special_tokens=False)["input_ids"] for s in SUFFIXES]
    cache = PrefixCache(model)
    n, past = cache.lookup(seqs)
    assert n == common_prefix_length(seqs) >= 16 and past.get_seq_length() == n
    for row, s in enumerate(seqs[:2]):
        with torch.no_grad():
            full = model(input_ids=torch.tensor([s])).logits[0, n:]
            one = copy.deepcopy(past)
            one.batch_select_indices(torch.tensor([row]))
            own = model(input_ids=torch.tensor([s[n:]]), past_key_values=one, use_cache=True).logits[0]
        torch.testing.assert_close(own, full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "qwen2", "gemma2", "gemma2-window16"])
@pytest.mark.parametrize("hf", [True, False])
def test_prefix_cache_gives_the_uncached_greedy_outputs(tokenizer, arch, hf, monkeypatch):
    # gemma2: window 4096 (prompts fit, the cache is used); gemma2-window16: prompts overflow the window, where
    # padding inside the sequence would change the window's content, so the cache must not be used
    window = {"gemma2": {"sliding_window": 4096}, "gemma2-window16": {"sliding_window": 16}}.get(arch, {})
    model = tiny_model(arch.split("-")[0], vocab_size=len(tokenizer), seed=3, **window).eval()
    if arch == "gemma2-window16":
        monkeypatch.setattr(PrefixCache, "lookup", lambda *a: pytest.fail("prefix cache used past the window"))
    prompts = [SYSTEM + s for s in SUFFIXES]
    enc = tokenizer(prompts[:1], return_tensors="pt", add_special_tokens=False)
    eos = [greedy_decode(model, enc["input_ids"], enc["attention_mask"], 3, set())[0][2]]
    kw = {"max_new_tokens": 10, "eos_token_id": eos, "use_hf_generate": hf}
    ref = generate_batch(model, tokenizer, prompts, prefix_cache=False, **kw)
    shared = PrefixCache(model)
    assert shared.prime([tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]) >= 16
    assert ref[1] < 10 * len(prompts)  # a row stopped early
    assert generate_batch(model, tokenizer, prompts, prefix_cache=shared, **kw) == ref
    assert generate_batch(model, tokenizer, prompts, prefix_cache=True, **kw) == ref  # per-batch cache
    assert generate_batch(model, tokenizer, prompts[1:3], prefix_cache=shared, **kw) == (
        generate_batch(model, tokenizer, prompts[1:3], prefix_cache=False, **kw)
    )


def test_prefix_cache_reuses_stored_prefixes(tokenizer):
    model = tiny_model("llama", vocab_size=len(tokenizer), seed=1).eval()
    tok = lambda texts: [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]  # noqa: E731
    shared = PrefixCache(model, min_tokens=16, max_entries=2)
    primed = shared.prime(tok([SYSTEM + s for s in SUFFIXES]))
    # a batch whose prompts share more than the primed prefix still starts from the primed states
    n, cache = shared.lookup(tok([SYSTEM + "play jazz", SYSTEM + "play rock"]))
    assert n == primed and cache.get_seq_length() == primed and len(shared._entries) == 1
    assert cache.layers[0].keys.shape[0] == 2  # one row per prompt
    # ... but not when they share min_tokens more: that longer prefix is computed and stored
    longer = SYSTEM + "Then tell me which of these you found, one per line, and nothing else. "
    n, _ = shared.lookup(tok([longer + "play jazz", longer + "play rock"]))
    assert n >= primed + 16 and len(shared._entries) == 2
    shared._entries.pop(list(shared._entries)[-1])
    # prompts sharing too little get no cache; another long prefix is computed and stored
    assert shared.lookup(tok(["hello there", "goodbye"])) == (0, None)
    other = "Translate the following sentence from German into English, keeping names unchanged. "
    n2, _ = shared.lookup(tok([other + "a", other + "b c"]))
    assert n2 > 16 and len(shared._entries) == 2
    shared.lookup(
        tok(["Summarise the following news article in one sentence of plain English please. " + x for x in ("a", "b")])
    )
    assert len(shared._entries) == 2  # the oldest entry was dropped
