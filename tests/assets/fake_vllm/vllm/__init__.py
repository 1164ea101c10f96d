"""A stand-in for vLLM in tests of ``--engine vllm`` (the protocol, resume, provenance), not a model: the "text" of
a prompt names its length, last token and whether the adapter was requested."""

__version__ = "fake-0"


class SamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


class _Completion:
    def __init__(self, text):
        self.text = text


class _Logprob:
    def __init__(self, logprob):
        self.logprob = logprob


def fake_logprob(token: int) -> float:
    """The fake model's log-probability of a token at any position (tests recompute it by hand)."""
    return -0.5 - (token % 7)


class _Output:
    def __init__(self, text, prompt_ids=None):
        self.outputs = [_Completion(text)]
        # like vLLM: no log-probability for the first prompt token, a {token: Logprob} dict at every other position
        self.prompt_logprobs = None if prompt_ids is None else [None] + [
            {t: _Logprob(fake_logprob(t))} for t in prompt_ids[1:]]  # fmt: skip


class LLM:
    def __init__(self, model, **kwargs):
        import os

        if not os.path.isdir(model):
            raise ValueError(f"no model directory {model}")
        if kwargs.get("dtype") == "float16":
            raise ValueError("fake vllm: no float16")
        if kwargs.get("gpu_memory_utilization", 0.92) > 0.8:  # as vLLM's CPU backend beside another model process
            raise ValueError("fake vllm: available memory is less than desired CPU memory utilization (0.92)")
        self.kwargs = kwargs
        # like vLLM's own logger (its default stream is stdout) and C extensions: output on stdout, at the file
        # descriptor level too, which the worker must keep off its protocol channel
        print("INFO fake vllm: initializing engine")
        os.write(1, b"fake C-level log line\n")

    def generate(self, prompts, params, lora_request=None, use_tqdm=False):
        print("INFO fake vllm: generating")
        stops = params.kwargs.get("stop_token_ids")
        if params.kwargs.get("prompt_logprobs") is not None:
            return [_Output("", p["prompt_token_ids"]) for p in prompts]
        return [
            _Output(f"n={len(p['prompt_token_ids'])} last={p['prompt_token_ids'][-1]} lora={lora_request is not None} "
                    f"max={params.kwargs['max_tokens']} stops={stops}")
            for p in prompts
        ]  # fmt: skip
