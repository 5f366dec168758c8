"""Models you bring (--encoder onnx:FILE | torchscript:FILE | timm:NAME --weights FILE | hf:DIR):
tiny models made here (no downloads) give the codes the model computes, the same code through
build, add, query --image and the server's upload, and one-line errors for every bad model."""

from __future__ import annotations

import json
import warnings

import httpx
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from graphret.cli.main import main

import graphret
from graphret.api.add import add_to_store
from graphret.encoders import load_encoder, make_encoder
from graphret.errors import InputError
from graphret.store import open_store
from tests.serving import live_server, png_bytes
from tests.synthetic import blob_images

torch.set_num_threads(1)
SIZE = 24


class TinyNet(torch.nn.Module):
    """conv -> ReLU -> global mean -> linear: 6-d output (and the 8-d pooled feature)."""

    def __init__(self, two_outputs: bool = False) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 6)
        self.two_outputs = two_outputs

    def forward(self, x):
        pooled = torch.relu(self.conv(x)).mean(dim=(2, 3))
        out = self.fc(pooled)
        return (out, pooled) if self.two_outputs else out


def export_onnx(net, path, *, size=SIZE, channels=3, names=("features",), dynamic_size=False):
    axes = {"image": {0: "n", 2: "h", 3: "w"} if dynamic_size else {0: "n"}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.zeros(1, channels, size, size),), str(path), input_names=["image"], output_names=list(names),
                          dynamic_axes=axes, dynamo=False)
    return path


def save_torchscript(net, path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.save(torch.jit.trace(net, torch.zeros(1, 3, SIZE, SIZE)), str(path))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """One tiny model of each kind, with what it should compute."""
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    net = TinyNet().eval()
    import timm
    from transformers import ViTConfig, ViTImageProcessor, ViTModel

    tm = timm.create_model("test_resnet", pretrained=False).eval()  # with its classifier, as a user's file has it
    torch.save(tm.state_dict(), folder / "test_resnet.pth")
    vit = ViTModel(ViTConfig(image_size=SIZE, patch_size=8, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                             intermediate_size=32), add_pooling_layer=False).eval()
    vit.save_pretrained(folder / "vit")
    ViTImageProcessor(size={"height": SIZE, "width": SIZE}, image_mean=[0.5] * 3, image_std=[0.25] * 3).save_pretrained(folder / "vit")
    return {
        "net": net, "timm": tm, "vit": vit,
        "onnx": export_onnx(net, folder / "tiny.onnx"),
        "torchscript": save_torchscript(net, folder / "tiny.pt"),
        "timm_weights": folder / "test_resnet.pth",
        "hf": folder / "vit",
        "folder": folder,
    }


def spec_of(kind: str, models) -> dict:
    """graphret.build options naming the model of ``kind``."""
    if kind == "timm":
        return {"encoder": "timm:test_resnet", "weights": str(models["timm_weights"]), "image_size": 32}
    return {"encoder": f"{kind}:{models[kind]}", **({"image_size": SIZE} if kind == "torchscript" else {})}


def reference(kind: str, models, images, rows) -> np.ndarray:
    """What the model computes for those items, by hand (torch), L2-normalised."""
    if kind in ("onnx", "torchscript"):
        size, mean, std, net = SIZE, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], models["net"]
    elif kind == "timm":
        size, mean, std = 32, [0.5] * 3, [0.5] * 3
        net = lambda x: models["timm"].forward_head(models["timm"].forward_features(x), pre_logits=True)  # noqa: E731
    else:
        size, mean, std = SIZE, [0.5] * 3, [0.25] * 3
        net = lambda x: models["vit"](pixel_values=x).last_hidden_state[:, 0]  # noqa: E731
    x = torch.from_numpy(images.load(rows, size=size, channels=3)).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        out = net(x).numpy()
    return out / np.linalg.norm(out, axis=1, keepdims=True)


@pytest.mark.parametrize("kind", ["onnx", "torchscript", "timm", "hf"])
def test_round_trip_build_add_query_upload_give_the_build_codes(kind, models, tmp_path):
    images = blob_images(n_per_class=8, n_classes=3, seed=4)
    store_path = tmp_path / "store"
    graphret.build(images, str(store_path), k=4, communities=("cnm",), **spec_of(kind, models))
    store = open_store(store_path)
    encoder_info = store.manifest["encoder"]
    assert encoder_info["name"] == kind
    config = encoder_info["config"]
    model_file = models["timm_weights"] if kind == "timm" else models[kind]
    assert len(config["sha256"]) == 64 and config["channels"] == 3
    if kind == "hf":  # the folder's preprocessor_config.json
        assert (config["image_size"], config["mean"], config["std"]) == (SIZE, [0.5] * 3, [0.25] * 3)
    if kind == "timm":  # the weights file's SHA-256; mean / std from test_resnet's pretrained_cfg
        import hashlib

        assert config["sha256"] == hashlib.sha256(model_file.read_bytes()).hexdigest() and config["mean"] == [0.5] * 3
    codes = store.codes()
    assert np.allclose(codes, reference(kind, models, images, np.arange(len(images))), atol=1e-5)

    # add: new items get the codes the model gives them
    new = blob_images(n_per_class=1, n_classes=3, seed=9)
    new.ids = [f"new-{i}" for i in range(len(new))]
    add_to_store(store_path, new)
    grown = open_store(store_path)
    assert np.allclose(grown.codes()[-3:], reference(kind, models, new, np.arange(3)), atol=1e-5)

    # query --image: a stored item's picture finds itself with cosine 1
    picture = tmp_path / "item5.png"
    picture.write_bytes(png_bytes(images.image(5)))
    result = CliRunner().invoke(main, ["query", str(store_path), "--image", str(picture), "--k", "3", "--mode", "flat", "--format", "json"])
    assert result.exit_code == 0, result.output
    top = json.loads(result.output)["queries"][0]["results"][0]
    assert top["id"] == images.ids[5] and top["score"] == pytest.approx(1.0, abs=1e-5)

    # the server's upload: the same
    with live_server(store_path) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        response = client.post("/search/image", files={"files": ("q.png", picture.read_bytes(), "image/png")}, data={"k": "3", "mode": "flat"})
    assert response.status_code == 200, response.text
    top = response.json()["queries"][0]["results"][0]
    assert top["id"] == images.ids[5] and top["score"] == pytest.approx(1.0, abs=1e-5)


def test_a_changed_or_missing_model_file_is_one_line(models, tmp_path):
    images = blob_images(n_per_class=4, n_classes=2, seed=1)
    model = tmp_path / "mine.onnx"
    model.write_bytes(models["onnx"].read_bytes())
    graphret.build(images, str(tmp_path / "store"), k=3, communities=(), encoder=f"onnx:{model}")
    picture = tmp_path / "q.png"
    picture.write_bytes(png_bytes(images.image(0)))
    export_onnx(TinyNet(), model)  # other weights, same path
    with pytest.raises(InputError, match="has changed since"):
        open_store(tmp_path / "store").encoder()
    result = CliRunner().invoke(main, ["query", str(tmp_path / "store"), "--image", str(picture)])
    assert result.exit_code != 0 and "has changed since" in result.output and "Traceback" not in result.output
    model.unlink()
    with pytest.raises(InputError, match="is missing; put it back"):
        open_store(tmp_path / "store").encoder()


def test_a_model_you_bring_is_opened_once_per_store_version(models, tmp_path, monkeypatch):
    """Searches by image through one Store (as the server's view per version does) load and
    hash the model once; a touched file is hashed again (same content: kept), a changed or
    removed one is refused in one line though the model is still in memory."""
    import os

    from graphret.encoders.external import base

    images = blob_images(n_per_class=4, n_classes=2, seed=1)
    model = tmp_path / "mine.onnx"
    original = models["onnx"].read_bytes()
    model.write_bytes(original)
    graphret.build(images, str(tmp_path / "store"), k=3, communities=(), encoder=f"onnx:{model}")
    picture = tmp_path / "q.png"
    picture.write_bytes(png_bytes(images.image(2)))
    hashed: list = []
    real_sha256 = base.file_sha256
    monkeypatch.setattr(base, "file_sha256", lambda path: hashed.append(path) or real_sha256(path))
    store = graphret.open(tmp_path / "store")

    def top_id() -> str:
        result = store.search(str(picture), k=1, mode="flat")
        assert result.scores[0, 0] == pytest.approx(1.0, abs=1e-5)
        return str(result.ids[0, 0])

    assert [top_id() for _ in range(3)] == [images.ids[2]] * 3
    encoder = store.snapshot.encoder()
    assert hashed == [model] and store.snapshot.encoder() is encoder
    os.utime(model, ns=(encoder.stamp[1] + 10**9, encoder.stamp[1] + 10**9))  # touched: hashed again, the same model kept
    assert top_id() == images.ids[2] and hashed == [model, model] and store.snapshot.encoder() is encoder
    assert top_id() == images.ids[2] and len(hashed) == 2
    export_onnx(TinyNet(), model)  # other weights, same path, while the store holds the old model
    with pytest.raises(InputError, match="has changed since") as changed:
        top_id()
    one_line(changed)
    model.write_bytes(original)  # put back: searches again
    assert top_id() == images.ids[2]
    model.unlink()
    with pytest.raises(InputError, match="is missing; put it back") as missing:
        top_id()
    one_line(missing)


def one_line(excinfo) -> str:
    text = str(excinfo.value)
    assert "\n" not in text
    return text


def fit(name: str, **options):
    images = blob_images(n_per_class=2, n_classes=2, seed=0)
    return make_encoder(name, progress=False, **options).fit(images, np.arange(len(images)))


def test_files_that_are_not_models_are_one_line(models, tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00 not a model at all")
    for name, match in [(f"onnx:{junk}", "not an ONNX model"), (f"torchscript:{junk}", "not a TorchScript model"),
                        (f"hf:{tmp_path}", "no config.json"), (f"onnx:{tmp_path / 'none.onnx'}", "no such ONNX model file")]:
        with pytest.raises(InputError, match=match) as err:
            fit(name)
        one_line(err)
    # a torch state_dict is not a TorchScript model; timm weights of another architecture are refused
    torch.save(models["net"].state_dict(), tmp_path / "state.pt")
    with pytest.raises(InputError, match="not a TorchScript model"):
        fit(f"torchscript:{tmp_path / 'state.pt'}")
    with pytest.raises(InputError, match="not a timm test_efficientnet state_dict") as err:
        fit("timm:test_efficientnet", weights=str(models["timm_weights"]))
    one_line(err)
    with pytest.raises(InputError, match="unknown timm architecture"):
        fit("timm:no_such_net", weights=str(models["timm_weights"]))
    with pytest.raises(InputError, match="weights=FILE"):
        fit("timm:test_resnet")


def test_several_outputs_need_a_named_one(tmp_path):
    net = TinyNet(two_outputs=True).eval()
    onnx_file = export_onnx(net, tmp_path / "two.onnx", names=("logits", "pooled"))
    with pytest.raises(InputError, match=r"2 outputs \(logits, pooled\)") as err:
        fit(f"onnx:{onnx_file}")
    assert err.value.param == "layer"
    assert fit(f"onnx:{onnx_file}", layer="pooled").dim == 8
    with pytest.raises(InputError, match="no output 'nope'"):
        fit(f"onnx:{onnx_file}", layer="nope")
    script = save_torchscript(net, tmp_path / "two.pt")
    with pytest.raises(InputError, match="returns 2 outputs") as err:
        fit(f"torchscript:{script}", image_size=SIZE)
    one_line(err)
    assert fit(f"torchscript:{script}", image_size=SIZE, layer="1").dim == 8


def test_shape_channel_and_dtype_mismatches_are_one_line(models, tmp_path):
    onnx_file = models["onnx"]  # fixed 3 x 24 x 24 input
    with pytest.raises(InputError, match="takes image size 24, not 32") as err:
        fit(f"onnx:{onnx_file}", image_size=32)
    assert err.value.param == "image_size"
    with pytest.raises(InputError, match="takes channels 3, not 1"):
        fit(f"onnx:{onnx_file}", channels=1)
    with pytest.raises(InputError, match="mean.* 2 values for 3-channel"):
        fit(f"onnx:{onnx_file}", mean=(0.5, 0.5))
    # TorchScript states no shape: a 1-channel input to a 3-channel convolution fails in the model
    with pytest.raises(InputError, match=r"failed on a float32 batch of shape \(\d+, 1, 24, 24\)") as err:
        fit(f"torchscript:{models['torchscript']}", image_size=SIZE, channels=1, mean=(0.5,), std=(0.5,))
    one_line(err)
    # integer input and integer output
    import onnx
    from onnx import TensorProto, helper

    def graph_file(name, in_type, out_type, op):
        node = helper.make_node(op, ["image"], ["out"], **({"to": out_type} if op == "Cast" else {"axis": 1}))
        graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("image", in_type, ["n", 3, 8, 8])],
                                  [helper.make_tensor_value_info("out", out_type, None)])
        path = tmp_path / name
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
        return path

    with pytest.raises(InputError, match="is tensor\\(uint8\\), not a float image tensor"):
        fit(f"onnx:{graph_file('u8.onnx', TensorProto.UINT8, TensorProto.FLOAT, 'Cast')}")
    with pytest.raises(InputError, match="is int64, not a float feature") as err:
        fit(f"onnx:{graph_file('argmax.onnx', TensorProto.FLOAT, TensorProto.INT64, 'ArgMax')}")
    one_line(err)


def test_options_and_model_configs_set_the_preprocessing(models, tmp_path):
    dynamic = export_onnx(models["net"], tmp_path / "dynamic.onnx", dynamic_size=True)
    enc = fit(f"onnx:{dynamic}", image_size=40, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    assert (enc.prep.image_size, enc.prep.mean, enc.sources["image_size"]) == (40, (0.5, 0.5, 0.5), "option")
    assert fit(f"onnx:{dynamic}").prep.image_size == 224  # nothing stated: ImageNet's size
    assert fit(f"onnx:{models['onnx']}").sources["image_size"] == "the ONNX input shape"
    # a saved encoder reopens with the build's preprocessing, whatever the model says
    enc.save(tmp_path / "enc.pt")
    again = load_encoder(tmp_path / "enc.pt", expect=f"onnx:{dynamic}")
    assert again.prep == enc.prep and again.sha256 == enc.sha256
    # hf: pooler weights absent from the folder -> the class token, not a random pooler
    assert fit(f"hf:{models['hf']}").output == "last_hidden_state"
    # a named layer of a timm model: its feature map, pooled
    hooked = fit("timm:test_resnet", weights=str(models["timm_weights"]), image_size=32, layer="layer1")
    with torch.no_grad():
        stem = models["timm"].maxpool(models["timm"].act1(models["timm"].bn1(models["timm"].conv1(torch.zeros(1, 3, 32, 32)))))
        assert (hooked.output, hooked.dim) == ("layer1", models["timm"].layer1(stem).shape[1])


def test_encoder_names_and_training_options_are_checked(tmp_path):
    with pytest.raises(InputError, match="use encoder=onnx:PATH"):
        graphret.build("demo:n=12,size=16", str(tmp_path / "a"), encoder="onnx:")
    with pytest.raises(InputError, match="unknown encoder 'onnxx:a'"):
        graphret.build("demo:n=12,size=16", str(tmp_path / "b"), encoder="onnxx:a")
    with pytest.raises(InputError, match="does not apply to a model you bring"):
        graphret.build("demo:n=40,size=16", str(tmp_path / "c"), k=3, encoder="onnx:x.onnx", epochs=3)
    result = CliRunner().invoke(main, ["build-graph", "demo:n=40,size=16", "-o", str(tmp_path / "d"), "--k", "3", "--encoder", "hf:/no/such/dir"])
    assert result.exit_code != 0 and "no such Hugging Face model folder" in result.output and "Traceback" not in result.output
