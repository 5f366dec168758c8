"""The real multi-label sets: NIH ChestX-ray14 sample (images) and CheXpert's label table."""

from __future__ import annotations

import csv
import gzip

import numpy as np
import pytest

from graphret.data import group_overlap, open_source, read_label_table

NIH_FINDINGS = ["No Finding", "Atelectasis", "Cardiomegaly", "Consolidation", "Edema", "Effusion", "Emphysema",
                "Fibrosis", "Hernia", "Infiltration", "Mass", "Nodule", "Pleural_Thickening", "Pneumonia", "Pneumothorax"]


def test_nih_cxr1000_multilabel_split_by_patient(shared_data):
    path = shared_data / "nih-cxr1000" / "labels.csv"
    s = open_source(str(path), seed=0)
    assert len(s) == 1000 and s.task == "multilabel" and s.class_names == NIH_FINDINGS
    assert s.group_by == "column 'Patient ID'" and len(set(s.groups)) == 264
    assert s.split_origin == "seeded 70/30 by group (column 'Patient ID'; seed 0)"
    for g in set(s.groups):
        assert len(set(s.splits[s.groups == g])) == 1
    overlap = group_overlap(s.groups, s.indices_of(["test"]), s.indices_of(["train"]))
    assert overlap.disjoint and 200 < overlap.queries < 400
    # label counts against the csv module
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    for j, name in enumerate(NIH_FINDINGS):
        assert int((s.labels[:, j] == 1).sum()) == sum(r[name] == "1" for r in rows), name
    assert int((s.labels[:, 0] == 1).sum()) == 499
    assert int((s.labels[:, NIH_FINDINGS.index("Hernia")] == 1).sum()) == 9
    assert int((s.labels[:, NIH_FINDINGS.index("Effusion")] == 1).sum()) == 170
    assert int(((s.labels[:, 1:] == 1).sum(axis=1) >= 2).sum()) == 213
    assert sorted(s.metadata) == ["Patient Age", "Patient Sex", "View Position"]
    im = s.image(0)
    assert im.dtype == np.uint8 and im.shape[:2] == (64, 64)


@pytest.mark.slow  # reads CheXpert's 223k-row label table
def test_chexpert_label_table_counts(shared_data):
    path = shared_data / "chexpert-labels" / "train.csv.gz"
    table = read_label_table(path)
    assert len(table) == 223414 and table.task == "multilabel" and len(table.class_names) == 14
    assert table.path_column == "Path" and sorted(table.metadata) == ["AP/PA", "Age", "Frontal/Lateral", "Sex"]
    # an independent count straight from the gzipped text, with the csv module
    with gzip.open(path, "rt", newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    assert len(rows) == 223414
    counts = table.label_counts()
    for name in table.class_names:
        j = header.index(name)
        raw = [r[j].strip() for r in rows]
        pos, neg, unc, blank = raw.count("1.0"), raw.count("0.0"), raw.count("-1.0"), raw.count("")
        assert pos + neg + unc + blank == len(raw)
        # default policy (U-Ignore, blank = negative): uncertain -> -1, blank -> 0
        assert counts[name] == {1: pos, 0: neg + blank, -1: unc}, name
    assert counts["Cardiomegaly"] == {1: 27000, 0: 188327, -1: 8087}
