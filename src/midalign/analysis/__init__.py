"""Representation analysis: per-layer sentence embeddings and cross-lingual retrieval."""

from .embeddings import sentence_embeddings
from .retrieval import cosine_matrix, mexa_alignment_score, retrieval_accuracy_at_1

__all__ = ["cosine_matrix", "mexa_alignment_score", "retrieval_accuracy_at_1", "sentence_embeddings"]
