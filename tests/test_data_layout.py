"""Folder layouts as downloads lay them out: wrapper folders, split and class levels anywhere."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from graphret.data.folder import load_folder
from graphret.data.layout import read_layout
from graphret.errors import InputError

IMG = np.random.default_rng(0).integers(0, 256, (6, 6), dtype=np.uint8)


def _tree(root, rels):
    for rel in rels:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(IMG).save(path)
    return root


def test_wrapper_with_train_and_test(tmp_path):
    root = _tree(tmp_path / "dl", [
        "Dataset Name/Train/benign/1.png", "Dataset Name/Train/malignant/2.png",
        "Dataset Name/Test/benign/3.png", "Dataset Name/Test/malignant/4.png",
    ])
    s = load_folder(root)
    assert s.class_names == ["benign", "malignant"]  # never "Dataset Name"
    assert list(s.splits) == ["test", "test", "train", "train"] and s.split_origin == "source"
    assert s.layout == "wrapper folder 'Dataset Name'; split folders Test -> test, Train -> train; class folders below them"
    assert s.ids[0] == "Dataset Name/Test/benign/3"


def test_wrapper_with_classes_and_nested_wrappers(tmp_path):
    root = _tree(tmp_path / "dl", ["outer/inner/a/1.png", "outer/inner/b/2.png", "outer/inner/b/3.png"])
    s = load_folder(root)
    assert s.class_names == ["a", "b"] and s.layout == "wrapper folder 'outer/inner'; class folders"


def test_split_folders_inside_class_folders(tmp_path):
    root = _tree(tmp_path / "dl", ["cat/train/1.png", "cat/test/2.png", "dog/train/3.png", "dog/val/4.png"])
    s = load_folder(root)
    assert s.class_names == ["cat", "dog"] and list(s.splits) == ["test", "train", "train", "val"]
    assert s.layout.startswith("class folders with split folders inside")


def test_a_class_never_is_a_folder_of_splits(tmp_path):
    root = _tree(tmp_path / "dl", ["Data/Train/a/1.png", "Data/Test/a/2.png", "other/3.png"])
    with pytest.raises(InputError, match=r"folder 'Data' .* holds split folders \(Test, Train\), so it is not a class") as e:
        load_folder(root)
    assert "\n" not in str(e.value)


def test_plain_layouts_unchanged():
    assert read_layout(["a/1.png", "b/2.png"]).description == "class folders"
    assert read_layout(["1.png", "2.png"]).class_depth is None
    lay = read_layout(["train/1.png", "test/2.png"])
    assert lay.split_depth == 0 and lay.class_depth is None
    assert read_layout(["k/1.png"]).description == "class folders"
