"""The store-centred public API: graphret.build / open / build_from_codes, Store.search with every
kind of query, add, communities, and errors that name Python parameters (flags on the CLI)."""

import inspect
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from graphret.cli.main import main

import graphret
from graphret.errors import InputError, KTooLarge, ParameterError, StoreError
from tests.synthetic import blob_images


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    path = tmp_path_factory.mktemp("api") / "demo-store"
    return graphret.build("demo:n=200,size=32", path, encoder="pixels", image_size=16, dim=16, k=5)


def test_build_search_dataframe(demo):
    assert isinstance(demo, graphret.Store) and len(demo) == 200
    result = demo.search("test", k=7, mode="flat")
    frame = result.to_pandas()
    n_test = int((demo.snapshot.splits == "test").sum())
    assert len(frame) == 7 * n_test
    assert list(frame.columns[:6]) == ["query_index", "query_id", "rank", "id", "row", "score"]
    assert (frame.groupby("query_index")["rank"].apply(list) == [list(range(1, 8))] * n_test).all()
    assert not (frame["query_id"] == frame["id"]).any()  # a stored query never finds itself
    again = graphret.open(demo.path).search("test", k=7, mode="flat")
    np.testing.assert_array_equal(again.rows, result.rows)
    payload = result.to_dict()
    assert payload["mode"] == "flat" and len(payload["queries"]) == n_test and len(payload["queries"][0]["results"]) == 7


def test_queries_are_detected(demo):
    ids = [str(i) for i in demo.ids[:2]]
    by_id = demo.search(ids, k=3, mode="flat")
    assert by_id.queries.ids == ids and np.array_equal(by_id.queries.rows, [0, 1])
    codes = demo.codes()[:2]
    by_code = demo.search(codes, k=3, mode="flat")
    assert by_code.queries.rows.tolist() == [-1, -1]
    # the item itself comes first when searched by its code (it is in the archive) ...
    archive = demo.snapshot.archive_rows()[:2]
    assert np.array_equal(demo.search(demo.codes()[archive], k=1, mode="flat").rows[:, 0], archive)
    # ... and never when searched by id
    assert not np.isin(demo.search([str(demo.ids[archive[0]])], k=5, mode="flat").rows, archive[:1]).any()
    with pytest.raises(InputError, match="neither a split, a stored id nor an existing image path"):
        demo.search("no-such-thing", k=3)


def test_searchers_are_kept_per_space_and_method(demo):
    a = demo.searcher()
    assert demo.searcher() is a and demo.searcher(communities="leiden") is not a


def test_errors_name_python_parameters_and_cli_flags(demo, tmp_path):
    with pytest.raises(KTooLarge) as error:
        demo.search("test", k=10_000, mode="flat")
    assert "use k=" in str(error.value) and error.value.available < 10_000
    with pytest.raises(InputError, match=r"k must be at least 1, got 0; use e.g. k=10"):
        graphret.build("demo:n=50,size=16", tmp_path / "x", encoder="pixels", k=0)
    with pytest.raises(ParameterError, match="epochs does not apply to the pixel baseline"):
        graphret.build("demo:n=50,size=16", tmp_path / "y", encoder="pixels", epochs=3)
    with pytest.raises(InputError, match="unknown option 'kk'"):
        graphret.build("demo:n=50,size=16", tmp_path / "z", kk=3)
    cli = CliRunner().invoke(main, ["query", str(demo.path), "--split", "test", "--k", "10000", "--mode", "flat"])
    assert cli.exit_code == 1 and "use --k " in cli.output and "k=" not in cli.output


@pytest.mark.parametrize("options, name, fix", [
    ({"mode": "flat", "n_probe": 4}, "n_probe", "mode=probe"),
    ({"mode": "probe", "ef": 8}, "ef", "leave it out"),
    ({"mode": "graph", "class_source": "knn"}, "class_source", "mode=class"),
    ({"n_probe": 4}, "n_probe", "mode=probe"),  # the store's default mode (region) decides
])
def test_an_option_the_mode_ignores_is_refused(demo, options, name, fix):
    with pytest.raises(ParameterError, match=f"{name} applies to the .* mode.? only; .*{fix}") as error:
        demo.search("test", k=3, **options)
    assert error.value.param == name
    with pytest.raises(ParameterError):  # the Searcher and a config refuse it the same way
        demo.searcher().search("test", graphret.SearchConfig(k=3, **options))


def test_search_options_come_from_one_config(demo):
    config = graphret.SearchConfig(k=4, mode="probe", n_probe=2, where="split!=val")
    assert config.where == ("split!=val",) and config.probe == 2
    assert demo.search("test", config=config).to_dict() == demo.search("test", k=4, mode="probe", n_probe=2, where=["split!=val"]).to_dict()
    assert demo.search("test", config=config, k=2).k == 2  # keywords override the config's fields
    names = graphret.SearchConfig.option_names()
    for function in (graphret.Store.search, graphret.Store.searcher(demo).search):
        shown = inspect.signature(function).parameters
        assert set(names) <= set(shown) and shown["k"].default == 10 and shown["n_probe"].default is None
    query_flags = {p.name for p in main.get_command(None, "query").params}
    assert set(names) <= query_flags
    cli = CliRunner().invoke(main, ["query", str(demo.path), "--split", "test", "--mode", "flat", "--probe", "4"])
    assert cli.exit_code == 2 and "--probe applies to the probe mode only; leave it out or use --mode probe" in cli.output
    with pytest.raises(ParameterError, match="searches space 'default'"):
        demo.searcher().search("test", k=3, space="normal")


@pytest.mark.parametrize("bad", [True, 2.0])
def test_a_cached_config_never_stands_in_for_a_bad_value(demo, bad):
    """SearchConfig's per-call cache is keyed by type too: after searches with k=1 and k=2,
    k=True or k=2.0 (equal and hash-equal to them) is still refused, as on a first call."""
    demo.search("test", k=1, mode="flat")
    demo.search("test", k=2, mode="flat")
    with pytest.raises(InputError, match=f"k must be a whole number, got {bad}"):
        demo.search("test", k=bad, mode="flat")
    with pytest.raises(InputError, match=f"k must be a whole number, got {bad}"):
        graphret.SearchConfig.from_options(k=bad)


def test_a_python_build_is_quiet_and_leaves_only_the_store(tmp_path, capfd):
    """As ``graphret build-graph --quiet``: no progress lines or bars, and the training's default
    checkpoint (written after every epoch beside the store) is gone once the store is written."""
    lines = []
    graphret.build("demo:n=60,size=16", tmp_path / "s", encoder="cnn", backbone="small", epochs=1, image_size=16,
                   thumbnail_size=0, k=3, log=lines.append)
    assert any("fitting encoder cnn" in line for line in lines)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s"]
    capfd.readouterr()
    graphret.build("demo:n=60,size=16", tmp_path / "t", encoder="cnn", backbone="small", epochs=1, image_size=16,
                   thumbnail_size=0, k=3)
    assert capfd.readouterr() == ("", "")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s", "t"]
    kept = tmp_path / "mine.ckpt"  # a checkpoint the user named stays
    graphret.build("demo:n=60,size=16", tmp_path / "u", encoder="cnn", backbone="small", epochs=1, image_size=16,
                   thumbnail_size=0, k=3, checkpoint=str(kept))
    assert kept.is_file()


def test_a_build_writes_nothing_outside_the_store(tmp_path, monkeypatch):
    """The per-step peak memory is read, never reset (a library must not reset its caller's
    counters by writing /proc/self/clear_refs); benchmarks opt in with STEP_PEAK_RESET."""
    import builtins
    import importlib

    build_module = importlib.import_module("graphret.api.build")  # graphret.api.build is also the build function
    written, real_open = [], builtins.open

    def spy(file, mode="r", *args, **kwargs):
        if any(flag in mode for flag in "wax+"):
            written.append(str(file))
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    codes = np.random.default_rng(0).standard_normal((80, 8)).astype(np.float32)
    store = graphret.build_from_codes(codes, tmp_path / "s", k=4, communities=["cnm"])
    assert not [path for path in written if not path.startswith(str(tmp_path))], written
    assert set(store.manifest["build"]["peak_rss_mib_by_step"]) == {"knn", "cnm", "walk"}
    resets = []
    monkeypatch.setattr(build_module, "STEP_PEAK_RESET", lambda: resets.append(1))
    graphret.build_from_codes(codes, tmp_path / "t", k=4, communities=["cnm"])
    assert len(resets) == 4  # at the start and after each of the three steps


def test_add_refreshes_the_store(tmp_path):
    store = graphret.build(blob_images(n_per_class=20, n_classes=3, seed=1), tmp_path / "s", encoder="pixels",
                           image_size=16, dim=8, k=4, communities=("cnm",))
    before = len(store)
    new = blob_images(n_per_class=1, n_classes=3, seed=9)
    new.ids = [f"new-{i}" for i in range(len(new))]
    summary = store.add(new)
    assert summary["added"] == 3 and len(store) == before + 3
    assert store.search(["new-0"], k=2, mode="flat").rows.shape == (1, 2)
    frame = store.to_pandas()
    assert len(frame) == before + 3 and "community_cnm" in frame.columns and frame["added"].sum() == 3


def test_communities_analysis(demo):
    summary = demo.communities().summary()
    assert set(summary["partition"]) == {"cnm", "leiden"}
    assert (summary["communities"] > 1).all()


def test_build_from_codes(tmp_path):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 12))
    labels = np.repeat(["a", "b", "c"], 30)
    codes = centres[np.repeat(np.arange(3), 30)] + 0.05 * rng.normal(size=(90, 12))
    ids = [f"item{i}" for i in range(90)]
    store = graphret.build_from_codes(codes, path=tmp_path / "codes", ids=ids, labels=labels,
                                      metadata={"site": np.where(np.arange(90) % 2, "x", "y")}, k=5)
    assert store.task == "multiclass" and store.class_names == ["a", "b", "c"] and len(store) == 90
    result = store.search(["item0"], k=10, mode="flat")
    assert set(store.snapshot.labels[result.rows[0]]) == {0}
    filtered = store.search(["item0"], k=5, mode="flat", where="site=x")
    assert all(int(r) % 2 == 1 for r in filtered.rows[0])
    region = store.search(codes[:3], k=10)
    assert region.mode == "region" and region.rows.shape == (3, 10)
    with pytest.raises(StoreError, match="built from codes"):
        store.add(blob_images(n_per_class=2, n_classes=2, seed=0))
    with pytest.raises(InputError, match="one label per code"):
        graphret.build_from_codes(codes, path=tmp_path / "bad", labels=labels[:10])


def test_cli_builds_from_a_parquet_table_of_codes(tmp_path):
    rng = np.random.default_rng(1)
    codes = rng.normal(size=(40, 6)).astype(np.float32)
    table = pa.table({"id": [f"r{i}" for i in range(40)], "embedding": list(codes), "label": ["u", "v"] * 20,
                      "age": np.arange(40)})
    pq.write_table(table, tmp_path / "codes.parquet")
    built = CliRunner().invoke(main, ["build-graph", str(tmp_path / "codes.parquet"), "--codes", "-o", str(tmp_path / "s"),
                                      "--k", "4", "--quiet"])
    assert built.exit_code == 0, built.output
    assert json.loads(built.output)["items"] == 40
    store = graphret.open(tmp_path / "s")
    np.testing.assert_allclose(store.codes()[3], codes[3] / np.linalg.norm(codes[3]), rtol=1e-5)
    query = CliRunner().invoke(main, ["query", str(tmp_path / "s"), "--id", "r3", "--k", "3", "--where", "age>=10", "--format", "json"])
    assert query.exit_code == 0, query.output
    hits = json.loads(query.output)["queries"][0]["results"]
    assert len(hits) == 3 and all(int(h["id"][1:]) >= 10 for h in hits)
    missing = CliRunner().invoke(main, ["build-graph", str(tmp_path / "codes.parquet"), "--codes", "--code-column", "nope",
                                        "-o", str(tmp_path / "t")])
    assert missing.exit_code == 1 and "--code-column" in missing.output
