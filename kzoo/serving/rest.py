"""TF Serving's REST predict API, on both sides: ``request`` builds the JSON body a
client posts to ``/v1/models/NAME:predict``, and ``predict`` answers such a body from
a SavedModel the way the server does, so an export can be checked without the server.

The format (https://www.tensorflow.org/tfx/serving/api_rest): the *row* format sends
``{"signature_name": ..., "instances": [...]}`` (one entry per image; a dict of named
inputs, or the bare value when the signature has one input) and gets
``{"predictions": [...]}`` (per image, a dict of named outputs, or the bare value when
there is one output). The *columnar* format sends ``{"inputs": ...}`` and gets
``{"outputs": ...}``. Binary strings travel as ``{"b64": "..."}``.

A body the server would refuse raises ``RestError`` (a ValueError) carrying the server's
message (those of TF Serving's ``json_tensor.cc``, kzoo's explanation added), and
``RestError.body`` is the server's answer, ``{"error": message}``; ``respond`` returns
that answer instead of raising, like the server. Faults of the ``saved_model`` argument
raise ``SavedModelError`` instead: a server with no model answers nothing.
"""

import collections.abc
import os
import re

import numpy as np

from kzoo import checks
from kzoo.serving.rest_errors import (
    RestError,
    SavedModelError,
    SavedModelNotFoundError,
    SavedModelTypeError,
    short,
    show,
)
from kzoo.serving.rest_json import from_inputs, from_instances, hint, output_json, parse_document
from kzoo.serving.rest_request import DEFAULT_SIGNATURE, request
from kzoo.serving.rest_tensors import shape_text

__all__ = [
    "DEFAULT_SIGNATURE",
    "RestError",
    "SavedModelError",
    "SavedModelNotFoundError",
    "SavedModelTypeError",
    "predict",
    "request",
    "respond",
]


def _graph_message(err):
    """A TensorFlow error's message without the graph's node and stack trace lines."""
    lines = str(getattr(err, "message", err) or err).splitlines()
    starts = [
        i for i, line in enumerate(lines) if line == "<stack traces unavailable>" or line.startswith("Node: ")
    ]
    if starts:
        lines = lines[starts[-1] + 1 :]
    lines = [
        line.strip()
        for line in lines
        if line.strip() and not line.strip().startswith("[[") and line.strip() != "Graph execution error:"
    ]
    text = re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", " ".join(lines)).strip()
    return text or type(err).__name__


def _load(saved_model):
    """The SavedModel ``saved_model`` names (or is); a SavedModelError says why there is none."""
    import tensorflow as tf

    if isinstance(saved_model, (str, os.PathLike)) and not isinstance(saved_model, bytes):
        try:
            folder = checks.existing_dir(saved_model, "saved_model")
        except FileNotFoundError as err:
            raise SavedModelNotFoundError(str(err)) from None
        except TypeError as err:  # os.PathLike giving bytes
            raise SavedModelTypeError(str(err)) from None
        except ValueError as err:
            raise SavedModelError(f"{err}: give a SavedModel directory") from None
        if not any(os.path.isfile(os.path.join(folder, f)) for f in ("saved_model.pb", "saved_model.pbtxt")):
            numbered = sorted((n for n in os.listdir(folder) if n.isdigit()), key=int)
            served = (
                f"; it holds the versions {', '.join(numbered)} of a served model: give one of them, "
                f"e.g. {os.path.join(folder, numbered[-1])!r}"
                if numbered
                else ""
            )
            raise SavedModelNotFoundError(
                f"`saved_model`={folder!r} is not a SavedModel directory: it has no saved_model.pb{served}"
            )
        try:
            return tf.saved_model.load(folder)
        except Exception as err:  # damaged files: protobuf, OS and TF errors alike
            raise SavedModelError(
                f"`saved_model`={folder!r} could not be loaded as a SavedModel "
                f"({type(err).__name__}: {_graph_message(err)})"
            ) from None
    if not isinstance(getattr(saved_model, "signatures", None), collections.abc.Mapping):
        raise SavedModelTypeError(
            "`saved_model` must be a SavedModel directory or an object from "
            f"tf.saved_model.load, got {short(saved_model)}"
        )
    return saved_model


def predict(saved_model, body):
    """TF Serving's answer to ``body`` (a dict or JSON text) from ``saved_model`` (a
    directory, or an object from ``tf.saved_model.load``). A body the server refuses
    raises ``RestError``; a ``saved_model`` that is none raises ``SavedModelError``."""
    import tensorflow as tf

    loaded = _load(saved_model)
    document = parse_document(body)
    name, fn, specs = _signature(loaded, document)
    rows, arrays = _input_arrays(document, specs)
    tensors = {}
    for key, (flat, shape) in arrays.items():
        spec = specs[key]
        if not spec.shape.is_compatible_with(shape):
            wanted = (
                "[?]"
                if spec.shape.rank is None
                else shape_text(d if d is not None else -1 for d in spec.shape)
            )
            raise RestError(
                f"input {key!r} of signature {name!r} takes shape {wanted}, got {shape_text(shape)}"
            )
        tensors[key] = tf.constant(np.asarray(flat).reshape(shape), spec.dtype)
    try:
        outputs = fn(**tensors)
    except tf.errors.OpError as err:  # the graph's own checks: the server answers their message
        raise RestError(_graph_message(err)) from None
    except (TypeError, ValueError) as err:
        raise RestError(f"signature {name!r} refused the inputs: {_graph_message(err)}") from None
    return _answer({key: np.asarray(value) for key, value in outputs.items()}, rows)


def _signature(loaded, document):
    """(name, function, input specs) of the signature ``document`` asks for."""
    name = document.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(name, str):
        raise RestError(
            f"JSON Value: {show(document)} not formatted correctly. 'signature_name' key must "
            f"be a string value. (got {show(name)})"
        )
    name = name or DEFAULT_SIGNATURE
    signatures = loaded.signatures
    if name not in signatures:
        raise RestError(
            f'Serving signature name: "{name}" not found in signature def (signature_name '
            f"{name!r} is not in the model; {hint(name, signatures)}it has "
            f"{', '.join(sorted(signatures))})"
        )
    fn = signatures[name]
    specs = dict(fn.structured_input_signature[1])
    if not specs:
        raise RestError(f"Failed to get input map for signature: {name}")
    return name, fn, specs


def _input_arrays(document, specs):
    """(the ``instances`` rows, or None for the columnar format; {input: (flat values, shape)})."""
    has_rows, has_columns = "instances" in document, "inputs" in document
    if has_rows and has_columns:
        raise RestError(
            f"JSON Value: {show(document)} Not formatted correctly expecting only one of "
            "'inputs' or 'instances' keys to exist (one is the row format, the other "
            "the columnar)"
        )
    if not has_rows and not has_columns:
        hints = "".join(hint(key, ("instances", "inputs")) for key in document if key != "signature_name")
        raise RestError(
            f"Missing 'inputs' or 'instances' key ({hints}the body has "
            f"{', '.join(map(repr, document)) or 'no keys'})"
        )
    try:
        if not has_rows:
            return None, from_inputs(document["inputs"], specs, document)
        rows = document["instances"]
        if not isinstance(rows, list):  # TF Serving's spelling, kept so its message is recognised
            raise RestError(f"JSON Value: {show(document)} Excepting 'instances' to be an list/array")
        if not rows:
            raise RestError(f"JSON Value: {show(document)} No values in 'instances' array")
        return rows, from_instances(rows, specs)
    except RecursionError:
        raise RestError("the request's values are nested too deeply to be a tensor") from None


def _answer(outputs, rows):
    """The signature's ``outputs`` as the server writes them: ``{"outputs": ...}`` for the
    columnar format (``rows`` None), else ``{"predictions": ...}``, one per row."""
    if rows is None:
        if len(outputs) == 1:
            key, value = next(iter(outputs.items()))
            return {"outputs": output_json(key, value)}
        return {"outputs": {key: output_json(key, value) for key, value in outputs.items()}}
    batch = len(rows)
    for key, value in outputs.items():
        if value.ndim == 0:
            raise RestError(
                f"Tensor name: {key} has no shape information (a scalar output has no row per "
                "instance: use the columnar format, 'inputs')"
            )
        if value.shape[0] != batch:
            raise RestError(
                f"Tensor name: {key} has inconsistent batch size: {value.shape[0]} expecting: "
                f"{batch} (use the columnar format, 'inputs')"
            )
    if len(outputs) == 1:
        key, value = next(iter(outputs.items()))
        return {"predictions": output_json(key, value)}
    columns = {key: output_json(key, value) for key, value in outputs.items()}
    return {"predictions": [{key: column[i] for key, column in columns.items()} for i in range(batch)]}


def respond(saved_model, body):
    """What the server answers ``body``: ``predict``'s result, or ``{"error": message}``
    for a request it refuses (a bad ``saved_model`` still raises: there is no server)."""
    try:
        return predict(saved_model, body)
    except RestError as err:
        return err.body
