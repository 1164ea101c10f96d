"""LoRA adapter arithmetic: a weighted sum of adapters, written as a new adapter.

Adapter ``i`` adds ``ΔW_i = s_i · B_i A_i`` to every module it adapts (``s_i = alpha / r``, or ``alpha / sqrt(r)``
with rsLoRA; per-module ``rank_pattern`` / ``alpha_pattern`` respected). :func:`combine_adapters` writes an adapter
whose update is ``Σ_i w_i ΔW_i``:

* ``method="cat"`` (exact): ``A = [A_1; …; A_n]`` and ``B = [w_1 s_1 B_1, …, w_n s_n B_n]`` with scale 1, rank
  ``Σ r_i`` (a module that an adapter does not adapt gets zero rows from it);
* ``method="svd"``: the best rank-``rank`` approximation of ``Σ w_i ΔW_i`` (truncated SVD, Eckart–Young), default
  rank ``max r_i``.

Uses: task arithmetic (``w = 1, 1``), forgetting / negation (``w = -1``), interpolation, and MAD-X-style
language + task composition — a task adapter trained in one language plus a language adapter of another (for
inference, several ``--peft-model-id`` merge in turn, which is ``cat`` with all weights 1). Adapters are read from
safetensors, or ``adapter_model.bin`` with ``torch.load(weights_only=True)`` (tensors only, as peft reads it for
inference); DoRA, embedding LoRA and ``modules_to_save`` are not
sums of low-rank updates and are refused with the reason.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass

import torch

__all__ = ["LoraAdapter", "read_adapter", "combine_adapters"]

CONFIG_NAME = "adapter_config.json"
WEIGHTS_NAME = "adapter_model.safetensors"
LEGACY_WEIGHTS_NAME = "adapter_model.bin"  # read with torch.load(weights_only=True), as peft does


@dataclass
class LoraAdapter:
    path: str
    config: dict
    modules: dict[str, tuple[torch.Tensor, torch.Tensor, float]]  # module key -> (A [r, in], B [out, r], scale)

    def delta(self, module: str) -> torch.Tensor:
        a, b, scale = self.modules[module]
        return scale * (b.double() @ a.double())


def _resolve(path: str) -> str:
    if os.path.isdir(path):
        return path
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(path, allow_patterns=[CONFIG_NAME, WEIGHTS_NAME])
    except Exception as err:
        raise FileNotFoundError(f"adapter {path!r}: not a directory and not available from the hub ({err})") from None


def _pattern_value(module: str, patterns: dict, default):
    """The value of the ``rank_pattern`` / ``alpha_pattern`` key that matches ``module`` (peft's own matcher)."""
    from peft.utils.other import get_pattern_key

    if not patterns:
        return default
    key = get_pattern_key(list(patterns), module)
    return patterns.get(key, default)


def read_adapter(path: str) -> LoraAdapter:
    """A LoRA adapter directory (or hub id) -> its modules' (A, B, scale)."""
    from safetensors.torch import load_file

    root = _resolve(path)
    cfg_path = os.path.join(root, CONFIG_NAME)
    if not os.path.isfile(cfg_path):
        raise FileNotFoundError(f"{path}: no {CONFIG_NAME} (is this a LoRA adapter directory?)")
    with open(cfg_path) as fh:
        config = json.load(fh)
    if config.get("peft_type", "LORA") != "LORA":
        raise ValueError(f"{cfg_path}: peft_type {config.get('peft_type')!r}; only LORA adapters can be combined")
    if config.get("use_dora"):
        raise ValueError(f"{cfg_path}: DoRA adapters rescale weight columns, which is not a sum of low-rank updates")
    if config.get("modules_to_save"):
        raise ValueError(f"{cfg_path}: modules_to_save {config['modules_to_save']} are full copies, not LoRA updates")
    weights_path = os.path.join(root, WEIGHTS_NAME)
    if os.path.isfile(weights_path):
        tensors = load_file(weights_path)
    elif os.path.isfile(os.path.join(root, LEGACY_WEIGHTS_NAME)):
        # as peft (and so inference) reads it: torch's restricted unpickler, tensors and containers only
        import torch

        weights_path = os.path.join(root, LEGACY_WEIGHTS_NAME)
        tensors = torch.load(weights_path, map_location="cpu", weights_only=True)
    else:
        raise FileNotFoundError(f"{path}: no {WEIGHTS_NAME} (or {LEGACY_WEIGHTS_NAME})")
    r_default, alpha_default = config.get("r", 8), config.get("lora_alpha", 8)
    modules = {}
    for key in sorted(tensors):
        if key.endswith(".lora_B.weight"):
            continue
        if not key.endswith(".lora_A.weight"):
            raise ValueError(f"{weights_path}: tensor {key!r} is not a LoRA A/B matrix; cannot combine it")
        module = key[: -len(".lora_A.weight")]
        b_key = module + ".lora_B.weight"
        if b_key not in tensors:
            raise ValueError(f"{weights_path}: {key} has no matching {b_key}")
        name = module.removeprefix("base_model.model.")
        r = _pattern_value(name, config.get("rank_pattern"), r_default)
        alpha = _pattern_value(name, config.get("alpha_pattern"), alpha_default)
        a, b = tensors[key], tensors[b_key]
        if a.shape[0] != r or b.shape[1] != r:
            raise ValueError(f"{weights_path}: {module} has rank {a.shape[0]}, but the config says r={r}")
        scale = alpha / (math.sqrt(r) if config.get("use_rslora") else r)
        modules[module] = (a, b, scale)
    if not modules:
        raise ValueError(f"{weights_path}: no LoRA matrices")
    return LoraAdapter(path, config, modules)


def _base_identity(name: str | None) -> str | None:
    """A base model's identity: a local directory by its resolved real path (relative and absolute spellings, or
    symlinks, of one directory are the same model), a hub id as written."""
    if not name:
        return name
    expanded = os.path.expanduser(name)
    return os.path.realpath(expanded) if os.path.isdir(expanded) else name


def combine_adapters(
    adapters: list[str],
    weights: list[float],
    output_dir: str,
    *,
    method: str = "cat",
    rank: int | None = None,
) -> dict:
    """Write to ``output_dir`` a LoRA adapter whose update is ``Σ_i weights[i] · ΔW(adapters[i])`` (see the module
    docstring). Returns a summary (also saved as ``composition.json``)."""
    from safetensors.torch import save_file

    if not adapters:
        raise ValueError("give at least one adapter")
    if len(weights) != len(adapters):
        raise ValueError(f"{len(adapters)} adapters but {len(weights)} weights; give one weight per adapter")
    if method not in ("cat", "svd"):
        raise ValueError(f"--method {method!r}: choose cat (exact) or svd (rank-limited)")
    loaded = [read_adapter(p) for p in adapters]
    bases = {_base_identity(a.config.get("base_model_name_or_path")) for a in loaded} - {None, ""}
    if len(bases) > 1:
        raise ValueError(f"the adapters were trained on different base models: {sorted(bases)}")
    modules = sorted({m for a in loaded for m in a.modules})
    for m in modules:
        shapes = {(a.modules[m][1].shape[0], a.modules[m][0].shape[1]) for a in loaded if m in a.modules}
        if len(shapes) > 1:
            raise ValueError(f"module {m} has different shapes across adapters: {sorted(shapes)}")
    dtype = next(iter(loaded[0].modules.values()))[0].dtype
    out: dict[str, torch.Tensor] = {}
    if method == "cat":
        if any(len({t[0].shape[0] for t in a.modules.values()}) > 1 for a in loaded):
            raise ValueError("method cat needs one rank per adapter; use --method svd for rank_pattern adapters")
        ranks = [next(iter(a.modules.values()))[0].shape[0] for a in loaded]
        new_rank = sum(ranks)
        for m in modules:
            out_f, in_f = next((a.modules[m][1].shape[0], a.modules[m][0].shape[1]) for a in loaded if m in a.modules)
            a_parts, b_parts = [], []
            for adapter, w, r in zip(loaded, weights, ranks):
                if m in adapter.modules:
                    a, b, scale = adapter.modules[m]
                    a_parts.append(a.double())
                    b_parts.append(b.double() * (w * scale))
                else:
                    a_parts.append(torch.zeros(r, in_f, dtype=torch.float64))
                    b_parts.append(torch.zeros(out_f, r, dtype=torch.float64))
            out[m + ".lora_A.weight"] = torch.cat(a_parts, 0).to(dtype).contiguous()
            out[m + ".lora_B.weight"] = torch.cat(b_parts, 1).to(dtype).contiguous()
    else:
        new_rank = rank or max(t[0].shape[0] for a in loaded for t in a.modules.values())
        for m in modules:
            delta = sum(w * a.delta(m) for a, w in zip(loaded, weights) if m in a.modules)
            u, s, vh = torch.linalg.svd(delta, full_matrices=False)
            k = min(new_rank, s.shape[0])
            b = u[:, :k] * s[:k]
            a = vh[:k]
            if k < new_rank:  # a module smaller than the rank: pad with zeros
                b = torch.cat([b, b.new_zeros(b.shape[0], new_rank - k)], 1)
                a = torch.cat([a, a.new_zeros(new_rank - k, a.shape[1])], 0)
            out[m + ".lora_A.weight"] = a.to(dtype).contiguous()
            out[m + ".lora_B.weight"] = b.to(dtype).contiguous()
    config = dict(loaded[0].config)
    # the exact module paths (peft matches a target by name suffix), so no other module gets an adapter
    targets = [m.removeprefix("base_model.model.") for m in modules]
    config.update(
        r=new_rank,
        lora_alpha=new_rank,  # scale 1: every scale and weight is folded into B
        use_rslora=False,
        rank_pattern={},
        alpha_pattern={},
        target_modules=targets,
    )
    os.makedirs(output_dir, exist_ok=True)
    save_file(out, os.path.join(output_dir, WEIGHTS_NAME))
    with open(os.path.join(output_dir, CONFIG_NAME), "w") as fh:
        json.dump(config, fh, indent=2)
    summary = {
        "adapters": [a.path for a in loaded],
        "weights": list(weights),
        "method": method,
        "rank": new_rank,
        "modules": len(modules),
    }
    with open(os.path.join(output_dir, "composition.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    return summary
