"""The bad-input contract, property-based (issue 21): Hypothesis draws hostile sources, options,
codes and store files for every command-line verb and every public Python entry point, and each
answer must keep the contract of the brief:

* a user mistake is one line naming the problem and a fix (a GraphretError in Python, one
  ``Error:`` line and exit 1 or 2 on the command line), never a traceback, never another
  exception;
* nothing stored is lost: a failed command leaves the store's files as they were, a failed build
  leaves no half-written store, a write leaves a store that verifies with every item it had;
* no allocation proportional to an unchecked number: each example runs under tracemalloc (numpy
  reports its buffers to it) and must stay under :data:`PEAK_LIMIT`.

Small stores (30 pixel-coded items) and in-process calls keep the whole file to about two
minutes on two cores; ``GRAPHRET_FUZZ_EXAMPLES`` multiplies every example count for a longer hunt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import tracemalloc
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import graphret
from graphret.cli.main import main
from graphret.errors import GraphretError
from tests.stores import rewrite_fragment
from tests.synthetic import blob_images

#: the most memory one example may take at its peak (numpy buffers included)
PEAK_LIMIT = 400 << 20
SCALE = float(os.environ.get("GRAPHRET_FUZZ_EXAMPLES", "1"))
RUN = {"examples": 0, "accepted": 0}  # examples run, and those answered without an error


def fuzz(n: int):
    """Hypothesis settings for a property: ``n`` examples (times the scale), no deadline."""
    return settings(max_examples=max(1, int(n * SCALE)), deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


@contextmanager
def bounded_memory():
    """Fail when the block's peak traced allocation passes :data:`PEAK_LIMIT`."""
    RUN["examples"] += 1
    tracemalloc.start()
    try:
        yield
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"peak allocation {peak / 2**20:.0f} MiB"


def one_line(error: BaseException) -> None:
    """A GraphretError whose message is one non-empty line."""
    assert isinstance(error, GraphretError), f"{type(error).__name__}: {error}"
    text = str(error)
    assert text.strip() and "\n" not in text, repr(text)


def call(fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` under the contract: its value, or None after a one-line GraphretError."""
    with bounded_memory():
        try:
            value = fn(*args, **kwargs)
        except Exception as error:  # noqa: BLE001 - the contract is what is checked here
            one_line(error)
            return None
    RUN["accepted"] += 1
    return value


def cli(args: list[str], *, verify_like: bool = False):
    """Run ``graphret ARGS`` in-process under the contract; the click Result."""
    with bounded_memory():
        result = CliRunner().invoke(main, [str(a) for a in args])
    error = result.exception
    assert error is None or isinstance(error, SystemExit), f"{type(error).__name__}: {error}\n{result.output}"
    assert "Traceback" not in result.output, result.output
    if result.exit_code != 0:
        assert result.exit_code in (1, 2), result.output
        lines = [line for line in result.output.splitlines() if line.startswith("Error")]
        if not (verify_like and result.exit_code == 1):
            assert len(lines) == 1 and len(lines[0]) > len("Error: "), result.output
    else:
        RUN["accepted"] += 1
    return result


@contextmanager
def some_accepted():
    """The block's examples include some that were answered (the strategies reach past validation)."""
    before = RUN["accepted"]
    yield
    assert RUN["accepted"] > before, "every drawn example was refused: the strategies test validation only"


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != "_writer.lock"}


def sound(folder: Path, ids: set[str]) -> None:
    """The store verifies and still holds every item in ``ids``."""
    assert graphret.store.verify(folder) == []
    assert ids <= set(graphret.open(folder).ids)


# -- the stores --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def base(tmp_path_factory) -> Path:
    """30 blob images in train/val/test, pixel codes, CNM and Leiden, walk lists, thumbnails."""
    path = tmp_path_factory.mktemp("contract") / "store"
    graphret.build(blob_images(n_per_class=10, n_classes=3, seed=11), path, encoder="pixels", image_size=16, dim=8, k=4,
                   communities=("cnm", "leiden"))
    return path


@pytest.fixture(scope="session")
def scratch(tmp_path_factory) -> Path:
    """A folder of things commands may be pointed at: a missing path, a file, a plain folder,
    images to add, a CSV, an npz."""
    root = tmp_path_factory.mktemp("scratch")
    (root / "plain").mkdir()
    (root / "file.txt").write_text("not a store\n")
    new = root / "new"
    images = blob_images(n_per_class=2, n_classes=3, seed=12)
    from PIL import Image

    for i in range(len(images)):
        folder = new / images.class_names[images.labels[i]]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images.image(i)).save(folder / f"added{i}.png")
    np.savez(root / "set.npz", images=images.images, labels=images.labels)
    (root / "list.csv").write_text("path,label\n" + "".join(f"new/{images.class_names[images.labels[i]]}/added{i}.png,x\n"
                                                              for i in range(len(images))))
    return root


@pytest.fixture()
def copy(base, tmp_path_factory):
    """A fresh copy of the store for one example that may write (call it per example)."""
    def make() -> Path:
        target = Path(tempfile.mkdtemp(dir=tmp_path_factory.getbasetemp())) / "store"
        shutil.copytree(base, target)
        return target
    return make


# -- values ------------------------------------------------------------------------------------
HUGE = [10**6, 10**9, 10**12, 2**31, 2**63, 10**30]
INTS = st.one_of(st.integers(-3, 6), st.sampled_from(HUGE), st.sampled_from([-(10**12), -(2**63)]))
FLOATS = st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e309", "1e-300", "0.5", "3", "1e12", "x"])
TEXT = st.one_of(
    st.sampled_from(["", " ", "x", "all", "train", "test", "val", "cnm", "leiden", "none", "-1", "0", "nan", "a,b", ",,",
                     "label=class1", "label!=x", "split in train,test", "age>=4", "=x", "label=", "\u00e9\u00e8", "../..",
                     "a" * 300, "1,2,3", "pixels", "cnn", "default", "blob-0001", "blob-0001:normal,blob-0002:abnormal",
                     "1,2", "lung", "first", "2", "0,0", "onnx:missing.onnx", "timm:nope", "{k}", "%s", "null"]),
    st.text(max_size=12))


def value_for(param, paths: list[str]) -> st.SearchStrategy:
    import click

    kind = param.type
    if isinstance(kind, click.Choice):
        return st.one_of(st.sampled_from(list(kind.choices)), st.just("bogus"))
    if isinstance(kind, click.types.IntParamType):
        return INTS.map(str) | st.sampled_from(["1.5", "x", ""])
    if isinstance(kind, click.types.FloatParamType):
        return FLOATS
    if isinstance(kind, click.Path):
        return st.sampled_from(paths)
    return TEXT | st.sampled_from(paths)


def argv(command_name: str, positional: list[st.SearchStrategy], paths: list[str], *, skip=(), max_options: int = 4):
    """Command lines for one verb: its positional arguments, then up to ``max_options`` of its
    options with hostile values (flags present or not)."""
    import click

    command = main.get_command(None, command_name)  # commands load lazily
    options = [p for p in command.params if isinstance(p, click.Option) and p.name not in skip and not set(p.opts) & set(skip)
               and not p.hidden]

    @st.composite
    def make(draw):
        args = [command_name] + [draw(s) for s in positional]
        chosen = draw(st.lists(st.sampled_from(options), max_size=max_options, unique_by=lambda p: p.name)) if options else []
        for option in chosen:
            flag = option.opts[0]
            if option.is_flag:
                args.append(flag if not option.secondary_opts or draw(st.booleans()) else option.secondary_opts[0])
            else:
                args += [flag, draw(value_for(option, paths))]
        return args
    return make()


def paths_of(base: Path, scratch: Path, out: Path) -> list[str]:
    return [str(base), str(scratch / "missing"), str(scratch / "file.txt"), str(scratch / "plain"), str(scratch / "new"),
            str(scratch / "set.npz"), str(scratch / "list.csv"), str(out / "out.json"), str(out / "montage.png"), str(out),
            "", str(scratch / "new" / "class0" / "added0.png")]


# -- every verb --------------------------------------------------------------------------------
READ_ONLY = {"query": 40, "communities": 25, "bench": 12, "versions": 8, "verify": 10}


@pytest.mark.parametrize("verb", sorted(READ_ONLY))
def test_read_only_verbs_keep_the_contract_and_change_nothing(verb, base, scratch, tmp_path):
    before = digest(base)
    paths = paths_of(base, scratch, tmp_path)
    store = st.sampled_from([str(base)] * 4 + paths)
    skip = ("--plots", "--export") if verb == "communities" else ()  # figures: slow to draw, not input handling

    kinds = st.sampled_from([["--split", "test"], ["--id", "blob-0001"], ["--image", str(scratch / "new" / "class0" / "added0.png")],
                             ["--compose", "blob-0001:normal,blob-0002:abnormal"], []])

    @fuzz(READ_ONLY[verb])
    @given(args=argv(verb, [store], paths, skip=skip), kind=kinds.map(lambda k: k))
    def run(args, kind):
        if verb == "bench":
            args = args[:2] + ["--single", "0", "--queries", "3", "--k", "5"] + args[2:]
        if verb == "query":
            args = args[:2] + kind + args[2:]
        cli(args, verify_like=verb == "verify")

    with some_accepted():
        run()
    assert digest(base) == before


WRITERS = {"add": 14, "compact": 4, "vacuum": 10, "upgrade": 4}


@pytest.mark.parametrize("verb", sorted(WRITERS))
def test_writing_verbs_keep_the_contract_and_lose_nothing(verb, base, scratch, copy, tmp_path):
    ids = set(graphret.open(base).ids)
    paths = paths_of(base, scratch, tmp_path)
    sources = st.sampled_from([str(scratch / "new"), str(scratch / "set.npz"), str(scratch / "list.csv"), str(scratch / "missing"),
                               str(scratch / "file.txt"), str(scratch / "plain"), "demo:n=6,size=16", ""])

    @fuzz(WRITERS[verb])
    @given(data=st.data())
    def run(data):
        store = copy()
        positional = [st.just(str(store))] + ([sources] if verb == "add" else [])
        args = data.draw(argv(verb, positional, paths + [str(store)]))
        before = digest(store)
        result = cli(args)
        if result.exit_code != 0:
            assert digest(store) == before  # a refused write changes nothing
        sound(store, ids)

    if verb == "upgrade":  # a format 2 store: every upgrade is refused, which is the point
        run()
        return
    with some_accepted():
        run()


def test_build_graph_and_train_keep_the_contract(scratch, tmp_path):
    paths = paths_of(scratch / "missing", scratch, tmp_path)
    sources = st.sampled_from([str(scratch / "new"), str(scratch / "set.npz"), str(scratch / "list.csv"), str(scratch / "missing"),
                               str(scratch / "file.txt"), str(scratch / "plain"), "demo:n=30,size=16", "medmnist:nope", ""])

    @fuzz(14)
    @given(verb=st.sampled_from(["build-graph", "train"]), data=st.data())
    def run(verb, data):
        out = Path(tempfile.mkdtemp(dir=tmp_path)) / ("store" if verb == "build-graph" else "encoder.pt")
        fast = ["--encoder", data.draw(st.sampled_from(["pixels", "pixels", "pixels", "bogus", ""]))]
        args = data.draw(argv(verb, [sources], paths, skip=("output", "engine", "address", "workers"), max_options=3))
        result = cli(args[:2] + ["-o", str(out)] + fast + args[2:] + (["--k", "3"] if verb == "build-graph" else []))
        if result.exit_code != 0:
            assert not out.exists(), "a failed run left its output behind"
        elif verb == "build-graph":
            assert graphret.store.verify(out) == []

    with some_accepted():
        run()


def test_serve_refuses_bad_options_before_serving(base, scratch, tmp_path, monkeypatch):
    import uvicorn

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: served.append(kwargs))
    paths = paths_of(base, scratch, tmp_path)

    @fuzz(25)
    @given(args=argv("serve", [st.sampled_from([str(base)] * 3 + paths)], paths))
    def run(args):
        cli(args)

    with some_accepted():
        run()
    assert served  # some drawn command lines were valid and reached the server


# -- Python entry points -----------------------------------------------------------------------
def queries(store):
    ids = list(store.ids[:5])
    d = store.codes().shape[1]
    arrays = hnp.arrays(st.sampled_from([np.float32, np.float64, np.int64, np.complex64, np.bool_]),
                        hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=d + 1))
    floats = hnp.arrays(np.float64, st.sampled_from([(d,), (2, d), (1, d + 1), (0, d), (3, d)]),
                        elements=st.floats(allow_nan=True, allow_infinity=True, width=32))
    return st.one_of(st.sampled_from(["test", "train", "all", "nope", "", "blob-0000"] + ids), st.lists(st.sampled_from(ids + ["nope"]), max_size=3),
                     arrays, floats, st.just(None), st.just({"a": 1}), st.just([[1, 2], [3]]), st.just(np.array(ids)),
                     st.just(np.arange(3)), st.just(np.array([-1, 10**6])))


SEARCH_OPTIONS = st.fixed_dictionaries({}, optional={
    "k": st.one_of(INTS, st.sampled_from([1.5, True, "3", None])),
    "mode": st.sampled_from(["region", "graph", "flat", "class", "probe", "bogus", None]),
    "where": st.one_of(TEXT, st.lists(TEXT, max_size=2)),
    "n_probe": INTS, "ef": INTS, "batch_size": INTS,
    "rank": st.sampled_from(["smoothed", "manifold", "bogus"]),
    "class_source": st.sampled_from(["classifier", "knn", "bogus"]),
    "space": st.sampled_from(["default", "both", "bogus"]),
    "archive": st.one_of(st.sampled_from(["all", "train,val", "test", "nope", "", ["train"], ["all", "x"], 7]), st.none()),
    "communities": st.sampled_from(["cnm", "leiden", "bogus", None]),
    "bogus_option": st.just(1),
})


def test_store_search_keeps_the_contract(base):
    store = graphret.open(base)

    @fuzz(60)
    @given(q=queries(store), options=SEARCH_OPTIONS)
    def run(q, options):
        result = call(store.search, q, **options)
        if result is not None:
            rows = np.asarray(result.rows)
            assert rows.ndim == 2 and ((rows >= 0) & (rows < len(store))).all()
            assert all(r not in row for r, row in zip(result.queries.rows, rows) if r >= 0)  # never its own result

    with some_accepted():
        run()


CODE_ARRAYS = hnp.arrays(st.sampled_from([np.float32, np.float64, np.int32, np.complex64, np.bool_, np.float16]),
                         hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=9))


def test_build_from_codes_keeps_the_contract(tmp_path):
    @fuzz(60)
    @given(codes=st.one_of(CODE_ARRAYS, hnp.arrays(np.float32, st.tuples(st.integers(6, 12), st.integers(2, 4)),
                                                   elements=st.floats(0.125, 2, width=32)), hnp.arrays(np.float32, st.tuples(st.integers(0, 12), st.integers(1, 4)),
                                                   elements=st.floats(-2, 2, width=32) | st.sampled_from([np.nan, np.inf, 0.0])),
                           st.just([[0.1, 0.2], [0.3]]), st.just([["a", "b"]] * 4)),
           options=st.fixed_dictionaries({"k": st.one_of(st.just(2), INTS)}, optional={
               "ids": st.one_of(st.lists(st.sampled_from(["a", "b", "c", "", "a/b"]), max_size=12), st.just(list(range(12)))),
               "labels": st.one_of(st.lists(st.sampled_from(["x", "y", None, ""]), max_size=12),
                                   st.lists(st.integers(-2, 3), max_size=12), st.just([10**12] * 12),
                                   hnp.arrays(np.int64, (12, 2), elements=st.integers(-2, 2))),
               "class_names": st.one_of(st.none(), st.lists(st.sampled_from(["x", "y", "z"]), max_size=3)),
               "splits": st.lists(st.sampled_from(["train", "test", "val", "all", ""]), max_size=12),
               "metadata": st.dictionaries(st.sampled_from(["site", "age", ""]), st.lists(st.integers(0, 3), max_size=12), max_size=2),
               "communities": st.sampled_from([(), ("cnm",), ("bogus",), "cnm"]),
               "walk_degree": INTS, "bogus": st.just(1)}))
    def run(codes, options):
        path = Path(tempfile.mkdtemp(dir=tmp_path)) / "s"
        store = call(graphret.build_from_codes, codes, path, **options)
        if store is None:
            assert not path.exists(), "a refused build left a store behind"
        else:
            assert graphret.store.verify(path) == []

    with some_accepted():
        run()


def test_open_keeps_the_contract(base, scratch):
    @fuzz(20)
    @given(path=st.sampled_from([base, scratch / "missing", scratch / "file.txt", scratch / "plain", "", "\x00bad"]),
           version=st.one_of(st.none(), INTS, st.sampled_from(["1", 1.5])))
    def run(path, version):
        call(graphret.open, path, version=version)

    with some_accepted():
        run()


def test_store_methods_keep_the_contract(base, scratch, copy):
    ids = set(graphret.open(base).ids)
    sources = st.sampled_from([scratch / "new", scratch / "set.npz", scratch / "list.csv", scratch / "missing",
                               scratch / "file.txt", scratch / "plain", "demo:n=6,size=16", "", 7])
    methods = st.sampled_from(["add", "communities", "evaluate", "versions", "compact", "vacuum", "verify", "codes",
                               "membership", "to_pandas", "refresh"])

    @fuzz(45)
    @given(method=methods, data=st.data())
    def run(method, data):
        path = copy()
        store = graphret.open(path)
        before = digest(path)
        if method == "add":
            value = call(store.add, data.draw(sources), **data.draw(st.fixed_dictionaries({}, optional={
                "k": INTS, "seed": INTS, "split": st.booleans(), "on_corrupt": st.sampled_from(["skip", "error", "x"]),
                "bogus": st.just(1)})))
        elif method == "communities":
            analysis = call(store.communities, data.draw(st.sampled_from(["all", "cnm", ["leiden"], "bogus", [], 3])),
                            cut=data.draw(st.one_of(st.none(), INTS)))
            value = analysis if analysis is None else call(analysis.summary)
        elif method == "evaluate":
            value = call(store.evaluate, **data.draw(st.fixed_dictionaries(
                {"n_single": st.just(0)}, optional={"k": INTS, "split": TEXT, "modes": st.sampled_from(["flat", "region,bogus", ""]),
                                                    "n_queries": INTS, "bogus": st.just(1)})))
        elif method == "vacuum":
            value = call(store.vacuum, keep=data.draw(INTS), grace=data.draw(st.sampled_from([0, -1, float("nan"), float("inf"), 1e300])))
        elif method in ("codes", "membership"):
            value = call(getattr(store, method), data.draw(st.sampled_from(["default", "cnm", "leiden", "bogus", None, 3])))
        elif method == "verify":
            value = call(store.verify, all_versions=data.draw(st.booleans()))
        else:
            value = call(getattr(store, method))
        if value is None and method != "refresh":
            assert digest(path) == before
        sound(path, ids)

    with some_accepted():
        run()


# -- sources -----------------------------------------------------------------------------------
IMAGE_ARRAYS = hnp.arrays(st.sampled_from([np.uint8, np.float32, np.int16, np.bool_, np.float64, np.int64]),
                          st.sampled_from([(12, 8, 8), (12, 8, 8, 3), (12, 8, 8, 4), (12, 8, 8, 1), (12, 8), (0, 8, 8), (12, 1, 1),
                                           (12, 8, 8, 2), (12, 2, 8, 8, 1)]))


def test_npz_sources_keep_the_contract(tmp_path):
    @fuzz(20)
    @given(images=IMAGE_ARRAYS, labels=st.one_of(st.none(), hnp.arrays(np.int64, st.sampled_from([(12,), (11,), (12, 2)]),
                                                                         elements=st.integers(-3, 4) | st.just(10**9))),
           extra=st.dictionaries(st.sampled_from(["class_names", "splits", "ids", "filenames"]),
                                 st.sampled_from([np.array(["a", "b"]), np.arange(12), np.array(["train"] * 12)]), max_size=2))
    def run(images, labels, extra):
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        arrays = {"images": images, **extra} | ({} if labels is None else {"labels": labels})
        np.savez(folder / "set.npz", **arrays)
        out = folder / "s"
        store = call(graphret.build, str(folder / "set.npz"), out, encoder="pixels", image_size=8, dim=4, k=3, communities=("cnm",))
        if store is None:
            assert not out.exists()

    with some_accepted():
        run()


@st.composite
def folder_files(draw):
    """A folder of files: real PNGs, bytes that are not images, text named like images, DICOM-named junk."""
    from PIL import Image
    import io

    files = {}
    kinds = ["png"] * draw(st.integers(0, 8)) + draw(st.lists(st.sampled_from(["png", "junk", "text", "empty", "flat"]), max_size=4))
    for i, kind in enumerate(kinds):
        name = f"{draw(st.sampled_from(['a', 'b']))}/f{i}.{draw(st.sampled_from(['png', 'jpg', 'dcm', 'nii', 'tif']))}"
        if kind in ("png", "flat"):
            pixels = np.full((8, 8), 7, np.uint8) if kind == "flat" else draw(hnp.arrays(np.uint8, (8, 8)))
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="PNG")
            files[name] = buffer.getvalue()
        else:
            files[name] = {"junk": draw(st.binary(max_size=200)), "text": b"hello\n", "empty": b""}[kind]
    return files


def test_folder_and_csv_sources_keep_the_contract(tmp_path):
    @fuzz(30)
    @given(files=folder_files(), csv=st.one_of(st.none(), st.lists(st.tuples(st.sampled_from(["a/f0.png", "a/f1.png", "b/f2.png", "", "../x.png",
                                                                                               "/nope.png", "a,b"]),
                                                                             TEXT), max_size=8)),
           header=st.sampled_from(["path,label", "file,label", "label", "path", ""]))
    def run(files, csv, header):
        folder = Path(tempfile.mkdtemp(dir=tmp_path))
        for name, data in files.items():
            (folder / "src" / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / "src" / name).write_bytes(data)
        (folder / "src").mkdir(exist_ok=True)
        source = folder / "src"
        if csv is not None:
            source = folder / "src" / "list.csv"
            source.write_text(header + "\n" + "".join(f"{p},{label}\n" for p, label in csv))
        out = folder / "s"
        store = call(graphret.build, str(source), out, encoder="pixels", image_size=8, dim=4, k=2, communities=("cnm",))
        if store is None:
            assert not out.exists()

    with some_accepted():
        run()


# -- store files -------------------------------------------------------------------------------
def newest_manifest_path(store: Path) -> Path:
    return sorted((store / "_versions").glob("*.json"))[-1]


def reads_under_contract(store: Path) -> None:
    """What a user does with a store: verify, open, search in every mode, versions, the CLI."""
    call(graphret.store.verify, store, all_versions=True)
    opened = call(graphret.open, store)
    if opened is not None:
        for mode in ("region", "graph", "flat", "probe", "class"):
            call(opened.search, "test", k=3, mode=mode)
        call(opened.search, "test", k=3, archive="all", mode="region")
        call(opened.to_pandas)
        call(lambda: opened.communities().summary())
    call(graphret.store.history, store)
    cli(["verify", store], verify_like=True)
    cli(["query", store, "--split", "test", "--k", "3"])


JSON_VALUES = st.sampled_from([None, -1, 0, 10**30, "x", "", [], {}, [1, 2], {"a": 1}, 1.5, True, ["all"], ["nope"]])


def test_damaged_store_files_keep_the_contract(base, copy):
    tables = ["edges", "walk", "entries", "communities"]

    @fuzz(45)
    @given(how=st.sampled_from(["table", "table", "bytes", "manifest"]), data=st.data())
    def run(how, data):
        store = copy()
        if how == "table":
            name = data.draw(st.sampled_from(tables))
            table = graphret.open(store).snapshot._read(json.loads(newest_manifest_path(store).read_text())["tables"][name], name)
            column = data.draw(st.sampled_from(table.schema.names))
            field = table.schema.field(column)
            n = table.num_rows
            if pa.types.is_integer(field.type):
                info = np.iinfo(field.type.to_pandas_dtype())
                values = data.draw(hnp.arrays(field.type.to_pandas_dtype(), (n,),
                                              elements=st.sampled_from([0, 1, -1, -7, 29, 30, 31, int(info.max), int(info.min)])))
            elif pa.types.is_floating(field.type):
                values = data.draw(hnp.arrays(np.float32, (n,), elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
            else:
                return
            rewrite_fragment(store, name, table.set_column(table.schema.get_field_index(column), column, pa.array(values, field.type)))
        elif how == "bytes":
            files = sorted(p for p in store.rglob("*") if p.is_file() and p.name != "_writer.lock")
            target = data.draw(st.sampled_from(files))
            raw = bytearray(target.read_bytes())
            action = data.draw(st.sampled_from(["truncate", "flip", "append", "empty", "remove"]))
            if action == "remove":
                target.unlink()
            else:
                if action == "truncate":
                    raw = raw[: data.draw(st.integers(0, max(len(raw) - 1, 0)))]
                elif action == "flip" and raw:
                    i = data.draw(st.integers(0, len(raw) - 1))
                    raw[i] ^= 0xFF
                elif action == "append":
                    raw += b"\x00junk"
                else:
                    raw = bytearray()
                target.write_bytes(bytes(raw))
        else:
            path = newest_manifest_path(store)
            manifest = json.loads(path.read_text())
            key = data.draw(st.sampled_from(sorted(manifest)))
            section = manifest[key]
            if isinstance(section, dict) and section and data.draw(st.booleans()):
                section[data.draw(st.sampled_from(sorted(section)))] = data.draw(JSON_VALUES)
            elif data.draw(st.booleans()):
                manifest[key] = data.draw(JSON_VALUES)
            else:
                del manifest[key]
            path.write_text(json.dumps(manifest))
        reads_under_contract(store)

    with some_accepted():
        run()


# -- the server --------------------------------------------------------------------------------
def test_server_requests_keep_the_contract(base, scratch):
    from fastapi.testclient import TestClient

    from graphret.serve import ServeConfig, create_app

    body = st.fixed_dictionaries({}, optional={
        "ids": st.one_of(st.lists(st.sampled_from(["blob-0000", "nope", "", "../x"]), max_size=3), JSON_VALUES),
        "codes": st.one_of(st.lists(st.lists(st.floats(allow_nan=False, width=32), min_size=0, max_size=9), max_size=2), JSON_VALUES),
        "k": st.one_of(INTS, JSON_VALUES), "mode": st.one_of(st.sampled_from(["region", "graph", "flat", "class", "probe"]), JSON_VALUES),
        "where": st.one_of(st.lists(TEXT, max_size=2), JSON_VALUES), "n_probe": INTS, "ef": INTS, "archive": JSON_VALUES,
        "communities": JSON_VALUES, "space": JSON_VALUES, "rank": JSON_VALUES, "batch_size": INTS})
    paths = st.sampled_from(["/items/blob-0000", "/items/nope", "/items/..%2F..%2Fetc", "/items/blob-0000/thumbnail",
                             "/items/blob-0000/image", "/communities/cnm", "/communities/bogus", "/communities/cnm/0",
                             "/communities/cnm/999999999999", "/communities/cnm/-1/members", "/communities/map.png",
                             "/items?limit=-1", "/items?offset=1000000000000", "/items?limit=1000000000", "/versions", "/store"])
    with TestClient(create_app(base, ServeConfig(max_k=50))) as client:
        @fuzz(80)
        @given(kind=st.sampled_from(["search", "search", "get", "image", "add"]), payload=body, path=paths, data=st.binary(max_size=64))
        def run(kind, payload, path, data):
            with bounded_memory():
                if kind == "search":
                    response = client.post("/search", json=payload)
                elif kind == "get":
                    response = client.get(path)
                elif kind == "image":
                    response = client.post("/search/image", files={"files": ("q.png", data, "image/png")}, data={"k": "3"})
                else:
                    response = client.post("/add", files={"files": ("q.png", data, "image/png")})
            assert response.status_code < 500, response.text
            RUN["accepted"] += response.status_code < 400
            if response.status_code >= 400:
                error = response.json()["error"]
                assert error and "\n" not in error

        with some_accepted():
            run()


def test_report_the_number_of_examples_run(record_property):
    record_property("contract_examples", RUN["examples"])
    print(f"\ncontract examples run: {RUN['examples']}")
