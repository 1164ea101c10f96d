"""Alignment primitives: pooling, contrastive losses and middle-layer capture."""

from .capture import (
    DECODER_LAYOUTS,
    DecoderLayout,
    all_layer_outputs,
    call_through,
    find_decoder,
    layer_output,
    num_decoder_layers,
    truncated,
)
from .centering import CENTERING, PooledStats, center, needs_stats, stats_from_pooled
from .losses import DIRECTIONS, DISTANCES, alignment_loss, retrieval_accuracy, similarity_matrix
from .pooling import POOLING, pool

__all__ = [
    "all_layer_outputs",
    "CENTERING",
    "PooledStats",
    "center",
    "needs_stats",
    "stats_from_pooled",
    "DECODER_LAYOUTS",
    "DIRECTIONS",
    "DISTANCES",
    "POOLING",
    "DecoderLayout",
    "alignment_loss",
    "call_through",
    "find_decoder",
    "layer_output",
    "num_decoder_layers",
    "pool",
    "retrieval_accuracy",
    "similarity_matrix",
    "truncated",
]
