"""Loading a base model + tokenizer, and attaching LoRA adapters."""

from __future__ import annotations

import json
import logging
import os

import torch

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_LORA_CONFIG",
    "adapter_fingerprint",
    "load_model_with_adapters",
    "resolve_model_path",
    "load_tokenizer",
    "load_model",
    "apply_lora",
    "default_lora_targets",
    "load_lora_config",
]

DEFAULT_LORA_CONFIG = {
    "r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.1,
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "bias": "none",
    "task_type": "CAUSAL_LM",
}
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def resolve_model_path(name_or_path: str | None) -> str:
    """``None`` -> the embedded default checkpoint, which ``midalign prepare-model`` prepares (nothing is installed
    here); a name that looks like a local path but is not a directory is an error, not a hub lookup."""
    from .default import prepared_model_path

    if not name_or_path:
        return prepared_model_path()
    looks_local = (
        name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1 or os.sep + os.sep in name_or_path
    )
    if looks_local and not os.path.isdir(os.path.expanduser(name_or_path)):
        raise FileNotFoundError(
            f"model {name_or_path!r}: no such directory (a hub id has the form owner/name"
            + (
                "; HF_HUB_OFFLINE is set, so hub ids cannot be fetched either"
                if os.environ.get("HF_HUB_OFFLINE") == "1"
                else ""
            )
            + ")"
        )
    return os.path.expanduser(name_or_path)


def load_tokenizer(name_or_path: str | None, *, revision: str = "main", trust_remote_code: bool = False, **kwargs):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(
        resolve_model_path(name_or_path), revision=revision, trust_remote_code=trust_remote_code, **kwargs
    )
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_model(
    name_or_path: str | None,
    *,
    torch_dtype: str | None = None,
    revision: str = "main",
    trust_remote_code: bool = False,
    attn_implementation: str | None = None,
    **kwargs,
):
    """A causal LM from safetensors weights only (no pickle)."""
    from transformers import AutoModelForCausalLM

    from .hardware import warn_if_slow_bf16

    if torch_dtype is not None and torch_dtype not in _DTYPES:
        raise ValueError(f"--torch_dtype {torch_dtype!r}: choose one of {sorted(_DTYPES)}")
    warn_if_slow_bf16(torch_dtype, f"bfloat16 weights ({name_or_path or 'the default model'})")
    model = AutoModelForCausalLM.from_pretrained(
        resolve_model_path(name_or_path),
        revision=revision,
        trust_remote_code=trust_remote_code,
        dtype=_DTYPES.get(torch_dtype or "float32"),
        attn_implementation=attn_implementation,
        use_safetensors=True,
        **kwargs,
    )
    contiguous_head_input(model)
    return model


def _contiguous(module, args):
    if args and hasattr(args[0], "is_contiguous") and not args[0].is_contiguous():
        return (args[0].contiguous(), *args[1:])
    return None


def contiguous_head_input(model) -> None:
    """Make the LM head's input contiguous. ``logits_to_keep`` hands the head a strided view of the last position
    ([B, 1, H] out of [B, T, H]); torch 2.13's CPU bf16 ``F.linear`` takes a slow path on such a view: 13.6 s
    instead of 0.05 s for [16, 1, 640] x Gemma 3's [262144, 640] head (benchmarks/bf16.py). The copy is
    B x H values; a no-op when the input is already contiguous. Idempotent."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if head is None or getattr(head, "_midalign_contiguous", False):
        return
    head.register_forward_pre_hook(_contiguous)
    head._midalign_contiguous = True


def load_lora_config(path: str | None) -> dict:
    if path is None:
        return dict(DEFAULT_LORA_CONFIG)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"--lora_config {path}: no such file")
    with open(path) as fh:
        try:
            cfg = json.load(fh)
        except json.JSONDecodeError as err:
            raise ValueError(f"--lora_config {path}:{err.lineno}: malformed JSON ({err.msg})") from None
    return {**{"task_type": "CAUSAL_LM"}, **cfg}


def default_lora_targets(model, cfg: dict) -> dict:
    """The paper's LoRA targets (the seven attention and MLP projections of a Llama-style decoder) where the model has
    them all; on an architecture that names or fuses them otherwise (gpt_neox's ``query_key_value``, phi3's
    ``qkv_proj``) peft's ``all-linear`` (every linear layer but the output head), said in
    one warning. A target list other than the default is the user's and is left as it is."""
    if list(cfg.get("target_modules") or []) != DEFAULT_LORA_CONFIG["target_modules"]:
        return cfg
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    missing = [t for t in DEFAULT_LORA_CONFIG["target_modules"] if t not in names]
    if not missing:
        return cfg
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    logger.warning(
        "LoRA: model_type=%s has no %s (the default targets name a Llama-style decoder's projections); "
        "targeting all linear layers but the output head (peft's all-linear) instead. Give --lora_config with "
        "target_modules to choose.",
        model_type,
        ", ".join(missing),
    )
    return {**cfg, "target_modules": "all-linear"}


def apply_lora(model, lora_config: str | dict | None = None, load_from: str | None = None, **kwargs):
    """Wrap ``model`` with a new trainable LoRA adapter, or a trainable copy of the adapter at ``load_from``."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if load_from:
        return PeftModel.from_pretrained(model, load_from, is_trainable=True, **kwargs)
    cfg = default_lora_targets(model, lora_config if isinstance(lora_config, dict) else load_lora_config(lora_config))
    try:
        config = LoraConfig(**cfg)
    except TypeError as err:
        raise ValueError(f"--lora_config: {err}") from None
    return get_peft_model(model, config)


def adapter_fingerprint(path: str) -> str:
    """``sha256:<hex>`` of a local adapter's config and weights (what makes its outputs), or the hub id as is."""
    import hashlib

    if not os.path.isdir(path):
        return path
    digest = hashlib.sha256()
    for name in ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin"):
        file = os.path.join(path, name)
        if os.path.isfile(file):
            digest.update(name.encode())
            with open(file, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
    return "sha256:" + digest.hexdigest()


# weight files: fingerprinted by size, mtime and (safetensors) header and sampled bytes, never read whole
_WEIGHTS = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".ckpt")
_SAMPLES, _SAMPLE_BYTES = 16, 1 << 16


# how a checkpoint was loaded when it was saved, not what it is: transformers writes these into its JSON files
_LOADING_KEYS = ("local_files_only", "is_local", "_name_or_path", "name_or_path", "_commit_hash")


def _canonical_json(data: bytes) -> bytes:
    """A small JSON file's content without the loading options transformers records (the same checkpoint prepared
    with and without ``HF_HUB_OFFLINE`` differs in ``local_files_only``); the bytes as they are when not JSON."""
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return data
    if isinstance(obj, dict):
        obj = {k: v for k, v in obj.items() if k not in _LOADING_KEYS}
    return json.dumps(obj, sort_keys=True).encode()


def model_fingerprint(path: str) -> str:
    """``sha256:<hex>`` of a local model directory, cheap enough for every run and a function of content only (the
    same weights prepared again on another machine or day give the same value): the content of its small files
    (config, tokenizer, generation config) and, per weight file, its size, safetensors header (names, dtypes, shapes,
    offsets: the first 8 bytes give its length) and 16 sampled 64 KiB blocks of its data; other weights saved to the
    same path change it. A hub id (not a local directory) is returned as is."""
    import hashlib

    if not os.path.isdir(path):
        return path
    digest = hashlib.sha256()
    for name in sorted(os.listdir(path)):
        file = os.path.join(path, name)
        if name.startswith(".") or name.endswith(".lock") or not os.path.isfile(file):
            continue
        stat = os.stat(file)
        with open(file, "rb") as fh:
            if name.endswith(".json") and stat.st_size <= 1 << 20:
                digest.update(f"{name}\0".encode() + _canonical_json(fh.read()))
                continue
            digest.update(f"{name}\0{stat.st_size}\0".encode())
            if not name.endswith(_WEIGHTS) and stat.st_size <= 64 << 20:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(chunk)
                continue
            start = 0
            if name.endswith(".safetensors") and stat.st_size >= 8:
                start = 8 + int.from_bytes(fh.read(8), "little")
                digest.update(fh.read(min(start - 8, stat.st_size)))
            span = max(stat.st_size - start, 0)
            for i in range(_SAMPLES):
                fh.seek(start + span * i // _SAMPLES)
                digest.update(fh.read(_SAMPLE_BYTES))
    return "sha256:" + digest.hexdigest()


def load_model_with_adapters(name_or_path: str | None, adapters: list[str] | None = None, **kwargs):
    """Base model plus zero or more LoRA adapters (local directories or hub ids), merged into the weights one after
    another (their deltas add up, as when stacking a language and a task adapter), in eval mode. Merged weights make
    inference as fast as the base model's (an unmerged adapter runs extra matmuls in every projection)."""
    model = load_model(name_or_path, **kwargs)
    if adapters:
        from peft import PeftModel

        for path in adapters:
            model = PeftModel.from_pretrained(model, path).merge_and_unload()
    return model.eval()
