"""Composite queries of a decompose store: A's normal code beside B's abnormal code, searched in
``both`` (Store.search(compose=...), graphret query --compose, the montage)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner
from graphret.cli.main import main
from PIL import Image

import graphret
from graphret.encoders.decompose import composite_code
from graphret.errors import InputError, ParameterError
from graphret.query.compose import CompositeSpec, composite_queries, normal_appearing, parse_compose


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A small demo store with the decomposing encoder (trained with the demo's masks, 3 epochs)."""
    path = tmp_path_factory.mktemp("compose") / "store"
    return graphret.build("demo:n=96,size=32", path, encoder="decompose", epochs=3, batch_size=16, threads=1, k=5)


@pytest.fixture(scope="module")
def pixels_store(tmp_path_factory):
    path = tmp_path_factory.mktemp("compose-pixels") / "store"
    return graphret.build("demo:n=60,size=16", path, encoder="pixels", image_size=16, dim=8, k=4)


def test_parse_compose_either_order_and_mapping():
    want = CompositeSpec(normal="a", abnormal="b")
    assert parse_compose("a:normal,b:abnormal") == want
    assert parse_compose(" b:abnormal , a:normal ") == want
    assert parse_compose({"normal": "a", "abnormal": "b"}) == want
    # an image path may hold colons; the space is after the last one
    assert parse_compose("C:/x/a.png:normal,b:abnormal").normal == "C:/x/a.png"


@pytest.mark.parametrize("spec, words", [
    ("a:normal,b:lesion", "unknown space 'lesion'"),
    ("a:normal", "no abnormal part"),
    ("a:normal,b:normal", "normal part twice"),
    ("a-normal,b:abnormal", "each part is ITEM:SPACE"),
])
def test_bad_specs_are_one_line_errors(spec, words):
    with pytest.raises(InputError, match=words) as info:
        parse_compose(spec)
    assert info.value.param == "compose" and "\n" not in str(info.value)


def test_composite_code_comes_from_the_stored_parts(store):
    a, b = store.ids[0], store.ids[7]
    queries = composite_queries(store.snapshot, f"{a}:normal,{b}:abnormal")
    ra, rb = store.snapshot.row_of_id[a], store.snapshot.row_of_id[b]
    want = composite_code(store.codes("normal")[ra], store.codes("abnormal")[rb])
    np.testing.assert_allclose(queries.codes[0], want, atol=1e-6)
    assert queries.rows.tolist() == [ra]  # A, a stored item, is left out of the results
    result = store.search(compose=f"{a}:normal,{b}:abnormal", k=5, mode="flat")
    both = store.codes("both")
    np.testing.assert_allclose(result.scores[0], both[result.rows[0]] @ want, atol=1e-5)
    assert a not in set(result.ids[0])
    rest = np.setdiff1d(store.snapshot.archive_rows(), [ra])  # the exact top 5 of the archive
    best = rest[np.argsort(-(both[rest] @ want), kind="stable")[:5]]
    assert set(result.rows[0]) == set(best)


def test_an_item_composed_with_itself_searches_as_its_both_code(store):
    a = store.ids[3]
    composed = store.search(compose={"normal": a, "abnormal": a}, k=6, mode="flat")
    plain = store.search([a], space="both", k=6, mode="flat")
    assert composed.ids.tolist() == plain.ids.tolist()


def test_an_image_file_as_a_part(store, tmp_path):
    a, b = store.ids[2], store.ids[9]
    from graphret.store.pixels import ItemImages

    pixels = ItemImages(store.snapshot).image(int(store.snapshot.row_of_id[a]))
    Image.fromarray(np.asarray(pixels).squeeze()).save(tmp_path / "a.png")
    by_file = composite_queries(store.snapshot, f"{tmp_path / 'a.png'}:normal,{b}:abnormal")
    by_id = composite_queries(store.snapshot, f"{a}:normal,{b}:abnormal")
    assert by_file.rows.tolist() == [-1]
    assert float(by_file.codes[0] @ by_id.codes[0]) > 0.99


def test_errors(store, pixels_store):
    with pytest.raises(InputError, match="encoder=decompose") as info:
        pixels_store.search(compose=f"{pixels_store.ids[0]}:normal,{pixels_store.ids[1]}:abnormal")
    assert "pixels" in str(info.value)
    with pytest.raises(InputError, match="unknown id or image file 'nope'"):
        store.search(compose=f"nope:normal,{store.ids[0]}:abnormal")
    with pytest.raises(ParameterError, match="not both"):
        store.search("test", compose=f"{store.ids[0]}:normal,{store.ids[1]}:abnormal")
    with pytest.raises(ParameterError, match="both space"):
        store.search(compose=f"{store.ids[0]}:normal,{store.ids[1]}:abnormal", space="normal")


def test_normal_appearing_image_has_the_model_size(store):
    queries = composite_queries(store.snapshot, f"{store.ids[0]}:normal,{store.ids[1]}:abnormal")
    image = normal_appearing(store.snapshot, queries.composite["normal"])
    assert image.dtype == np.uint8 and image.shape == (32, 32)


def test_cli_compose_and_montage(store, tmp_path):
    a, b = store.ids[0], store.ids[7]
    out = tmp_path / "m.png"
    result = CliRunner().invoke(main, ["query", str(store.path), "--compose", f"{a}:normal,{b}:abnormal", "--k", "4",
                                       "--mode", "flat", "--format", "json", "--montage", str(out)])
    assert result.exit_code == 0, result.output
    plain = CliRunner().invoke(main, ["query", str(store.path), "--id", a, "--k", "4", "--mode", "flat", "--montage", str(tmp_path / "p.png")])
    assert plain.exit_code == 0, plain.output
    with Image.open(out) as im, Image.open(tmp_path / "p.png") as ref:
        # the pair and the normal-appearing image: two tiles more than a plain query's montage
        assert im.size[0] > ref.size[0] + 200
    bad = CliRunner().invoke(main, ["query", str(store.path), "--compose", f"{a}:normal,{b}:anatomy"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output
    assert "unknown space 'anatomy'" in bad.output and "--compose A:normal,B:abnormal" in bad.output
