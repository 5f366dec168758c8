from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import graphret.data as data
from graphret.data import CsvOptions, ImageSet, open_source
from graphret.data.demo import load_demo
from graphret.errors import InputError


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    npz = tmp_path / "plain.npz"
    np.savez_compressed(npz, images=rng.integers(0, 256, (10, 8, 8), dtype=np.uint8), labels=np.arange(10) % 2)
    folder = tmp_path / "tree"
    for cls in ("a", "b"):
        (folder / cls).mkdir(parents=True)
        for k in range(3):
            Image.fromarray(rng.integers(0, 256, (6, 6), dtype=np.uint8)).save(folder / cls / f"{k}.png")
    csv = tmp_path / "list.csv"
    csv.write_text("path,label\ntree/a/0.png,x\ntree/b/1.png,y\n")
    return npz, folder, csv


def test_package_exports():
    assert data.open_source is open_source and data.ImageSet is ImageSet
    assert data.CsvOptions is CsvOptions


def test_dispatch_by_path(files):
    npz, folder, csv = files
    for spec in (npz, str(npz), f"npz:{npz}"):
        s = open_source(spec)
        assert s.source == f"npz:{npz}" and len(s) == 10
    for spec in (folder, str(folder), f"folder:{folder}"):
        s = open_source(spec)
        assert s.source.startswith("folder:") and len(s) == 6 and s.class_names == ["a", "b"]
    for spec in (csv, str(csv), f"csv:{csv}"):
        s = open_source(spec)
        assert s.source == f"csv:{csv}" and s.ids == ["tree/a/0", "tree/b/1"]


def test_split_false_and_seed_everywhere(files):
    npz, folder, csv = files
    for spec in (npz, folder, csv, "demo:n=20"):
        s = open_source(spec, split=False)
        assert set(s.splits) == {"all"} and s.split_origin == "none"
    a = open_source(npz, seed=1)
    b = open_source(npz, seed=1)
    c = open_source(npz, seed=9)
    assert list(a.splits) == list(b.splits) and a.split_origin == "seeded 70/30 (seed 1)"
    assert c.split_origin == "seeded 70/30 (seed 9)"


def test_csv_options_pass_through(files, tmp_path):
    _, _, csv = files
    s = open_source(csv, csv=CsvOptions(label_columns=[]))
    assert s.task == "unlabelled"


def test_demo_specs():
    s = open_source(None, seed=4)
    assert s.task == "multilabel" and len(s) == 2000 and s.split_origin == "seeded 70/30 (seed 4)"
    s = open_source("demo:anatomy,n=40,size=32", seed=4)
    assert s.task == "multiclass" and len(s) == 40 and s.images.shape[1:] == (32, 32)
    f = open_source("demo:findings:n=40", seed=4)
    assert f.task == "multilabel" and np.array_equal(f.images, load_demo(n=40, seed=4).images)
    with pytest.raises(InputError, match="unknown demo option"):
        open_source("demo:organs")
    with pytest.raises(InputError, match="whole number"):
        open_source("demo:n=many")


def test_bad_specs(tmp_path):
    with pytest.raises(InputError, match=r"no such file or folder: .*y\.npz \(check the path\)"):
        open_source(str(tmp_path / "x" / "y.npz"))
    with pytest.raises(InputError, match="unknown source scheme 'ftp:'"):
        open_source("ftp:example")
    other = tmp_path / "notes.txt"
    other.write_text("x")
    with pytest.raises(InputError, match="unsupported source file"):
        open_source(other)
    with pytest.raises(InputError, match="on_corrupt"):
        open_source("demo", on_corrupt="maybe")
    with pytest.raises(InputError, match="empty source"):
        open_source("  ")
    with pytest.raises(InputError, match="medmnist: needs a name"):
        open_source("medmnist:")


def test_errors_are_one_line(tmp_path):
    cases = [str(tmp_path / "none.npz"), "zz:top", "demo:xx"]
    for spec in cases:
        with pytest.raises(InputError) as info:
            open_source(spec)
        assert "\n" not in str(info.value)


def test_path_type_is_accepted(files):
    npz, _, _ = files
    assert isinstance(npz, Path)
    assert len(open_source(npz)) == 10
