"""graphret: graph-analytics retrieval for medical images.

Encoders turn images into unit-norm codes; a sparse cosine kNN graph joins similar images;
weighted-modularity communities (CNM, Leiden) organise the archive; queries grow a region
inside the best community, or search flat, by class, or by probing communities.
"""

__version__ = "0.1.0"
