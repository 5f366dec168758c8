"""Fast frozen inference on the CPU: how a frozen network (a pretrained backbone, a timm model
you bring) encodes many images.

Two engines, each a callable from a float (n, C, H, W) batch to the network's output:

* :class:`TorchRunner`: the network in eval mode with every batch norm that follows a
  convolution folded into it (:func:`fold_batch_norms`; ``w' = w * g / sqrt(v + eps)``,
  ``b' = (b - m) * g / sqrt(v + eps) + beta``), in channels-last memory, run under
  ``torch.inference_mode``.
* :class:`OnnxRuntimeRunner`: the same network exported once to ONNX (in memory, dynamic
  batch) and run by onnxruntime with ``threads`` intra-op threads.  On the 2-core machine it
  is about 2x faster than torch's kernels on EfficientNet-Lite0 and on par on ResNet-50
  (``benchmarks/bench_encode_speed.py``), at the cost of a few seconds of export.

:func:`frozen_runner` picks: onnxruntime where it is installed, the device is the CPU and the
call encodes at least :data:`ONNXRUNTIME_MIN_ITEMS` images (a build, an ``add`` of a folder),
else torch (a query's few images: no export).  Both give the network's output to within float
rounding (1e-5), so codes of a build and of a later query agree.
"""

from __future__ import annotations

import copy
import io
import warnings
from typing import Any, Callable

from graphret.encoders.training import torch

#: Fewest images an encode call needs before the onnxruntime engine pays its export.
ONNXRUNTIME_MIN_ITEMS = 64
ENGINES = ("auto", "torch", "onnxruntime")


#: The class attribute by which a Conv2d subclass opts in to batch-norm folding: True when its
#: forward convolves with ``self.weight`` and ``self.bias`` as nn.Conv2d's does (graphret's
#: EfficientNet-Lite0 ``SameConv``: TF "same" padding first).  Other subclasses are left alone:
#: timm's StdConv2d standardises its weight in forward, so folding into it would change it.
FOLDS_BATCH_NORM = "folds_batch_norm"


def foldable_conv(m) -> bool:
    """A convolution a batch norm may be folded into: a plain nn.Conv2d, or a subclass that
    opts in (:data:`FOLDS_BATCH_NORM`)."""
    nn = torch().nn
    return type(m) is nn.Conv2d or (isinstance(m, nn.Conv2d) and getattr(type(m), FOLDS_BATCH_NORM, False) is True)


def fold_batch_norms(module):
    """A copy of ``module`` (eval) in which each BatchNorm2d that is a convolution's only
    consumer is folded into that convolution (:func:`foldable_conv`; a batch norm that also
    applies an activation, as timm's BatchNormAct2d, leaves the activation in its place).
    ``forward``'s arguments after the input are traced at their defaults (the runners call
    ``net(x)``).  Networks that torch.fx cannot trace are returned as an eval copy, unfolded."""
    import inspect

    t = torch()
    from torch.fx import GraphModule, Node, Tracer
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    class _Tracer(Tracer):
        def is_leaf_module(self, m, name: str) -> bool:
            return isinstance(m, t.nn.BatchNorm2d) or foldable_conv(m) or super().is_leaf_module(m, name)

    model = copy.deepcopy(module).eval()
    defaults = {name: p.default for name, p in list(inspect.signature(model.forward).parameters.items())[1:]
                if p.default is not inspect.Parameter.empty}
    try:
        graph = GraphModule(model, _Tracer().trace(model, concrete_args=defaults or None))
    except Exception:  # noqa: BLE001 - untraceable control flow: run it as it is
        return model
    modules = dict(graph.named_modules())
    for node in graph.graph.nodes:
        bn = modules.get(node.target) if node.op == "call_module" else None
        conv_node = node.args[0] if node.args else None
        if not isinstance(bn, t.nn.BatchNorm2d) or not isinstance(conv_node, Node) or conv_node.op != "call_module":
            continue
        conv = modules.get(conv_node.target)
        if not foldable_conv(conv) or len(conv_node.users) != 1 or not bn.track_running_stats:
            continue
        rest = t.nn.Sequential(getattr(bn, "drop", t.nn.Identity()), bn.act) if hasattr(bn, "act") else t.nn.Identity()
        for target, replacement in ((conv_node.target, fuse_conv_bn_eval(conv, bn)), (node.target, rest)):
            parent, _, name = str(target).rpartition(".")
            setattr(graph.get_submodule(parent) if parent else graph, name, replacement)
    graph.recompile()
    return graph


class TorchRunner:
    """The network folded, channels-last, under inference mode (see the module docstring)."""

    engine = "torch"

    def __init__(self, module, device) -> None:
        t = torch()
        self.device = device
        net = fold_batch_norms(module) if device.type == "cpu" else copy.deepcopy(module).eval()
        self.net = net.to(device).to(memory_format=t.channels_last) if device.type == "cpu" else net.to(device)

    def __call__(self, x):
        t = torch()
        with t.inference_mode():
            if self.device.type == "cpu":
                x = x.contiguous(memory_format=t.channels_last)
            return self.net(x)


def _flat_outputs(module, names: list[str] | None):
    """A module returning a tuple (ONNX export needs one) from one returning a tensor or dict."""
    nn = torch().nn

    class Flat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module

        def forward(self, x):
            out = self.inner(x)
            return tuple(out[k] for k in names) if names is not None else out

    return Flat().eval()


class OnnxRuntimeRunner:
    """The network exported to ONNX in memory and run by onnxruntime (see the module docstring)."""

    engine = "onnxruntime"

    def __init__(self, module, *, size: int, channels: int, threads: int | None) -> None:
        import onnxruntime as ort

        t = torch()
        example = t.zeros(1, channels, size, size)
        with t.inference_mode():
            sample = module.eval()(example)
        self.names = sorted(sample) if isinstance(sample, dict) else None
        outputs = self.names or ["output"]
        buffer = io.BytesIO()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated in torch 2.9+, still exact
            t.onnx.export(_flat_outputs(module, self.names), (example,), buffer, input_names=["image"], output_names=outputs,
                          dynamic_axes={"image": {0: "n"}, **{name: {0: "n"} for name in outputs}}, dynamo=False)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = int(threads or t.get_num_threads())
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        self.session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
        self.outputs = outputs

    def __call__(self, x):
        t = torch()
        values = self.session.run(self.outputs, {"image": x.detach().cpu().numpy()})
        tensors = [t.from_numpy(v) for v in values]
        return dict(zip(self.names, tensors)) if self.names is not None else tensors[0]


def onnxruntime_available() -> bool:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def frozen_runner(module, *, device, size: int, channels: int, threads: int | None, n_items: int,
                  engine: str = "auto", cache: dict[str, Any] | None = None) -> Callable:
    """The engine that encodes ``n_items`` images with the frozen ``module`` (see the module
    docstring); ``cache`` keeps built runners between calls (one per engine)."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}")
    if engine == "auto":
        fast = device.type == "cpu" and n_items >= ONNXRUNTIME_MIN_ITEMS and onnxruntime_available()
        engine = "onnxruntime" if fast else "torch"
    cache = {} if cache is None else cache
    if engine == "onnxruntime":
        if engine not in cache:
            try:
                cache[engine] = OnnxRuntimeRunner(module, size=size, channels=channels, threads=threads)
            except Exception as error:  # noqa: BLE001 - a network the exporter cannot take runs on torch
                warnings.warn(f"onnxruntime cannot run this network ({type(error).__name__}); encoding with torch", stacklevel=2)
                cache[engine] = None
        if cache[engine] is not None:
            return cache[engine]
    if "torch" not in cache:
        cache["torch"] = TorchRunner(module, device)
    return cache["torch"]
