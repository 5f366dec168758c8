"""The `graphret` command: build-graph then query, and one-line errors for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from graphret.cli.main import main
from PIL import Image

from tests.stores import arrow_table, newest_manifest


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def demo_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("cli") / "demo-store"
    result = run("build-graph", "-o", path, "--k", 8, "--encoder", "pixels", "--quiet")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    return path, summary


def test_build_graph_demo_summary(demo_store):
    path, summary = demo_store
    manifest = newest_manifest(path)
    assert summary["items"] == manifest["counts"]["items"] > 0
    assert summary["edges"] == manifest["counts"]["edges"] > 0
    assert manifest["source"]["spec"] == "demo"
    assert manifest["source"]["split_origin"].startswith("seeded 70/30")
    assert set(summary["communities"]) == {"cnm", "leiden"}
    assert manifest["params"]["k"] == 8 and manifest["seed"] == 0


def test_query_by_id_json(demo_store):
    path, _ = demo_store
    manifest = newest_manifest(path)

    ids = arrow_table(path, "items").column("id").to_pylist()
    result = run("query", path, "--id", ids[0], "--k", 5, "--format", "json", "--mode", "flat")
    assert result.exit_code == 0, result.output
    payload = json.loads(result.output)
    assert payload["mode"] == "flat" and payload["k"] == 5
    hits = payload["queries"][0]["results"]
    assert len(hits) == 5 and ids[0] not in [h["id"] for h in hits]
    assert manifest["source"]["task"] == "multilabel"
    assert isinstance(payload["queries"][0]["query"]["label"], list)  # multi-label: list of positives


def test_query_split_table_and_csv(demo_store, tmp_path):
    path, _ = demo_store
    table = run("query", path, "--split", "test", "--k", 3, "--mode", "flat")
    assert table.exit_code == 0 and "rank" in table.output and "scanned: 100.0%" in table.output
    out = tmp_path / "results.csv"
    written = run("query", path, "--split", "test", "--k", 3, "--format", "csv", "-o", out)
    assert written.exit_code == 0
    lines = out.read_text().splitlines()
    assert lines[0].startswith("query_id,query_label")
    assert len(lines) - 1 == 3 * sum(1 for line in lines[1:] if line.split(",")[3] == "1")


def test_query_with_an_outside_image(demo_store, tmp_path):
    path, _ = demo_store
    picture = tmp_path / "my query.png"
    Image.fromarray((np.random.default_rng(0).random((40, 50)) * 255).astype(np.uint8)).save(picture)
    result = run("query", path, "--image", picture, "--k", 4, "--format", "json")
    assert result.exit_code == 0, result.output
    query = json.loads(result.output)["queries"][0]["query"]
    assert query["id"] is None and query["label"] is None and query["path"].endswith("my query.png")


@pytest.mark.parametrize(
    "args, message",
    [
        (["query", "{store}", "--id", "no-such-id"], "unknown id 'no-such-id'"),
        (["query", "{store}", "--split", "test", "--k", "1000000"], "larger than the archive"),
        (["query", "{store}", "--split", "test", "--k", "0"], "K must be at least 1"),
        (["query", "{missing}", "--split", "test"], "no such store"),
        (["query", "{store}"], "give exactly one kind of query"),
        (["query", "{store}", "--image", "{missing}"], "no such"),
        (["build-graph", "{missing}", "-o", "{out}"], "no such file or folder"),
        (["build-graph", "-o", "{store}"], "--overwrite"),
    ],
)
def test_bad_input_is_one_line(demo_store, tmp_path, args, message):
    path, _ = demo_store
    filled = [a.format(store=path, missing=tmp_path / "missing.npz", out=tmp_path / "out") for a in args]
    result = CliRunner().invoke(main, filled)
    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)  # a clean exit, not a crash
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], result.output
    assert not (tmp_path / "out").exists()


def test_console_script_reports_without_traceback(tmp_path):
    script = Path(sys.executable).with_name("graphret")
    done = subprocess.run([str(script), "query", str(tmp_path / "nowhere"), "--split", "test"], capture_output=True, text=True)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == f"Error: no such store: {tmp_path / 'nowhere'} (build one with `graphret build-graph -o {tmp_path / 'nowhere'}`)"


def test_no_split_keeps_one_archive(tmp_path):
    out = tmp_path / "all"
    result = run("build-graph", "demo:anatomy,n=300", "-o", out, "--no-split", "--k", 5, "--communities", "leiden", "--encoder", "pixels", "--quiet")
    assert result.exit_code == 0, result.output
    manifest = newest_manifest(out)
    assert manifest["archive"] == ["all"] and manifest["counts"]["by_split"] == {"all": 300}
    assert manifest["source"]["split_origin"] == "none"
    assert manifest["counts"]["archive"] == 300 and manifest["graph"]["n"] == 300


def test_chexpert_csv_source_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["Path,Sex,Nodule,Effusion"]
    values = ["1", "0", "-1", ""]
    for i in range(60):
        name = f"img {i}.png"
        Image.fromarray((rng.random((20, 24)) * 255).astype(np.uint8)).save(tmp_path / name)
        rows.append(f"{name},{'MF'[i % 2]},{values[i % 4]},{values[(i // 4) % 4]}")
    (tmp_path / "train.csv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "cx"
    result = run("build-graph", tmp_path / "train.csv", "-o", out, "--k", 4, "--uncertain", "ones", "--communities", "leiden", "--encoder", "pixels", "--quiet")
    assert result.exit_code == 0, result.output
    store = __import__("graphret.store", fromlist=["open_store"]).open_store(out)
    assert store.task == "multilabel" and store.class_names == ["Nodule", "Effusion"]
    labels = store.labels
    # U-Ones: -1 -> 1; blank -> 0 (the default blank policy)
    assert labels[store.row_of_id["img 2"]].tolist() == [1, 1]
    assert labels[store.row_of_id["img 3"]].tolist() == [0, 1]
    assert "Sex" in store.items.schema.names


def test_cnm_heuristic_and_refinement_are_recorded(tmp_path):
    out = tmp_path / "refined"
    result = run("build-graph", "demo:anatomy,n=400", "-o", out, "--k", 6, "--communities", "cnm",
                 "--heuristic", "size", "--refine", "multilevel", "--quality", "haq", "--encoder", "pixels", "--quiet")
    assert result.exit_code == 0, result.output
    manifest = newest_manifest(out)
    info = manifest["communities"]["cnm"]
    assert (info["heuristic"], info["refine"], info["quality_function"]) == ("size", "multilevel", "haq")
    assert info["n_communities"] >= 2 and info["haq_modularity"] > 0.3

    dendrogram = arrow_table(out, "dendrogram")
    assert {"step", "a", "b", "gain", "quality_after", "size_after"} <= set(dendrogram.schema.names)
    assert dendrogram.num_rows >= 1


def test_unlabelled_source_falls_back_to_the_pixel_baseline(tmp_path):
    folder = tmp_path / "loose"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for i in range(30):
        Image.fromarray((rng.random((12, 12)) * 255).astype(np.uint8)).save(folder / f"scan{i}.png")
    # a folder of images without class sub-folders has no labels
    out = tmp_path / "unlabelled"
    result = CliRunner().invoke(main, ["build-graph", f"csv:{tmp_path / 'none.csv'}", "-o", str(out)])
    assert result.exit_code != 0  # a missing CSV is refused
    (tmp_path / "list.csv").write_text("path\n" + "\n".join(f"loose/scan{i}.png" for i in range(30)) + "\n")
    result = run("build-graph", tmp_path / "list.csv", "-o", out, "--k", 3, "--communities", "leiden")
    assert result.exit_code == 0, result.output
    manifest = newest_manifest(out)
    assert manifest["encoder"]["name"] == "pixels"
    assert "default for a source without class labels" in result.output


def test_pixel_encoder_refuses_training_options(tmp_path):
    result = CliRunner().invoke(main, ["build-graph", "-o", str(tmp_path / "x"), "--encoder", "pixels", "--epochs", "3"])
    assert result.exit_code == 2 and "--epochs does not apply to the pixel baseline" in result.output


def _source_with_bad_files(tmp_path):
    """A class folder tree with one corrupt PNG, and a CSV manifest naming a missing file."""
    rng = np.random.default_rng(1)
    root = tmp_path / "imgs"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(4):
            Image.fromarray((rng.random((12, 12)) * 255).astype(np.uint8)).save(root / cls / f"{i}.png")
    (root / "a" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 16)
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,label\nimgs/a/0.png,a\nimgs/b/0.png,b\nimgs/a/gone.png,a\n")
    return root, manifest


@pytest.mark.parametrize(
    "which, extra, ending",
    [
        ("folder", [], "; remove or replace it, or use --on-corrupt skip"),
        ("csv", [], "); fix the path, or use --on-corrupt skip"),
        ("csv", ["--label-columns", "nope"], " (fix --label-columns)"),
    ],
)
def test_data_layer_errors_are_rendered_with_the_commands_flags(tmp_path, which, extra, ending):
    root, manifest = _source_with_bad_files(tmp_path)
    source = root if which == "folder" else manifest
    result = CliRunner().invoke(main, ["build-graph", str(source), "-o", str(tmp_path / "out"), "--on-corrupt", "error",
                                       "--encoder", "pixels", "--k", "2", "--quiet", *extra])
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code != 0 and isinstance(result.exception, SystemExit)
    assert len(lines) == 1 and lines[0].endswith(ending), result.output
    assert "on_corrupt" not in lines[0] and "label_columns" not in lines[0]
    assert not (tmp_path / "out").exists()


def test_query_writes_parquet_only_to_a_file(demo_store, tmp_path):
    import pyarrow.parquet as pq

    path, _ = demo_store
    refused = run("query", path, "--split", "test", "--k", 3, "--format", "parquet")
    assert refused.exit_code != 0 and "give -o FILE" in refused.output
    written = run("query", path, "--split", "test", "--k", 3, "--format", "parquet", "-o", tmp_path / "r.parquet")
    assert written.exit_code == 0, written.output
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.column("rank").to_pylist()[:3] == [1, 2, 3] and table.num_rows % 3 == 0


def test_a_query_by_id_imports_only_what_it_needs(demo_store):
    """`graphret query --id` loads neither torch nor pandas (nor the CNM kernels), nor numba or scipy: one
    query's search runs the kernels as Python (graphret.kernels.jit.interpreted): issue 25.5."""
    path, _ = demo_store
    item = arrow_table(path, "items").column("id")[0].as_py()
    script = ("import sys\nfrom graphret.cli.main import main\nsys.argv = ['graphret', 'query', sys.argv[1], '--id', sys.argv[2]]\n"
              "try:\n    main()\nexcept SystemExit as end:\n    assert not end.code, end.code\n"
              "print(sorted(m for m in ('torch', 'pandas', 'torchvision', 'graphret.communities.cnm', 'igraph', 'numba', 'scipy') "
              "if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script, str(path), item], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_batch_query_writes_every_format_without_pandas(demo_store, tmp_path):
    """`graphret query --split` writes JSON, CSV and Parquet from Arrow arrays made from their
    buffers: pyarrow's own conversions would import pandas (a third of a second) (issue 25.6)."""
    path, _ = demo_store
    script = ("import sys\nfrom graphret.cli.main import main\nstore, out = sys.argv[1:]\n"
              "for fmt in ('json', 'csv', 'parquet'):\n"
              "    sys.argv = ['graphret', 'query', store, '--split', 'test', '--k', '3', '--format', fmt, '-o', out + '.' + fmt]\n"
              "    try:\n        main()\n    except SystemExit as end:\n        assert not end.code, end.code\n"
              "print('pandas' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", script, str(path), str(tmp_path / "r")], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "False"
    document = json.loads((tmp_path / "r.json").read_text())
    assert document["k"] == 3 and all(len(entry["results"]) == 3 for entry in document["queries"])
    assert (tmp_path / "r.csv").read_text().count("\n") == 1 + 3 * len(document["queries"])


def test_a_query_ends_without_the_interpreters_teardown(demo_store):
    """The console script ends a successful `graphret query` once its output is flushed,
    without Python's teardown of every module (0.1-0.2 s after numba): the whole JSON arrives
    through a pipe, status 0, no exit handler runs; other commands, and a failing query, exit
    as Python does (issue 25.6)."""
    path, _ = demo_store
    script = ("import atexit, sys\nfrom graphret.cli.main import run\n"
              "atexit.register(lambda: print('teardown', file=sys.stderr))\nsys.argv = ['graphret', *sys.argv[1:]]\nrun()")

    def console(*args):
        return subprocess.run([sys.executable, "-c", script, *map(str, args)], capture_output=True, text=True, timeout=600)

    query = console("query", path, "--split", "test", "--k", 4, "--format", "json")
    assert query.returncode == 0 and "teardown" not in query.stderr, query.stderr
    document = json.loads(query.stdout)
    assert document["k"] == 4 and len(document["queries"]) > 1
    for other in (console("versions", path), console("query", path, "--split", "nope")):
        assert "teardown" in other.stderr
    assert console("query", path, "--split", "nope").returncode == 1


def test_a_query_by_image_on_a_pixel_store_imports_no_torch(demo_store, tmp_path, monkeypatch):
    """`graphret query --image` on a pixel store reads its encoder file without torch
    (graphret.encoders.arrays_file), nor pydicom for a picture file: the same arrays and answer
    as torch's reading; a damaged file is still torch's one-line error (issue 25.5)."""
    import graphret.encoders as encoders
    from graphret.errors import InputError
    from graphret.store.read import open_store

    path, _ = demo_store
    picture = tmp_path / "query.png"
    Image.fromarray((np.random.default_rng(1).random((40, 50)) * 255).astype(np.uint8)).save(picture)
    script = ("import sys\nfrom graphret.cli.main import main\n"
              "sys.argv = ['graphret', 'query', sys.argv[1], '--image', sys.argv[2]]\n"
              "try:\n    main()\nexcept SystemExit as end:\n    assert not end.code, end.code\n"
              "print(sorted(m for m in ('torch', 'torchvision', 'numba', 'scipy', 'pandas', 'pydicom') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", script, str(path), str(picture)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    *answer, imported = done.stdout.strip().splitlines()
    assert imported == "[]"
    file = path / open_store(path).encoder_entry["file"]
    without, with_torch = encoders.load_encoder(file, expect="pixels"), encoders.load_encoder(file)
    assert isinstance(without.components, np.ndarray) and without.components.shape == with_torch.components.shape
    assert np.array_equal(without.mean, with_torch.mean) and np.array_equal(without.components, with_torch.components)
    damaged = tmp_path / "damaged.pt"
    damaged.write_bytes(file.read_bytes()[:-100])
    with pytest.raises(InputError, match="not a readable graphret model file"):
        encoders.load_encoder(damaged, expect="pixels")
    monkeypatch.setattr(encoders, "read_arrays_file", lambda _: None)  # torch reads the file
    result = run("query", path, "--image", picture)
    assert result.exit_code == 0, result.output
    assert "\n".join(answer) == result.output.strip() and "rank" in result.output


def test_help_texts_are_written_from_the_defaults():
    """The help names what a default build does (the small CNN, its work budget) and the search
    defaults, read from where they are set, not a stale copy."""
    from graphret.encoders.config import DEFAULT_BACKBONE, DEFAULT_ENCODER, DEFAULT_WORK
    from graphret.query.config import DEFAULT_PROBE

    build = " ".join(run("build-graph", "--help").output.split())
    encoder = build.split("--encoder")[1].split("--backbone")[0]
    assert f"{DEFAULT_ENCODER} with the {DEFAULT_BACKBONE} backbone" in encoder and "resnet18" not in encoder
    assert f"[the default encoder: {DEFAULT_WORK:g}]" in build.split("--work")[1]
    query = " ".join(run("query", "--help").output.split())
    assert f"Lists probe mode searches (P) [{DEFAULT_PROBE}]" in query
