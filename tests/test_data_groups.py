"""Groups: the seeded split over whole groups, CSV group columns, and query/archive overlap."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from graphret.data import group_overlap, open_source
from graphret.data.groups import groups_across_splits
from graphret.data.split import assign_splits, group_split
from graphret.errors import InputError


def test_group_split_keeps_groups_whole_and_is_seeded():
    rng = np.random.default_rng(0)
    groups = np.repeat([f"p{k}" for k in range(60)], rng.integers(1, 8, 60))
    labels = rng.integers(0, 3, len(groups))
    a = group_split(groups, seed=4, labels=labels)
    assert (a == group_split(groups, seed=4, labels=labels)).all()
    assert (a != group_split(groups, seed=5, labels=labels)).any()
    for g in np.unique(groups):
        assert len(set(a[groups == g])) == 1
    assert abs((a == "test").mean() - 0.3) < 0.08
    splits, origin = assign_splits(len(groups), split=True, seed=4, labels=labels, groups=groups, group_by="column 'pid'")
    assert (splits == a).all() and origin == "seeded 70/30 by group (column 'pid'; seed 4)"


def test_group_overlap_and_groups_across_splits():
    groups = np.array(["a", "a", "b", "c", "c", "d"])
    splits = np.array(["train", "test", "train", "train", "train", "test"])
    overlap = group_overlap(groups, np.flatnonzero(splits == "test"), np.flatnonzero(splits == "train"))
    assert (overlap.queries, overlap.queries_sharing, overlap.groups_shared) == (2, 1, 1)
    assert overlap.fraction == 0.5 and not overlap.disjoint
    assert overlap.to_json()["archive_groups"] == 3
    assert groups_across_splits(groups, splits) == ["a"]
    clean = group_overlap(groups, [5], [0, 1, 2, 3, 4])
    assert clean.disjoint and clean.fraction == 0.0


@pytest.fixture
def patient_csv(tmp_path):
    rng = np.random.default_rng(1)
    rows = ["path,Patient ID,label"]
    for k in range(40):
        name = f"img{k}.png"
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / name)
        rows.append(f"{name},{k // 4},{'ab'[k % 2]}")
    path = tmp_path / "m.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_group_column_found_by_name_or_given(patient_csv):
    s = open_source(str(patient_csv), seed=2)
    assert s.group_by == "column 'Patient ID'" and "Patient ID" not in s.metadata
    assert s.split_origin == "seeded 70/30 by group (column 'Patient ID'; seed 2)"
    for g in set(s.groups):
        assert len(set(s.splits[s.groups == g])) == 1
    t = open_source(str(patient_csv), seed=2, group_column="label")
    assert set(t.groups) == {"a", "b"}
    with pytest.raises(InputError, match=r"no group column 'patient'; the columns are path, Patient ID, label") as e:
        open_source(str(patient_csv), group_column="patient")
    assert e.value.param == "group_column" and "\n" not in str(e.value)


def test_group_column_on_a_source_without_a_table(tmp_path):
    with pytest.raises(InputError) as e:
        open_source("demo", group_column="x")
    assert e.value.param == "group_column"
