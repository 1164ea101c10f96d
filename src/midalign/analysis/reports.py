"""Per-layer retrieval and affine-subspace analyses over parallel sentences, returning plain tables."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from ..alignment import all_layer_outputs, num_decoder_layers
from ..inference.engine import encode_batches
from .embeddings import sentence_embeddings
from .retrieval import mexa_alignment_score, retrieval_accuracy_at_1
from .subspaces import RunningMoments, fit_subspace, perplexity, project, replace_layer_output

__all__ = ["retrieval_by_layer", "collect_token_moments", "subspace_analysis"]


def retrieval_by_layer(
    model,
    tokenizer,
    parallel: dict[str, list[str]],
    *,
    pooling: str = "mean",
    batch_size: int = 32,
    progress: bool = False,
) -> list[dict]:
    """One row per (layer, source, target) direction: accuracy@1 and the MEXA alignment score."""
    emb = {
        lang: sentence_embeddings(
            model, tokenizer, sents, None, pooling=pooling, batch_size=batch_size, progress=progress
        )
        for lang, sents in parallel.items()
    }
    rows = []
    for layer in sorted(next(iter(emb.values()))):
        for src, tgt in itertools.permutations(parallel, 2):
            a, b = emb[src][layer], emb[tgt][layer]
            rows.append(
                {
                    "layer": layer,
                    "source": src,
                    "target": tgt,
                    "accuracy": retrieval_accuracy_at_1(a, b),
                    "mexa": mexa_alignment_score(a, b),
                }
            )
    return rows


@torch.no_grad()
def collect_token_moments(
    model,
    tokenizer,
    sentences: Sequence[str],
    layers: Sequence[int],
    *,
    skip_first: bool = True,
    batch_size: int = 16,
    max_length: int = 256,
) -> dict[int, RunningMoments]:
    """Streaming mean/covariance of token representations (real tokens; the first one skipped if asked) per layer."""
    device = next(model.parameters()).device
    dim = model.config.hidden_size
    moments = {k: RunningMoments(dim) for k in layers}
    for _, enc in encode_batches(tokenizer, sentences, batch_size, max_length, device):
        mask = enc["attention_mask"].bool()
        if skip_first:
            first = mask.long().argmax(1)
            mask[torch.arange(mask.shape[0]), first] = False
        hs = all_layer_outputs(model, enc["input_ids"], enc["attention_mask"])
        for k in layers:
            moments[k].update(hs[k][mask])
    return moments


def subspace_analysis(
    model,
    tokenizer,
    parallel: dict[str, list[str]],
    *,
    layers: Sequence[int] | None = None,
    share: float = 0.9,
    skip_first: bool = True,
    batch_size: int = 16,
    progress: bool = False,
) -> list[dict]:
    """Per language and layer: k, and the perplexity ratio with layer-l states replaced by their projection onto
    the language's own subspace (``own``), other languages' subspaces (``other``, mean over them) and those
    subspaces moved to the language's own mean (``shifted``)."""
    n_layers = num_decoder_layers(model)
    layers = list(range(n_layers + 1)) if layers is None else list(layers)
    bad = [k for k in layers if not 0 <= k <= n_layers]
    if bad:
        raise ValueError(f"--layers {bad}: out of range; this model has layers 0..{n_layers} (0 = embeddings)")
    model.eval()
    subspaces = {}
    for lang, sents in tqdm(parallel.items(), desc="statistics", disable=not progress):
        moments = collect_token_moments(model, tokenizer, sents, layers, skip_first=skip_first, batch_size=batch_size)
        subspaces[lang] = {k: fit_subspace(m, share) for k, m in moments.items()}
    rows = []
    for lang, sents in tqdm(parallel.items(), desc="perplexity", disable=not progress):
        base = perplexity(model, tokenizer, sents, batch_size)
        others = [o for o in parallel if o != lang]

        def ratio(layer: int, subspace, center=None, sents=sents, base=base) -> float:
            with replace_layer_output(model, layer, lambda h: project(h, subspace, center), skip_first=skip_first):
                return perplexity(model, tokenizer, sents, batch_size) / base

        for k in layers:
            own = subspaces[lang][k]
            row = {"language": lang, "layer": k, "k": own.k, "perplexity": base, "ratio_own": ratio(k, own)}
            if others:
                row["ratio_other"] = sum(ratio(k, subspaces[o][k]) for o in others) / len(others)
                row["ratio_shifted"] = sum(ratio(k, subspaces[o][k], own.mean) for o in others) / len(others)
            rows.append(row)
    return rows
