import numpy as np
import pytest
from PIL import Image

from graphret.data.csv_manifest import CsvOptions, load_csv
from graphret.errors import InputError

RNG = np.random.default_rng(0)

CHEXPERT = """Path,Sex,Age,Frontal/Lateral,AP/PA,No Finding,Cardiomegaly,Edema
imgs/p1.png,Female,68,Frontal,AP,1.0,,
imgs/p2.png,Male,87,Frontal,AP,,-1.0,1.0
imgs/p3.png,Male,41,Lateral,,,0.0,-1.0
imgs/p4.png,Female,55,Frontal,PA,0.0,1.0,0.0
imgs/missing.png,Female,20,Frontal,PA,1.0,,
"""


def _img(path, shape=(8, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(RNG.integers(0, 256, shape, dtype=np.uint8)).save(path)


@pytest.fixture
def chexpert(tmp_path):
    for k in range(1, 5):
        _img(tmp_path / "imgs" / f"p{k}.png")
    csv = tmp_path / "train.csv"
    csv.write_text(CHEXPERT)
    return csv


# Rows p1..p4; columns No Finding, Cardiomegaly, Edema.  Raw: 1,blank,blank / blank,-1,1 /
# blank,0,-1 / 0,1,0.
@pytest.mark.parametrize(
    "uncertain,blank,expected",
    [
        ("ignore", "zeros", [[1, 0, 0], [0, -1, 1], [0, 0, -1], [0, 1, 0]]),
        ("ones", "zeros", [[1, 0, 0], [0, 1, 1], [0, 0, 1], [0, 1, 0]]),
        ("zeros", "zeros", [[1, 0, 0], [0, 0, 1], [0, 0, 0], [0, 1, 0]]),
        ("ignore", "ignore", [[1, -1, -1], [-1, -1, 1], [-1, 0, -1], [0, 1, 0]]),
        ("ones", "ignore", [[1, -1, -1], [-1, 1, 1], [-1, 0, 1], [0, 1, 0]]),
        ("zeros", "ignore", [[1, -1, -1], [-1, 0, 1], [-1, 0, 0], [0, 1, 0]]),
    ],
)
def test_chexpert_policies(chexpert, uncertain, blank, expected):
    s = load_csv(chexpert, options=CsvOptions(uncertain=uncertain, blank=blank))
    assert s.task == "multilabel"
    assert s.class_names == ["No Finding", "Cardiomegaly", "Edema"]
    assert s.labels.dtype == np.int8
    assert s.labels.tolist() == expected


def test_chexpert_metadata_missing_and_ids(chexpert, tmp_path):
    s = load_csv(chexpert, seed=2)
    assert len(s) == 4
    assert s.skipped == {"missing files": 1}
    assert s.ids == ["imgs/p1", "imgs/p2", "imgs/p3", "imgs/p4"]
    assert s.paths[0] == str(tmp_path / "imgs" / "p1.png")
    assert sorted(s.metadata) == ["AP/PA", "Age", "Frontal/Lateral", "Sex"]
    assert s.metadata["Sex"].tolist() == ["Female", "Male", "Male", "Female"]
    assert s.metadata["Age"].tolist() == [68.0, 87.0, 41.0, 55.0]
    assert s.split_origin == "seeded 70/30 (seed 2)"
    assert s.image(2).shape == (8, 8)
    assert s.label_names(1) == ["Edema"]


def test_missing_image_error_names_file(chexpert):
    with pytest.raises(InputError, match=r"image file not found: .*missing\.png") as e:
        load_csv(chexpert, on_corrupt="error")
    assert e.value.param == "on_corrupt" and e.value.params() == ["on_corrupt"]
    assert str(e.value).endswith(f"(row 6 of {chexpert}); fix the path, or use on_corrupt=skip")


def test_multiclass_csv_with_split_and_id_columns(tmp_path):
    for k in range(6):
        _img(tmp_path / "data" / f"im {k}.png")
    absolute = tmp_path / "data" / "im 5.png"
    csv = tmp_path / "m.csv"
    csv.write_text(
        "ID,filename,diagnosis,Split\n"
        "a,data/im 0.png,tumour,Train\n"
        "b,data/im 1.png,normal,train\n"
        "c,data/im 2.png,cyst,TEST\n"
        "d,data/im 3.png,,val\n"
        "e,data/im 4.png,normal,Validation\n"
        f"f,{absolute},tumour,test\n"
    )
    s = load_csv(csv)
    assert s.task == "multiclass"
    assert s.class_names == ["cyst", "normal", "tumour"]
    assert s.labels.tolist() == [2, 1, 0, -1, 1, 2]
    assert s.ids == ["a", "b", "c", "d", "e", "f"]
    assert list(s.splits) == ["train", "train", "test", "val", "val", "test"]
    assert s.split_origin == "source"
    assert s.paths[5] == str(absolute)
    s2 = load_csv(csv, split=False)
    assert set(s2.splits) == {"all"}


def test_numeric_class_names_sorted_numerically(tmp_path):
    for k in range(3):
        _img(tmp_path / f"{k}.png")
    csv = tmp_path / "g.csv"
    csv.write_text("image,grade\n0.png,10\n1.png,2\n2.png,1\n")
    s = load_csv(csv)
    assert s.class_names == ["1", "2", "10"]
    assert s.labels.tolist() == [2, 1, 0]


def test_explicit_options(chexpert):
    s = load_csv(chexpert, options=CsvOptions(path_column="Path", label_columns=["Edema"], task="multilabel"))
    assert s.task == "multilabel" and s.class_names == ["Edema"]
    assert s.labels[:, 0].tolist() == [0, 1, -1, 0]
    s = load_csv(chexpert, options=CsvOptions(label_columns=["Sex"]))
    assert s.task == "multiclass" and s.class_names == ["Female", "Male"]
    with pytest.raises(InputError, match="no label column 'Nope'"):
        load_csv(chexpert, options=CsvOptions(label_columns=["Nope"]))
    with pytest.raises(InputError, match="no path column 'file'"):
        load_csv(chexpert, options=CsvOptions(path_column="file"))
    with pytest.raises(InputError) as e:
        load_csv(chexpert, options=CsvOptions(uncertain="maybe"))
    assert e.value.param == "uncertain" and e.value.params() == ["uncertain"]
    assert str(e.value) == "unknown uncertain policy 'maybe'; use uncertain=ignore, ones or zeros"


def test_csv_errors(tmp_path):
    with pytest.raises(InputError, match="no such CSV file"):
        load_csv(tmp_path / "none.csv")
    nopath = tmp_path / "nopath.csv"
    nopath.write_text("name,label\na.png,x\n")
    with pytest.raises(InputError, match="no image path column; the columns are name, label"):
        load_csv(nopath)
    _img(tmp_path / "a.png")
    ambiguous = tmp_path / "amb.csv"
    ambiguous.write_text("path,site,scanner\na.png,x,y\n")
    with pytest.raises(InputError, match="cannot tell the label column"):
        load_csv(ambiguous)
    badval = tmp_path / "bad.csv"
    badval.write_text("path,A,B\na.png,1,2\n")
    with pytest.raises(InputError, match="column 'B' row 2 holds '2'"):
        load_csv(badval, options=CsvOptions(label_columns=["A", "B"]))
    nofiles = tmp_path / "nofiles.csv"
    nofiles.write_text("path,label\nzz.png,x\n")
    with pytest.raises(InputError, match="none of the 1 images"):
        load_csv(nofiles)
    badsplit = tmp_path / "bs.csv"
    badsplit.write_text("path,label,split\na.png,x,holdout\n")
    with pytest.raises(InputError, match="holdout"):
        load_csv(badsplit)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="empty"):
        load_csv(empty)


def test_verify_option_skips_corrupt(tmp_path):
    _img(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    csv = tmp_path / "v.csv"
    csv.write_text("path,label\ngood.png,a\nbad.png,b\n")
    # images are checked by default, so on_corrupt decides what a bad one does (issue 12)
    assert len(load_csv(csv, options=CsvOptions(verify=False))) == 2
    s = load_csv(csv)
    assert s.ids == ["good"] and s.skipped == {"corrupt images": 1}
    with pytest.raises(InputError, match=r"corrupt image: .*bad\.png"):
        load_csv(csv, options=CsvOptions(verify=True), on_corrupt="error")
    lazy = load_csv(csv, options=CsvOptions(verify=False))
    with pytest.raises(InputError, match="corrupt image"):
        lazy.image(1)


def test_tsv_and_pickling(tmp_path):
    import pickle

    _img(tmp_path / "a b.png", (5, 7))
    tsv = tmp_path / "list.tsv"
    tsv.write_text("path\tlabel\na b.png\tx, with comma\n")
    s = load_csv(tsv)
    assert s.ids == ["a b"] and s.class_names == ["x, with comma"]
    clone = pickle.loads(pickle.dumps(s))
    assert np.array_equal(clone.image(0), s.image(0)) and s.image(0).shape == (5, 7)
