"""The export formats and what each allows: ``saved_model`` (TF Serving), ``onnx``
(ONNX Runtime and the rest of the ONNX world), ``litert`` (a ``.tflite`` file for
LiteRT, optionally int8-quantised).

A model directory ``BASE/NAME/`` holds versions of one format only: TF Serving serves
the highest version it finds, and one holding ``model.onnx`` would be a version it
cannot load.
"""

import os

from kzoo import checks
from kzoo.serving.convert import DEFAULT_OPSET, LITERT_FILE, ONNX_FILE, QUANTIZATIONS

FORMATS = ("saved_model", "onnx", "litert")
# The file that marks a version's format.
MARKERS = {"saved_model": "saved_model.pb", "onnx": ONNX_FILE, "litert": LITERT_FILE}
OPSETS = (13, 18)  # what tf2onnx 1.17 writes (and ONNX Runtime 1.20+ runs)


def check_format_options(fmt, quantize, opset, warmup):
    """(format, quantize, opset, warmup) checked against each other; a ValueError names
    the option a format does not take."""
    if not isinstance(fmt, str) or fmt not in FORMATS:
        raise ValueError(f"`format` must be one of {', '.join(map(repr, FORMATS))}, got {fmt!r}")
    if quantize is not None:
        if fmt != "litert":
            raise ValueError(f"`quantize` is for format='litert' only; format={fmt!r} exports float32")
        if quantize not in QUANTIZATIONS:
            raise ValueError(
                f"`quantize` must be None, {' or '.join(map(repr, QUANTIZATIONS))}, got {quantize!r}"
            )
    if opset is not None and fmt != "onnx":
        raise ValueError(f"`opset` is for format='onnx' only, got opset={opset!r} with format={fmt!r}")
    if fmt == "onnx":
        opset = checks.integer(
            DEFAULT_OPSET if opset is None else opset, "opset", minimum=OPSETS[0], maximum=OPSETS[1]
        )
    if warmup is None:
        warmup = fmt == "saved_model"
    checks.boolean(warmup, "warmup")
    if warmup and fmt != "saved_model":
        raise ValueError(
            f"`warmup` writes TF Serving's warm-up requests: format='saved_model' only, not {fmt!r}"
        )
    return fmt, quantize, opset, warmup


def version_format(folder):
    """The format of the version in ``folder``, None when it holds none kzoo knows."""
    for fmt, marker in MARKERS.items():
        if os.path.isfile(os.path.join(folder, marker)):
            return fmt
    return None


def check_same_format(model_dir, versions, fmt):
    """Refuse to add a ``fmt`` version to a model directory holding another format's."""
    for version in versions:
        present = version_format(os.path.join(model_dir, str(version)))
        if present is not None and present != fmt:
            raise ValueError(
                f"{model_dir!r} holds {present} versions (version {version}); a {fmt} version there "
                f"would be served as the newest {present} one: export to another `name` or `base_dir`"
            )
