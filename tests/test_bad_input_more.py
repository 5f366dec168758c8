"""Bad input a hostile user found (issue 12's smaller defects): one line each, exit 1 or 2, and
nothing stored changed."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from graphret.cli.main import main
from PIL import Image

import graphret


@pytest.fixture(scope="module")
def store(blob_stores):
    return graphret.open(blob_stores(n_per_class=15, seed=2, dim=8, k=4, communities=("cnm",)))


def one_line_error(result, text):
    lines = [line for line in result.output.strip().splitlines() if line.startswith("Error")]
    assert result.exit_code in (1, 2), result.output
    assert len(lines) == 1 and text in lines[0], result.output
    assert "Traceback" not in result.output


def test_query_output_to_a_folder(store, tmp_path):
    one_line_error(CliRunner().invoke(main, ["query", str(store.path), "--split", "test", "-o", str(tmp_path)]),
                   "is a folder; give a file name")


def test_train_output_to_a_folder(tmp_path):
    one_line_error(CliRunner().invoke(main, ["train", "demo:n=60,size=16", "-o", str(tmp_path), "--encoder", "pixels"]),
                   "is a folder; give a file name")


def test_ef_zero_is_refused(store):
    one_line_error(CliRunner().invoke(main, ["query", str(store.path), "--split", "test", "--ef", "0"]),
                   "--ef must be at least 1, got 0")


def test_huge_label_does_not_exhaust_memory(tmp_path):
    images = np.zeros((20, 8, 8), np.uint8)
    labels = np.zeros(20, np.int64)
    labels[3] = 10**9
    np.savez(tmp_path / "huge.npz", images=images, labels=labels)
    one_line_error(CliRunner().invoke(main, ["build-graph", str(tmp_path / "huge.npz"), "-o", str(tmp_path / "s"), "--encoder", "pixels"]),
                   "labels go up to 1000000000 for 20 items")
    assert not (tmp_path / "s").exists()


def test_csv_source_skips_a_corrupt_image(tmp_path):
    rows = ["path,label"]
    for i in range(12):
        Image.fromarray(np.full((8, 8), 20 * i, np.uint8)).save(tmp_path / f"img{i}.png")
        rows.append(f"img{i}.png,{'ab'[i % 2]}")
    (tmp_path / "img5.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "list.csv").write_text("\n".join(rows) + "\n")
    ok = CliRunner().invoke(main, ["build-graph", str(tmp_path / "list.csv"), "-o", str(tmp_path / "s"), "--encoder", "pixels",
                                   "--k", "3", "--communities", "none", "--quiet"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.output)["items"] == 11 and graphret.open(tmp_path / "s").manifest["source"]["skipped"]
    one_line_error(CliRunner().invoke(main, ["build-graph", str(tmp_path / "list.csv"), "-o", str(tmp_path / "t"), "--encoder", "pixels",
                                             "--k", "3", "--on-corrupt", "error"]), "img5.png")


def test_a_manifest_without_its_encoder_section(store, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(store.path, copy)
    newest = sorted((copy / "_versions").glob("*.json"))[-1]
    manifest = json.loads(newest.read_text())
    del manifest["encoder"]
    newest.write_text(json.dumps(manifest))
    one_line_error(CliRunner().invoke(main, ["query", str(copy), "--split", "test"]), "has no 'encoder' section")
    one_line_error(CliRunner().invoke(main, ["query", str(copy), "--version", "7", "--split", "test"]), "has no version 7")
