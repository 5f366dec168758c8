"""Community analysis for data scientists: summaries, label agreement, method comparison,
central images, pictures and exports of a graph store's communities.

Start with :func:`analyse` (returns a :class:`CommunityAnalysis` whose methods return pandas
DataFrames and matplotlib Figures); the modules hold the plain functions on arrays:

* :mod:`.partitions` -- the archive graph and the partitions (stored methods, dendrogram cuts);
* :mod:`.summary` -- sizes, Newman / Haq modularity, coverage, conductance;
* :mod:`.scores` -- contingency, purity, NMI, ARI;
* :mod:`.labels` -- label composition, purity, agreement with labels, most mixed communities;
* :mod:`.compare` -- two partitions against each other;
* :mod:`.central` -- central images, community graph, neighbouring communities;
* :mod:`.images` -- pixels of stored items from the store's source;
* :mod:`.plots` -- figures; :mod:`.export` -- GraphML, Parquet, JSON, CSV.
"""

from graphret.analysis.api import CommunityAnalysis, analyse
from graphret.analysis.partitions import ArchivePartition
from graphret.analysis.scores import ari, contingency_matrix, nmi, purity

__all__ = ["analyse", "CommunityAnalysis", "ArchivePartition", "nmi", "ari", "purity", "contingency_matrix"]
