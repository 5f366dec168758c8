"""Community detection on the cosine kNN graph: graphret's CNM (Newman or Haq quality) and the
Leiden baseline, scored by graphret's own quality functions."""

from graphret.communities.cnm import CNMResult, cnm, replay_membership
from graphret.communities.leiden import leiden
from graphret.communities.quality import (
    haq_modularity,
    haq_term,
    newman_modularity,
    newman_term,
    partition_quality,
    quality_function,
    renumber_membership,
)

__all__ = [
    "cnm",
    "CNMResult",
    "replay_membership",
    "leiden",
    "newman_modularity",
    "haq_modularity",
    "newman_term",
    "haq_term",
    "quality_function",
    "partition_quality",
    "renumber_membership",
]
