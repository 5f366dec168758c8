"""The Ray engine: the heavy steps of a build on a Ray cluster (``build-graph --engine ray``).

* :mod:`graphret.cluster.session` connects to a cluster (or starts a local instance) and
  imports Ray lazily, so graphret works without it;
* :mod:`graphret.cluster.encode` reads the source as Ray Data blocks of rows and encodes them
  in an actor pool that holds the model once per worker (a GPU per actor where the cluster
  has GPUs);
* :mod:`graphret.cluster.knn` computes the exact kNN lists as sharded Ray tasks (a block of
  query rows against all codes each) and merges them into the lists the plain build makes.

The layer orchestrates encoders and the graph, and needs nothing from the store, so it sits
beside the store, above encoders and graph, in the import-linter contract.
"""

from graphret.cluster.session import RaySession, ray_session

__all__ = ["RaySession", "ray_session"]
