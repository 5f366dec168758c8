"""`graphret bench` and graphret.evaluation on a small store built here."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from graphret.cli.main import main

import graphret
from graphret.errors import InputError
from graphret.evaluation import exact_duplicates, parse_modes, run_bench, write_report
from graphret.store import open_store
from tests.synthetic import blob_images


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "store"
    images = blob_images(n_per_class=40, n_classes=3, seed=2)
    # one test item's exact pixels copied onto a train item: an exact duplicate of a query
    test_row = int(np.flatnonzero(images.splits == "test")[0])
    train_row = int(np.flatnonzero(images.splits == "train")[0])
    images.images[train_row] = images.images[test_row]
    graphret.build(images, str(path), k=5, encoder='pixels', image_size=16, dim=12)
    return path


@pytest.fixture(scope="module")
def result(store_path):
    return run_bench(open_store(store_path), k=10, n_single=5, reps=1, curve_k=20)


def test_every_mode_on_the_same_queries(result):
    names = [r["mode"] for r in result.rows]
    assert names == ["region (cnm)", "region (leiden)", "graph", "probe (cnm)", "class (kNN vote)", "flat"]
    flat = result.row("flat")
    assert flat["recall@10 vs flat"] == 1.0 and flat["scanned"] == 1.0
    assert flat["P@10"] > 0.9  # the blobs separate by pixels
    assert result.row("graph")["recall@10 vs flat"] >= 0.95  # the walk finds the exact neighbours of 120 items
    for row in result.rows:
        assert 0 <= row["P@10"] <= 1 and row["q/s batched"] > 0 and row["p95 ms"] >= row["p50 ms"]
        assert 0 < row["scanned"] <= 1
    assert result.settings["queries"] == 24 and result.settings["relevance"] == "same class"
    assert any("vote" in n for n in result.notes)
    assert len(result.curves["flat"]["precision_at_k"]) == 20
    assert list(result.table()["mode"]) == names


def test_duplicates_keep_and_drop(store_path, result):
    assert result.duplicates["policy"] == "keep"
    assert result.duplicates["queries_with_duplicates"] == 1 and result.duplicates["duplicate_items"] == 1
    store = open_store(store_path)
    q = np.flatnonzero(store.splits == "test")
    dups = exact_duplicates(store.codes(), q, store.archive_rows())
    which = [i for i, d in enumerate(dups) if len(d)]
    assert len(which) == 1
    from graphret.query import as_queries, search

    kept = search(store, as_queries(store, q[which], kind="rows"), k=10, mode="flat")
    assert dups[which[0]][0] == kept.rows[0, 0]  # kept: the duplicate is the top result
    dropped = run_bench(store, k=10, modes="flat", duplicates="drop", n_single=0, reps=1, curve_k=10)
    assert dropped.settings["duplicates"] == "drop"
    assert dropped.duplicates["policy"] == "drop"
    i = int(np.flatnonzero(dropped.query_rows == q[which[0]])[0])
    assert dups[which[0]][0] not in dropped.found["flat"][i]
    assert dups[which[0]][0] in result.found["flat"][i]
    assert dropped.found["flat"].shape == (24, 10)


def test_sample_of_queries_and_modes(store_path):
    store = open_store(store_path)
    r = run_bench(store, k=5, modes="region:leiden,flat", n_queries=7, n_single=2, reps=1, curve_k=5)
    assert [x["mode"] for x in r.rows] == ["region (leiden)", "flat"]
    assert r.settings["queries"] == 7 and r.settings["sampled"]
    gain = parse_modes(store, "region-gain:leiden")  # region in Haq's joining order, beside the cosine order
    assert [(m.name, m.mode, m.region_order) for m in gain] == [("region (leiden, gain order)", "region", "gain")]
    with pytest.raises(InputError, match="unknown mode"):
        parse_modes(store, "region,fast")
    with pytest.raises(InputError, match="no 'louvain'"):
        parse_modes(store, "region:louvain")
    with pytest.raises(InputError, match="K must be"):
        run_bench(store, k=0)
    with pytest.raises(InputError, match="no split"):
        run_bench(store, split="holdout")


def test_report_files(result, tmp_path):
    paths = write_report(result, tmp_path / "out")
    names = sorted(p.name for p in paths)
    assert names == ["bench.json", "bench.md", "precision_at_k.png", "precision_recall.png", "recall_vs_qps.png"]
    data = json.loads((tmp_path / "out" / "bench.json").read_text())
    assert data["manifest"]["encoder"]["name"] == "pixels" and data["duplicates"]["policy"] == "keep"
    assert len(data["rows"]) == 6
    assert "| flat |" in (tmp_path / "out" / "bench.md").read_text()


def test_multilabel_metrics_on_the_demo_set(tmp_path):
    from graphret.data.demo import load_demo

    path = tmp_path / "demo"
    graphret.build(load_demo(n=300, size=32), str(path), k=5, communities=('leiden',), encoder='pixels', image_size=16, dim=16)
    store = open_store(path)
    exact = run_bench(store, k=10, modes="flat", n_single=0, reps=1, curve_k=10)
    shared = run_bench(store, k=10, modes="flat", relevance_rule="any", n_single=0, reps=1, curve_k=10)
    assert "ACG@10" in exact.rows[0] and "ACG_p@10" in exact.rows[0]
    assert exact.settings["relevance"] == "exact label-set match"
    assert shared.rows[0]["P@10"] >= exact.rows[0]["P@10"]


def test_cli_table_json_and_out(store_path, tmp_path):
    runner = CliRunner()
    out = tmp_path / "o"
    r = runner.invoke(main, ["bench", str(store_path), "--k", "10", "--single", "3", "--out", str(out), "-q"])
    assert r.exit_code == 0, r.output
    assert "flat" in r.output and "region (cnm)" in r.output and "policy keep" in r.output
    assert (out / "bench.json").is_file() and (out / "recall_vs_qps.png").is_file()
    r = runner.invoke(main, ["bench", str(store_path), "--k", "5", "--modes", "flat", "--format", "json", "--single", "0", "-q"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["rows"][0]["mode"] == "flat"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--modes", "region,warp"], "unknown mode"),
        (["--k", "0"], "K must be at least 1"),
        (["--split", "holdout"], "no split"),
        (["--k", "500"], "use --k"),
    ],
)
def test_cli_bad_inputs_one_line(store_path, args, message):
    r = CliRunner().invoke(main, ["bench", str(store_path), "-q", "--single", "0", *args])
    assert r.exit_code == 1
    lines = [line for line in r.output.strip().splitlines() if line]
    assert len(lines) == 1 and message in lines[0], r.output


def test_cli_split_with_no_items(tmp_path):
    path = tmp_path / "nosplit"
    graphret.build(blob_images(n_per_class=10, n_classes=2, seed=3, splits=False), str(path), k=5, communities=(), split=False, encoder='pixels', image_size=16, dim=8)
    r = CliRunner().invoke(main, ["bench", str(path), "-q"])
    assert r.exit_code == 1 and "no split 'test'" in r.output and len(r.output.strip().splitlines()) == 1


def test_cli_unwritable_out(store_path, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    r = CliRunner().invoke(main, ["bench", str(store_path), "-q", "--out", str(blocker / "sub")])
    assert r.exit_code == 1 and "cannot write to --out" in r.output
    assert len(r.output.strip().splitlines()) == 1


def test_class_mode_meeting_a_class_smaller_than_k_is_unavailable_and_the_rest_run(tmp_path):
    """A multi-label store whose rare finding (6 archive items) is what the kNN vote predicts for
    some queries: at K = 10 class mode cannot answer, is reported with its reason, and region,
    probe and flat still run, in Python and on the command line."""
    rng = np.random.default_rng(4)
    common, rare = rng.normal(size=16), rng.normal(size=16)
    codes = np.concatenate([common + 0.3 * rng.normal(size=(60, 16)), rare + 0.3 * rng.normal(size=(6, 16)),
                            common + 0.3 * rng.normal(size=(8, 16)), rare + 0.3 * rng.normal(size=(4, 16))])
    labels = np.zeros((78, 2), np.int8)
    labels[:60, 0] = labels[66:74, 0] = 1
    labels[60:66, 1] = labels[74:, 1] = 1
    splits = ["train"] * 66 + ["test"] * 12
    path = tmp_path / "rare"
    graphret.build_from_codes(codes, path, labels=labels, class_names=["common", "rare"], splits=splits, k=4)
    result = run_bench(open_store(path), k=10, n_single=2, reps=1, curve_k=10)
    assert [r["mode"] for r in result.rows] == ["region (cnm)", "region (leiden)", "graph", "probe (cnm)", "flat"]
    assert [(x["mode"], x["reason"]) for x in result.skipped] == [
        ("class (kNN vote)", "the predicted class 'rare' has only 6 archive items; use k=6 or less")]
    assert result.row("flat")["P@10"] == pytest.approx((8 * 1.0 + 4 * 0.6) / 12)  # the 4 rare queries: 6 rare of 10

    r = CliRunner().invoke(main, ["bench", str(path), "--k", "10", "--single", "2", "-q"])
    assert r.exit_code == 0, r.output
    assert "skipped class (kNN vote): the predicted class 'rare' has only 6 archive items" in r.output
    table = r.output.split("\n\n")[-1].splitlines()
    assert [line.split("  ")[0] for line in table[2:]] == ["region (cnm)", "region (leiden)", "graph", "probe (cnm)",
                                                           "flat", "class (kNN vote)"]
    assert table[-1].split()[-1] == "unavailable"


def test_cli_reports_an_unavailable_mode_with_its_flags(tmp_path):
    """A class of 10 archive items cannot answer K = 12 in class mode: that mode is reported as
    unavailable, the reason spelled with the command's flags, and flat still runs."""
    path = tmp_path / "small-classes"
    graphret.build(blob_images(n_per_class=15, n_classes=3, seed=5), str(path), k=4, communities=(), encoder="pixels",
                   image_size=16, dim=8)
    r = CliRunner().invoke(main, ["bench", str(path), "--k", "12", "--modes", "class,flat", "--single", "0", "-q"])
    assert r.exit_code == 0, r.output
    skipped = [line for line in r.output.splitlines() if line.startswith("skipped class")]
    assert len(skipped) == 1 and "use --k " in skipped[0] and "k=" not in skipped[0], r.output
    assert any(line.startswith("flat ") for line in r.output.splitlines())
