"""Quality and cost metrics.

* retrieval (:mod:`graphret.metrics.retrieval`): relevance, precision@K, AP@K / mAP, MRR, Acc@k;
* multi-label (:mod:`graphret.metrics.multilabel`): set-match / any-shared relevance, ACG@K, ACG_p@K;
* graded (:mod:`graphret.metrics.graded`): ordinal relevance, DCG@K, nDCG@K;
* cost (:mod:`graphret.metrics.cost`): recall@K against flat, queries/s, latency percentiles,
  fraction scanned;
* curves (:mod:`graphret.metrics.curves`): precision@K for K = 1..K_max, precision-recall;
* classification (:mod:`graphret.metrics.classification`): AUROC per label and its mean.
"""

from graphret.metrics.classification import auroc, label_aurocs, mean_auroc, mean_auroc_spread, pooled_auroc

from graphret.metrics.cost import (
    fraction_scanned,
    latency_percentile,
    queries_per_second,
    recall_at_k,
)
from graphret.metrics.curves import precision_curve, precision_recall_curve
from graphret.metrics.graded import (
    dcg_at_k,
    graded_relevance,
    ideal_graded_relevance,
    ndcg_at_k,
)
from graphret.metrics.multilabel import (
    MULTILABEL_RULES,
    acg_at_k,
    acg_p_at_k,
    multilabel_relevance,
)
from graphret.metrics.retrieval import (
    accuracy_at_k,
    average_precision_at_k,
    mean_average_precision,
    mean_reciprocal_rank,
    precision_at_k,
    relevance,
)

__all__ = [
    "MULTILABEL_RULES",
    "accuracy_at_k",
    "acg_at_k",
    "acg_p_at_k",
    "auroc",
    "average_precision_at_k",
    "dcg_at_k",
    "fraction_scanned",
    "graded_relevance",
    "ideal_graded_relevance",
    "latency_percentile",
    "label_aurocs",
    "mean_auroc",
    "mean_auroc_spread",
    "pooled_auroc",
    "mean_average_precision",
    "mean_reciprocal_rank",
    "multilabel_relevance",
    "ndcg_at_k",
    "precision_at_k",
    "precision_curve",
    "precision_recall_curve",
    "queries_per_second",
    "recall_at_k",
    "relevance",
]
