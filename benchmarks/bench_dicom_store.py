"""Benchmark: a graph store built from the DICOM test files that pydicom and pydicom-data ship.

Every ``.dcm`` file of pydicom's ``data/test_files`` and of pydicom-data's ``data_store/data``
(CT, MR, CR, US, NM, RT dose, segmentations, secondary captures; uncompressed, JPEG baseline and
lossless, JPEG-LS, JPEG 2000, RLE, deflated; single- and multi-frame; also the broken ones they
ship on purpose) is copied into one flat temporary folder, with a DICOMDIR, one DICOM file
without an extension (found by its DICM prefix) and a README, and the folder is built into a
store the way ``graphret build-graph FOLDER`` does (no labels: the pixel baseline).

The report (``benchmarks/results/dicom/README.md`` and ``dicom.json``) says which metadata
columns the store kept, that no identifying tag (PS3.15 Annex E, a selection: names, IDs,
birth dates, institutions, dates) is among them and that no identifying value appears anywhere
in the items table, how many items (frames) each file gave, and which files were skipped and
why.  It ends with one of the files used as a query image (``store.search(path)``).

Usage::

    python benchmarks/bench_dicom_store.py --out benchmarks/results/dicom
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PACKAGES = ("pydicom", "pydicom-data", "pylibjpeg", "pylibjpeg-openjpeg", "pylibjpeg-rle", "python-gdcm", "pillow")
#: Store columns that are not DICOM metadata.
CORE_COLUMNS = ("id", "path", "split", "label", "label_name", "code", "group", "added")


from common import log  # noqa: E402  (one home: benchmarks/common.py)


def test_file_folders() -> list[tuple[str, Path]]:
    """(package, folder) of the installed DICOM test files."""
    import pydicom

    folders = [("pydicom", Path(pydicom.__file__).parent / "data" / "test_files")]
    try:
        import data_store  # pydicom-data

        folders.append(("pydicom-data", Path(data_store.__file__).parent / "data"))
    except ImportError:
        log("pydicom-data is not installed: only pydicom's own test files")
    return folders


def gather(target: Path) -> dict[str, str]:
    """Copy the test files into ``target`` (flat); name -> package it came from."""
    origin: dict[str, str] = {}
    for package, folder in test_file_folders():
        for f in sorted(folder.glob("*.dcm")):
            name = f.name if f.name not in origin else f"{package}-{f.name}"
            shutil.copy(f, target / name)
            origin[name] = package
    pydicom_files = test_file_folders()[0][1]
    shutil.copy(pydicom_files / "dicomdirtests" / "DICOMDIR", target / "DICOMDIR")
    origin["DICOMDIR"] = "pydicom"
    shutil.copy(pydicom_files / "MR_small_RLE.dcm", target / "IM0001")  # no extension: the DICM prefix
    origin["IM0001"] = "pydicom (MR_small_RLE.dcm without its extension)"
    (target / "README.txt").write_text("not a DICOM file\n")
    origin["README.txt"] = "(written here)"
    return origin


def header_facts(path: Path) -> dict[str, Any]:
    """Modality, transfer syntax, photometric interpretation and frames of one file's header,
    and its identifying values (to look for in the store)."""
    import pydicom

    from graphret.data.dicom_files import frame_count, is_dicom_path, read_header, transfer_syntax
    from graphret.data.dicom_tags import IDENTIFYING_TAGS, tag_text

    if not is_dicom_path(path):
        return {"dicom": False}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ds = read_header(path)
    except Exception as error:  # noqa: BLE001 - reported as it is
        return {"dicom": True, "header_error": f"{type(error).__name__}: {str(error)[:100]}"}
    identifying = {}
    for tag in sorted(IDENTIFYING_TAGS):
        try:
            value = tag_text(ds, tag)
        except Exception:  # noqa: BLE001 - a malformed value is no value
            value = ""
        if value:
            identifying[tag] = value
    return {"dicom": True, "modality": str(ds.get("Modality", "") or ""), "transfer_syntax": transfer_syntax(ds)[1],
            "photometric": str(ds.get("PhotometricInterpretation", "") or ""), "frames": frame_count(ds),
            "rows": ds.get("Rows"), "columns": ds.get("Columns"), "identifying": identifying,
            "pydicom": pydicom.__version__}


def why_skipped(path: Path) -> dict[str, str]:
    """The skip reason of a file the store does not hold: the data layer's own Problem."""
    from graphret.data.dicom_files import inspect_file, is_dicom_path
    from graphret.data.dicom_pixels import Window

    if not is_dicom_path(path):
        return {"kind": "non-image files", "what": f"{path.name} is neither an image, a DICOM file nor a NIfTI volume"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        info = inspect_file(path, window=Window())
    if info.problem is None:
        return {"kind": "?", "what": "decodes now (skipped at build time)"}
    what = info.problem.what.replace(str(path.parent) + os.sep, "")
    return {"kind": info.problem.kind, "what": what[:300]}


def _text_columns(items) -> dict[str, set[str]]:
    """The distinct non-empty values of every text column of the items table."""
    out = {}
    for name in items.column_names:
        column = items.column(name)
        if str(column.type) in ("string", "large_string"):
            out[name] = {t for t in column.to_pylist() if t}
    return out


def leaks(items, identifying: dict[str, dict[str, str]]) -> list[str]:
    """Identifying values (from the headers) found in the items table: any value that is a
    whole cell of a text column, and any value with a letter and four characters or more (a
    name, an ID such as "1CT1", an institution) inside a cell.  Digits alone (dates, times,
    numeric IDs) are only looked for as whole cells: as substrings they match by chance inside
    UIDs and hashes (:func:`uid_dates` looks for dates inside UIDs on purpose)."""
    values = {v for per_file in identifying.values() for v in per_file.values()}
    found = []
    for name, texts in _text_columns(items).items():
        for value in sorted(values):
            named = len(value) >= 4 and any(c.isalpha() for c in value)
            if value in texts or (named and any(value in t for t in texts)):
                found.append(f"{name}: {value!r}")
    return found


def uid_dates(items, facts: dict[str, dict[str, Any]]) -> list[str]:
    """Files whose kept UIDs (study, series, instance) embed one of the file's own dates (some
    systems build UIDs from the acquisition time): the UIDs are kept by default, so say so."""
    from graphret.data.dicom_tags import DEFAULT_TAGS

    uid_columns = [c for c in DEFAULT_TAGS if c.endswith("UID") and c in items.column_names]
    paths = [Path(p).name for p in items.column("path").to_pylist()]
    uids: dict[str, set[str]] = {}
    for c in uid_columns:
        for name, value in zip(paths, items.column(c).to_pylist()):
            if value:
                uids.setdefault(name, set()).add(value)
    out = []
    for name, f in facts.items():
        dates = {v for t, v in (f.get("identifying") or {}).items() if t.endswith("Date") and len(v) == 8 and v.isdigit()}
        if any(d in u for d in dates for u in uids.get(name, ())):
            out.append(name)
    return sorted(out)


def run(out: Path, work: Path) -> dict[str, Any]:
    import graphret
    from graphret.data.dicom_tags import DEFAULT_TAGS, IDENTIFYING_TAGS
    from graphret.evaluation.bench import machine_info

    folder = work / "dicom-test-files"
    folder.mkdir()
    origin = gather(folder)
    log(f"copied {len(origin)} files into {folder}")
    facts = {name: header_facts(folder / name) for name in sorted(origin)}
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = graphret.build(str(folder), work / "store", encoder="pixels", k=5, seed=0, log=log)
    seconds = time.perf_counter() - t0
    items = store.snapshot.items
    manifest = store.manifest
    paths = Counter(Path(p).name for p in items.column("path").to_pylist())
    metadata_columns = [c for c in items.column_names if c not in CORE_COLUMNS]
    identifying = {name: f["identifying"] for name, f in facts.items() if f.get("identifying")}
    query_file = folder / "CT_small.dcm"
    hits = store.search(str(query_file), k=5, mode="flat", archive=["all"])  # every item, the file's own included
    own_split = str(store.snapshot.splits[store.snapshot.row_of_id[query_file.stem]])
    files = []
    for name in sorted(origin):
        f = facts[name]
        row = {"file": name, "from": origin[name], "items": paths.get(name, 0), **{k: f.get(k) for k in
               ("modality", "transfer_syntax", "photometric", "frames", "rows", "columns")}}
        if row["items"] == 0:
            row["skipped"] = why_skipped(folder / name)
        files.append(row)
    groups = items.column("group").to_pylist()
    return {
        "machine": machine_info(),
        "packages": {p: importlib.metadata.version(p) for p in PACKAGES},
        "command": " ".join(["python benchmarks/bench_dicom_store.py", *sys.argv[1:]]),
        "files_copied": len(origin),
        "items": len(store),
        "build_seconds": round(seconds, 1),
        "encoder": manifest["encoder"]["description"],
        "split_origin": manifest["source"]["split_origin"],
        "group_by": manifest["source"]["group_by"],
        "groups": manifest["source"]["groups"],
        "group_values": {"hashed PatientID": sum(g.startswith("pid:") for g in groups),
                         "file (no PatientID)": sum(g.startswith("file:") for g in groups)},
        "skipped_counts": manifest["source"]["skipped"],
        "metadata_columns": metadata_columns,
        "default_tags": list(DEFAULT_TAGS),
        "identifying_columns": sorted(set(metadata_columns) & IDENTIFYING_TAGS),
        "identifying_values_in_files": sum(len(v) for v in identifying.values()),
        "identifying_tags_in_files": sorted({t for v in identifying.values() for t in v}),
        "identifying_values_in_store": leaks(items, identifying),
        "files_whose_uids_embed_a_date": uid_dates(items, facts),
        "modalities": dict(Counter(str(m) for m in items.column("Modality").to_pylist())),
        "files": files,
        "query": {"file": query_file.name, "k": 5, "own_split": own_split, "results": [str(i) for i in hits.ids[0]],
                  "scores": [round(float(s), 4) for s in hits.scores[0]]},
    }


def markdown(r: dict[str, Any]) -> str:
    m = r["machine"]
    kept = [f for f in r["files"] if f["items"] > 0]
    skipped = [f for f in r["files"] if f["items"] == 0]
    multi = [f for f in kept if f["items"] > 1]
    lines = [
        "# A store from the DICOM test files of pydicom and pydicom-data",
        "",
        f"Run {m['date_utc']} on {m['cpu']} ({m['cores']} cores, shared). Command: `{r['command']}`. Packages: "
        + ", ".join(f"{k} {v}" for k, v in r["packages"].items()) + ".",
        "",
        f"Every `.dcm` file the two packages ship, a DICOMDIR, one DICOM file without an extension and a README: "
        f"**{r['files_copied']} files** in one flat folder, built as `graphret build-graph FOLDER` does (no labels, so the "
        f"pixel baseline; exact 5-NN graph). **{r['items']} items** from {len(kept)} files in {r['build_seconds']} s "
        f"(decoding included); {len(skipped)} files skipped. Split: {r['split_origin']}; {r['groups']} groups "
        f"({r['group_values']['hashed PatientID']} items grouped by a hashed PatientID, {r['group_values']['file (no PatientID)']} "
        "by their file where it has none).",
        "",
        "## Metadata columns kept",
        "",
        "`" + "`, `".join(r["metadata_columns"]) + "`: the non-identifying default set (`"
        + "`, `".join(r["default_tags"]) + "`) and the frame number. Modalities among the items: "
        + ", ".join(f"{k or '(none)'} {v}" for k, v in sorted(r["modalities"].items(), key=lambda kv: -kv[1])) + ".",
        "",
        f"No identifying tag is a column ({'none' if not r['identifying_columns'] else ', '.join(r['identifying_columns'])}). "
        f"The files hold {r['identifying_values_in_files']} identifying values ({', '.join(r['identifying_tags_in_files'])}); "
        + ("none of them occurs in any text column of the items table (ids, paths, metadata, groups)."
           if not r["identifying_values_in_store"] else
           "these occur in the items table: " + "; ".join(r["identifying_values_in_store"]) + "."),
        "",
        (f"Dates inside UIDs: the study, series and instance UIDs are kept by default, and those of "
         f"{len(r['files_whose_uids_embed_a_date'])} files embed one of the file's own dates (some systems build UIDs from "
         f"the acquisition time): {', '.join(r['files_whose_uids_embed_a_date'])}. Leave the UIDs out of a store that must "
         "hold no dates (drop the columns from the items table, or extend the data layer with a way to exclude default "
         "tags)." if r["files_whose_uids_embed_a_date"] else "No kept UID embeds one of its file's dates."),
        "",
        "## Skipped files and why",
        "",
        "Counts as the store's manifest records them: " + ", ".join(f"{v} {k}" for k, v in sorted(r["skipped_counts"].items())) + ".",
        "",
        "| file | modality | transfer syntax | reason |",
        "|---|---|---|---|",
    ]
    for f in skipped:
        s = f["skipped"]
        lines.append(f"| {f['file']} | {f.get('modality') or ''} | {f.get('transfer_syntax') or ''} | {s['kind']}: {s['what'].replace('|', '/')} |")
    lines += ["", "## Items per file", "",
              f"One item per frame: {len(multi)} multi-frame files gave {sum(f['items'] for f in multi)} items; "
              f"{len(kept) - len(multi)} single-frame files one each.", "",
              "| file | from | modality | transfer syntax | photometric | rows x columns | frames | items |",
              "|---|---|---|---|---|---|---:|---:|"]
    for f in kept:
        lines.append(f"| {f['file']} | {f['from']} | {f.get('modality') or ''} | {f.get('transfer_syntax') or ''} | "
                     f"{f.get('photometric') or ''} | {f.get('rows')} x {f.get('columns')} | {f.get('frames')} | {f['items']} |")
    q = r["query"]
    lines += ["", "## One file as a query image", "",
              f"`store.search(\"{q['file']}\", k={q['k']}, mode=\"flat\", archive=[\"all\"])`, searching every item (the "
              f"stored copy of the file is in the {q['own_split']} split): "
              + ", ".join(f"`{i}` ({s:.3f})" for i, s in zip(q["results"], q["scores"]))
              + (". The query file, read and encoded as a query, meets its stored copy at rank 1 with similarity 1: the same "
                 "pixels through the same readers." if q["results"][0] == Path(q["file"]).stem and q["scores"][0] > 0.9999
                 else ". The stored copy of the file is not at rank 1 with similarity 1: the query path reads it differently."),
              ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "dicom"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="graphret-dicom-") as tmp:
        report = run(out, Path(tmp))
    (out / "dicom.json").write_text(json.dumps(report, indent=1, default=str) + "\n")
    (out / "README.md").write_text(markdown(report))
    log(f"wrote {out / 'README.md'}")


if __name__ == "__main__":
    main()
