"""Quality metrics (retrieval: :mod:`graphret.metrics.retrieval`)."""

from graphret.metrics.retrieval import (
    accuracy_at_k,
    average_precision_at_k,
    mean_average_precision,
    mean_reciprocal_rank,
    precision_at_k,
    relevance,
)

__all__ = [
    "accuracy_at_k",
    "average_precision_at_k",
    "mean_average_precision",
    "mean_reciprocal_rank",
    "precision_at_k",
    "relevance",
]
