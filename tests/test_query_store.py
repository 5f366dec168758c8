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


# -- issue 25: prepared once per store version, the lean call, output from Arrow tables --------
def test_what_a_query_needs_is_read_once_per_version(store):
    codes = store.codes()
    assert store.codes() is codes and not codes.flags.writeable  # shared by every query: read-only
    method = store.default_community_method()
    assert store.membership(method) is store.membership(method)
    assert store.split_names == frozenset(store.splits)


@pytest.mark.parametrize("mode", ["region", "graph", "flat"])
def test_search_arrays_answers_as_search_does(store, mode):
    from graphret.query import Searcher

    searcher = Searcher(store)
    rows = store.split_rows(["test"])[:5]
    full = searcher.search(as_queries(store, rows, kind="rows"), k=6, mode=mode)
    lean = searcher.search_arrays(rows=rows, k=6, mode=mode)
    assert np.array_equal(lean.rows, full.rows) and np.allclose(lean.scores, full.scores)
    assert np.allclose(lean.scanned_fraction, full.scanned_fraction)
    by_code = searcher.search_arrays(np.asarray(store.codes()[rows]) * 3.0, k=6, mode=mode)  # made unit here
    assert np.allclose(by_code.scores[:, 0], np.sort(by_code.scores, axis=1)[:, -1], atol=1e-6) or mode == "region"
    assert not np.isin(rows[:, None], lean.rows).any(axis=1).any()  # a stored query never returns itself
    with pytest.raises(InputError, match="one of them"):
        searcher.search_arrays(k=3)


def test_graph_and_region_modes_walk_the_community_layout_with_the_plain_answers(store, monkeypatch):
    from graphret.graph import layout as layouts
    from graphret.graph.walk import walk_checked
    from graphret.query import Searcher
    from graphret.query.graph_region import region_checked
    from graphret.query.searcher import by_cosine

    assert Searcher(store).index.graph_base.layout is None  # a small archive keeps its order
    monkeypatch.setattr(layouts, "LAYOUT_ABOVE", 0)  # as a large one would
    searcher = Searcher(store)
    rows = store.split_rows(["test"])[:8]
    hits = searcher.search_arrays(rows=rows, k=6, mode="graph")
    index = searcher.index
    layout = index.graph_base.layout
    assert index.walk_base.layout is None and layout is not None  # filtered walks keep the archive's order
    groups = store.membership(searcher.method)[index.rows][layout.order]
    assert np.all(np.diff(groups) >= 0)
    exclude = index.position[rows]
    plain_inputs = index.walk_base.with_queries(np.asarray(store.codes()[rows]), 6, exclude=exclude)
    plain = walk_checked(plain_inputs)
    assert np.array_equal(index.rows[plain[0]], hits.rows) and np.allclose(plain[1], hits.scores)
    region, _ = index.region
    for order in ("gain", "cosine"):
        laid = searcher.search_arrays(rows=rows, k=6, mode="region", region_order=order)
        assert region.in_layout(layout) is region.in_layout(layout)  # renumbered once
        f, s, _ = region_checked(plain_inputs, region, hold_nearest=order == "cosine")
        if order == "cosine":
            f, s = by_cosine(f, s)
        assert np.array_equal(index.rows[f], laid.rows) and np.allclose(s, laid.scores)
    # filtered: the mask is mapped onto the layout once per filter, and the answers stay the plain ones
    where = "split!=val"
    allowed, n_allowed = searcher.allowed(where)
    plain_filtered = index.walk_base.with_queries(np.asarray(store.codes()[rows]), 6, exclude=exclude, allowed=allowed,
                                                  n_allowed=n_allowed)
    for mode in ("graph", "region"):
        laid = searcher.search_arrays(rows=rows, k=6, mode=mode, where=where)
        if mode == "graph":
            f, s, _ = walk_checked(plain_filtered)
        else:
            f, s = by_cosine(*region_checked(plain_filtered, region, hold_nearest=True)[:2])
        assert np.array_equal(index.rows[f], laid.rows) and np.allclose(s, laid.scores)
        assert set(store.splits[laid.rows.ravel()]) == {"train"}
    mapped = searcher._filters_laid[(where,)]
    assert mapped[0] is allowed and np.array_equal(mapped[1], allowed[layout.order])
    searcher.search_arrays(rows=rows, k=6, mode="graph", where=where)
    assert searcher._filters_laid[(where,)] is mapped  # mapped once


def test_large_archives_walk_a_one_byte_copy_of_the_codes_and_answer_with_exact_cosines(store, monkeypatch):
    from graphret.graph import layout as layouts
    from graphret.query import Searcher

    monkeypatch.setattr(layouts, "LAYOUT_ABOVE", 0)
    assert Searcher(store).index.graph_base.layout.compact is None  # above LAYOUT_ABOVE only: the float codes
    monkeypatch.setattr(layouts, "COMPACT_ABOVE", 0)  # as a large archive would
    searcher = Searcher(store)
    rows = store.split_rows(["test"])[:8]
    hits = searcher.search_arrays(rows=rows, k=6, mode="graph")
    compact = searcher.index.graph_base.layout.compact
    assert compact is not None and compact.codes.dtype == np.uint8
    codes = np.asarray(store.codes())
    np.testing.assert_allclose(hits.scores, np.einsum("qd,qkd->qk", codes[rows], codes[hits.rows]), atol=1e-5)
    flat = searcher.search_arrays(rows=rows, k=6, mode="flat")
    assert np.mean([len(set(a) & set(b)) for a, b in zip(hits.rows, flat.rows)]) >= 5
    assert not np.any(hits.rows == rows[:, None])  # a stored query never returns itself
    from graphret.graph.walk import walk_checked

    single = searcher.search_arrays(codes[rows[0]], k=6, mode="graph")  # one code: the single-query path, the same walk
    batch = walk_checked(searcher.index.graph_base.with_queries(codes[rows[:1]], 6))
    assert np.array_equal(np.ravel(single.rows), searcher.index.rows[batch[0]].ravel())
    np.testing.assert_allclose(np.ravel(single.scores), batch[1].ravel(), atol=1e-6)


def test_repeated_filters_are_evaluated_once(store):
    from graphret.query import Searcher

    searcher = Searcher(store)
    first, n = searcher.allowed(["split!=val"])
    again, _ = searcher.allowed(["split!=val"])
    assert again is first and n == int(first.sum()) == int((store.splits[searcher.rows] != "val").sum())
    result = searcher.search_arrays(rows=store.split_rows(["test"])[:3], k=4, mode="flat", where="split!=val")
    assert set(store.splits[result.rows.ravel()]) == {"train"}


def _same_json(text: bytes, document: dict) -> bool:
    """The JSON reads back as ``document`` with the same types (1.0 stays a float)."""
    return json.dumps(json.loads(text), sort_keys=True) == json.dumps(document, sort_keys=True)


def test_json_from_arrow_is_the_dict_form(store, monkeypatch):
    """JSON is the dict form; JSON, CSV and Parquet made in parts are the same documents."""
    import pyarrow.parquet as pq

    from graphret.query import output

    for mode in ("region", "flat", "probe"):
        result = search(store, as_queries(store, "test", kind="split"), k=5, mode=mode)
        whole, csv_whole = output.render_bytes(result, fmt="json"), output.render_bytes(result, fmt="csv")
        assert _same_json(whole, result.to_dict())
        monkeypatch.setattr(output, "PART_RESULTS", 12)  # parts of two queries, the last of one
        parts, csv_parts = list(output.render_parts(result, fmt="json")), list(output.render_parts(result, fmt="csv"))
        parquet = pq.read_table(io.BytesIO(output.render_bytes(result, fmt="parquet")))
        monkeypatch.undo()
        assert len(parts) == 2 + -(-len(result) // 2) and b"".join(parts) == whole
        assert len(csv_parts) == 1 + -(-len(result) // 2) and b"".join(csv_parts) == csv_whole
        assert parquet.equals(output.result_table(result)) and parquet.column("query_index").num_chunks == -(-len(result) // 2)


def test_a_part_that_fails_leaves_the_file_as_it_was(tmp_path):
    """Parts made as the writer asks for them: if one fails, the file keeps its old content
    and no temporary file stays behind."""
    from graphret.atomic import atomic_write_bytes

    target = tmp_path / "out.json"
    target.write_bytes(b"old")

    def parts():
        yield b"new"
        raise ValueError("failed while making a part")

    with pytest.raises(ValueError):
        atomic_write_bytes(target, parts())
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["out.json"]
    atomic_write_bytes(target, iter([b"a", memoryview(b"bc")]))
    assert target.read_bytes() == b"abc"


@pytest.fixture(scope="module")
def odd_store(tmp_path_factory):
    """Ids that JSON must escape (quotes, backslashes, control and non-ASCII characters), no
    paths, multi-label labels; a test split."""
    import graphret

    rng = np.random.default_rng(3)
    codes = rng.normal(size=(40, 6)).astype(np.float32)
    odd = ['a"b', "back\\slash", "tab\there", "caf\u00e9", "\u6f22\u5b57", "del\x7f", "plain"]
    ids = [odd[i] if i < len(odd) else f"item-{i}" for i in range(40)]
    labels = (rng.random((40, 3)) < 0.4).astype(np.int8)
    splits = ["train"] * 30 + ["test"] * 10
    splits[:3] = ["test"] * 3
    return graphret.build_from_codes(codes, tmp_path_factory.mktemp("odd") / "s", ids=ids, labels=labels,
                                     class_names=["x", "y", "z"], splits=splits, k=4).snapshot


def test_outputs_escape_ids_and_write_multilabel_and_missing_paths(odd_store):
    """Issue 25.6: the Arrow-made JSON is json.dumps's text for ids that need escapes, lists of
    labels and null paths, for a whole split (the store's item columns) and for a few queries
    (the items shown only); CSV and Parquet hold the same values."""
    import pyarrow as pa

    from graphret.query import output
    from graphret.store.arrays import numeric_array, text_array

    whole = search(odd_store, as_queries(odd_store, "test", kind="split"), k=20, mode="flat")
    few = search(odd_store, as_queries(odd_store, ['a"b', "caf\u00e9"], kind="ids"), k=3, mode="flat")
    assert whole.rows.size >= output.WHOLE_STORE * len(odd_store) > few.rows.size
    shown = {str(i) for i in odd_store.ids[whole.rows.ravel()]}
    assert {"back\\slash", "tab\there", "\u6f22\u5b57", "del\x7f"} <= shown | set(whole.queries.ids)
    for result in (whole, few):
        assert _same_json(output.render_bytes(result, fmt="json"), result.to_dict())
        hits = [hit for entry in result.to_dict()["queries"] for hit in entry["results"]]
        table = output.result_table(result)
        assert table.column("id").to_pylist() == [h["id"] for h in hits]
        assert table.column("label").to_pylist() == ["|".join(h["label"]) or "(none)" for h in hits]
        assert table.column("path").null_count == len(hits)
        rows = list(csv.DictReader(io.StringIO(output.render_bytes(result, fmt="csv").decode())))
        assert [r["id"] for r in rows] == [h["id"] for h in hits]
    assert any(isinstance(entry["query"]["label"], list) and entry["query"]["label"] for entry in whole.to_dict()["queries"])
    assert text_array(["a", None, "\u00e9"]).equals(pa.array(["a", None, "\u00e9"], pa.string()))
    for values in (np.array([True, False, True]), np.arange(5, dtype=np.int32), np.linspace(0, 1, 4)):
        assert numeric_array(values).equals(pa.array(values))


def test_csv_and_parquet_hold_every_result(store, tmp_path):
    import pyarrow.parquet as pq

    from graphret.query.output import render_bytes, result_table

    result = search(store, as_queries(store, "test", kind="split"), k=4, mode="region")
    rows = list(csv.DictReader(io.StringIO(render_bytes(result, fmt="csv").decode())))
    hits = [hit for entry in result.to_dict()["queries"] for hit in entry["results"]]
    assert [r["id"] for r in rows] == [h["id"] for h in hits]
    assert [float(r["score"]) for r in rows] == [h["score"] for h in hits]
    assert [r["label"] for r in rows] == [h["label"] for h in hits]
    (tmp_path / "r.parquet").write_bytes(render_bytes(result, fmt="parquet"))
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.equals(result_table(result)) and table.num_rows == result.rows.size
    assert table.column("id").to_pylist() == [h["id"] for h in hits]


def test_region_ranks_its_region_by_cosine_unless_asked_for_gain(store):
    """Issue 23.5: the default region order puts the most similar image first (the walk's
    nearest item joins the region); the gain order is Haq's region alone, as it grew."""
    from graphret.errors import ParameterError

    queries = as_queries(store, "test", kind="split")
    by_cosine = search(store, queries, k=8, mode="region")
    by_gain = search(store, queries, k=8, mode="region", region_order="gain")
    nearest = search(store, queries, k=1, mode="flat").rows[:, 0]
    assert np.all(np.diff(by_cosine.scores, axis=1) <= 0)
    assert np.array_equal(by_cosine.rows[:, 0], nearest)
    for cos_rows, gain_rows, near in zip(by_cosine.rows, by_gain.rows, nearest):
        held = list(gain_rows) if near in gain_rows else [near] + list(gain_rows[:-1])
        assert set(cos_rows) == set(held)
    assert np.any(np.diff(by_gain.scores, axis=1) > 0)  # the gain order is not the cosine order here
    with pytest.raises(ParameterError, match="region_order applies to the region mode only"):
        search(store, queries, k=8, mode="flat", region_order="gain")


@pytest.mark.parametrize("laid_out", [False, True])
def test_one_query_in_graph_mode_is_one_compiled_call_with_the_batch_answers(blob_stores, monkeypatch, laid_out):
    """A code alone (made unit in the same call), a stored item alone (by id, or a row of
    search_arrays), answered by SingleWalk: the same rows, scores and result as in a batch."""
    import graphret
    from graphret.graph import layout as layouts
    from graphret.graph.walk import SingleWalk

    if laid_out:
        monkeypatch.setattr(layouts, "LAYOUT_ABOVE", 0)  # the walk over the community layout, as a large archive's
    calls = []
    walk_alone = SingleWalk.__call__
    monkeypatch.setattr(SingleWalk, "__call__", lambda self, *a, **kw: calls.append(1) or walk_alone(self, *a, **kw))
    store = graphret.open(blob_stores(n_per_class=40, seed=1, communities=("leiden",)))
    searcher = store.searcher()
    searcher.lay_out()
    assert (searcher.index.graph_base.layout is not None) is laid_out
    rows = store.snapshot.split_rows(["test"])[:5]
    archived = store.snapshot.split_rows(["train"])[:3]
    codes = np.asarray(store.codes()[rows], np.float64) * 2.5  # not unit, not float32: made so as any code query
    codes[0, :3] = 0.0
    other, other_id = codes[-1], str(store.snapshot.ids[archived[-1]])
    for ef, k in ((1, 1), (4, 3), (16, 10), (64, 25)):
        for code in codes:
            before = len(calls)
            batch = store.search(np.stack([code, other]), k=k, mode="graph", ef=ef)  # two queries: the general path
            assert len(calls) == before
            single, one_row = store.search(code, k=k, mode="graph", ef=ef), store.search(code[None], k=k, mode="graph", ef=ef)
            lean = searcher.search_arrays(code, k=k, mode="graph", ef=ef)
            assert len(calls) == before + 3  # each of them one compiled call
            for alone in (single, one_row, lean):
                assert np.array_equal(alone.rows[0], batch.rows[0]) and np.array_equal(alone.scores[0], batch.scores[0])
                assert np.array_equal(alone.scanned_fraction, batch.scanned_fraction[:1]) and alone.details == batch.details == {}
            for alone in (single, one_row):
                assert np.array_equal(alone.queries.codes[0], batch.queries.codes[0]) and alone.queries.codes.dtype == np.float32
                assert alone.queries.ids == [None] and alone.queries.rows.tolist() == [-1]
                assert alone.to_dict()["queries"] == batch.to_dict()["queries"][:1]
        for row in archived:  # a stored item alone: left out of its own results, as in a batch
            item = str(store.snapshot.ids[row])
            batch = store.search([item, other_id], k=k, mode="graph", ef=ef)
            before = len(calls)
            by_id, lean = store.search(item, k=k, mode="graph", ef=ef), searcher.search_arrays(rows=[row], k=k, mode="graph", ef=ef)
            assert len(calls) == before + 2
            for alone in (by_id, lean):
                assert np.array_equal(alone.rows[0], batch.rows[0]) and np.array_equal(alone.scores[0], batch.scores[0])
                assert np.array_equal(alone.scanned_fraction, batch.scanned_fraction[:1])
            assert by_id.to_dict()["queries"] == batch.to_dict()["queries"][:1] and row not in by_id.rows
            own = store.search(np.asarray(store.codes()[row]), k=k, mode="graph", ef=ef)  # its own code finds it first
            assert own.rows[0, 0] == row and own.scores[0, 0] == pytest.approx(1.0, abs=1e-6)
            assert np.array_equal(own.rows[0, 1:], by_id.rows[0, :k - 1])
    assert searcher._single.base is searcher.index.graph_base
    # what the single walk does not take goes the general way, with its errors
    for bad, text in ((np.zeros(codes.shape[1]), "is all zeros"), (np.full(codes.shape[1], np.nan), "NaN or infinite"),
                      (np.ones(codes.shape[1] + 1), "dimension")):
        with pytest.raises(InputError, match=text):
            store.search(bad, k=3, mode="graph")
        with pytest.raises(InputError, match=text):
            searcher.search_arrays(bad, k=3, mode="graph")
    with pytest.raises(GraphretError, match="archive"):
        store.search(codes[1], k=searcher.index.n + 1, mode="graph")
    with pytest.raises(GraphretError, match="archive"):
        searcher.search_arrays(rows=archived[:1], k=searcher.index.n, mode="graph")  # itself left out: one short
    filtered = store.search(codes[1], k=5, mode="graph", where="split!=val")
    assert set(store.snapshot.splits[filtered.rows.ravel()]) == {"train"}


def test_query_rows_outside_the_store_are_named(store):
    from graphret.query import Searcher

    searcher = Searcher(store)
    for rows in ([len(store)], [0, -1]):
        with pytest.raises(InputError, match=f"query rows must lie in 0..{len(store) - 1}"):
            searcher.search_arrays(rows=np.array(rows), k=3, mode="graph")
    assert searcher.search_arrays(rows=np.array([len(store) - 1]), k=3, mode="graph").rows.shape == (1, 3)
