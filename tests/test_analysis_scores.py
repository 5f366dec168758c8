"""graphret.analysis.scores and labels: purity, NMI and ARI on hand-computed examples."""

import math

import numpy as np
import pytest

from graphret.analysis.labels import (
    LabelData,
    label_agreement,
    label_composition,
    most_mixed,
)
from graphret.analysis.scores import agreement, ari, contingency_matrix, nmi, purity
from graphret.errors import InputError

# U = two blocks of three; V = three blocks of two, the middle one straddling U's blocks.
U = np.array([0, 0, 0, 1, 1, 1])
V = np.array([0, 0, 1, 1, 2, 2])


def test_contingency_by_hand():
    table, uu, vv = contingency_matrix(U, V)
    np.testing.assert_array_equal(table.toarray(), [[2, 1, 0], [0, 1, 2]])
    np.testing.assert_array_equal(uu, [0, 1])
    np.testing.assert_array_equal(vv, [0, 1, 2])


def test_purity_by_hand():
    assert purity(U, V) == pytest.approx(4 / 6)  # (2 + 2) / 6
    assert purity(V, U) == pytest.approx(5 / 6)  # (2 + 1 + 2) / 6


def test_ari_by_hand():
    # sum C(n_ij) = 1 + 0 + 0 + 1 = 2; sum C(a_i) = 6; sum C(b_j) = 3; C(6) = 15
    # expected = 6 * 3 / 15 = 1.2; max = (6 + 3) / 2 = 4.5; ARI = 0.8 / 3.3
    assert ari(U, V) == pytest.approx(0.8 / 3.3)
    assert ari(V, U) == pytest.approx(0.8 / 3.3)


def test_nmi_by_hand():
    # I = 2 * (2/6) ln(6*2 / (3*2)) = (2/3) ln 2; H(U) = ln 2; H(V) = ln 3
    assert nmi(U, V) == pytest.approx((2 / 3) * math.log(2) / ((math.log(2) + math.log(3)) / 2))


def test_identical_and_trivial_partitions():
    assert nmi(U, U + 7) == pytest.approx(1.0)
    assert ari(U, 5 - U) == pytest.approx(1.0)
    one = np.zeros(6, int)
    assert nmi(one, one) == 1.0 and ari(one, one) == 1.0
    assert nmi(one, U) == 0.0
    assert agreement(U, V)["inverse_purity"] == pytest.approx(5 / 6)


def test_matches_scikit_learn_on_random_labels():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(3)
    a, b = rng.integers(0, 7, 500), rng.integers(0, 4, 500)
    b[:250] = a[:250] % 4
    assert nmi(a, b) == pytest.approx(metrics.normalized_mutual_info_score(a, b))
    assert ari(a, b) == pytest.approx(metrics.adjusted_rand_score(a, b))


def test_length_mismatch_is_one_line():
    with pytest.raises(InputError, match="differ in length"):
        nmi([0, 1], [0, 1, 2])


def test_multiclass_composition_purity_and_most_mixed():
    membership = np.array([0, 0, 0, 0, 1, 1, 2])
    labels = LabelData("multiclass", ["a", "b"], np.array([0, 0, 0, 1, 1, 1, -1]))
    comp = label_composition(membership, labels)
    assert comp["community"].tolist() == [0, 1, 2]
    assert comp["purity"].iloc[0] == pytest.approx(0.75)
    assert comp["dominant"].tolist()[:2] == ["a", "b"]
    assert comp["a"].tolist() == [3, 0, 0] and comp["b"].tolist() == [1, 2, 0]
    assert comp["labelled"].tolist() == [4, 2, 0]
    assert comp["entropy"].iloc[0] == pytest.approx(-(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))
    assert comp["entropy"].iloc[1] == 0.0
    mixed = most_mixed(comp, top=5, min_size=2)
    assert mixed["community"].tolist() == [0, 1]
    agree = label_agreement(membership, labels)
    row = agree.iloc[0]
    assert row["label"] == "(classes)" and row["items"] == 6  # the unlabelled item is left out
    assert row["purity"] == pytest.approx(5 / 6)
    assert row["nmi"] == pytest.approx(nmi(membership[:6], [0, 0, 0, 1, 1, 1]))


def test_multilabel_agreement_per_label_and_label_sets():
    membership = np.array([0, 0, 1, 1])
    matrix = np.array([[1, 0], [1, 0], [0, 1], [1, -1]], np.int8)
    labels = LabelData("multilabel", ["x", "y"], matrix)
    agree = label_agreement(membership, labels).set_index("label")
    assert list(agree.index) == ["(label sets)", "x", "y"]
    assert agree.loc["x", "positives"] == 3 and agree.loc["y", "items"] == 3  # -1 left out for y
    assert agree.loc["y", "ari"] == pytest.approx(1.0)  # y: positives only in community 1
    comp = label_composition(membership, labels)
    assert comp["x"].tolist() == [1.0, 0.5]
    assert comp["dominant"].iloc[0] == "x"
    assert comp["purity"].tolist() == [1.0, 0.5]


def test_unlabelled_store_refused():
    with pytest.raises(InputError, match="no labels"):
        LabelData("unlabelled", [], np.zeros(3))
