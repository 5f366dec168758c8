"""Queries against a store: self-exclusion, archive choice, output formats."""

import csv
import io
import json

import numpy as np
import pytest

from graphret.errors import GraphretError, InputError
from graphret.query import as_queries, search
from graphret.query.output import render
from graphret.store import open_store


@pytest.fixture(scope="module")
def store(blob_stores):
    return open_store(blob_stores(n_per_class=40, seed=1, communities=("leiden",)))


def test_stored_query_never_returns_itself(store):
    archive = store.archive_rows()
    ids = [str(store.ids[r]) for r in archive[:10]]
    result = search(store, as_queries(store, ids, kind="ids"), k=len(archive) - 1)
    for q, row in enumerate(archive[:10]):
        assert row not in result.rows[q]
        assert set(result.rows[q]) == set(archive) - {row}


def test_split_queries_search_the_train_archive(store):
    queries = as_queries(store, "test", kind="split")
    assert len(queries) == 24
    result = search(store, queries, k=10)
    assert set(store.splits[result.rows.ravel()]) <= {"train", "val"}
    labels = store.labels
    precision = np.mean(labels[result.rows] == labels[queries.rows][:, None])
    assert precision > 0.9  # separable classes
    everything = search(store, queries, k=10, archive=["all"])
    assert "test" in set(store.splits[everything.rows.ravel()])


def test_json_form(store):
    result = search(store, as_queries(store, [str(store.ids[0])], kind="ids"), k=3, mode="flat")
    payload = json.loads(render(result, fmt="json"))
    assert payload["mode"] == "flat" and payload["k"] == 3
    entry = payload["queries"][0]
    assert entry["query"] == {"id": str(store.ids[0]), "label": store.label_of(0), "path": store.paths[0]}
    assert [hit["rank"] for hit in entry["results"]] == [1, 2, 3]
    assert set(entry["results"][0]) == {"rank", "id", "score", "label", "community", "path"}
    assert entry["scanned_fraction"] == 1.0
    scores = [hit["score"] for hit in entry["results"]]
    assert scores == sorted(scores, reverse=True)
    top = store.row_of_id[entry["results"][0]["id"]]
    assert entry["results"][0]["community"] == int(store.membership("leiden")[top])


def test_csv_form(store):
    result = search(store, as_queries(store, "test", kind="split"), k=4)
    rows = list(csv.DictReader(io.StringIO(render(result, fmt="csv"))))
    assert len(rows) == 24 * 4
    assert rows[0]["rank"] == "1" and rows[3]["rank"] == "4"


def test_unknown_id_and_split(store):
    with pytest.raises(InputError, match="unknown id 'nope'"):
        as_queries(store, ["nope"], kind="ids")
    with pytest.raises(GraphretError, match="no split 'holdout'"):
        as_queries(store, "holdout", kind="split")
