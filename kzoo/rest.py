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

import base64
import binascii
import collections.abc
import difflib
import json
import math
import os
import re

import numpy as np

from kzoo import checks

DEFAULT_SIGNATURE = "serving_default"
_SHOW = 160  # characters of a JSON value quoted in a message


class RestError(ValueError):
    """A request TF Serving's REST server refuses (HTTP 400); ``body`` is its answer."""

    @property
    def body(self):
        return {"error": str(self)}


class SavedModelError(ValueError):
    """``saved_model`` is not a SavedModel (a file, unloadable)."""


class SavedModelNotFoundError(SavedModelError, FileNotFoundError):
    """``saved_model`` names nothing, or a directory without ``saved_model.pb``."""


class SavedModelTypeError(SavedModelError, TypeError):
    """``saved_model`` is neither a path nor an object from ``tf.saved_model.load``."""


class _Invalid(Exception):
    """A fault inside one value, before ``predict`` says where it lies (TF Serving's
    nested ``Status``: ``code`` is what its ``ToString()`` starts with)."""

    def __init__(self, message, code="Invalid argument"):
        super().__init__(message)
        self.code = code

    def __str__(self):
        return f"{self.code}: {self.args[0]}"


# ----------------------------------------------------------------------------- client side

def _encode(value):
    if isinstance(value, bytes):
        return {"b64": base64.b64encode(value).decode("ascii")}
    return value


def _short(value):
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def request(images=None, image_bytes=None, signature=None):
    """The JSON body (a dict) of a row-format predict request: ``images`` a uint8 array
    ``[batch, H, W, C]`` for ``serving_default``, or ``image_bytes`` a list of encoded
    images for the ``image_bytes`` signature."""
    if (images is None) == (image_bytes is None):
        raise ValueError("give exactly one of `images` and `image_bytes`")
    if signature is not None and not isinstance(signature, str):
        raise TypeError(f"`signature` must be a signature name (a string) or None, got {_short(signature)}")
    expected = "a uint8 array [batch, height, width, channels]"
    if images is not None:
        if isinstance(images, (str, bytes, dict)):
            raise TypeError(f"`images` must be {expected}, got {_short(images)}")
        try:
            images = np.asarray(images)
        except (ValueError, TypeError) as err:  # ragged lists, objects numpy cannot hold
            raise TypeError(f"`images` must be {expected}, got a value numpy cannot make an array of ({err})") from None
        if images.dtype != np.uint8:
            raise TypeError(f"`images` must be {expected}, got dtype {images.dtype}")
        if images.ndim != 4:
            raise ValueError(f"`images` must be {expected}, got shape {images.shape}")
        if images.shape[0] == 0:
            raise ValueError(f"`images` must hold at least one image, got shape {images.shape}")
        if 0 in images.shape[1:]:
            raise ValueError(f"`images` must have non-zero height, width and channels, got shape {images.shape}")
        return {"signature_name": signature or DEFAULT_SIGNATURE, "instances": images.tolist()}
    if not isinstance(image_bytes, (list, tuple)):
        raise TypeError(f"`image_bytes` must be a list of bytes objects (encoded images), got {_short(image_bytes)}")
    if not image_bytes:
        raise ValueError("`image_bytes` must hold at least one encoded image, got an empty list")
    for i, item in enumerate(image_bytes):
        if not isinstance(item, bytes):
            raise TypeError(f"`image_bytes` must be a list of bytes objects (encoded images), got "
                            f"{_short(item)} at index {i}")
        if not item:
            raise ValueError(f"`image_bytes` must hold encoded images, got empty bytes at index {i}")
    return {"signature_name": signature or "image_bytes", "instances": [_encode(b) for b in image_bytes]}


# ----------------------------------------------------------------------------- JSON in

_PARSE_ERRORS = (  # Python's json messages -> rapidjson's (GetParseError_En), TF Serving's parser
    ("Expecting value", "Invalid value."),
    ("Extra data", "The document root must not be followed by other values."),
    ("Expecting property name enclosed in double quotes", "Missing a name for object member."),
    ("Expecting ':' delimiter", "Missing a colon after a name of object member."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid control character", "Invalid encoding in string."),
    ("Invalid \\uXXXX escape", "Incorrect hex digit after \\u escape in string."),
    ("Invalid \\escape", "Invalid escape character in string."),
)


def _inside(text, offset):
    """'{' or '[': the bracket open at ``offset`` of JSON ``text`` (None at the top)."""
    stack, in_string, escaped = [], False, False
    for char in text[:offset]:
        if in_string:
            escaped, in_string = (False, True) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else None


def _parse_error(text, err):
    if err.msg == "Expecting ',' delimiter":
        rapid = ("Missing a comma or '}' after an object member." if _inside(text, err.pos) == "{"
                 else "Missing a comma or ']' after an array element.")
    else:
        rapid = next((r for p, r in _PARSE_ERRORS if err.msg.startswith(p)), err.msg + ".")
    return RestError(f"JSON Parse error: {rapid} at offset: {err.pos} ({err})")


def _show(value):
    """A JSON value as TF Serving quotes it in a message (compact, cut when long)."""
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError, RecursionError):
        text = _short(value)
    return text if len(text) <= _SHOW else f"{text[:_SHOW]}... ({len(text)} characters)"


def _document(body):
    """``body`` as the JSON object the server would parse it into."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as err:
            raise RestError(f"JSON Parse error: Invalid encoding in string. at offset: {err.start} "
                            "(the body is not UTF-8)") from None
    if isinstance(body, str):
        if not body.strip():
            raise RestError("JSON Parse error: The document is empty")
        try:
            body = json.loads(body)
        except json.JSONDecodeError as err:
            raise _parse_error(body, err) from None
        except RecursionError:
            raise RestError("JSON Parse error: the document is nested too deeply") from None
    elif isinstance(body, dict):
        try:  # what the server gets when a client posts it: tuples become lists, and so on
            body = json.loads(json.dumps(body))
        except (TypeError, ValueError, RecursionError) as err:
            raise RestError(f"the request body cannot be sent as JSON ({err}): send lists, numbers, "
                            'strings and {"b64": ...}, e.g. array.tolist()') from None
    elif not isinstance(body, (list, int, float, type(None))):
        raise RestError(f"`body` must be a JSON object (a dict) or its text, got {_short(body)}")
    if not isinstance(body, dict):
        raise RestError(f"JSON Value: {_show(body)} Is not object "
                        '(the body must be a JSON object such as {"instances": [...]})')
    return body


# ----------------------------------------------------------------------------- tensors

def _type_name(dtype):
    """TensorFlow's DataTypeString, which TF Serving's messages use."""
    return {"float32": "float", "float64": "double", "float16": "half"}.get(dtype.name, dtype.name)


def _json_type(value):
    if value is None:
        return "Null"
    if isinstance(value, bool):
        return "True" if value else "False"
    return {dict: "Object", list: "Array", str: "String"}.get(type(value), "Number")


def _dense_shape(value):
    """TF Serving's GetDenseTensorShape: the shape read down the first elements."""
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _leaves(value, shape):
    """The values of the dense tensor ``value`` of ``shape``, in order; an _Invalid for
    a ragged list or a value at the wrong depth (FillTensorProto's messages)."""
    rank = len(shape)
    nodes = [value]
    for level in range(rank):
        children = []
        for node in nodes:
            if not isinstance(node, list):
                raise _Invalid(f"JSON Value: {_show(node)} found at incorrect level: {level + 1} in the "
                               f"JSON DOM. Expected at level: {rank} (a value where a list was expected: the "
                               f"shape read down the first elements is {_shape_text(shape)})")
            if len(node) != shape[level]:
                raise _Invalid(f"Encountered list at unexpected size: {len(node)} at level: {level} "
                               f"expected size: {shape[level]} (a ragged list: the lists at a level "
                               "must all have the same length)")
            children.extend(node)
        nodes = children
    for node in nodes:
        if isinstance(node, list):
            raise _Invalid(f"Encountered list at unexpected level: {rank} expected < {rank}")
    return nodes


def _type_error(value, dtype, takes):
    return _Invalid(f"JSON Value: {_show(value)} Type: {_json_type(value)} is not of expected type: "
                    f"{_type_name(dtype)} ({takes})")


def _bytes(value, dtype, takes):
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if not isinstance(value, dict):
        raise _type_error(value, dtype, takes)
    text = value.get("b64")
    if set(value) != {"b64"} or not isinstance(text, str):
        raise _Invalid(f"JSON Value: {_show(value)} not formatted correctly for base64 data "
                       '(expected {"b64": "<base64 text>"})')
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as err:
        raise _Invalid(f"Unable to base64 decode ({_show(value)}: {err})") from None


def _values(leaves, dtype, name):
    """``leaves`` as a flat numpy array of ``dtype``: TF Serving's AddValueToTensor checks,
    with the range of every integer type checked (the server wraps the narrow ones)."""
    if dtype.is_bool:
        for v in leaves:
            if not isinstance(v, bool):
                raise _type_error(v, dtype, f"input {name!r} takes true or false")
        return np.array(leaves, np.bool_)
    if dtype.is_integer:
        info = np.iinfo(dtype.as_numpy_dtype)
        takes = f"input {name!r} takes integers in [{info.min}, {info.max}]"
        for v in leaves:
            if type(v) is not int or not info.min <= v <= info.max:  # noqa: E721 (bool is no int here)
                raise _type_error(v, dtype, takes)
        return np.array(leaves, dtype.as_numpy_dtype)
    if dtype.is_floating and dtype.name in ("float32", "float64"):
        target = np.dtype(dtype.as_numpy_dtype)
        most = float(np.finfo(target).max)
        exact = 2 ** (np.finfo(target).nmant + 1) - 1  # TF Serving: integers up to 2**digits - 1
        for v in leaves:
            if type(v) not in (int, float):
                raise _type_error(v, dtype, f"input {name!r} takes numbers")
            if (abs(v) > exact) if type(v) is int else (math.isfinite(v) and abs(v) > most):
                raise _Invalid(f"Cannot convert JSON value: {_show(v)} to {_type_name(dtype)} without "
                               "loss of precision.")
        return np.array(leaves, target)
    if dtype.name == "string":
        takes = f'input {name!r} takes strings, binary ones as {{"b64": ...}}'
        return np.array([_bytes(v, dtype, takes) for v in leaves], object)
    first = leaves[0] if leaves else []
    raise _Invalid(f"Conversion of JSON Value: {_show(first)} to type: {_type_name(dtype)} (TF Serving's "
                   "REST API carries no such type)", code="Unimplemented")


def _tensor(value, spec):
    """(flat values, shape) of the dense JSON tensor ``value`` for input ``spec``."""
    shape = _dense_shape(value)
    return _values(_leaves(value, shape), spec.dtype, spec.name), shape


def _shape_text(shape):
    return "[" + ",".join(str(d) for d in shape) + "]"


# ----------------------------------------------------------------------------- the request

def _is_b64(value):
    return isinstance(value, dict) and "b64" in value and len(value) == 1


def _is_named(value):
    return isinstance(value, dict) and not _is_b64(value)


def _hint(key, known):
    close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _unknown_input(key, specs):
    return (f"JSON object: does not have named input: {key} ({_hint(key, specs)}the signature's inputs "
            f"are {', '.join(sorted(specs))})")


def _from_instances(rows, specs):
    """TF Serving's FillTensorMapFromInstancesList: one array per input, batch first."""
    several = ", ".join(sorted(specs))
    named = _is_named(rows[0])
    if not named and len(specs) > 1:
        raise RestError("instances is a plain list, but expecting list of objects as multiple input "
                        f"tensors required as per tensorinfo_map (the signature takes {several}: give "
                        "each instance as an object naming them)")
    values = {key: [] for key in specs}
    shapes = {}

    def add(i, key, item, where):
        try:
            flat, shape = _tensor(item, specs[key])
            if key in shapes and len(flat) != int(np.prod(shapes[key])):
                raise _Invalid(f"Expecting tensor size: {int(np.prod(shapes[key]))} but got: {len(flat)} "
                               f"(instance {i} is not the shape of instance 0)")
            if key in shapes and shape != shapes[key]:
                raise _Invalid(f"Expecting shape {_shape_text(shapes[key])} but got: {_shape_text(shape)} "
                               f"(instance {i} is not the shape of instance 0)")
        except _Invalid as err:
            raise RestError(f"Failed to process element: {i}{where} of 'instances' list. Error: {err}") from None
        shapes.setdefault(key, shape)
        values[key].append(flat)

    for i, row in enumerate(rows):
        if named:
            if not _is_named(row):
                what = "a base64 object" if _is_b64(row) else f"of JSON type {_json_type(row)}"
                raise RestError(f"Expecting object but got list at item {i} of input list (instance 0 "
                                f"names its inputs, so every instance must; instance {i} is {what})")
            for key, item in row.items():
                if key not in specs:
                    raise RestError(f"Failed to process element: {i} key: {key} of 'instances' list. "
                                    f"Error: Invalid argument: {_unknown_input(key, specs)}")
                add(i, key, item, f" key: {key}")
            if set(row) != set(specs):
                raise RestError(f"Failed to process element: {i} of 'instances' list. JSON object: "
                                f"{_show(row)} keys must be equal to: {','.join(sorted(specs))} (missing "
                                f"{', '.join(sorted(set(specs) - set(row)))})")
        else:
            if _is_named(row):
                raise RestError(f"Expecting value/list but got object at item {i} of input list (instance "
                                "0 is a bare value, so every instance must be one)")
            add(i, next(iter(specs)), row, "")
    return {key: (np.concatenate(values[key]) if len(rows) > 1 else values[key][0], [len(rows), *shapes[key]])
            for key in specs}


def _from_inputs(inputs, specs, document):
    """TF Serving's FillTensorMapFromInputsMap, refusing empty and unknown inputs too."""
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(specs) > 1:
            raise RestError("inputs is a plain value/list, but expecting an object as multiple input tensors "
                            f"required as per tensorinfo_map (the signature takes {', '.join(sorted(specs))}: "
                            "give 'inputs' as an object naming them)")
        if inputs == []:
            raise RestError(f"JSON Value: {_show(document)} No values in 'inputs' array")
        try:
            flat, shape = _tensor(inputs, next(iter(specs.values())))
        except _Invalid as err:
            raise RestError(f"Failed to process 'inputs'. Error: {err}") from None
        return {next(iter(specs)): (flat, shape)}
    for key in inputs:
        if key not in specs:
            raise RestError(f"Failed to process 'inputs' key: {key}. Error: Invalid argument: "
                            f"{_unknown_input(key, specs)}")
    tensors = {}
    for key in specs:
        if key not in inputs:
            empty = " (the 'inputs' object is empty)" if not inputs else ""
            raise RestError(f"Missing named input: {key} in 'inputs' object.{empty}")
        if inputs[key] == []:
            raise RestError(f"No values in 'inputs' key: {key} (an empty list, a batch of nothing)")
        try:
            tensors[key] = _tensor(inputs[key], specs[key])
        except _Invalid as err:
            raise RestError(f"Failed to process 'inputs' key: {key}. Error: {err}") from None
    return tensors


def _graph_message(err):
    """A TensorFlow error's message without the graph's node and stack trace lines."""
    lines = str(getattr(err, "message", err) or err).splitlines()
    starts = [i for i, line in enumerate(lines) if line == "<stack traces unavailable>" or line.startswith("Node: ")]
    if starts:
        lines = lines[starts[-1] + 1:]
    lines = [line.strip() for line in lines if line.strip() and not line.strip().startswith("[[")
             and line.strip() != "Graph execution error:"]
    text = re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", " ".join(lines)).strip()
    return text or type(err).__name__


def _output_json(key, value):
    """An output array as TF Serving writes it (strings as text; ``*_bytes`` and
    non-UTF-8 strings as ``{"b64": ...}``)."""
    if value.dtype.kind not in "OSU":
        return value.tolist()

    def one(item):
        if isinstance(item, bytes):
            if not key.endswith("_bytes"):
                try:
                    return item.decode("utf-8")
                except UnicodeDecodeError:
                    pass
            return _encode(item)
        return [one(i) for i in item] if isinstance(item, list) else item

    return one(value.tolist())


def _load(saved_model):
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
            hint = (f"; it holds the versions {', '.join(numbered)} of a served model: give one of them, "
                    f"e.g. {os.path.join(folder, numbered[-1])!r}" if numbered else "")
            raise SavedModelNotFoundError(f"`saved_model`={folder!r} is not a SavedModel directory: it has "
                                          f"no saved_model.pb{hint}")
        try:
            return tf.saved_model.load(folder)
        except Exception as err:  # damaged files: protobuf, OS and TF errors alike
            raise SavedModelError(f"`saved_model`={folder!r} could not be loaded as a SavedModel "
                                  f"({type(err).__name__}: {_graph_message(err)})") from None
    if not isinstance(getattr(saved_model, "signatures", None), collections.abc.Mapping):
        raise SavedModelTypeError("`saved_model` must be a SavedModel directory or an object from "
                                  f"tf.saved_model.load, got {_short(saved_model)}")
    return saved_model


def predict(saved_model, body):
    """TF Serving's answer to ``body`` (a dict or JSON text) from ``saved_model`` (a
    directory, or an object from ``tf.saved_model.load``). A body the server refuses
    raises ``RestError``; a ``saved_model`` that is none raises ``SavedModelError``."""
    import tensorflow as tf

    loaded = _load(saved_model)
    document = _document(body)
    name = document.get("signature_name", DEFAULT_SIGNATURE)
    if not isinstance(name, str):
        raise RestError(f"JSON Value: {_show(document)} not formatted correctly. 'signature_name' key must "
                        f"be a string value. (got {_show(name)})")
    name = name or DEFAULT_SIGNATURE
    signatures = loaded.signatures
    if name not in signatures:
        raise RestError(f'Serving signature name: "{name}" not found in signature def (signature_name '
                        f"{name!r} is not in the model; {_hint(name, signatures)}it has "
                        f"{', '.join(sorted(signatures))})")
    fn = signatures[name]
    specs = dict(fn.structured_input_signature[1])
    if not specs:
        raise RestError(f"Failed to get input map for signature: {name}")
    has_rows, has_columns = "instances" in document, "inputs" in document
    if has_rows and has_columns:
        raise RestError(f"JSON Value: {_show(document)} Not formatted correctly expecting only one of 'inputs' "
                        "or 'instances' keys to exist (one is the row format, the other the columnar)")
    if not has_rows and not has_columns:
        hint = "".join(_hint(key, ("instances", "inputs")) for key in document if key != "signature_name")
        raise RestError(f"Missing 'inputs' or 'instances' key ({hint}the body has "
                        f"{', '.join(map(repr, document)) or 'no keys'})")
    try:
        if has_rows:
            rows = document["instances"]
            if not isinstance(rows, list):  # TF Serving's spelling, kept so its message is recognised
                raise RestError(f"JSON Value: {_show(document)} Excepting 'instances' to be an list/array")
            if not rows:
                raise RestError(f"JSON Value: {_show(document)} No values in 'instances' array")
            arrays = _from_instances(rows, specs)
        else:
            arrays = _from_inputs(document["inputs"], specs, document)
    except RecursionError:
        raise RestError("the request's values are nested too deeply to be a tensor") from None
    tensors = {}
    for key, (flat, shape) in arrays.items():
        spec = specs[key]
        if not spec.shape.is_compatible_with(shape):
            wanted = "[?]" if spec.shape.rank is None else _shape_text(d if d is not None else -1 for d in spec.shape)
            raise RestError(f"input {key!r} of signature {name!r} takes shape {wanted}, got {_shape_text(shape)}")
        tensors[key] = tf.constant(np.asarray(flat).reshape(shape), spec.dtype)
    try:
        outputs = fn(**tensors)
    except tf.errors.OpError as err:  # the graph's own checks: the server answers their message
        raise RestError(_graph_message(err)) from None
    except (TypeError, ValueError) as err:
        raise RestError(f"signature {name!r} refused the inputs: {_graph_message(err)}") from None
    outputs = {key: np.asarray(value) for key, value in outputs.items()}
    if has_columns:
        if len(outputs) == 1:
            key, value = next(iter(outputs.items()))
            return {"outputs": _output_json(key, value)}
        return {"outputs": {key: _output_json(key, value) for key, value in outputs.items()}}
    batch = len(rows)
    for key, value in outputs.items():
        if value.ndim == 0:
            raise RestError(f"Tensor name: {key} has no shape information (a scalar output has no row per "
                            "instance: use the columnar format, 'inputs')")
        if value.shape[0] != batch:
            raise RestError(f"Tensor name: {key} has inconsistent batch size: {value.shape[0]} expecting: "
                            f"{batch} (use the columnar format, 'inputs')")
    if len(outputs) == 1:
        key, value = next(iter(outputs.items()))
        return {"predictions": _output_json(key, value)}
    columns = {key: _output_json(key, value) for key, value in outputs.items()}
    return {"predictions": [{key: column[i] for key, column in columns.items()} for i in range(batch)]}


def respond(saved_model, body):
    """What the server answers ``body``: ``predict``'s result, or ``{"error": message}``
    for a request it refuses (a bad ``saved_model`` still raises: there is no server)."""
    try:
        return predict(saved_model, body)
    except RestError as err:
        return err.body
