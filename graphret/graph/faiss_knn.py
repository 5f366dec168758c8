"""Approximate cosine kNN lists over FAISS's inverted-file cells (IVF: Jégou et al. 2011;
FAISS: Johnson et al. 2019, Douze et al. 2024).

1. **Cells**: FAISS spherical k-means (seeded, trained on a seeded sample of ``32 nlist``
   codes) splits the unit codes into ``nlist`` cells; each code belongs to the cell whose
   centroid is most similar to it (inner product = cosine), as in ``IndexIVFFlat``.
2. **Probes**: each code's ``nprobe`` most similar centroids (FAISS ``IndexFlatIP``);
   ``nprobe`` is calibrated, by default, as the smallest that reaches recall@10 0.95 against
   exact kNN on a seeded sample (the codes decide how far a code's neighbours spread).  The
   probes are found once, :data:`PROBED_FIRST` per code, before the calibration (whose cells
   are their first), and cut to the nprobe chosen.
3. **Search**, one cell at a time (list-major, the transpose of ``IndexIVFFlat.search``): the
   codes that probe cell c against the codes in c, their cosines one matrix product (BLAS),
   each score offered to that code's running top k (one comparison with its k-th best rejects
   most).  Each code is compared with exactly the codes ``IndexIVFFlat.search`` scans at the
   same ``nprobe``, but as matrix products rather than one scan per query.  With ``keep`` > k
   each code's running list holds its ``keep`` most similar: the walk lists' first candidates
   (:mod:`graphret.graph.search_graph`, 1), at the cost of merging them only.

Memory: the codes (not copied), the (n, nprobe) probe lists and the (n, k) result; one cell's
candidates and scores at a time.  Deterministic for a seed (tested at a fixed thread count;
FAISS's k-means is not checked across thread counts).
"""

from __future__ import annotations

import numpy as np
from graphret.kernels.jit import njit

from graphret.errors import InputError
from graphret.graph.knn import MAX_SCORES, exact_knn_rows, validate_codes
from graphret.graph.topk import check_k

__all__ = ["faiss_knn", "default_nlist", "TARGET_RECALL"]

#: the recall@k the calibrated nprobe aims at, on a sample of this many rows
TARGET_RECALL = 0.95
CALIBRATION_SAMPLE = 500
#: k-means trains on at most this many codes per cell
TRAIN_PER_CELL = 32
#: codes whose probes are found at once
BLOCK = 1 << 16
#: probes found for every code before the calibration (its cells, then the first nprobe of
#: them): one pass over the codes and centroids where a first pass for the cells and a second
#: for the probes cost two (each 1M x 2,000 x 128 products: 11-16 CPU s at 1M)
PROBED_FIRST = 8


def default_nlist(n: int) -> int:
    """Cells for n codes: ``2 sqrt(n)`` (FAISS's guideline is 4-16 sqrt(n) for search; fewer
    cells keep k-means cheap while a cell's candidates stay a few hundred), at most ``n / 32``
    so k-means has 32 codes per centroid."""
    return int(max(1, min(round(2 * np.sqrt(n)), n // TRAIN_PER_CELL)))


def _whole(value, name: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f"{{{name}}} must be a whole number >= {minimum}, got {value!r}", param=name)
    return int(value)


def _centroids(codes: np.ndarray, nlist: int, seed: int):
    """FAISS spherical k-means (seeded, on a seeded sample) as a flat inner-product index."""
    import faiss

    n, d = codes.shape
    rng = np.random.default_rng(seed)
    train = min(n, TRAIN_PER_CELL * nlist)
    sample = codes if train == n else codes[np.sort(rng.choice(n, train, replace=False))]
    kmeans = faiss.Kmeans(d, nlist, niter=10, seed=int(seed), spherical=True, max_points_per_centroid=TRAIN_PER_CELL,
                          min_points_per_centroid=1, verbose=False)
    kmeans.train(sample)
    index = faiss.IndexFlatIP(d)
    index.add(kmeans.centroids)
    return index


def _probe(index, codes: np.ndarray, nprobe: int) -> np.ndarray:
    """(n, nprobe) int64: each code's most similar centroids, best first."""
    probes = np.empty((codes.shape[0], nprobe), np.int64)
    for lo in range(0, codes.shape[0], BLOCK):
        probes[lo:lo + BLOCK] = index.search(codes[lo:lo + BLOCK], nprobe)[1]
    return probes


def _calibrate(codes: np.ndarray, index, members: np.ndarray, bounds: np.ndarray, k: int, nlist: int, *,
               target: float, sample: int, seed: int) -> tuple[int, dict[int, float]]:
    """The smallest nprobe of 4, 8, 16, ... whose recall@k against exact kNN reaches ``target``
    on a seeded sample of ``sample`` rows (tie-aware, as :func:`graphret.graph.approx.knn_recall`),
    and the recall of each nprobe tried."""
    n = codes.shape[0]
    rng = np.random.default_rng([seed, 1])  # not the rows the manifest's recall is measured on
    rows = np.arange(n) if sample >= n else np.sort(rng.choice(n, sample, replace=False))
    _, exact_s = exact_knn_rows(codes, rows, k, max_scores=1 << 22, validated=True)
    kth = exact_s[:, -1] - np.float32(1e-6)
    ladder = [p for p in (4, 8, 16, 32, 64, 128, 256) if p < nlist] + [nlist]
    probes = _probe(index, codes[rows], ladder[-1] if ladder[-1] <= 256 else 256)
    tried: dict[int, float] = {}
    for nprobe in ladder:
        if nprobe > probes.shape[1]:
            break
        hits = 0
        for r, row in enumerate(rows):
            cand = np.concatenate([members[bounds[c]:bounds[c + 1]] for c in probes[r, :nprobe]])
            cand = cand[cand != row]
            sims = codes[cand] @ codes[row]
            top = sims if sims.size <= k else sims[np.argpartition(-sims, k - 1)[:k]]
            hits += int((top >= kth[r]).sum())
        tried[nprobe] = round(hits / (len(rows) * k), 4)
        if tried[nprobe] >= target:
            return nprobe, tried
    return max(tried), tried


@njit(cache=True)
def _merge(scores, cell, queries, out_i, out_s):
    """Offer ``scores[r, j]`` (code ``queries[r]`` against code ``cell[j]``) to that code's running
    top k, kept sorted by decreasing similarity in ``out_i``/``out_s`` (a code never lists
    itself); one comparison with the k-th best rejects most scores.  One thread: on the shared
    2-core machine numba's threads made it 7x slower (the matrix product beside it is BLAS's)."""
    k = out_s.shape[1]
    for r in range(scores.shape[0]):
        q = queries[r]
        for j in range(scores.shape[1]):
            s = scores[r, j]
            if not (s > out_s[q, k - 1]) or cell[j] == q:
                continue
            t = k - 1
            while t > 0 and s > out_s[q, t - 1]:
                out_s[q, t] = out_s[q, t - 1]
                out_i[q, t] = out_i[q, t - 1]
                t -= 1
            out_s[q, t] = s
            out_i[q, t] = cell[j]


def _search_cells(codes: np.ndarray, probes: np.ndarray, nlist: int, keep: int) -> tuple[np.ndarray, np.ndarray]:
    """Each code's ``keep`` most similar among the codes of the cells it probes (``probes``
    (n, nprobe), its own cell first), one cell at a time (module docstring, 3); -1 / -inf where
    the cells hold fewer."""
    n, nprobe = probes.shape
    home = probes[:, 0]
    members = np.argsort(home, kind="stable")  # codes by cell, by row within a cell
    bounds = np.searchsorted(home[members], np.arange(nlist + 1))
    flat = probes.ravel()
    probing = np.argsort(flat, kind="stable")  # (code, probe) pairs by cell, by code within a cell
    pbounds = np.searchsorted(flat[probing], np.arange(nlist + 1))
    out_i = np.full((n, keep), -1, np.int64)
    out_s = np.full((n, keep), -np.inf, np.float32)
    for c in range(nlist):
        cell = members[bounds[c]:bounds[c + 1]]
        queries = probing[pbounds[c]:pbounds[c + 1]] // nprobe
        if cell.size == 0 or queries.size == 0:
            continue
        candidates = codes[cell]
        step = max(1, MAX_SCORES // cell.size)
        for lo in range(0, queries.size, step):
            q = queries[lo:lo + step]
            _merge(codes[q] @ candidates.T, cell, q, out_i, out_s)
    return out_i, out_s


def faiss_knn(codes: np.ndarray, k: int, *, seed: int = 0, nlist: int | None = None, nprobe: int | None = None,
              target_recall: float = TARGET_RECALL, calibration_sample: int = CALIBRATION_SAMPLE,
              threads: int | None = None, report: dict | None = None, keep: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Approximate cosine kNN of L2-normalised ``codes`` over ``nlist`` FAISS k-means cells
    (default :func:`default_nlist`), ``nprobe`` probed per code (see the module docstring).

    ``nprobe`` None (default): the smallest of 4, 8, 16, ... whose recall@k against exact kNN
    reaches ``target_recall`` on a seeded sample of ``calibration_sample`` rows (other rows
    than the manifest's recall sample); how many cells a code's neighbours spread over depends
    on the codes (1.0 at nprobe 8 on the generated clusters, 0.89 on the CheXpert-like codes).
    ``report``, when given, receives ``nlist``, ``nprobe`` and the calibration's recalls.
    ``keep`` (>= k, default k): each code's ``keep`` most similar of the codes it was compared
    with are returned (the first k are the kNN lists, unchanged by ``keep``; the rest cost only
    their merging: the walk lists take them as candidates, :func:`graphret.graph.search_graph.build_search_graph`).

    Returns ``(indices int64 (n,keep), similarities float32 (n,keep))`` like
    :func:`graphret.graph.knn.exact_knn`: the row itself excluded, rows by decreasing
    similarity.  ``threads``: FAISS's OpenMP threads for k-means and the probes (None: its
    default, all cores), restored afterwards.
    """
    codes = validate_codes(codes)
    n = codes.shape[0]
    k = check_k(k, n - 1, what="the other codes")
    keep = k if keep is None else max(k, check_k(keep, n - 1, what="the other codes", param="keep"))
    nlist = default_nlist(n) if nlist is None else min(_whole(nlist, "nlist"), n)
    if nprobe is not None:
        nprobe = min(_whole(nprobe, "nprobe"), nlist)
    if isinstance(target_recall, bool) or not isinstance(target_recall, (int, float)) or not 0 < target_recall <= 1:
        raise InputError(f"{{target_recall}} must be a number in (0, 1], got {target_recall!r}", param="target_recall")
    calibration_sample = _whole(calibration_sample, "calibration_sample")
    if threads is not None:
        threads = _whole(threads, "threads")
    import faiss

    before = faiss.omp_get_max_threads()
    if threads is not None:
        faiss.omp_set_num_threads(threads)
    try:
        index = _centroids(codes, nlist, seed)
        tried = None
        probes = _probe(index, codes, min(nlist, PROBED_FIRST) if nprobe is None else nprobe)
        if nprobe is None:
            home = probes[:, 0]
            members = np.argsort(home, kind="stable")
            bounds = np.searchsorted(home[members], np.arange(nlist + 1))
            nprobe, tried = _calibrate(codes, index, members, bounds, k, nlist, target=float(target_recall),
                                       sample=calibration_sample, seed=seed)
            del home, members, bounds
            # the probes found before the calibration serve when it chose as many or fewer (FAISS
            # returns each code's centroids best first, so the first nprobe are the nprobe best)
            probes = np.ascontiguousarray(probes[:, :nprobe]) if nprobe <= probes.shape[1] else _probe(index, codes, nprobe)
    finally:
        faiss.omp_set_num_threads(before)
    if report is not None:
        report.update(nlist=int(nlist), nprobe=int(nprobe), calibration=tried)
    out_i, out_s = _search_cells(codes, probes, nlist, keep)
    short = np.nonzero(out_i[:, k - 1] < 0)[0]
    if short.size:  # the probed cells hold fewer than k other codes: exact over all codes for these rows
        # (beyond the k-th, a list the cells could not fill ends in -1: no candidate)
        out_i[short], out_s[short] = exact_knn_rows(codes, short, keep, validated=True)
    return out_i, out_s
