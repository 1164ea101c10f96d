"""Run a decoder-only causal LM up to decoder layer k and return that layer's output.

Per-architecture knowledge (where the decoder stack lives) is this module's one table, ``DECODER_LAYOUTS``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import torch
from torch import nn

T = TypeVar("T")

__all__ = [
    "all_layer_outputs",
    "call_through",
    "DecoderLayout",
    "DECODER_LAYOUTS",
    "find_decoder",
    "num_decoder_layers",
    "truncated",
    "layer_output",
]


@dataclass(frozen=True)
class DecoderLayout:
    """Attribute names, relative to the ``*ForCausalLM`` module, of its decoder stack."""

    decoder: str = "model"  # the *Model holding embeddings, layers and final norm
    layers: str = "layers"  # nn.ModuleList of decoder layers
    norm: str = "norm"  # final norm applied after the last layer


_HF_DEFAULT = DecoderLayout()
# model_type -> layout. Adding an architecture is one line here and one tiny config in midalign.models.tiny (a test
# fails until both exist, and every type here trains by default in a test). gpt2 left the table: the supervised-only
# task loss (logits at target positions, decoder truncated after the last target) does not equal its full loss there.
DECODER_LAYOUTS: dict[str, DecoderLayout] = {
    "llama": _HF_DEFAULT,
    "qwen2": _HF_DEFAULT,
    "qwen3": _HF_DEFAULT,
    "mistral": _HF_DEFAULT,
    "gemma": _HF_DEFAULT,
    "gemma2": _HF_DEFAULT,
    "gemma3_text": _HF_DEFAULT,  # Gemma 3 270M/1B (text-only); layer_output == hidden_states[k] checked on 270M
    "phi3": _HF_DEFAULT,
    "olmo2": _HF_DEFAULT,
    "gpt_neox": DecoderLayout(decoder="gpt_neox", layers="layers", norm="final_layer_norm"),
}


def _refuse_unsupported(model: nn.Module) -> None:
    """Layer capture swaps sub-modules of the decoder (:func:`truncated`) and the wrapped module's ``forward``
    (:func:`call_through`) for one call. That is correct for a plain HF model and under the wrappers that call the
    module's own ``forward`` — peft, DDP, DeepSpeed — and silently wrong under wrappers that trace or shard the module
    (torch.compile, FSDP) or replicate it (DataParallel): those are refused here."""
    reason = None
    if isinstance(model, nn.DataParallel):
        reason = "nn.DataParallel replicates the module per device; launch with torchrun (DDP) instead"
    elif hasattr(model, "_orig_mod") and type(model).__name__ == "OptimizedModule":
        reason = "torch.compile traces the module once, so swapped layers would not be seen; compile after capture"
    elif type(model).__name__ in ("FullyShardedDataParallel",) or any(
        cls.__name__ == "FSDPModule" for cls in type(model).__mro__
    ):
        reason = "FSDP shards parameters across the layers that capture truncates; use DDP or DeepSpeed ZeRO-2"
    if reason:
        raise NotImplementedError(
            f"middle-layer capture does not support a {type(model).__name__}: {reason}. Supported: plain "
            "transformers causal LMs, peft models, DDP and DeepSpeed engines."
        )


def _unwrap(model: nn.Module) -> nn.Module:
    """Strip DDP / DeepSpeed (``.module``) and peft (``get_base_model``) wrappers down to the ``*ForCausalLM``."""
    while True:
        _refuse_unsupported(model)
        if hasattr(model, "get_base_model") and callable(model.get_base_model):  # peft.PeftModel
            inner = model.get_base_model()
        elif isinstance(getattr(model, "module", None), nn.Module):  # DDP, DeepSpeedEngine
            inner = model.module
        else:
            return model
        if inner is model:
            return model
        model = inner


def find_decoder(model: nn.Module) -> tuple[nn.Module, DecoderLayout]:
    """Return the decoder stack (``*Model``) of a causal LM, plain or wrapped, and its layout."""
    causal_lm = _unwrap(model)
    config = getattr(causal_lm, "config", None)
    model_type = getattr(config, "model_type", None)
    layout = DECODER_LAYOUTS.get(model_type)
    if layout is None:
        raise NotImplementedError(
            f"layer capture does not know where the decoder layers of model_type={model_type!r} live; "
            f"supported: {sorted(DECODER_LAYOUTS)}. Add a line to midalign.alignment.capture.DECODER_LAYOUTS."
        )
    decoder = getattr(causal_lm, layout.decoder)
    if not isinstance(getattr(decoder, layout.layers, None), nn.ModuleList):
        raise TypeError(f"{type(decoder).__name__}.{layout.layers} is not an nn.ModuleList of decoder layers")
    return decoder, layout


def num_decoder_layers(model: nn.Module) -> int:
    decoder, layout = find_decoder(model)
    return len(getattr(decoder, layout.layers))


def _check_layer(layer: int, n_layers: int) -> None:
    if isinstance(layer, bool) or not isinstance(layer, int) or not 1 <= layer <= n_layers:
        raise ValueError(
            f"alignment layer must be an integer in 1..{n_layers} (1-based: layer k is the output of the k-th "
            f"decoder layer, hidden_states[k]); got {layer!r}"
        )


@contextlib.contextmanager
def truncated(model: nn.Module, layer: int) -> Iterator[nn.Module]:
    """Within the context, the decoder stack of ``model`` holds only layers 1..``layer`` and its final norm is the
    identity, so that its ``last_hidden_state`` is the raw output of decoder layer ``layer``.

    The model's own forward still runs (masks, rotary embeddings, embedding scaling stay exactly the
    architecture's own); the layers above ``layer``, the final norm and the LM head never run. Parameters are not
    touched, so optimizers, DDP and DeepSpeed keep their references. Yields the decoder stack. Not re-entrant and
    not for concurrent use from several threads on one model (both are refused); torch.compile, FSDP and
    DataParallel are refused too (see :func:`_refuse_unsupported`).
    """
    decoder, layout = find_decoder(model)
    if getattr(decoder, "_midalign_truncated", False):
        # a nested call would restore the wrong stack, and another thread would see a truncated model
        raise RuntimeError("truncated() is already active on this model (nested, or from another thread)")
    layers = getattr(decoder, layout.layers)
    _check_layer(layer, len(layers))
    norm = getattr(decoder, layout.norm)
    # Assigning Modules directly would register them; _modules keeps the original objects in place.
    decoder.__dict__["_midalign_truncated"] = True
    decoder._modules[layout.layers] = nn.ModuleList(list(layers)[:layer])
    decoder._modules[layout.norm] = nn.Identity()
    try:
        yield decoder
    finally:
        decoder._modules[layout.layers] = layers
        decoder._modules[layout.norm] = norm
        decoder.__dict__.pop("_midalign_truncated", None)


def call_through(model: nn.Module, fn: Callable[[nn.Module], T], **inputs: torch.Tensor) -> T:
    """``fn(inner)`` run inside exactly one call of ``model``'s distributed wrapper (DDP / DeepSpeed), so that the
    wrapper's forward bookkeeping (gradient sync) sees the computation; ``fn(model)`` when not wrapped.

    DDP accepts one forward per backward: several computations of one micro-batch must share one call.
    ``inputs`` are passed to the wrapper (it moves / inspects them) and otherwise ignored.
    """
    _refuse_unsupported(model)
    inner = getattr(model, "module", None)
    if not isinstance(inner, nn.Module):
        return fn(model)
    had_own = "forward" in inner.__dict__
    saved = inner.__dict__.get("forward")

    def restore() -> None:
        if had_own:
            inner.forward = saved
        else:
            inner.__dict__.pop("forward", None)

    def redirected(*args, **kwargs):
        restore()  # fn may call the inner module itself
        return fn(inner)

    inner.forward = redirected
    try:
        return model(**inputs)
    finally:
        restore()


def layer_output(
    model: nn.Module,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor | None,
    layer: int,
) -> torch.Tensor:
    """Output of decoder layer ``layer`` (1-based; ``hidden_states[layer]`` of a full forward with
    ``hidden_states[0]`` the embeddings) — the un-normalised residual stream.

    Only the embeddings and decoder layers 1..``layer`` run: no later layer, no final norm, no LM head. (For
    ``layer == num_hidden_layers`` this is the last layer's raw output; transformers' ``hidden_states[-1]`` is
    after the final norm.) Works for plain HF causal LMs, peft-wrapped ones (adapters active), and models wrapped by
    DDP or DeepSpeed (the call goes through the wrapper, see :func:`call_through`). Gradient checkpointing and
    ``torch.no_grad()`` are fine: nothing is patched while the backward pass recomputes.

    Args:
        input_ids: shape [B, T].
        attention_mask: shape [B, T] (1 = token, 0 = padding) or None.
    Returns:
        shape [B, T, H].
    """

    def run(inner: nn.Module) -> torch.Tensor:
        with truncated(inner, layer) as decoder:
            return decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state

    return call_through(model, run, input_ids=input_ids, attention_mask=attention_mask)


def all_layer_outputs(
    model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor | None
) -> tuple[torch.Tensor, ...]:
    """Embeddings and the raw output of every decoder layer in one pass, without the final norm or LM head.

    Returns:
        L + 1 tensors of shape [B, T, H]; entry k equals ``layer_output(model, ..., k)`` (entry 0: embeddings).
    """
    n_layers = num_decoder_layers(model)

    def run(inner: nn.Module) -> tuple[torch.Tensor, ...]:
        with truncated(inner, n_layers) as decoder:
            out = decoder(
                input_ids=input_ids, attention_mask=attention_mask, use_cache=False, output_hidden_states=True
            )
        return tuple(out.hidden_states)

    return call_through(model, run, input_ids=input_ids, attention_mask=attention_mask)
