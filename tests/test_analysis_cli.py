"""`graphret communities`: output formats, pictures and exports, and bad input as one line."""

import json

import pytest
from click.testing import CliRunner
from graphret.cli.main import main

import graphret
from tests.synthetic import blob_images


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    import numpy as np

    folder = tmp_path_factory.mktemp("cli-analysis")
    images = blob_images(n_per_class=15, n_classes=3, seed=1, splits=False)
    npz = folder / "blobs.npz"
    np.savez(npz, images=images.images, labels=images.labels, class_names=np.array(images.class_names))
    options = {"image_size": 16, "dim": 8}
    good = folder / "good"
    graphret.build(str(npz), str(good), k=4, communities=('cnm', 'leiden'), encoder='pixels', **options)
    bare = folder / "bare"
    graphret.build(str(npz), str(bare), k=4, communities=(), encoder='pixels', **options)
    return good, bare


def run(*args):
    return CliRunner().invoke(main, ["communities", *map(str, args)])


def one_line_error(result, *fragments):
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_table_output(stores):
    good, _ = stores
    result = run(good, "--labels", "--compare", "--community", "0", "--top", "3")
    assert result.exit_code == 0, result.output
    out = result.output
    for heading in ("== summary", "== label agreement: cnm", "== most mixed communities: leiden", "== comparison",
                    "== contingency: cnm x leiden", "== cnm community 0: most central images",
                    "== cnm community 0: neighbouring communities"):
        assert heading in out
    assert "newman_modularity" in out and "label_nmi" in out


def test_json_and_csv_output(stores):
    good, _ = stores
    result = run(good, "--method", "cnm", "--cut", "4", "--labels", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    summary = data["sections"]["summary"]
    assert [row["partition"] for row in summary] == ["cnm", "cnm_cut4"]
    assert summary[1]["communities"] == 4
    assert data["sections"]["label agreement: cnm"][0]["label"] == "(classes)"
    assert data["machine"]["python"] and data["created"]
    csv = run(good, "--format", "csv")
    assert csv.exit_code == 0 and csv.output.startswith("# summary\npartition,items,communities")


def test_plots_and_export(stores, tmp_path):
    good, _ = stores
    result = run(good, "--method", "leiden", "--community", "1", "--plots", tmp_path / "pics", "--map", "pca",
                 "--export", tmp_path / "out")
    assert result.exit_code == 0, result.output
    pics = sorted(p.name for p in (tmp_path / "pics").iterdir())
    assert pics == ["community-graph-leiden.png", "map.png", "montage-leiden-1.png", "montage-leiden.png", "sizes.png"]
    assert (tmp_path / "out" / "graph.graphml").is_file() and (tmp_path / "out" / "edges.parquet").is_file()


@pytest.mark.parametrize("args, fragments", [
    (["--method", "louvain"], ["no 'louvain' communities", "cnm, leiden"]),
    (["--cut", "100000"], ["cannot cut at 100000", "clustered items"]),
    (["--cut", "0"], ["--cut must be"]),
    (["--method", "leiden", "--compare"], ["--compare needs two partitions"]),
    (["--community", "999"], ["no community 999"]),
    (["--map", "mds", "--plots", "x"], ["unknown map 'mds'"]),
    (["--top", "0"], ["--top must be"]),
])
def test_bad_options_are_one_line(stores, args, fragments):
    good, _ = stores
    one_line_error(run(good, *args), *fragments)


def test_store_without_communities_is_one_line(stores):
    _, bare = stores
    one_line_error(run(bare), "has no communities")
    one_line_error(run(bare, "--cut", "3"), "has no communities")


def test_missing_store_is_one_line(tmp_path):
    one_line_error(run(tmp_path / "nowhere"), "no such store")


def test_unwritable_export_is_one_line(stores, tmp_path):
    good, _ = stores
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    one_line_error(run(good, "--export", blocker), "cannot write into", "not a folder")
    one_line_error(run(good, "--plots", blocker / "sub"), "cannot create")


def test_montage_without_the_source_is_one_line(tmp_path):
    import numpy as np

    images = blob_images(n_per_class=10, n_classes=3, seed=2, splits=False)
    npz = tmp_path / "moved.npz"
    np.savez(npz, images=images.images, labels=images.labels)
    store = tmp_path / "store"
    graphret.build(str(npz), str(store), k=4, communities=('leiden',), encoder='pixels', image_size=16, dim=8)
    npz.unlink()
    one_line_error(run(store, "--cut", "3"), "no CNM dendrogram")
    one_line_error(run(store, "--plots", tmp_path / "pics", "--map", "pca"), "source", "gone")
    assert not (tmp_path / "pics" / "sizes.png").exists()
    ok = run(store, "--plots", tmp_path / "pics", "--map", "pca", "--no-montage")
    assert ok.exit_code == 0, ok.output
