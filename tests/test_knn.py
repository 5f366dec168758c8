"""kNN lists and the kNN graph: exact vs brute force, symmetrisation, edges, bad input."""

import numpy as np
import pytest

from graphret.errors import InputError
from graphret.graph.build import (
    edges_table,
    edges_to_graph,
    graph_from_knn,
    graph_stats,
    graph_to_edges,
    knn_graph,
    knn_graph_with_stats,
)
from graphret.graph.knn import exact_knn


def unit(x):
    x = np.asarray(x, dtype=np.float64)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def random_codes(n, d, seed=0):
    return unit(np.random.default_rng(seed).standard_normal((n, d)))


def brute_force(codes, k):
    s = codes.astype(np.float64) @ codes.T.astype(np.float64)
    np.fill_diagonal(s, -np.inf)
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


@pytest.mark.parametrize("block_size", [1, 7, 64, 2048])
def test_exact_knn_matches_brute_force(block_size):
    codes = random_codes(150, 12)
    idx, sims = exact_knn(codes, 6, block_size=block_size)
    bi, bs = brute_force(codes, 6)
    assert idx.dtype == np.int64 and sims.dtype == np.float32 and idx.shape == (150, 6)
    np.testing.assert_array_equal(idx, bi)
    np.testing.assert_allclose(sims, bs, atol=1e-5)
    assert np.all(np.diff(sims, axis=1) <= 0)


def test_exact_knn_memory_cap_splits_blocks():
    codes = random_codes(300, 8, seed=1)
    idx, sims = exact_knn(codes, 5, max_scores=300 * 3)  # 3 rows per block
    np.testing.assert_array_equal(idx, brute_force(codes, 5)[0])


def test_a_few_rows_against_a_large_archive_read_it_in_blocks_of_columns():
    """Fewer scores than rows x archive: the archive is read in blocks of columns, each block's top
    k merged (exact, ties by the smaller row, the row itself excluded), as brute force gives."""
    from graphret.graph.knn import exact_knn_rows

    base = random_codes(2000, 8, seed=5)
    codes = np.concatenate([base, base[:3], base[:3]])  # ties: rows 0..2 three times, in different blocks
    rows = np.array([0, 1, 2, 7, 1999, 2000, 2004, 2005])
    idx, sims = exact_knn_rows(codes, rows, 6, max_scores=len(rows) * 100)  # blocks of 100 archive rows
    whole_i, whole_s = exact_knn_rows(codes, rows, 6)  # every row against the whole archive at once
    np.testing.assert_array_equal(idx, whole_i)
    np.testing.assert_allclose(sims, whole_s, atol=1e-6)  # (BLAS rounds by block shape)
    bi, bs = brute_force(codes, 6)
    np.testing.assert_allclose(sims, bs[rows], atol=1e-5)
    assert (idx[:, 2:] == bi[rows][:, 2:]).all()  # (brute force's float64 ties between copies fall either way)
    assert idx[0, :2].tolist() == [2000, 2003] and idx[5, :2].tolist() == [0, 2003]  # copies: by smaller row
    assert not (idx == rows[:, None]).any()


def test_exact_knn_duplicates_exclude_only_self():
    base = random_codes(40, 8, seed=2)
    codes = np.concatenate([base, base[:5], base[:5]])  # rows 0..4 appear three times
    idx, sims = exact_knn(codes, 3)
    n = codes.shape[0]
    assert not np.any(idx == np.arange(n)[:, None])
    for i in range(5):
        # the two other copies come first, with similarity 1
        assert set(idx[i, :2].tolist()) == {40 + i, 45 + i}
        np.testing.assert_allclose(sims[i, :2], 1.0, atol=1e-5)
        assert set(idx[40 + i, :2].tolist()) == {i, 45 + i}


def test_exact_knn_refuses_bad_input():
    codes = random_codes(10, 4)
    with pytest.raises(InputError, match="larger than the other codes"):
        exact_knn(codes, 10)
    with pytest.raises(InputError, match="larger than the other codes"):
        exact_knn(codes, 50)
    with pytest.raises(InputError, match="at least 1"):
        exact_knn(codes, 0)
    with pytest.raises(InputError, match="integer"):
        exact_knn(codes, 2.5)
    bad = codes.copy()
    bad[3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        exact_knn(bad, 3)
    with pytest.raises(InputError, match="L2-normalised"):
        exact_knn(codes * 3, 3)
    with pytest.raises(InputError, match="L2-normalised"):
        exact_knn(np.vstack([codes, np.zeros((1, 4), np.float32)]), 3)
    with pytest.raises(InputError, match="2-D"):
        exact_knn(codes[0], 3)
    with pytest.raises(InputError, match="floating point"):
        exact_knn(np.eye(5, dtype=np.int64), 2)


def test_union_and_mutual_on_hand_example():
    # lists: 0 -> 1, 2 ; 1 -> 0, 3 ; 2 -> 3, 0 ; 3 -> 2, 1   (k = 2)
    idx = np.array([[1, 2], [0, 3], [3, 0], [2, 1]])
    sims = np.array([[0.9, 0.5], [0.9, 0.4], [0.8, 0.5], [0.8, 0.4]], dtype=np.float32)
    U = graph_from_knn(idx, sims, symmetrize="union").toarray()
    expected = np.zeros((4, 4), np.float32)
    for i, j, w in [(0, 1, 0.9), (0, 2, 0.5), (1, 3, 0.4), (2, 3, 0.8)]:
        expected[i, j] = expected[j, i] = w
    np.testing.assert_allclose(U, expected)
    # every pair above is in both lists -> mutual is the same
    M = graph_from_knn(idx, sims, symmetrize="mutual").toarray()
    np.testing.assert_allclose(M, expected)
    # now 3 lists 0 instead of 1: (1,3) and (0,3) are one-sided
    idx2 = np.array([[1, 2], [0, 3], [3, 0], [2, 0]])
    sims2 = np.array([[0.9, 0.5], [0.9, 0.4], [0.8, 0.5], [0.8, 0.3]], dtype=np.float32)
    U2 = graph_from_knn(idx2, sims2, symmetrize="union").toarray()
    assert U2[1, 3] == pytest.approx(0.4) and U2[0, 3] == pytest.approx(0.3)
    M2 = graph_from_knn(idx2, sims2, symmetrize="mutual").toarray()
    assert M2[1, 3] == 0 and M2[0, 3] == 0 and M2[0, 1] == pytest.approx(0.9)
    assert M2[2, 3] == pytest.approx(0.8)


def test_union_takes_the_max_and_drops_nonpositive():
    idx = np.array([[1], [0], [0]])
    sims = np.array([[0.5], [0.7], [-0.2]], dtype=np.float32)
    G = graph_from_knn(idx, sims)
    assert G[0, 1] == pytest.approx(0.7) and G[1, 0] == pytest.approx(0.7)
    assert G[2, 0] == 0 and G[0, 2] == 0  # similarity <= 0 is no edge
    st = graph_stats(G)
    assert st["isolated"] == 1 and st["components"] == 2 and st["edges"] == 1


def test_knn_graph_properties_and_edges_roundtrip():
    codes = random_codes(120, 10, seed=5)
    G, stats = knn_graph_with_stats(codes, 5)
    assert G.dtype == np.float32 and G.shape == (120, 120)
    assert abs(G - G.T).max() == 0
    assert G.diagonal().max() == 0 and G.data.min() > 0
    assert stats["n"] == 120 and stats["edges"] == G.nnz // 2 and stats["method"] == "exact"
    assert G.nnz >= 120 * 5  # union has at least n k directed entries when all sims > 0
    src, dst, w = graph_to_edges(G)
    assert np.all(src < dst) and src.size == G.nnz // 2
    H = edges_to_graph(src, dst, w, 120)
    assert (abs(H - G)).max() == 0
    t = edges_table(G)
    assert t.column_names == ["src", "dst", "weight"] and t.num_rows == src.size
    np.testing.assert_array_equal(knn_graph(codes, 5).toarray(), G.toarray())
    Gm = knn_graph(codes, 5, symmetrize="mutual")
    assert Gm.nnz <= G.nnz and (Gm.multiply(G) != 0).nnz == Gm.nnz


def test_knn_graph_refusals():
    codes = random_codes(20, 4)
    with pytest.raises(InputError, match="method"):
        knn_graph(codes, 3, method="hnsw")
    with pytest.raises(InputError, match="symmetrize"):
        knn_graph(codes, 3, symmetrize="intersection")
    with pytest.raises(InputError, match="larger than"):
        knn_graph(codes, 20)
    with pytest.raises(InputError):
        edges_to_graph(np.array([0]), np.array([5]), np.array([1.0]), 3)
    with pytest.raises(InputError):
        edges_to_graph(np.array([0]), np.array([1]), np.array([0.0]), 3)


def test_recall_of_exact_lists_is_one():
    from graphret.graph.approx import knn_recall

    codes = random_codes(200, 8, seed=7)
    idx, _ = exact_knn(codes, 5)
    assert knn_recall(idx, codes, sample=50) == pytest.approx(1.0)
    rng = np.random.default_rng(0)
    shuffled = idx.copy()
    shuffled[:, 2:] = rng.integers(0, 200, (200, 3))
    r = knn_recall(shuffled, codes, sample=200)
    assert 0.3 < r < 0.75


@pytest.mark.slow  # pynndescent compiles with numba on first use (about a minute)
def test_approx_knn_recall_and_graph():
    from graphret.graph.approx import approx_knn, knn_recall

    rng = np.random.default_rng(0)
    centres = rng.standard_normal((5, 16))
    codes = unit(centres[rng.integers(0, 5, 1500)] + 0.3 * rng.standard_normal((1500, 16)))
    codes[10] = codes[11]  # a duplicate
    idx, sims = approx_knn(codes, 8, seed=0)
    assert idx.shape == (1500, 8) and idx.dtype == np.int64 and sims.dtype == np.float32
    assert not np.any(idx == np.arange(1500)[:, None])
    assert np.all(np.diff(sims, axis=1) <= 1e-7)
    # similarities are the true cosines of the pairs listed
    np.testing.assert_allclose(sims, np.einsum("ij,ikj->ik", codes, codes[idx]), atol=1e-5)
    assert knn_recall(idx, codes, sample=300) > 0.9
    G, stats = knn_graph_with_stats(codes, 8, method="approx", recall_sample=300)
    assert stats["recall"] > 0.9 and stats["method"] == "approx"
    again = approx_knn(codes, 8, seed=0)[0]
    np.testing.assert_array_equal(idx, again)


@pytest.mark.parametrize("n", [50, 70_000])  # one radix pass over the rows, and two
@pytest.mark.parametrize("stored", [True, False])
def test_the_symmetric_csr_of_an_edge_list_is_scipys(stored, n):
    """graphret.graph.csr.symmetric_csr gives scipy's CSR of both directions, rows sorted: for
    edges as a store keeps them (src < dst, in order: the one-sort path) and for any list
    (both directions, repeats summed, empty rows)."""
    import scipy.sparse as sp

    from graphret.graph.csr import symmetric_csr

    rng = np.random.default_rng(3)
    a, b = rng.integers(0, n - 5, 400), rng.integers(0, n - 5, 400)  # the last 5 rows stay empty
    keep = a != b
    src, dst = a[keep], b[keep]
    if stored:
        pairs = np.unique(np.stack([np.minimum(src, dst), np.maximum(src, dst)], 1), axis=0)
        src, dst = pairs[:, 0], pairs[:, 1]
    weight = rng.random(len(src)).astype(np.float32)
    A = sp.csr_matrix((weight, (src, dst)), shape=(n, n))
    expected = sp.csr_matrix(A + A.T, dtype=np.float32)
    expected.sort_indices()
    indptr, indices, data = symmetric_csr(src, dst, weight, n)
    np.testing.assert_array_equal(indptr, expected.indptr)
    np.testing.assert_array_equal(indices, expected.indices)
    np.testing.assert_allclose(data, expected.data, rtol=1e-6)
    assert indices.dtype == np.int32 and data.dtype == np.float32
    empty = symmetric_csr(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32), 3)
    assert empty[0].tolist() == [0, 0, 0, 0] and len(empty[1]) == 0
