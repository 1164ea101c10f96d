"""The vLLM side of ``--engine vllm``: run by the Python of the vLLM environment (``make vllm-env``), never imported
by midalign (vLLM pins a transformers older than ours, so it lives in its own environment).

Protocol, one JSON object per line: the first line on stdin is the setup ``{"model", "adapter" (a LoRA directory
or null), "max_lora_rank", "dtype", "max_model_len", "max_new_tokens", "stop_token_ids", "seed",
"memory_utilization" (optional)}``; the worker
answers ``{"ready": true, "vllm": version}``. Then each line ``{"prompt_token_ids": [[int, ...], ...]}`` is
answered by ``{"texts": [str, ...]}`` (greedy, special tokens skipped, in the order given), and each line
``{"score": [[prompt ids, continuation ids], ...]}`` by ``{"logprobs": [float, ...]}``: the summed log-probability
of each continuation's tokens after its prompt (vLLM's prompt log-probabilities of prompt + continuation, exact
label scoring). An error is answered
by ``{"error": message}`` and ends the worker. The prompts arrive tokenized, so both engines see the same tokens.

Only protocol lines reach the client's pipe: vLLM logs to stdout by default (and its engine process, C extensions
and Triton print there too), so the worker keeps a private copy of file descriptor 1 for the protocol and points
fd 1 and ``sys.stdout`` at stderr before importing vLLM.
"""

import json
import os
import sys

_PROTOCOL = None


def _reply(obj) -> None:
    _PROTOCOL.write(json.dumps(obj, ensure_ascii=False) + "\n")
    _PROTOCOL.flush()


def _claim_stdout() -> None:
    global _PROTOCOL
    _PROTOCOL = os.fdopen(os.dup(1), "w", encoding="utf-8")
    sys.stdout.flush()
    os.dup2(2, 1)  # everything else written to fd 1 (child processes inherit it) goes to stderr
    sys.stdout = sys.stderr


def main() -> int:
    _claim_stdout()
    setup = json.loads(sys.stdin.readline())
    try:
        import torch
        import vllm
        from vllm import LLM, SamplingParams

        # On the CPU backend this fraction of the machine's memory is reserved (KV cache included) at start-up, and
        # vLLM refuses to start when less is free: its default 0.92 fails beside any other process holding a model
        # (our engine in the same benchmark, a training run). Half leaves room; a GPU keeps vLLM's default.
        memory = setup.get("memory_utilization") or (None if torch.cuda.is_available() else 0.5)
        kwargs = dict(model=setup["model"], dtype=setup.get("dtype", "float32"), seed=setup.get("seed", 0),
                      max_model_len=setup.get("max_model_len", 2048), enforce_eager=True)  # fmt: skip
        if memory:
            kwargs["gpu_memory_utilization"] = float(memory)
        lora = None
        if setup.get("adapter"):
            from vllm.lora.request import LoRARequest

            kwargs.update(enable_lora=True, max_lora_rank=setup.get("max_lora_rank", 16), max_loras=1)
            lora = LoRARequest("adapter", 1, setup["adapter"])
        llm = LLM(**kwargs)
        stops = setup.get("stop_token_ids") or None
        params = SamplingParams(temperature=0.0, max_tokens=setup["max_new_tokens"], stop_token_ids=stops,
                                skip_special_tokens=True)  # fmt: skip
    except Exception as err:  # reported to the client, which names what failed
        _reply({"error": f"{type(err).__name__}: {err}"})
        return 1
    _reply({"ready": True, "vllm": getattr(vllm, "__version__", "?")})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            if "score" in request:
                _reply({"logprobs": _score(llm, SamplingParams, request["score"], lora)})
                continue
            prompts = [{"prompt_token_ids": p} for p in request["prompt_token_ids"]]
            outputs = llm.generate(prompts, params, lora_request=lora, use_tqdm=False)
            _reply({"texts": [o.outputs[0].text for o in outputs]})
        except Exception as err:
            _reply({"error": f"{type(err).__name__}: {err}"})
            return 1
    return 0


def _score(llm, sampling_params, pairs, lora) -> list[float]:
    """Summed log-probabilities of each continuation after its prompt, from vLLM's prompt log-probabilities
    (``prompt_logprobs=0``: the log-probability of each given token, at every position but the first)."""
    params = sampling_params(temperature=0.0, max_tokens=1, prompt_logprobs=0)
    prompts = [{"prompt_token_ids": list(p) + list(c)} for p, c in pairs]
    outputs = llm.generate(prompts, params, lora_request=lora, use_tqdm=False)
    sums = []
    for (prompt, cont), out in zip(pairs, outputs):
        per_position = out.prompt_logprobs
        sums.append(sum(per_position[len(prompt) + j][tok].logprob for j, tok in enumerate(cont)))
    return sums


if __name__ == "__main__":
    sys.exit(main())
