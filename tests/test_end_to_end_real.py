"""End to end on real images: MedNIST JPEG folder tree and a MedMNIST npz, through the CLI."""

import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner
from graphret.cli.main import main

from graphret.store import open_store
from tests.stores import arrow_table, newest_manifest


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def jpeg_store(shared_data, tmp_path_factory):
    path = tmp_path_factory.mktemp("real") / "mednist-jpeg"
    result = run("build-graph", shared_data / "mednist" / "jpeg_sample", "-o", path, "--k", 10, "--encoder", "pixels", "--quiet")
    assert result.exit_code == 0, result.output
    return path


def test_jpeg_tree_store(jpeg_store):
    store = open_store(jpeg_store)
    assert len(store) == 1200
    assert store.class_names == sorted(["AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT"])
    assert store.manifest["source"]["split_origin"].startswith("seeded 70/30")
    assert store.manifest["archive"] == ["train"]
    # pixel codes separate MedNIST's modalities well: Leiden communities are mostly pure
    rows = store.archive_rows()
    labels, leiden = store.labels[rows], store.membership("leiden")[rows]
    purity = sum(np.bincount(labels[leiden == c]).max() for c in np.unique(leiden)) / len(rows)
    assert purity > 0.85


def test_jpeg_query_finds_itself_first(jpeg_store, shared_data):
    store = open_store(jpeg_store)
    row = int(store.archive_rows()[0])
    picture = shared_data / "mednist" / "jpeg_sample" / store.paths[row]
    result = run("query", jpeg_store, "--image", picture, "--k", 5, "--format", "json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)["queries"][0]["results"]
    assert hits[0]["id"] == store.ids[row] and hits[0]["score"] == pytest.approx(1.0, abs=1e-4)
    assert hits[1]["score"] < hits[0]["score"]


def test_test_split_retrieval_on_real_images(jpeg_store):
    result = run("query", jpeg_store, "--split", "test", "--k", 10, "--format", "json")
    payload = json.loads(result.output)
    assert len(payload["queries"]) == 360
    precision = np.mean([[hit["label"] == entry["query"]["label"] for hit in entry["results"]] for entry in payload["queries"]])
    assert precision > 0.85  # pixel baseline on six modalities


@pytest.mark.slow  # builds stores from a folder of real JPEGs twice
def test_corrupt_jpeg_is_skipped_or_refused(shared_data, tmp_path):
    folder = tmp_path / "tree"
    for name in ("CXR", "Hand"):
        shutil.copytree(shared_data / "mednist" / "jpeg_sample" / name, folder / name)
    bad = folder / "Hand" / "broken scan.jpeg"
    bad.write_bytes((folder / "Hand" / sorted((folder / "Hand").iterdir())[0].name).read_bytes()[:300])
    skipped = run("build-graph", folder, "-o", tmp_path / "s", "--k", 5, "--communities", "leiden", "--encoder", "pixels", "--quiet")
    assert skipped.exit_code == 0
    manifest = newest_manifest(tmp_path / "s")
    assert manifest["counts"]["items"] == 400
    assert sum(manifest["source"]["skipped"].values()) == 1
    refused = CliRunner().invoke(main, ["build-graph", str(folder), "-o", str(tmp_path / "e"), "--on-corrupt", "error"])
    assert refused.exit_code != 0 and "broken scan.jpeg" in refused.output
    assert not (tmp_path / "e").exists()


def test_medmnist_npz_keeps_official_splits(shared_data, tmp_path):
    out = tmp_path / "breast"
    # the default encoder: a ResNet-18 classifier trained on the labels (2 epochs to stay quick)
    result = run("build-graph", shared_data / "medmnist" / "breastmnist.npz", "-o", out, "--k", 10, "--epochs", 2, "--quiet")
    assert result.exit_code == 0, result.output
    store = open_store(out)
    assert store.manifest["encoder"]["name"] == "cnn" and store.manifest["encoder"]["classifier"] is True
    assert store.manifest["encoder"]["config"]["backbone"] == "small"
    predicted = store.items.column("predicted").to_numpy()
    assert set(np.unique(predicted)) <= {0, 1}
    assert not (tmp_path / "breast.encoder.ckpt").exists()  # the training checkpoint is removed
    assert store.manifest["counts"]["by_split"] == {"test": 156, "train": 546, "val": 78}
    assert store.manifest["archive"] == ["train", "val"]
    assert len(store.archive_rows()) == 624
    items = arrow_table(out, "items")
    assert items.schema.field("code").type.list_size == 128  # the small CNN's penultimate layer
