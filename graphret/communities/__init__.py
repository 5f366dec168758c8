"""Community detection on the cosine kNN graph: graphret's CNM (Newman or Haq quality) and the
Leiden baseline, both returning a :class:`Partition`, scored by graphret's own quality
functions; the community arithmetic (terms and gains) lives in :mod:`.kernels`."""


from graphret import lazy_exports

#: the exported names and their modules, imported on first use
_EXPORTS = {
    "community_centroids": "graphret.communities.centroids",
    "CNMResult": "graphret.communities.cnm",
    "cnm": "graphret.communities.cnm",
    "replay_membership": "graphret.communities.cnm",
    "CommunityConfig": "graphret.communities.config",
    "find_communities": "graphret.communities.config",
    "Quality": "graphret.communities.kernels",
    "LeidenResult": "graphret.communities.leiden",
    "leiden": "graphret.communities.leiden",
    "Partition": "graphret.communities.partition",
    "community_totals": "graphret.communities.quality",
    "haq_modularity": "graphret.communities.quality",
    "haq_term": "graphret.communities.quality",
    "newman_modularity": "graphret.communities.quality",
    "newman_term": "graphret.communities.quality",
    "partition_quality": "graphret.communities.quality",
    "quality_function": "graphret.communities.quality",
    "renumber_membership": "graphret.communities.quality",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

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
