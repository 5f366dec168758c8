"""Class mode: search only inside the predicted class (classifier, or a kNN vote)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from graphret.cli.main import main

from graphret.errors import InputError
from graphret.query import as_queries, search
from graphret.store import open_store
from graphret.store.commit import write_version
from graphret.store.fragments import fixed_size_list


def add_classifier_columns(path, predicted):
    """Give a built store the columns a classifier encoder writes (predicted, probabilities), as
    a new version."""
    n_classes = int(max(predicted.max() + 1, 3))
    probabilities = np.full((len(predicted), n_classes), 0.1, np.float32)
    probabilities[np.arange(len(predicted)), predicted] = 0.8

    def change(writer):
        base = open_store(path)
        items = base.items.append_column("predicted", pa.array(predicted.astype(np.int32), pa.int32()))
        items = items.append_column("probabilities", fixed_size_list(probabilities, pa.float32()))
        manifest = dict(base.manifest)
        manifest["encoder"] = {**manifest["encoder"], "classifier": True}
        manifest["tables"] = {**manifest["tables"], "items": [writer.write_table("items", items)]}
        return manifest

    write_version(path, change, operation="test")


@pytest.fixture(scope="module")
def stores(tmp_path_factory, blob_stores):
    base = tmp_path_factory.mktemp("class")
    plain = blob_stores(n_per_class=40, seed=2, communities=("leiden",))  # read only
    withclf = Path(shutil.copytree(plain, base / "clf"))  # given a classifier's predictions below
    labels = open_store(withclf).labels
    predicted = labels.copy()
    predicted[::4] = (labels[::4] + 1) % 3  # a classifier that is wrong on every 4th item
    add_classifier_columns(withclf, predicted)
    return open_store(plain), open_store(withclf), predicted


def test_class_mode_returns_only_the_predicted_class(stores):
    _, store, predicted = stores
    assert store.manifest["encoder"]["classifier"] is True
    queries = as_queries(store, "test", kind="split")
    result = search(store, queries, k=5, mode="class")
    expected = predicted[queries.rows]
    assert np.all(store.labels[result.rows] == expected[:, None])
    assert result.details["predicted_class"] == [f"class{c}" for c in expected]
    fraction = result.scanned_fraction
    assert np.all((fraction > 0.2) & (fraction < 0.5))  # one class of three
    flat = search(store, queries, k=5, mode="flat")
    right = expected == store.labels[queries.rows]
    np.testing.assert_array_equal(result.rows[right], flat.rows[right])  # separable classes


def test_class_mode_with_a_filter(stores):
    _, store, predicted = stores
    queries = as_queries(store, "test", kind="split")
    result = search(store, queries, k=4, mode="class", where=["split=train"])
    assert set(store.splits[result.rows.ravel()]) == {"train"}


def test_class_mode_needs_a_classifier_or_knn(stores):
    plain, _, _ = stores
    queries = as_queries(plain, "test", kind="split")
    with pytest.raises(InputError, match="no(ne)?.*classifier|classifier.*none"):
        search(plain, queries, k=5, mode="class")
    voted = search(plain, queries, k=5, mode="class", class_source="knn")
    classes = np.array([int(name[-1]) for name in voted.details["predicted_class"]])
    assert np.all(plain.labels[voted.rows] == classes[:, None])
    assert np.mean(classes == plain.labels[queries.rows]) > 0.9
    assert np.all(voted.scanned_fraction == 1.0)


def test_class_too_small_for_k(stores):
    _, store, _ = stores
    with pytest.raises(InputError, match="predicted class 'class.' has only"):
        search(store, as_queries(store, "test", kind="split"), k=60, mode="class")


def test_cli_class_without_classifier_is_one_line(stores):
    plain, store, _ = stores
    result = CliRunner().invoke(main, ["query", str(plain.path), "--split", "test", "--mode", "class"])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and len(lines) == 1 and "classifier" in lines[0]
    ok = CliRunner().invoke(main, ["query", str(store.path), "--split", "test", "--mode", "class", "--k", "3", "--format", "json"])
    assert ok.exit_code == 0, ok.output
    payload = json.loads(ok.output)
    assert payload["mode"] == "class" and "predicted_class" in payload["queries"][0]
