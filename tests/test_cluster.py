"""The Ray engine (`build-graph --engine ray`): the same store as the plain build, the actor
pool's codes and the sharded kNN lists equal to the local ones, and one-line errors."""

import dataclasses
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from graphret.cli.main import main
from graphret.errors import InputError
from tests.synthetic import blob_images

ray = pytest.importorskip("ray", reason='the ray extra is not installed (pip install "graphret[ray]")')


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _png_folder(root, *, per_class=40, size=20, seed=0):
    """Class folders of grey PNGs (a file source: its reader goes to the Ray actors)."""
    images = blob_images(n_per_class=per_class, n_classes=3, size=size, seed=seed, splits=False)
    for i in range(len(images)):
        folder = root / images.class_names[int(images.labels[i])]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(images.image(i)).save(folder / f"{i:04d}.png")
    return root


@pytest.mark.slow  # starts Ray and builds twice
def test_ray_build_equals_the_plain_build(tmp_path):
    """No address: the build starts a local Ray instance, and stops it after; the store equals
    the local build's (codes, edges, communities)."""
    from graphret.evaluation.equivalence import store_differences

    source = _png_folder(tmp_path / "imgs")
    for engine in ("local", "ray"):
        result = run("build-graph", source, "-o", tmp_path / engine, "--encoder", "pixels", "--k", 6, "--engine", engine,
                     "--quiet")
        assert result.exit_code == 0, result.output
    assert not ray.is_initialized()
    diff = store_differences(tmp_path / "local", tmp_path / "ray")
    assert diff["same_ids"] and diff["same_spaces"] and diff["items"] == 120
    assert diff["max_code_diff"]["default"] == 0.0  # the workers multiply with this process's BLAS threads
    assert diff["same_edges"] and diff["edges"][0] > 120 and diff["max_weight_diff"] == 0.0
    assert diff["same_communities"] == {"cnm": True, "leiden": True}
    import graphret

    engine = graphret.open(tmp_path / "ray").manifest["build"]["engine"]
    assert engine["name"] == "ray" and engine["address"] == "local" and engine["cpus"] >= 1
    assert engine["encode"]["blocks"] == 1 and engine["knn"]["shards"] >= 1
    assert graphret.open(tmp_path / "local").manifest["build"]["engine"] == {"name": "local"}


@pytest.fixture(scope="module")
def session():
    """One local Ray instance (2 CPUs) for the tests below; a build finds it and leaves it running."""
    from graphret.cluster.session import ray_session

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    with ray_session() as running:
        yield running
    assert ray.is_initialized()  # the session did not stop a Ray it did not start
    ray.shutdown()


@pytest.mark.slow  # Ray actors each load a model
def test_actor_pool_codes_equal_local_encoding(session, tmp_path):
    """A small trained CNN (a classifier: codes and predictions) encodes the same
    codes in two actors over blocks of 64 rows as in this process over batches of 256."""
    from graphret.cluster.encode import encode_on_ray
    from graphret.encoders import load_encoder
    from graphret.encoders.training import train_encoder

    images = blob_images(n_per_class=60, n_classes=3, size=16)
    train_encoder(images, "cnn", backbone="small", epochs=1, threads=1, progress=False).save(tmp_path / "cnn.pt")
    encoder = load_encoder(tmp_path / "cnn.pt")
    local = encoder.encode(images)
    one_thread = dataclasses.replace(session, blas_threads=1)  # two one-CPU actors fit the 2 CPUs
    remote, info = encode_on_ray(encoder, images, one_thread, workers=2, block_rows=64)
    assert {key: info[key] for key in ("workers", "blocks", "block_rows", "gpu_per_actor")} == \
        {"workers": 2, "blocks": 3, "block_rows": 64, "gpu_per_actor": False}
    assert info["first_block_s"] > 0
    assert sorted(remote.spaces) == sorted(local.spaces) and remote.predicted is not None
    for space, codes in local.spaces.items():
        assert remote.spaces[space].shape == codes.shape
        np.testing.assert_allclose(remote.spaces[space], codes, atol=1e-5)
    np.testing.assert_array_equal(remote.predicted, local.predicted)
    np.testing.assert_allclose(remote.probabilities, local.probabilities, atol=1e-5)


def test_sharded_knn_equals_exact_knn(session):
    from graphret.cluster.knn import ray_exact_knn
    from graphret.graph.knn import exact_knn

    rng = np.random.default_rng(3)
    codes = rng.normal(size=(502, 16)).astype(np.float32)
    codes /= np.linalg.norm(codes, axis=1, keepdims=True)
    (idx, sims), info = ray_exact_knn(codes, 7, session, shards=3, block_size=64)  # the driver's BLAS threads
    expected_idx, expected_sims = exact_knn(codes, 7, block_size=64)
    assert info == {"shards": 3, "shard_rows": 192}
    np.testing.assert_array_equal(idx, expected_idx)
    np.testing.assert_array_equal(sims, expected_sims)


def test_shards_are_whole_query_blocks():
    from graphret.cluster.knn import shard_bounds

    assert shard_bounds(1000, 100, 3) == [(0, 400), (400, 800), (800, 1000)]
    assert shard_bounds(1002, 100, 11) == [(i * 100, i * 100 + 100) for i in range(9)] + [(900, 1002)]  # 2 rows join
    assert shard_bounds(50, 2048, 8) == [(0, 50)]


def test_address_needs_the_ray_engine(tmp_path):
    result = run("build-graph", "-o", tmp_path / "x", "--encoder", "pixels", "--address", "auto")
    assert result.exit_code == 2 and "--address applies to the ray engine only" in result.output
    assert "Traceback" not in result.output


def test_missing_ray_names_the_extra(tmp_path, monkeypatch):
    from graphret.cluster.session import import_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(InputError, match=r'pip install "graphret\[ray\]"'):
        import_ray()
    source = _png_folder(tmp_path / "imgs", per_class=4)
    result = run("build-graph", source, "-o", tmp_path / "x", "--encoder", "pixels", "--k", 3, "--engine", "ray")
    assert result.exit_code == 1 and 'pip install "graphret[ray]"' in result.output
    assert "Traceback" not in result.output and "fitting encoder" not in result.output  # before any work
    assert not (tmp_path / "x").exists()
