"""--montage: a PNG of each query beside its top results."""

import numpy as np
import pytest
from click.testing import CliRunner
from graphret.cli.main import main
from PIL import Image

import graphret
from graphret.data.demo import load_demo
from graphret.errors import InputError
from graphret.query import as_queries, search
from graphret.query.montage import write_montage
from graphret.store import open_store
from graphret.store.pixels import ItemImages


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("montage") / "store"
    graphret.build('demo:anatomy,n=120', str(path), k=4, communities=('leiden',), encoder='pixels', image_size=16, dim=8)
    return open_store(path)


def test_item_pixels_come_from_the_source(store):
    items = ItemImages(store)
    demo = load_demo(labels="anatomy", n=120, seed=0)
    row = int(store.row_of_id[demo.ids[5]])
    np.testing.assert_array_equal(items.image(row), demo.image(5))


def test_write_montage(store, tmp_path):
    result = search(store, as_queries(store, "test", kind="split"), k=6)
    out = write_montage(result, tmp_path / "m.png", max_queries=3, max_results=4)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.size[0] > 400 and im.size[1] > 300
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 10  # images were drawn, not blank tiles
    with pytest.raises(InputError, match="PNG"):
        write_montage(result, tmp_path / "m.jpg")


def test_cli_montage_with_an_outside_image(store, tmp_path):
    picture = tmp_path / "q.png"
    Image.fromarray(load_demo(labels="anatomy", n=3, seed=4).image(1)).save(picture)
    out = tmp_path / "cli.png"
    result = CliRunner().invoke(main, ["query", str(store.path), "--image", str(picture), "--k", "5", "--montage", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.stat().st_size > 5000
