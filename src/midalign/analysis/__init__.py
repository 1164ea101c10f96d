"""Representation analysis: per-layer sentence embeddings, cross-lingual retrieval, fact probing."""

from .embeddings import sentence_embeddings
from .facts import load_facts, probe_facts, rankc, sentence_logprobs
from .retrieval import cosine_matrix, mexa_alignment_score, retrieval_accuracy_at_1

__all__ = [
    "load_facts",
    "probe_facts",
    "rankc",
    "sentence_logprobs",
    "cosine_matrix",
    "mexa_alignment_score",
    "retrieval_accuracy_at_1",
    "sentence_embeddings",
]
