import io

import numpy as np
import pytest
from PIL import Image

from graphret.data.folder import load_folder
from graphret.errors import InputError

RNG = np.random.default_rng(0)


def _save(path, array, fmt=None, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.fromarray(array, mode=mode) if mode else Image.fromarray(array)
    im.save(path, format=fmt)
    return path


def _truncated_jpeg(path):
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(buf, "JPEG")
    data = buf.getvalue()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "images"
    grey = RNG.integers(0, 256, (30, 20), dtype=np.uint8)
    _save(root / "Cat A" / "img 1.png", grey)
    _save(root / "Cat A" / "sub" / "deeper" / "x.JPG", RNG.integers(0, 256, (40, 40, 3), dtype=np.uint8), "JPEG")
    sixteen = (np.arange(12 * 10, dtype=np.uint16).reshape(12, 10) * 500).astype(np.uint16)
    Image.fromarray(sixteen).save(root / "Cat A" / "b.tif")  # 16-bit grey TIFF
    (root / "Cat A" / "notes.txt").write_text("hello")
    _save(root / "Cat A" / ".hidden.png", grey)
    _save(root / "dog" / "a.BMP", RNG.integers(0, 256, (8, 9, 3), dtype=np.uint8), "BMP")
    pal = Image.fromarray(RNG.integers(0, 256, (10, 10, 3), dtype=np.uint8)).convert("P")
    pal.save(root / "dog" / "p.png")
    Image.fromarray(RNG.integers(0, 256, (11, 13, 3), dtype=np.uint8)).convert("CMYK").save(root / "dog" / "c.jpeg")
    _truncated_jpeg(root / "dog" / "bad.jpg")
    (root / "dog" / "data.csv").write_text("a,b\n1,2\n")
    _save(root / "loose.png", grey)
    return root, grey


def test_folder_scan_classes_ids_and_skips(tree):
    root, grey = tree
    s = load_folder(root)
    assert s.class_names == ["Cat A", "dog"]
    assert s.ids == ["Cat A/b", "Cat A/img 1", "Cat A/sub/deeper/x", "dog/a", "dog/c", "dog/p"]
    assert s.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert s.task == "multiclass"
    assert s.skipped == {
        "corrupt images": 1,
        "hidden files": 1,
        "images outside class folders": 1,
        "non-image files": 2,
    }
    assert s.images is None and s.read is not None
    assert s.paths[1] == str(root.resolve() / "Cat A" / "img 1.png")
    assert s.source == f"folder:{root.resolve()}"


def test_folder_reads_each_format_as_uint8(tree):
    root, grey = tree
    s = load_folder(root)
    by_id = {i: s.image(k) for k, i in enumerate(s.ids)}
    assert np.array_equal(by_id["Cat A/img 1"], grey)
    assert by_id["Cat A/sub/deeper/x"].shape == (40, 40, 3)
    tif = by_id["Cat A/b"]
    assert tif.dtype == np.uint8 and tif.shape == (12, 10) and tif.min() == 0 and tif.max() == 255
    assert by_id["dog/a"].shape == (8, 9, 3)
    assert by_id["dog/p"].shape == (10, 10, 3)  # colour palette -> RGB
    assert by_id["dog/c"].shape == (11, 13, 3)  # CMYK -> RGB
    assert all(a.dtype == np.uint8 for a in by_id.values())
    batch = s.load(range(len(s)), size=16, channels=1)
    assert batch.shape == (6, 16, 16, 1)


def test_grey_palette_becomes_grey(tmp_path):
    root = tmp_path / "r"
    (root / "k").mkdir(parents=True)
    g = RNG.integers(0, 256, (9, 7), dtype=np.uint8)
    Image.fromarray(g).convert("P").save(root / "k" / "g.png")
    s = load_folder(root)
    assert np.array_equal(s.image(0), g)


def test_folder_on_corrupt_error_names_the_file(tree):
    root, _ = tree
    with pytest.raises(InputError, match=r"corrupt image: .*bad\.jpg") as e:
        load_folder(root, on_corrupt="error")
    assert e.value.param == "on_corrupt" and e.value.params() == ["on_corrupt"]
    assert str(e.value).endswith("; remove or replace it, or use on_corrupt=skip")
    with pytest.raises(InputError, match="on_corrupt"):
        load_folder(root, on_corrupt="ignore")


def test_folder_ids_stable_and_seeded_split(tree):
    root, _ = tree
    a, b = load_folder(root, seed=1), load_folder(root, seed=1)
    assert a.ids == b.ids and list(a.splits) == list(b.splits)
    assert a.split_origin == "seeded 70/30 (seed 1)"
    assert (a.splits == "test").sum() == 2  # round(0.3 * 3) per class
    c = load_folder(root, split=False)
    assert set(c.splits) == {"all"} and c.split_origin == "none"


def test_split_level_any_case(tmp_path):
    root = tmp_path / "d"
    img = RNG.integers(0, 256, (5, 5), dtype=np.uint8)
    for split, cls, name in [("Train", "a", "1"), ("Train", "b", "2"), ("TEST", "a", "3"),
                             ("val", "b", "4"), ("TEST", "c", "5")]:
        _save(root / split / cls / f"{name}.png", img)
    s = load_folder(root)
    assert s.ids == ["TEST/a/3", "TEST/c/5", "Train/a/1", "Train/b/2", "val/b/4"]
    assert list(s.splits) == ["test", "test", "train", "train", "val"]
    assert s.split_origin == "source"
    assert s.class_names == ["a", "b", "c"]
    assert s.labels.tolist() == [0, 2, 0, 1, 1]
    s2 = load_folder(root, split=False)
    assert set(s2.splits) == {"all"}


def test_unlabelled_flat_folder_and_id_collisions(tmp_path):
    root = tmp_path / "flat"
    img = RNG.integers(0, 256, (5, 5, 3), dtype=np.uint8)
    _save(root / "x.png", img)
    _save(root / "x.bmp", img, "BMP")
    _save(root / "y.tiff", img)
    s = load_folder(root)
    assert s.task == "unlabelled" and s.labels is None and s.class_names == []
    assert s.ids == ["x.bmp", "x.png", "y"]


def test_empty_and_imageless_folders(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match="no images in .*the folder is empty"):
        load_folder(empty)
    texts = tmp_path / "texts"
    (texts / "a").mkdir(parents=True)
    (texts / "a" / "r.txt").write_text("x")
    (texts / "a" / "s.csv").write_text("x")
    with pytest.raises(InputError, match="2 non-image files"):
        load_folder(texts)
    with pytest.raises(InputError, match="no such folder"):
        load_folder(tmp_path / "nope")


def test_read_after_file_vanishes(tmp_path):
    root = tmp_path / "r"
    p = _save(root / "k" / "a.png", RNG.integers(0, 256, (5, 5), dtype=np.uint8))
    s = load_folder(root)
    p.unlink()
    with pytest.raises(InputError, match="vanished"):
        s.image(0)


def test_real_mednist_jpeg_tree(shared_data):
    root = shared_data / "mednist" / "jpeg_sample"
    s = load_folder(root, seed=0)
    assert len(s) == 1200
    assert s.class_names == ["AbdomenCT", "BreastMRI", "CXR", "ChestCT", "Hand", "HeadCT"]
    assert np.bincount(s.labels).tolist() == [200] * 6
    assert s.skipped == {}
    assert s.ids == sorted(s.ids) and s.ids[0].startswith("AbdomenCT/")
    assert all((s.splits[s.labels == k] == "test").sum() == 60 for k in range(6))
    im = s.image(0)
    assert im.dtype == np.uint8 and im.shape == (64, 64)
    again = load_folder(root, seed=0)
    assert again.ids == s.ids and list(again.splits) == list(s.splits)


def test_layout_judged_on_images_only(tmp_path):
    root = tmp_path / "r"
    img = RNG.integers(0, 256, (5, 5), dtype=np.uint8)
    _save(root / "one.png", img)
    _save(root / "two.png", img)
    (root / "docs").mkdir()
    (root / "docs" / "readme.txt").write_text("x")
    s = load_folder(root)
    assert s.task == "unlabelled" and s.ids == ["one", "two"]
    assert s.skipped == {"non-image files": 1}
    tree = tmp_path / "t"
    _save(tree / "train" / "a" / "1.png", img)
    _save(tree / "test" / "a" / "2.png", img)
    (tree / "notes").mkdir()
    (tree / "notes" / "n.txt").write_text("x")
    s = load_folder(tree)
    assert list(s.splits) == ["test", "train"] and s.class_names == ["a"]
