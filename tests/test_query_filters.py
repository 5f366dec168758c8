"""--where filters in every mode, and the query command's options and one-line errors."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from graphret.cli.main import main
from PIL import Image

import graphret
from graphret.data.demo import load_demo
from graphret.errors import InputError
from graphret.query import as_queries, search
from graphret.query.filters import filter_mask, parse_where
from graphret.store import open_store


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("filters") / "store"
    graphret.build(load_demo(labels='anatomy', n=240, seed=1), str(path), k=5, communities=('cnm', 'leiden'), encoder='pixels', image_size=16, dim=16)
    return open_store(path)


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    lines = [line for line in result.output.splitlines() if line.strip()]
    return result, lines


@pytest.mark.parametrize(
    "text, column, op, values",
    [
        ("label=CXR", "label", "=", ("CXR",)),
        ("split != test", "split", "!=", ("test",)),
        ("anatomy in head,chest", "anatomy", "in", ("head", "chest")),
        ("anatomy NOT IN head", "anatomy", "not in", ("head",)),
        ("age>=40", "age", ">=", ("40",)),
        ("nodule==1", "nodule", "=", ("1",)),
    ],
)
def test_parse_where(text, column, op, values):
    f = parse_where(text)
    assert (f.column, f.op, f.values) == (column, op, values)


@pytest.mark.parametrize("text", ["label", "=x", "label in", "la bel=x"])
def test_parse_where_refuses_nonsense(text):
    with pytest.raises(InputError, match="filter"):
        parse_where(text)


def test_masks(store):
    labels = store.labels
    head = store.class_names.index("head")
    np.testing.assert_array_equal(filter_mask(store, ["label=head"]), labels == head)
    np.testing.assert_array_equal(filter_mask(store, ["label!=head"]), labels != head)
    nodule = store.items.column("nodule").to_numpy()
    np.testing.assert_array_equal(filter_mask(store, ["nodule>=1"]), nodule >= 1)
    both = filter_mask(store, ["label in head,chest", "split=train"])
    expected = np.isin(labels, [head, store.class_names.index("chest")]) & (store.splits == "train")
    np.testing.assert_array_equal(both, expected)
    with pytest.raises(InputError, match="unknown column 'modality'"):
        filter_mask(store, ["modality=CT"])
    with pytest.raises(InputError, match="no class 'knee'"):
        filter_mask(store, ["label=knee"])
    with pytest.raises(InputError, match="holds text"):
        filter_mask(store, ["split>train"])
    with pytest.raises(InputError, match="numeric"):
        filter_mask(store, ["nodule=yes"])


@pytest.mark.parametrize("mode", ["flat", "probe", "region"])
def test_filters_return_k_whenever_k_exist(store, mode):
    queries = as_queries(store, "test", kind="split")
    mask = filter_mask(store, ["label=hand", "nodule=0"])
    available = int(np.sum(mask[store.archive_rows()]))
    k = available  # every matching archive item, from queries in any community
    one_list = {"n_probe": 1} if mode == "probe" else {}  # n_probe applies to probe mode only
    result = search(store, queries, k=k, mode=mode, where=["label=hand", "nodule=0"], **one_list)
    assert result.rows.shape == (len(queries), k)
    assert np.all(mask[result.rows])
    assert all(len(set(row)) == k for row in result.rows)
    with pytest.raises(InputError, match="larger than|only"):
        search(store, queries, k=k + 1, mode=mode, where=["label=hand", "nodule=0"])


def test_filter_matching_nothing(store):
    with pytest.raises(InputError, match="no archive item matches"):
        search(store, as_queries(store, "test", kind="split"), k=3, where=["label=hand", "split=test"])


def test_arrow_table_api(store):
    queries = as_queries(store, "test", kind="split")
    result = search(store, queries, k=4, mode="probe")
    table = result.to_arrow()
    assert table.num_rows == len(queries) * 4
    assert table.column_names[:4] == ["query_index", "query_id", "rank", "id"]
    assert table.column("id").to_pylist()[:4] == result.ids[0].tolist()
    assert table.column("community").to_pylist()[0] == int(store.membership("cnm")[result.rows[0, 0]])


def test_cli_modes_where_space_and_batches(store, tmp_path):
    result, _ = invoke("query", store.path, "--split", "test", "--k", 5, "--format", "json", "--where", "label=head")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["mode"] == "region" and payload["community_method"] == "cnm"
    assert all(h["label"] == "head" for q in payload["queries"] for h in q["results"])
    # a filter this selective on 168 items sends region growing past what the walk touched, to an
    # exact scan of the allowed items; without it, region compares a part of the archive
    assert all(q["scanned_fraction"] <= 1 for q in payload["queries"])
    plain, _ = invoke("query", store.path, "--split", "test", "--k", 5, "--format", "json")
    assert all(q["scanned_fraction"] < 1 for q in json.loads(plain.output)["queries"])
    probe, _ = invoke("query", store.path, "--split", "test", "--k", 5, "--mode", "probe", "--probe", 2, "--communities", "leiden", "--batch-size", 7, "--format", "json")
    assert probe.exit_code == 0, probe.output
    assert json.loads(probe.output)["community_method"] == "leiden"
    flat, _ = invoke("query", store.path, "--split", "test", "--k", 3, "--mode", "flat", "--space", "default")
    assert flat.exit_code == 0 and "scanned: 100.0%" in flat.output


def test_cli_folder_of_images(store, tmp_path):
    folder = tmp_path / "queries"
    (folder / "sub").mkdir(parents=True)
    demo = load_demo(labels="anatomy", n=6, seed=9)
    for i in range(3):
        Image.fromarray(demo.image(i)).save(folder / ("sub" if i else ".") / f"q{i}.png")
    (folder / "notes.txt").write_text("not an image")
    result, _ = invoke("query", store.path, "--image", folder, "--k", 3, "--format", "json")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert len(payload["queries"]) == 3
    assert payload["queries"][0]["query"]["path"].endswith(".png")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--id", "no-such-id"], "unknown id 'no-such-id'"),
        (["--split", "test", "--k", "0"], "K must be at least 1"),
        (["--split", "test", "--k", "100000"], "larger than"),
        (["--split", "test", "--mode", "class"], "classifier"),
        (["--split", "test", "--where", "label=hand", "--where", "split=test"], "no archive item matches"),
        (["--split", "test", "--where", "modality=CT"], "unknown column 'modality'"),
        (["--split", "test", "--where", "label"], "cannot read the filter"),
        (["--split", "test", "--space", "nope"], "no code space 'nope'"),
        (["--split", "test", "--communities", "louvain"], "no 'louvain' communities"),
        (["--split", "test", "--mode", "probe", "--probe", "0"], "--probe"),
        (["--split", "test", "--montage", "{tmp}/out.jpg"], "PNG"),
        (["--image", "{tmp}/broken.png"], "broken.png"),
    ],
)
def test_cli_bad_input_is_one_line(store, tmp_path, args, message):
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    filled = [a.format(tmp=tmp_path) for a in args]
    result, lines = invoke("query", store.path, *filled)
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert len(lines) == 1 and message in lines[0], result.output


def test_wrong_code_dimension(store):
    queries = as_queries(store, np.ones((1, 7), np.float32), kind="codes")
    for mode in ("flat", "probe", "region"):
        with pytest.raises(InputError, match="dimension 7"):
            search(store, queries, k=3, mode=mode)
