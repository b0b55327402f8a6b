"""TF Serving's REST predict API, on both sides: ``request`` builds the JSON body a
client posts to ``/v1/models/NAME:predict``, and ``predict`` answers such a body from
a SavedModel the way the server does, so an export can be checked without the server.

The format (https://www.tensorflow.org/tfx/serving/api_rest): the *row* format sends
``{"signature_name": ..., "instances": [...]}`` (one entry per image; a dict of named
inputs, or the bare value when the signature has one input) and gets
``{"predictions": [...]}`` (per image, a dict of named outputs, or the bare value when
there is one output). The *columnar* format sends ``{"inputs": ...}`` and gets
``{"outputs": ...}``. Binary strings travel as ``{"b64": "..."}``.
"""

import base64
import json

import numpy as np


def _encode(value):
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def request(images=None, image_bytes=None, signature=None):
    """The JSON body (a dict) of a row-format predict request: ``images`` a uint8 array
    ``[batch, H, W, C]`` for ``serving_default``, or ``image_bytes`` a list of encoded
    images for the ``image_bytes`` signature."""
    if (images is None) == (image_bytes is None):
        raise ValueError("give exactly one of `images` and `image_bytes`")
    if images is not None:
        images = np.asarray(images)
        if images.dtype != np.uint8:
            raise TypeError(f"`images` must be uint8, got {images.dtype}")
        body = {"signature_name": signature or "serving_default", "instances": images.tolist()}
    else:
        if isinstance(image_bytes, bytes) or not all(isinstance(b, bytes) for b in image_bytes):
            raise TypeError("`image_bytes` must be a list of bytes objects (encoded images)")
        body = {"signature_name": signature or "image_bytes",
                "instances": [_encode(b) for b in image_bytes]}
    return body


def _decode(value):
    """JSON values back to arrays, ``{"b64": ...}`` to bytes."""
    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _tensor(value, spec):
    import tensorflow as tf

    value = _decode(value)
    if spec.dtype == tf.string:
        return tf.constant(value, tf.string)
    array = np.asarray(value)
    if spec.dtype.is_integer and array.dtype.kind == "f":
        raise ValueError(f"input {spec.name!r} must hold integers ({spec.dtype.name}), got floats")
    info = np.iinfo(spec.dtype.as_numpy_dtype) if spec.dtype.is_integer else None
    if info is not None and array.size and (array.min() < info.min or array.max() > info.max):
        raise ValueError(f"input {spec.name!r} holds values outside {spec.dtype.name}'s range")
    return tf.constant(array, spec.dtype)


def _only(specs):
    if len(specs) != 1:
        raise ValueError(f"the signature takes several inputs {sorted(specs)}: name them")
    return next(iter(specs))


def predict(saved_model, body):
    """TF Serving's answer to ``body`` (a dict or JSON text) from ``saved_model`` (a
    directory, or an object from ``tf.saved_model.load``)."""
    import tensorflow as tf

    if isinstance(body, (str, bytes)):
        body = json.loads(body)
    loaded = tf.saved_model.load(saved_model) if isinstance(saved_model, str) else saved_model
    name = body.get("signature_name", "serving_default")
    if name not in loaded.signatures:
        raise ValueError(f"signature_name {name!r} is not in the model; it has {sorted(loaded.signatures)}")
    fn = loaded.signatures[name]
    specs = fn.structured_input_signature[1]
    if ("instances" in body) == ("inputs" in body):
        raise ValueError('the request must hold exactly one of "instances" (row format) and "inputs" (columnar)')
    if "instances" in body:
        rows = body["instances"]
        if rows and isinstance(rows[0], dict) and "b64" not in rows[0]:  # named inputs per row
            missing = [key for key in specs if any(key not in row for row in rows)]
            if missing:
                raise ValueError(f"every instance must name the inputs {sorted(specs)}; missing {missing}")
            columns = {key: [row[key] for row in rows] for key in specs}
        else:
            columns = {_only(specs): rows}
    else:
        inputs = body["inputs"]
        columns = inputs if isinstance(inputs, dict) and "b64" not in inputs else {_only(specs): inputs}
    outputs = fn(**{key: _tensor(value, specs[key]) for key, value in columns.items()})
    outputs = {key: value.numpy() for key, value in outputs.items()}
    if "inputs" in body:
        if len(outputs) == 1:
            return {"outputs": next(iter(outputs.values())).tolist()}
        return {"outputs": {key: value.tolist() for key, value in outputs.items()}}
    batch = len(next(iter(outputs.values())))
    if len(outputs) == 1:
        return {"predictions": next(iter(outputs.values())).tolist()}
    return {"predictions": [{key: value[i].tolist() for key, value in outputs.items()} for i in range(batch)]}
