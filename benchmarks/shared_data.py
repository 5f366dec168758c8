"""Where the benchmarks find the real data sets: ``../shared/data`` beside the repository, or
``$GRAPHRET_SHARED_DATA``; and the sets by name.  The data are never copied into the repository.
(The scripts run as ``python benchmarks/NAME.py``, so this folder is on their import path.)"""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path(os.environ.get("GRAPHRET_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

#: key -> (display name, file): the five single-label sets of the guide's tables
SETS: dict[str, tuple[str, Path]] = {
    "breastmnist": ("BreastMNIST", DATA / "medmnist" / "breastmnist.npz"),
    "pneumoniamnist": ("PneumoniaMNIST", DATA / "medmnist" / "pneumoniamnist.npz"),
    "retinamnist": ("RetinaMNIST", DATA / "medmnist" / "retinamnist.npz"),
    "blood": ("PBC blood cells", DATA / "bloodcells" / "pbc_blood_28.npz"),
    "mednist": ("MedNIST", DATA / "mednist" / "mednist_64.npz"),
}
MEDNIST = SETS["mednist"][1]
#: the 1,000 real NIH chest X-rays: image folder and label table (Patient ID, 15 labels)
NIH_CSV = DATA / "nih-cxr1000" / "labels.csv"
#: the real CheXpert label table (labels only)
CHEXPERT_LABELS = DATA / "chexpert-labels" / "train.csv.gz"
