"""graphret.analysis on a small store built in the test from an npz source: partitions and
cuts, label and method comparison, montages from the source, exports read back."""

import json

import networkx as nx
import numpy as np
import pyarrow.parquet as pq
import pytest
from matplotlib.figure import Figure

import graphret
from graphret.analysis import analyse
from graphret.analysis.scores import nmi
from graphret.communities import haq_modularity, newman_modularity
from graphret.errors import GraphretError, InputError
from graphret.store import open_store
from tests.synthetic import blob_images


def write_blob_npz(path, n_per_class=30, n_classes=3, seed=0):
    images = blob_images(n_per_class=n_per_class, n_classes=n_classes, seed=seed, splits=False)
    np.savez(path, images=images.images, labels=images.labels, class_names=np.array(images.class_names))
    return images


@pytest.fixture(scope="module")
def npz_store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("analysis")
    npz = folder / "blobs.npz"
    write_blob_npz(npz)
    store = folder / "store"
    # plain CNM: its partition is a cut of its dendrogram (refinement moves nodes off it)
    manifest = graphret.build(str(npz), store, k=5, communities=("cnm", "leiden"), encoder="pixels", image_size=16, dim=12,
                              heuristic="none", refine="none").manifest
    return store, npz, manifest


def test_partitions_match_the_store_and_its_manifest(npz_store):
    path, _, manifest = npz_store
    a = analyse(path)
    store = a.store
    assert a.names == ["cnm", "leiden"]
    archive = np.flatnonzero(store.membership("cnm") >= 0)
    np.testing.assert_array_equal(a.rows, archive)
    assert a.archive.n == manifest["counts"]["archive"]
    summary = a.summary().set_index("partition")
    for method in ("cnm", "leiden"):
        info = manifest["communities"][method]
        assert summary.loc[method, "communities"] == info["n_communities"]
        assert summary.loc[method, "newman_modularity"] == pytest.approx(info["newman_modularity"])
        assert summary.loc[method, "haq_modularity"] == pytest.approx(info["haq_modularity"])
        assert 0 < summary.loc[method, "coverage"] <= 1
        assert summary.loc[method, "items"] == a.archive.n
    # the sizes in the per-community table add up and come largest first
    table = a.communities("cnm")
    assert table["size"].sum() == a.archive.n and table["size"].is_monotonic_decreasing
    assert {"purity", "dominant", "conductance"} <= set(table.columns)


def test_cut_replays_the_dendrogram(npz_store):
    path, _, manifest = npz_store
    n_cnm = manifest["communities"]["cnm"]["n_communities"]
    a = analyse(path, cut=n_cnm)
    cut = a.partition(f"cnm_cut{n_cnm}")
    # the cut at CNM's own number of communities is CNM's partition (up to renumbering)
    assert nmi(cut.membership, a.membership("cnm")) == pytest.approx(1.0)
    # the blob graph falls apart into 3 components: the coarsest cut is 3, the finest all items
    three = analyse(path, methods="cnm", cut=3).partition("cnm_cut3")
    assert three.n_communities == 3 and three.cut == 3
    assert analyse(path, methods="cnm", cut=a.archive.n).partition(f"cnm_cut{a.archive.n}").n_communities == a.archive.n
    with pytest.raises(InputError, match="3 connected components"):
        analyse(path, cut=2)
    with pytest.raises(InputError, match=f"only {a.archive.n} clustered items"):
        analyse(path, cut=a.archive.n + 1)
    assert a.summary().set_index("partition").loc[f"cnm_cut{n_cnm}", "newman_modularity"] == pytest.approx(
        manifest["communities"]["cnm"]["newman_modularity"])


def test_labels_and_comparison(npz_store):
    path, _, _ = npz_store
    a = analyse(path)
    agree = a.label_agreement("cnm")
    assert agree["label"].tolist() == ["(classes)"]
    assert agree["items"].iloc[0] == a.archive.n
    # pixel codes separate the three blob classes well
    assert agree["purity"].iloc[0] > 0.9 and agree["nmi"].iloc[0] > 0.5
    comp = a.composition("leiden")
    assert {"class0", "class1", "class2"} <= set(comp.columns)
    assert (comp[["class0", "class1", "class2"]].sum(axis=1) == comp["size"]).all()
    mixed = a.most_mixed("cnm", top=3, min_size=1)
    assert len(mixed) <= 3 and mixed["purity"].is_monotonic_increasing
    cmp = a.compare("cnm", "leiden")
    assert cmp["a"] == "cnm" and 0 <= cmp["nmi"] <= 1 and -1 <= cmp["ari"] <= 1
    table = a.contingency("cnm", "leiden", top=2)
    assert table["total"].sum() == a.archive.n
    assert table.loc["cnm 0", "total"] == (a.membership("cnm") == 0).sum()
    with pytest.raises(InputError, match="no partition"):
        a.compare("cnm", "nope")


def test_central_and_neighbours(npz_store):
    path, _, _ = npz_store
    a = analyse(path, methods="leiden")
    central = a.central("leiden", community=0, top=3)
    assert central["rank"].tolist() == [1, 2, 3]
    assert (central["internal_degree"].diff().dropna() <= 0).all()
    assert set(central["id"]) <= set(a.ids[a.membership("leiden") == 0])
    assert central["label"].notna().all()
    report = a.community_report("leiden", 0, top=3)
    assert report["stats"]["size"] == (a.membership("leiden") == 0).sum()
    nb = a.neighbours("leiden", 0)
    assert (nb["neighbour"] != 0).all() and nb["weight"].is_monotonic_decreasing


def test_figures_and_montage_from_the_source(npz_store, tmp_path):
    path, _, _ = npz_store
    a = analyse(path)
    for fig in (a.plot_sizes(), a.plot_map("pca"), a.plot_community_graph("cnm", top=5),
                a.plot_montage("cnm", [0, 1], per_community=4)):
        assert isinstance(fig, Figure)
    written = a.save_plots(tmp_path / "pics", embeddings=["pca"], top=5)
    names = sorted(p.name for p in written)
    assert names == ["community-graph-cnm.png", "community-graph-leiden.png", "map.png", "montage-cnm.png",
                     "montage-leiden.png", "sizes.png"]
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_montage_needs_the_source(tmp_path):
    npz = tmp_path / "gone.npz"
    write_blob_npz(npz, n_per_class=12)
    store = tmp_path / "store"
    graphret.build(str(npz), str(store), k=4, communities=('leiden',), encoder='pixels', image_size=16, dim=8)
    npz.unlink()
    a = analyse(store)
    with pytest.raises(GraphretError, match="gone or unreadable") as info:
        a.plot_montage("leiden", 0)
    assert "\n" not in str(info.value)
    # an ImageSet holding the store's items still works
    fig = analyse(store, images=_reload(tmp_path)).plot_montage("leiden", 0, per_community=3)
    assert isinstance(fig, Figure)


def _reload(tmp_path):
    from graphret.data import open_source

    npz = tmp_path / "again.npz"
    write_blob_npz(npz, n_per_class=12)
    images = open_source(str(npz), seed=0)
    return images


def test_exports_read_back(npz_store, tmp_path):
    path, _, _ = npz_store
    a = analyse(path, cut=3)
    written = {p.name: p for p in a.export(tmp_path / "out")}
    assert set(written) == {"graph.graphml", "nodes.parquet", "edges.parquet", "summary.json", "summary.csv",
                            "communities.csv", "community_edges.csv"}
    store = open_store(path)
    src = store.edges.column("src").to_numpy()
    dst = store.edges.column("dst").to_numpy()
    weight = store.edges.column("weight").to_numpy()
    ids = store.ids
    # GraphML: same edges and weights, community attributes on every node
    G = nx.read_graphml(written["graph.graphml"])
    assert G.number_of_nodes() == a.archive.n and G.number_of_edges() == len(src)
    for s, d, w in zip(src[:50], dst[:50], weight[:50]):
        assert G[ids[s]][ids[d]]["weight"] == pytest.approx(float(w), rel=1e-6)
    cnm = store.membership("cnm")
    for row in a.rows[:20]:
        node = G.nodes[ids[row]]
        assert node["cnm"] == cnm[row] and node["leiden"] == store.membership("leiden")[row]
        assert node["row"] == row and "cnm_cut3" in node
    # Parquet: node and edge tables
    nodes = pq.read_table(written["nodes.parquet"])
    assert nodes.num_rows == a.archive.n
    np.testing.assert_array_equal(nodes.column("cnm").to_numpy(), cnm[a.rows])
    edges = pq.read_table(written["edges.parquet"])
    got = sorted(zip(edges.column("src").to_pylist(), edges.column("dst").to_pylist()))
    assert got == sorted(zip(src.tolist(), dst.tolist()))
    inside = edges.column("cnm_inside").to_numpy(zero_copy_only=False)
    np.testing.assert_array_equal(inside, edges.column("cnm_src").to_numpy() == edges.column("cnm_dst").to_numpy())
    # JSON and CSV summaries
    report = json.loads(written["summary.json"].read_text())
    assert [row["partition"] for row in report["summary"]] == ["cnm", "leiden", "cnm_cut3"]
    assert report["summary"][0]["newman_modularity"] == pytest.approx(
        newman_modularity(a.archive.graph, a.membership("cnm")))
    import pandas as pd

    csv = pd.read_csv(written["summary.csv"])
    assert csv["haq_modularity"].iloc[1] == pytest.approx(haq_modularity(a.archive.graph, a.membership("leiden")))
    per = pd.read_csv(written["communities.csv"])
    assert set(per["partition"]) == {"cnm", "leiden", "cnm_cut3"}


def test_multilabel_demo_store(tmp_path):
    """The multi-label demo store: NMI/ARI per finding, label-set purity, montage from the
    re-opened demo source."""
    path = tmp_path / "demo"
    graphret.build('demo:n=120,size=16', str(path), k=4, communities=('cnm',), encoder='pixels', image_size=16, dim=8)
    a = analyse(path)
    assert a.store.task == "multilabel"
    agree = a.label_agreement("cnm")
    assert agree["label"].tolist() == ["(label sets)"] + a.store.class_names
    matrix = a.store.labels[a.rows]
    assert agree["positives"].tolist()[1:] == [(matrix[:, j] == 1).sum() for j in range(matrix.shape[1])]
    comp = a.composition("cnm")
    for name in a.store.class_names:
        assert comp[name].between(0, 1).all()
    assert comp["purity"].between(0, 1).all()
    assert isinstance(a.plot_montage("cnm", 0, per_community=3), Figure)
