"""Community detection on the cosine kNN graph: graphret's CNM (Newman or Haq quality) and the
Leiden baseline, both returning a :class:`Partition`, scored by graphret's own quality
functions; the community arithmetic (terms and gains) lives in :mod:`.kernels`."""

from graphret.communities.centroids import community_centroids
from graphret.communities.cnm import CNMResult, cnm, replay_membership
from graphret.communities.config import CommunityConfig, find_communities
from graphret.communities.kernels import Quality
from graphret.communities.leiden import LeidenResult, leiden
from graphret.communities.partition import Partition
from graphret.communities.quality import (
    community_totals,
    haq_modularity,
    haq_term,
    newman_modularity,
    newman_term,
    partition_quality,
    quality_function,
    renumber_membership,
)

__all__ = [
    "CNMResult",
    "CommunityConfig",
    "LeidenResult",
    "Partition",
    "Quality",
    "cnm",
    "community_centroids",
    "community_totals",
    "find_communities",
    "haq_modularity",
    "haq_term",
    "leiden",
    "newman_modularity",
    "newman_term",
    "partition_quality",
    "quality_function",
    "renumber_membership",
    "replay_membership",
]
