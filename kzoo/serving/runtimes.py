"""Running an exported file with its own runtime, as a user of that format would:
TensorFlow for a SavedModel, ONNX Runtime for ``model.onnx``, LiteRT (``ai_edge_litert``)
for ``model.tflite``. Each runner maps uint8 images ``[n, H, W, C]`` to the export's
outputs as numpy arrays (``probabilities``, ``classes``, ``scores``), in batches."""

import importlib.metadata

import numpy as np

BATCH = 500
RUNTIME_PACKAGES = {"saved_model": "tensorflow", "onnx": "onnxruntime", "litert": "ai-edge-litert"}
EXTRAS = {"onnx": "kzoo[onnx] (tf2onnx, onnx, onnxruntime)", "litert": "kzoo[litert] (ai-edge-litert)"}


def require(module, fmt):
    """Import ``module`` for format ``fmt``, or an ImportError saying what to install."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(
            f"format={fmt!r} needs {module} ({err}); install it with pip install {EXTRAS[fmt]}"
        ) from None


def runtime_version(fmt):
    """The runtime verifying ``fmt``, as "name version"."""
    package = RUNTIME_PACKAGES[fmt]
    return f"{package} {importlib.metadata.version(package)}"


def runner(fmt, path):
    """fn(images) -> {output: array} running ``path`` (a SavedModel folder, an .onnx or
    .tflite file) with ``fmt``'s runtime."""
    run = {"saved_model": _saved_model, "onnx": _onnx, "litert": _litert}[fmt](path)

    def batched(images):
        parts = [run(np.ascontiguousarray(images[i : i + BATCH])) for i in range(0, len(images), BATCH)]
        return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}

    return batched


def _saved_model(path):
    import tensorflow as tf

    serve = tf.saved_model.load(path).signatures["serving_default"]
    return lambda images: {k: v.numpy() for k, v in serve(images=tf.constant(images)).items()}


def _onnx(path):
    ort = require("onnxruntime", "onnx")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (feed,) = (i.name for i in session.get_inputs())
    names = [o.name for o in session.get_outputs()]
    return lambda images: dict(zip(names, session.run(names, {feed: images})))


def _litert(path):
    interpreter_module = require("ai_edge_litert.interpreter", "litert")
    interpreter = interpreter_module.Interpreter(model_path=path)
    (signature,) = interpreter.get_signature_list()
    run = interpreter.get_signature_runner(signature)
    return lambda images: {k: np.asarray(v) for k, v in run(images=images).items()}
