"""kNN lists over FAISS IVF cells (``knn="faiss"``) and ``knn="auto"``: recall against exact,
exact when every cell is probed, determinism, auto's choice, bad input, and a build with it."""

import numpy as np
import pytest

import graphret.graph.build as graph_build
from graphret.api.config import BuildConfig
from graphret.errors import InputError
from graphret.graph.approx import knn_recall
from graphret.graph.build import AUTO_EXACT_MAX, knn_graph_with_stats, resolve_method
from graphret.graph.faiss_knn import default_nlist, faiss_knn
from graphret.graph.knn import exact_knn


def clustered(n, d=16, centres=20, spread=0.6, seed=0):
    rng = np.random.default_rng(seed)
    c = rng.standard_normal((centres, d))
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    x = c[rng.integers(0, centres, n)] + spread * rng.standard_normal((n, d)) / np.sqrt(d)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_faiss_knn_recall_against_exact_and_true_similarities():
    codes = clustered(3000)
    report = {}
    idx, sims = faiss_knn(codes, 10, seed=0, threads=1, nprobe=3, report=report)
    assert report == {"nlist": 93, "nprobe": 3, "calibration": None}
    assert idx.shape == sims.shape == (3000, 10) and idx.dtype == np.int64 and sims.dtype == np.float32
    assert not (idx == np.arange(3000)[:, None]).any()  # never itself
    assert (np.diff(sims, axis=1) <= 0).all()  # by decreasing similarity
    true = np.einsum("ij,ikj->ik", codes, codes[idx])
    np.testing.assert_allclose(sims, true, atol=1e-5)  # the exact cosine of each pair found
    recall = knn_recall(idx, codes, sample=3000)
    assert 0.8 <= recall < 0.95  # approximate, at 3 of the default 93 cells (default_nlist(3000))
    assert default_nlist(3000) == 93  # min(2 sqrt(n) = 110, n / 32)


def test_nprobe_is_calibrated_to_the_target_recall():
    codes = clustered(3000)
    report = {}
    idx, _ = faiss_knn(codes, 10, seed=0, report=report, target_recall=0.95)
    tried = report["calibration"]
    assert list(tried) == [4, 8, 16, 32, 64, 93][:len(tried)] and report["nprobe"] == list(tried)[-1]
    assert tried[report["nprobe"]] >= 0.95 and all(r < 0.95 for p, r in tried.items() if p < report["nprobe"])
    assert knn_recall(idx, codes, sample=3000) >= 0.93  # on every row, not only the calibration sample
    report99 = {}
    faiss_knn(codes, 10, seed=0, report=report99, target_recall=0.99)
    assert report99["nprobe"] >= report["nprobe"]


def test_probing_every_cell_is_exact():
    codes = clustered(800, d=8, seed=3)
    idx, sims = faiss_knn(codes, 7, nlist=12, nprobe=12, seed=1)
    ei, es = exact_knn(codes, 7)
    np.testing.assert_allclose(sims, es, atol=1e-6)
    assert (idx == ei).mean() > 0.99  # the same lists, up to the order of equal similarities


def test_faiss_knn_is_deterministic_for_a_seed():
    codes = clustered(2000, seed=5)
    a = faiss_knn(codes, 5, seed=7, nprobe=2)
    b = faiss_knn(codes, 5, seed=7, nprobe=2)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    c = faiss_knn(codes, 5, seed=8, nprobe=2)
    assert not np.array_equal(a[0], c[0])  # the seed drives k-means and its sample


def test_tiny_cells_are_completed_exactly():
    codes = clustered(60, d=4, centres=3, seed=2)
    idx, sims = faiss_knn(codes, 5, nlist=30, nprobe=1)  # cells of about 2: too few others
    ei, es = exact_knn(codes, 5)
    assert (idx >= 0).all()
    np.testing.assert_allclose(sims[:, 0], es[:, 0], atol=1e-6)


@pytest.mark.parametrize("bad", [{"nprobe": 0}, {"nlist": 0}, {"nlist": 2.5}, {"threads": 0}, {"nprobe": True},
                                 {"target_recall": 0}, {"target_recall": 1.5}, {"calibration_sample": 0}])
def test_faiss_knn_bad_options(bad):
    with pytest.raises(InputError):
        faiss_knn(clustered(100), 3, **bad)


def test_faiss_knn_bad_codes():
    with pytest.raises(InputError, match="not L2-normalised"):
        faiss_knn(np.ones((50, 4), np.float32), 3)
    with pytest.raises(InputError):
        faiss_knn(clustered(5), 5)  # k must leave another code


def test_auto_picks_exact_up_to_the_threshold_and_faiss_above(monkeypatch):
    assert resolve_method("auto", AUTO_EXACT_MAX) == "exact"
    assert resolve_method("auto", AUTO_EXACT_MAX + 1) == "faiss"
    assert resolve_method("approx", 10**7) == "approx"
    with pytest.raises(InputError, match="unknown kNN method"):
        resolve_method("hnsw", 10)
    codes = clustered(1500)
    _, stats = knn_graph_with_stats(codes, 10, method="auto")
    assert stats["method"] == "exact" and stats["requested"] == "auto" and "recall" not in stats
    monkeypatch.setattr(graph_build, "AUTO_EXACT_MAX", 1000)
    _, stats = knn_graph_with_stats(codes, 10, method="auto", recall_sample=500, seed=3)
    assert stats["method"] == "faiss" and stats["requested"] == "auto" and stats["faiss"]["nprobe"] >= 4
    assert stats["recall_sample"] == 500 and stats["seed"] == 3 and 0.9 <= stats["recall"] <= 1.0


def test_the_config_takes_faiss_and_auto_and_refuses_others():
    assert BuildConfig.from_options(knn="faiss", knn_threads=1).graph.knn == "faiss"
    assert BuildConfig.from_options(knn="auto").graph.knn == "auto"
    with pytest.raises(InputError, match="unknown knn 'hnsw'; choose one of exact, approx, faiss, auto"):
        BuildConfig.from_options(knn="hnsw")


def test_kept_candidates_extend_the_knn_lists_without_changing_them():
    """keep > k: the same search's most similar codes past the k-th (the walk lists' candidates);
    the first k are the lists keep = k gives, with the calibration's probes (found once) or given ones."""
    codes = clustered(3000)
    for nprobe in (None, 3):
        idx, sims = faiss_knn(codes, 10, seed=0, threads=1, nprobe=nprobe)
        wide_i, wide_s = faiss_knn(codes, 10, seed=0, threads=1, nprobe=nprobe, keep=40)
        assert wide_i.shape == (3000, 40)
        np.testing.assert_array_equal(wide_i[:, :10], idx)
        np.testing.assert_array_equal(wide_s[:, :10], sims)
        found = wide_i >= 0  # past the k-th, a list the probed cells could not fill ends in -1 (score -inf)
        assert found.mean() > 0.95 and (found[:, :-1] >= found[:, 1:]).all() and np.isneginf(wide_s[~found]).all()
        assert (np.diff(np.where(found, wide_s, -2.0), axis=1) <= 0).all() and not (wide_i == np.arange(3000)[:, None]).any()
        assert all(len(set(row[row >= 0])) == (row >= 0).sum() for row in wide_i)
        np.testing.assert_allclose(wide_s[found], np.einsum("ij,ikj->ik", codes, codes[wide_i])[found], atol=1e-5)
    with pytest.raises(InputError, match="larger than the other codes"):
        faiss_knn(codes[:50], 5, keep=60)
