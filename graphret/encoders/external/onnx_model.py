"""``--encoder onnx:FILE``: frozen codes from an ONNX model run by onnxruntime on the CPU.

The model takes one float image tensor, (N, C, H, W) or (N, H, W, C) (channels 1 or 3 in the
fixed dimension tells which); its fixed sizes set the input size and channels unless options
do (a conflicting option is a one-line error).  The code is its only output, or the graph
output named by ``layer`` (a model with several outputs needs one named).  onnxruntime runs
with every graph optimisation and ``threads`` intra-op threads (its default: the cores).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from graphret.encoders.external.base import ExternalEncoder, Preprocessing, one_line
from graphret.errors import InputError

FLOAT_INPUTS = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def _fixed(dim: Any) -> int | None:
    return int(dim) if isinstance(dim, int) and dim > 0 else None


class OnnxEncoder(ExternalEncoder):
    """An ONNX model file (see the module docstring)."""

    name: ClassVar[str] = "onnx"
    noun: ClassVar[str] = "ONNX model file"
    how_to_make: ClassVar[str] = "a .onnx file (torch.onnx.export writes one)"

    def _load(self) -> dict[str, Any]:
        try:
            import onnxruntime as ort
        except ImportError:
            raise InputError("the onnx encoder needs onnxruntime: pip install 'graphret[byo]'") from None
        path = self._path()
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(self.threads or 0)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as error:  # noqa: BLE001 - onnxruntime raises several kinds for a bad file
            raise InputError(f"{path} is not an ONNX model onnxruntime can run ({one_line(error)}); give {self.how_to_make}") from None
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise InputError(f"{path.name} takes {len(inputs)} inputs ({', '.join(i.name for i in inputs)}); graphret feeds one image "
                             "tensor: export the model with a single image input")
        image = inputs[0]
        if image.type not in FLOAT_INPUTS:
            raise InputError(f"{path.name}'s input {image.name!r} is {image.type}, not a float image tensor; export the model with a float32 input")
        shape = list(image.shape)
        if len(shape) != 4:
            raise InputError(f"{path.name}'s input {image.name!r} has shape {shape}, not an image batch (N, C, H, W); export the model with one")
        self.input_name, self.input_dtype = image.name, FLOAT_INPUTS[image.type]
        first, last = _fixed(shape[1]), _fixed(shape[3])
        self.channels_last = first not in (1, 3) and last in (1, 3)
        channels = last if self.channels_last else first
        height, width = (shape[1], shape[2]) if self.channels_last else (shape[2], shape[3])
        if channels is not None and channels not in (1, 3):
            raise InputError(f"{path.name}'s input {image.name!r} has shape {shape}: {channels} channels; graphret feeds 1 (grey) or 3 (colour)")
        height, width = _fixed(height), _fixed(width)
        if height is not None and width is not None and height != width:
            raise InputError(f"{path.name} takes {height}x{width} images; graphret feeds square ones: export it with a square or dynamic input size")
        self.fixed = {"channels": channels, "image_size": height or width}
        outputs = [o.name for o in self.session.get_outputs()]
        if self.layer is not None and self.layer not in outputs:
            raise InputError(f"{path.name} has no output {self.layer!r}; choose one of {', '.join(outputs)} with {{layer}}", param="layer")
        if self.layer is None and len(outputs) > 1:
            raise InputError(f"{path.name} has {len(outputs)} outputs ({', '.join(outputs)}); choose the feature one with {{layer={outputs[0]}}}", param="layer")
        self.output = self.layer or outputs[0]
        return {**{k: v for k, v in self.fixed.items() if v is not None}, "source": "the ONNX input shape"}

    def _check_input(self, prep: Preprocessing) -> None:
        for key in ("channels", "image_size"):
            fixed, chosen = self.fixed.get(key), getattr(prep, key)
            if fixed is not None and fixed != chosen:
                raise InputError(f"{self._path().name} takes {key.replace('_', ' ')} {fixed}, not {chosen}; drop {{{key}}} or set {{{key}={fixed}}}", param=key)

    def _forward(self, x: np.ndarray) -> Any:
        if self.channels_last:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1))
        return self.session.run([self.output], {self.input_name: x.astype(self.input_dtype, copy=False)})[0]
