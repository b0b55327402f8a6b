"""The ONNX and LiteRT files of an export, converted from the ``fixed_size`` graph
(``kzoo.serving.signatures``): uint8 images at the model's size in, normalisation, the
model and top-k inside, ``probabilities``/``classes``/``scores`` out, as the SavedModel.

ONNX is converted by tf2onnx from the traced function (grouped convolutions traced
plain: ``kzoo.serving.graph_patches``); LiteRT by the TFLite converter from a SavedModel
holding that signature, as Keras' own LiteRT export does (a concrete function converted
directly keeps its variables as resources LiteRT cannot read). LiteRT quantisation:

* ``dynamic_int8``: int8 weights, float activations (no calibration data);
* ``int8``: int8 weights and activations, calibrated on ``representative`` training
  images; ops without an int8 kernel (the input cast, softmax, top-k) stay float.
"""

import importlib.metadata
import warnings

from kzoo.models.common import compute_dtype
from kzoo.serving.runtimes import require

ONNX_FILE = "model.onnx"
LITERT_FILE = "model.tflite"
DEFAULT_OPSET = 17
QUANTIZATIONS = ("dynamic_int8", "int8")
CALIBRATION_IMAGES = 200


def float32_copy(model):
    """``model`` computing in float32 (same weights): a mixed-precision model's bfloat16 /
    float16 ops have no ONNX Runtime or LiteRT CPU kernels, and rounding them differently
    in each runtime's graph would make the formats disagree. The model itself when it
    computes in float32 already."""
    import keras

    if compute_dtype(model) == "float32":
        return model

    def float32(value):
        if isinstance(value, dict):
            if value.get("class_name") == "DTypePolicy" and str(
                value.get("config", {}).get("name", "")
            ).startswith("mixed_"):
                return {**value, "config": {**value["config"], "name": "float32"}}
            return {k: float32(v) for k, v in value.items()}
        if isinstance(value, list):
            return [float32(v) for v in value]
        return value

    copy = model.__class__.from_config(float32(model.get_config()))
    copy.set_weights(model.get_weights())
    if (
        compute_dtype(copy) != "float32"
        or keras.backend.standardize_dtype(copy.outputs[0].dtype) != "float32"
    ):
        raise ValueError(
            f"could not make a float32 copy of {model.name!r} for conversion (a layer keeps its dtype)"
        )
    return copy


def to_onnx(fn, input_signature, path, opset=DEFAULT_OPSET):
    """Write ``fn`` (traced with ``input_signature``) to ``path`` as ONNX; returns the
    converter facts for the card."""
    import tensorflow as tf

    from kzoo.serving.graph_patches import plain_grouped_convolutions

    require("onnx", "onnx")
    tf2onnx = require("tf2onnx", "onnx")
    function = tf.function(fn, input_signature=input_signature, autograph=False)
    with plain_grouped_convolutions():
        concrete = function.get_concrete_function()
        tf2onnx.convert.from_function(
            function, input_signature=input_signature, opset=opset, output_path=path
        )
    _embed_captured_constants(path, concrete)
    return {"converter": f"tf2onnx {tf2onnx.__version__}", "opset": opset}


def _embed_captured_constants(path, concrete):
    """tf2onnx leaves the constant tensors a traced function captures (not variables:
    ``keras.layers.Normalization``'s mean and variance, as in keras.applications'
    EfficientNet and ConvNeXt) as inputs of the ONNX graph, which a server would have to
    feed; they become initializers holding their values (or go, where the converter
    folded them into the graph)."""
    import numpy as np
    import onnx
    import tensorflow as tf

    values = {
        internal.name: external.numpy()
        for external, internal in concrete.graph.captures
        if external.dtype != tf.resource and hasattr(external, "numpy")
    }
    model = onnx.load(path)
    extra = [i for i in model.graph.input if i.name in values]
    if not extra:
        return
    used = {name for node in model.graph.node for name in node.input}
    for graph_input in extra:
        if graph_input.name not in used:  # folded into the graph by the converter
            model.graph.input.remove(graph_input)
            continue
        model.graph.initializer.append(
            onnx.numpy_helper.from_array(np.asarray(values[graph_input.name]), graph_input.name)
        )
        model.graph.input.remove(graph_input)
    onnx.save(model, path)


def to_litert(saved_model_dir, signature, path, quantize=None, representative=None):
    """Convert ``signature`` of the SavedModel in ``saved_model_dir`` to ``path``;
    ``representative``: uint8 images [n, H, W, C] for ``quantize="int8"``. Returns the
    converter facts for the card."""
    import numpy as np
    import tensorflow as tf

    require("ai_edge_litert.interpreter", "litert")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir, signature_keys=[signature])
    if quantize is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "int8":

        def calibration():
            for image in representative[:CALIBRATION_IMAGES]:
                yield {"images": np.asarray(image[None])}

        converter.representative_dataset = calibration
    with warnings.catch_warnings():
        # int8 calibration runs TF's own, deprecated tf.lite.Interpreter inside the converter
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        flatbuffer = converter.convert()
    with open(path, "wb") as f:
        f.write(flatbuffer)
    return {
        "converter": f"tensorflow {tf.__version__} TFLiteConverter",
        "quantization": quantize,
        "calibration_images": min(len(representative), CALIBRATION_IMAGES) if quantize == "int8" else None,
        "litert": importlib.metadata.version("ai-edge-litert"),
    }
