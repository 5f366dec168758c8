"""Models you bring: frozen codes from a model file on disk, named on the command line as
``--encoder KIND:REF``.

========================  ==========================================  =====================
``onnx:FILE``             an ONNX model, run by onnxruntime            :mod:`.onnx_model`
``torchscript:FILE``      a TorchScript model (``torch.jit.save``)      :mod:`.torchscript`
``timm:NAME``             a timm architecture, ``weights=FILE``         :mod:`.timm_model`
``hf:DIR``                a transformers model folder (local only)      :mod:`.hf_model`
========================  ==========================================  =====================

What they share (preprocessing, the file's SHA-256, output pooling) is in :mod:`.base`.
"""

from __future__ import annotations

#: kind -> "module:Class" (the encoder registry's entries for them)
EXTERNAL_ENCODERS: dict[str, str] = {
    "onnx": "graphret.encoders.external.onnx_model:OnnxEncoder",
    "torchscript": "graphret.encoders.external.torchscript:TorchScriptEncoder",
    "timm": "graphret.encoders.external.timm_model:TimmEncoder",
    "hf": "graphret.encoders.external.hf_model:HFEncoder",
}
EXTERNAL_KINDS = tuple(EXTERNAL_ENCODERS)


def split_spec(name: str) -> tuple[str, str | None]:
    """``"onnx:model.onnx"`` -> ``("onnx", "model.onnx")``; a plain encoder name -> (name, None)."""
    kind, sep, ref = str(name).partition(":")
    if sep and kind in EXTERNAL_ENCODERS:
        return kind, ref
    return str(name), None


__all__ = ["EXTERNAL_ENCODERS", "EXTERNAL_KINDS", "split_spec"]
