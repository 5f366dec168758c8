"""`graphret serve`'s HTTP API through an HTTP client against a live server: routes, shapes and
values (the same results as the library), errors as JSON with the right status."""

import http.client
import io
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

import graphret
from graphret.store import open_store
from tests.serving import TOKEN, live_server, png_bytes, png_pixels
from tests.synthetic import blob_images

K = 5


@pytest.fixture(scope="module")
def store_path(blob_stores):
    return blob_stores()  # the session's read-only blob store: these tests never write to it


@pytest.fixture(scope="module")
def server(store_path):
    with live_server(store_path, write_token=TOKEN, max_upload_mb=0.25, max_pixels=200_000, max_k=50) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def store(store_path):
    return graphret.open(store_path)


def plain(payload: dict) -> dict:
    """A search answer without what the server adds to the library's JSON."""
    return {k: v for k, v in payload.items() if k not in ("version", "seconds", "encode_seconds")}


def assert_error(response, status: int, *, param=None, contains: str = ""):
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) >= {"error", "type", "param", "status"} and body["status"] == status
    assert "Traceback" not in body["error"] and contains in body["error"]
    if param is not None:
        assert body["param"] == param
    return body


# -- the store ---------------------------------------------------------------------------------------
def test_health_and_store_summary(client, store):
    assert client.get("/health").json() == {"status": "ok", "version": 1, "items": 60}
    summary = client.get("/store").json()
    assert summary["items"] == 60 and summary["version"] == 1 and summary["task"] == "multiclass"
    assert summary["class_names"] == ["class0", "class1", "class2"]
    assert summary["community_methods"] == ["cnm", "leiden"] and summary["default_mode"] == "region"
    assert summary["modes"] == ["region", "graph", "flat", "class", "probe"]
    assert summary["splits"] == {"test": 12, "train": 42, "val": 6}
    assert summary["filters"]["label"] == ["class0", "class1", "class2"]
    assert summary["filters"]["split"] == ["test", "train", "val"]
    assert summary["thumbnails"] is True and summary["writable"] is True and summary["classifier"] is False
    assert summary["limits"]["max_k"] == 50
    assert [v["version"] for v in client.get("/versions").json()["versions"]] == [1]


def test_openapi_publishes_the_routes(client):
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for route in ("/health", "/store", "/search", "/search/image", "/items", "/items/{item_id}", "/items/{item_id}/thumbnail",
                  "/communities", "/communities/{method}", "/communities/{method}/{community}", "/add", "/add/folder"):
        assert route in paths, route
    assert "post" in paths["/search"] and "post" in paths["/add"]
    assert "SearchResponse" in schema["components"]["schemas"]
    assert client.get("/docs").status_code == 404  # no page that needs an outside CDN


# -- search ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["region", "flat", "probe"])
def test_search_by_id_is_the_librarys_search(client, store, mode):
    response = client.post("/search", json={"ids": ["blob-0000", "blob-0007"], "k": K, "mode": mode})
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["version"] == 1 and payload["seconds"] >= 0 and payload["encode_seconds"] is None
    assert plain(payload) == store.search(["blob-0000", "blob-0007"], k=K, mode=mode).to_dict()
    first = payload["queries"][0]
    assert first["query"]["id"] == "blob-0000" and [h["rank"] for h in first["results"]] == [1, 2, 3, 4, 5]
    assert "blob-0000" not in [h["id"] for h in first["results"]]  # never its own result


def test_search_options_filters_class_mode_and_communities(client, store):
    body = {"ids": ["blob-0003"], "k": K, "mode": "flat", "where": ["label=class1", "split!=test"]}
    payload = client.post("/search", json=body).json()
    hits = payload["queries"][0]["results"]
    assert {h["label"] for h in hits} == {"class1"}
    assert plain(payload) == store.search(["blob-0003"], k=K, mode="flat", where=["label=class1", "split!=test"]).to_dict()
    voted = client.post("/search", json={"ids": ["blob-0003"], "k": K, "mode": "class", "class_source": "knn"}).json()
    assert plain(voted) == store.search(["blob-0003"], k=K, mode="class", class_source="knn").to_dict()
    leiden = client.post("/search", json={"ids": ["blob-0003"], "k": K, "communities": "leiden", "n_probe": 2, "mode": "probe"}).json()
    assert leiden["community_method"] == "leiden"
    assert plain(leiden) == store.search(["blob-0003"], k=K, communities="leiden", n_probe=2, mode="probe").to_dict()


def test_search_by_code_vector(client, store):
    row = int(store.snapshot.archive_rows()[0])
    code = store.codes()[row]
    payload = client.post("/search", json={"codes": [code.tolist()], "k": K, "mode": "flat"}).json()
    expected = store.search(code[None, :], k=K, mode="flat").to_dict()
    assert [h["id"] for h in payload["queries"][0]["results"]] == [h["id"] for h in expected["queries"][0]["results"]]
    assert payload["queries"][0]["results"][0]["id"] == store.ids[row]  # the item itself: codes are not stored items
    assert payload["queries"][0]["results"][0]["score"] == pytest.approx(1.0, abs=1e-5)


def test_search_by_uploaded_image_matches_the_library(client, store, tmp_path):
    pixels = blob_images(n_per_class=20, n_classes=3, seed=4).image(12)
    path = tmp_path / "query.png"
    path.write_bytes(png_bytes(pixels))
    response = client.post("/search/image", files={"files": ("query.png", path.read_bytes(), "image/png")},
                           data={"k": str(K), "mode": "flat"})
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["encode_seconds"] >= 0 and payload["queries"][0]["query"]["path"] == "query.png"
    expected = store.search(str(path), k=K, mode="flat").to_dict()
    got, want = payload["queries"][0]["results"], expected["queries"][0]["results"]
    assert [h["id"] for h in got] == [h["id"] for h in want]
    assert [h["score"] for h in got] == pytest.approx([h["score"] for h in want], abs=1e-5)


def test_search_by_jpeg_and_dicom_uploads(client):
    from pydicom.data import get_testdata_file

    buffer = io.BytesIO()
    Image.fromarray(np.full((40, 30, 3), 120, np.uint8)).save(buffer, format="JPEG")
    jpeg = client.post("/search/image", files={"files": ("q.jpg", buffer.getvalue(), "image/jpeg")}, data={"k": "3"})
    assert jpeg.status_code == 200 and len(jpeg.json()["queries"][0]["results"]) == 3
    dicom = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    response = client.post("/search/image", files={"files": ("ct.dcm", dicom, "application/dicom")}, data={"k": "4", "mode": "flat"})
    assert response.status_code == 200, response.text
    assert response.json()["queries"][0]["query"]["path"] == "ct.dcm" and len(response.json()["queries"][0]["results"]) == 4


# -- errors ------------------------------------------------------------------------------------------
def test_bad_searches_are_json_errors_naming_the_parameter(client):
    assert_error(client.post("/search", json={"ids": ["nope"], "k": 3}), 400, param="ids", contains="unknown id 'nope'")
    assert_error(client.post("/search", json={"ids": ["blob-0000"], "k": 0}), 400, param="k")
    assert_error(client.post("/search", json={"ids": ["blob-0000"], "k": 51}), 400, param="k", contains="k=50")
    assert_error(client.post("/search", json={"ids": ["blob-0000"], "k": 100, "mode": "flat"}), 400, param="k")
    assert_error(client.post("/search", json={"k": 3}), 400, param="ids", contains="exactly one of ids")
    assert_error(client.post("/search", json={"ids": ["blob-0000"], "codes": [[1.0]]}), 400, param="ids")
    assert_error(client.post("/search", json={"codes": [[1.0, 2.0], [1.0]]}), 400, param="codes")
    assert_error(client.post("/search", json={"ids": ["blob-0000"], "where": "colour=red"}), 400)
    assert_error(client.post("/search", json={"ids": ["blob-0000"], "space": "nope"}), 400, param="space")
    assert_error(client.post("/search", json={"ids": ["blob-0000"], "k": "many"}), 422, param="k")
    assert_error(client.post("/search", json={"ids": ["blob-0000"], "mode": "fast"}), 422, param="mode")
    assert_error(client.post("/search", json={"ids": ["blob-0000"], "colour": "red"}), 422, param="colour")
    assert_error(client.post("/search", content=b"{not json", headers={"content-type": "application/json"}), 422)
    # pixel codes have no classifier: the mode cannot answer on this store
    body = assert_error(client.post("/search", json={"ids": ["blob-0000"], "mode": "class"}), 422, param="mode")
    assert "class_source=knn" in body["error"]


def test_an_option_the_mode_ignores_is_a_400_naming_it(client):
    assert_error(client.post("/search", json={"ids": ["blob-0000"], "mode": "flat", "n_probe": 2}), 400, param="n_probe",
                 contains="n_probe applies to the probe mode only; leave it out or use mode=probe")
    assert_error(client.post("/search", json={"ids": ["blob-0000"], "mode": "probe", "ef": 8}), 400, param="ef",
                 contains="ef applies to the graph and region modes only")
    image = png_bytes(np.zeros((16, 16), np.uint8))
    assert_error(client.post("/search/image", files={"files": ("q.png", image, "image/png")},
                             data={"mode": "graph", "class_source": "knn"}), 400, param="class_source",
                 contains="class_source applies to the class mode only")


def test_requests_with_the_same_options_share_one_validated_config():
    """A request's options become SearchConfig's cached config (validated once per distinct
    options, lists included), not a validation per request; the checks still run once."""
    from graphret.errors import ParameterError
    from graphret.serve.models import SearchRequest, search_config

    def config(**body):
        return search_config(SearchRequest(ids=["x"], **body))

    assert config(k=5, mode="region") is config(k=5, mode="region") is not config(k=6, mode="region")
    filtered = config(where=["label=a", "split!=test"], archive=["train", "val"])
    assert filtered is config(where=["label=a", "split!=test"], archive=["train", "val"])
    assert filtered.where == ("label=a", "split!=test") and filtered.archive == ("train", "val")
    for _ in range(2):
        with pytest.raises(ParameterError, match="n_probe applies to the probe mode only"):
            config(mode="flat", n_probe=2)


def test_routes_and_methods_that_do_not_exist(client):
    assert_error(client.get("/nowhere"), 404, contains="no route /nowhere")
    assert_error(client.get("/search"), 405)
    assert_error(client.delete("/items/blob-0000"), 405)


def test_uploads_that_are_not_images_or_too_large(client):
    assert_error(client.post("/search/image", files={"files": ("notes.png", b"hello, not a picture", "image/png")}), 415,
                 contains="notes.png is not an image")
    assert_error(client.post("/search/image", files={"files": ("empty.png", b"", "image/png")}), 415)
    fake_dicom = b"\0" * 128 + b"DICM" + b"\x02\x00\x10\x00garbage"
    assert_error(client.post("/search/image", files={"files": ("x.dcm", fake_dicom, "application/dicom")}), 415)
    huge = png_bytes(np.zeros((600, 600), np.uint8))  # small file, 360 000 pixels: over max_pixels
    assert_error(client.post("/search/image", files={"files": ("huge.png", huge, "image/png")}), 413, contains="pixels")
    oversized = png_bytes(np.random.default_rng(1).integers(0, 256, (600, 600), dtype=np.uint8))  # > 0.25 MiB
    assert len(oversized) > 0.25 * 1024 * 1024
    assert_error(client.post("/search/image", files={"files": ("o.png", oversized, "image/png")}), 413, contains="0.25 MiB")


def test_a_chunked_body_over_the_limit_is_refused(client):
    def chunks():
        for _ in range(40):
            yield b"x" * 10_000

    response = client.post("/search", content=chunks(), headers={"content-type": "application/json"})
    assert_error(response, 413)


# -- items and pictures --------------------------------------------------------------------------------
def test_items_list_details_and_pictures(client, store):
    page = client.get("/items", params={"where": "label=class2", "limit": 5}).json()
    assert page["total"] == 20 and len(page["items"]) == 5 and {i["label"] for i in page["items"]} == {"class2"}
    shuffled = client.get("/items", params={"order": "random", "seed": 3, "limit": 60}).json()
    assert sorted(i["id"] for i in shuffled["items"]) == sorted(store.ids)
    detail = client.get("/items/blob-0005").json()
    assert detail["id"] == "blob-0005" and detail["row"] == 5
    assert detail["label"] == store.snapshot.label_of(5) and detail["split"] == store.snapshot.splits[5]
    assert detail["communities"] == {m: int(store.membership(m)[5]) for m in ("cnm", "leiden")}
    assert detail["has_thumbnail"] is True and detail["added"] is False
    thumb = client.get("/items/blob-0005/thumbnail")
    assert thumb.headers["content-type"] == "image/png" and thumb.content == store.snapshot.thumbnail(5)
    assert np.array_equal(png_pixels(thumb.content), blob_images(n_per_class=20, n_classes=3, seed=4).image(5))
    assert_error(client.get("/items/blob-9999"), 404, param="id")
    assert_error(client.get("/items/blob-9999/thumbnail"), 404, param="id")
    assert_error(client.get("/items", params={"limit": 0}), 422, param="limit")


def test_no_route_serves_a_file_outside_the_store(server, store_path):
    secret = store_path.parent / "secret.txt"
    secret.write_text("root:do-not-serve")
    attempts = [
        "/items/../../../../etc/passwd/image",
        "/items/%2e%2e/%2e%2e/%2e%2e/etc/passwd/thumbnail",
        "/items/..%2f..%2f..%2fetc%2fpasswd/image",
        "/items/" + str(secret) + "/image",
        "/items//" + str(secret) + "/thumbnail",
        "/static/../../../../etc/passwd",
        "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/static/..%2f..%2f..%2fsecret.txt",
        "/static/" + str(secret),
        "/communities/..%2f..%2fsecret.txt",
    ]
    host, port = server.url.split("//")[1].split(":")
    for path in attempts:
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", path)  # sent as written: no client-side normalisation
        response = connection.getresponse()
        body = response.read()
        connection.close()
        assert response.status in (400, 404), (path, response.status)
        assert b"root:" not in body, path


# -- communities ---------------------------------------------------------------------------------------
def test_communities_summary_list_detail_members_and_map(client, store):
    listing = client.get("/communities").json()
    assert listing["methods"] == ["cnm", "leiden"] and [r["partition"] for r in listing["summary"]] == ["cnm", "leiden"]
    archive = len(store.snapshot.archive_rows())
    for method in ("cnm", "leiden"):
        table = client.get(f"/communities/{method}").json()
        assert sum(r["size"] for r in table["rows"]) == archive
        assert all({"community", "size", "dominant", "purity", "top_labels"} <= set(r) for r in table["rows"])
        largest = table["rows"][0]
        detail = client.get(f"/communities/{method}/{largest['community']}", params={"top": 4}).json()
        assert detail["size"] == largest["size"] and sum(detail["labels"].values()) == largest["size"]
        assert next(iter(detail["labels"])) == largest["dominant"]
        membership = store.membership(method)
        assert len(detail["exemplars"]) == 4
        assert all(membership[e["row"]] == largest["community"] for e in detail["exemplars"])
        members = client.get(f"/communities/{method}/{largest['community']}/members", params={"limit": 500}).json()
        assert members["total"] == largest["size"]
        assert {m["communities"][method] for m in members["items"]} == {largest["community"]}
    picture = client.get("/communities/map.png")
    assert picture.status_code == 200 and png_pixels(picture.content).shape[0] > 100
    assert_error(client.get("/communities/louvain"), 404, param="method")
    assert_error(client.get("/communities/cnm/9999"), 404, param="community")
    assert_error(client.get("/communities/cnm/x"), 422)


# -- writes --------------------------------------------------------------------------------------------
def test_adds_need_the_token(client, store_path):
    image = png_bytes(np.zeros((16, 16), np.uint8))
    files = {"files": ("a.png", image, "image/png")}
    response = client.post("/add", files=files)
    assert_error(response, 401) and response.headers["www-authenticate"] == "Bearer"
    assert_error(client.post("/add", files=files, headers={"Authorization": "Bearer wrong"}), 403, contains="wrong")
    assert_error(client.post("/add/folder", json={"source": str(store_path)}, headers={"X-Graphret-Token": "nope"}), 403)
    assert client.get("/health").json()["items"] == 60  # nothing was added


def test_a_server_without_a_token_is_read_only(store_path):
    with live_server(store_path) as server, httpx.Client(base_url=server.url, timeout=60) as c:
        image = png_bytes(np.zeros((16, 16), np.uint8))
        body = assert_error(c.post("/add", files={"files": ("a.png", image, "image/png")},
                                   headers={"Authorization": f"Bearer {TOKEN}"}), 403, param="write_token")
        assert "read-only" in body["error"]
        assert c.get("/store").json()["writable"] is False


def test_add_uploads_then_search_and_view_them(tmp_path, blob_store_copy):
    path = blob_store_copy()
    new = blob_images(n_per_class=1, n_classes=3, seed=21)
    files = [("files", (f"../../evil-{i}.png", png_bytes(new.image(i)), "image/png")) for i in range(3)]
    with live_server(path, write_token=TOKEN) as server, httpx.Client(base_url=server.url, timeout=120) as c:
        response = c.post("/add", files=files, data={"label": "class1", "split": "train"},
                          headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        summary = response.json()
        assert summary["added"] == 3 and summary["items"] == 63 and summary["version"] == 2
        ids = summary["ids"]
        assert all(i.startswith("upload/") and i.endswith(f"evil-{n}.png") for n, i in enumerate(ids))
        assert c.get("/health").json() == {"status": "ok", "version": 2, "items": 63}  # read your own write
        detail = c.get("/items/" + ids[0]).json()
        assert detail["added"] is True and detail["label"] == "class1" and detail["split"] == "train"
        saved = tmp_path / "store" / "uploads"
        assert detail["path"].startswith(str(saved)) and not (tmp_path / "evil-0.png").exists()
        assert np.array_equal(png_pixels(c.get(f"/items/{ids[1]}/thumbnail").content), new.image(1))
        found = c.post("/search", json={"codes": [open_store(path).codes()[61].tolist()], "k": 1, "mode": "flat"}).json()
        assert found["queries"][0]["results"][0]["id"] == ids[1]
        assert_error(c.post("/add", files=files, data={"label": "class9"}, headers={"Authorization": f"Bearer {TOKEN}"}),
                     400, param="label")
        assert_error(c.post("/add", files=[("files", ("n.png", b"nope", "image/png"))],
                            headers={"Authorization": f"Bearer {TOKEN}"}), 415)
        assert c.get("/health").json()["items"] == 63  # refused uploads add nothing


def test_add_a_server_side_folder(tmp_path, blob_store_copy):
    path = blob_store_copy()
    folder = tmp_path / "incoming" / "class0"
    folder.mkdir(parents=True)
    new = blob_images(n_per_class=2, n_classes=1, seed=30)
    for i in range(2):
        (folder / f"n{i}.png").write_bytes(png_bytes(new.image(i)))
    with live_server(path, write_token=TOKEN) as server, httpx.Client(base_url=server.url, timeout=120) as c:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        response = c.post("/add/folder", json={"source": str(tmp_path / "incoming"), "split": False}, headers=headers)
        assert response.status_code == 200, response.text
        assert response.json()["added"] == 2 and c.get("/health").json()["items"] == 62
        assert_error(c.post("/add/folder", json={"source": str(tmp_path / "missing")}, headers=headers), 400)
