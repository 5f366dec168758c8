"""Diffusion ranking (graphret.graph.diffusion): manifold ranking and graph-smoothed codes against
their formulas on small hand-made graphs."""

import numpy as np
import pytest
import scipy.sparse as sp

from graphret.errors import InputError
from graphret.graph.diffusion import manifold_ranking, rerank, smooth_codes, smoothed_scores


@pytest.fixture()
def small():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 3)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    w = {(0, 1): 0.9, (1, 2): 0.5, (2, 3): 0.8, (3, 4): 0.3, (0, 4): 0.6, (4, 5): 0.7}
    rows, cols, vals = zip(*[(a, b, v) for (a, b), v in w.items()])
    A = sp.csr_matrix((vals, (rows, cols)), shape=(6, 6))
    return x, (A + A.T).tocsr()


def test_smooth_codes_is_the_formula(small):
    x, graph = small
    lam, gamma, steps = 0.4, 2.0, 3
    W = graph.toarray() ** gamma
    M = np.linalg.inv(np.eye(6) + lam * np.diag(W.sum(1))) @ (np.eye(6) + lam * W)
    expected = np.linalg.matrix_power(M, steps) @ x
    got = smooth_codes(x, graph, lam=lam, gamma=gamma, steps=steps)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    np.testing.assert_allclose(smooth_codes(x, graph, steps=0), x)
    # <q, x~_j> is the same smoothing applied to the query's cosines over the whole graph
    q = x[2]
    np.testing.assert_allclose(got @ q, np.linalg.matrix_power(M, steps) @ (x @ q), atol=1e-5)


def test_smoothed_scores_and_rerank(small):
    x, graph = small
    s = smooth_codes(x, graph)
    rows = np.array([[0, 3, 5, -1], [4, 1, 2, 0]])
    q = x[[1, 4]]
    scores = smoothed_scores(s, q, rows)
    np.testing.assert_allclose(scores[0, :3], s[[0, 3, 5]] @ q[0], atol=1e-6)
    assert scores[0, 3] == -np.inf
    cos = np.array([[0.9, 0.8, 0.7, 0.6], [0.5, 0.4, 0.3, 0.2]])
    top, top_scores, top_cos = rerank(rows, scores, 2, carry=cos)
    assert top.shape == (2, 2)
    for r in range(2):
        order = np.argsort(-scores[r], kind="stable")[:2]
        assert top[r].tolist() == rows[r][order].tolist()
        np.testing.assert_array_equal(top_cos[r], cos[r][order])
        np.testing.assert_array_equal(top_scores[r], scores[r][order])


def test_manifold_ranking_is_the_series_on_the_candidates(small):
    x, graph = small
    alpha, steps, gamma, seeds = 0.8, 7, 3.0, 2
    cand = np.array([[2, 1, 3, 0, 5]])  # 4 is not a candidate: its edges are dropped
    sims = np.array([[0.9, 0.7, 0.5, 0.2, 0.1]])
    W = graph.toarray()[np.ix_(cand[0], cand[0])] ** gamma
    d = W.sum(1)
    dinv = np.where(d > 0, 1 / np.sqrt(np.where(d > 0, d, 1)), 0.0)
    S = dinv[:, None] * W * dinv[None, :]
    y = np.zeros(5)
    y[:seeds] = sims[0, :seeds] ** gamma
    expected = (1 - alpha) * sum(np.linalg.matrix_power(alpha * S, t) @ y for t in range(steps))
    got = manifold_ranking(graph.indptr, graph.indices, graph.data, cand, sims, seeds=seeds, alpha=alpha, steps=steps, gamma=gamma)
    np.testing.assert_allclose(got[0], expected, atol=1e-10)
    # 5 is joined to the candidates only through 4: it keeps (1 - a) y = 0
    assert got[0, 4] == 0.0 and got[0, 2] > 0  # 3 is reached from the seeds


def test_bad_diffusion_input(small):
    x, graph = small
    with pytest.raises(InputError) as err:
        smooth_codes(x, graph, gamma=0)
    assert err.value.param == "gamma"
    with pytest.raises(InputError):
        smooth_codes(x, sp.eye(4, format="csr"))
    with pytest.raises(InputError) as err:
        manifold_ranking(graph.indptr, graph.indices, graph.data, np.array([[0, 1]]), np.array([[0.5, 0.4]]), alpha=1.0)
    assert err.value.param == "alpha"
    with pytest.raises(InputError):
        manifold_ranking(graph.indptr, graph.indices, graph.data, np.array([[0, 1]]), np.array([[0.5]]))
