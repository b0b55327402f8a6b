"""One JSON value as the dense tensor a signature input takes, checked as TF Serving's
``json_tensor.cc`` checks it (shape read down the first elements, ragged lists, types,
integer ranges, float precision, base64), with the server's messages."""

import base64
import binascii
import math

import numpy as np

from kzoo.serving.rest_errors import Invalid, show


def _type_name(dtype):
    """TensorFlow's DataTypeString, which TF Serving's messages use."""
    return {"float32": "float", "float64": "double", "float16": "half"}.get(dtype.name, dtype.name)


def json_type(value):
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
    """The values of the dense tensor ``value`` of ``shape``, in order; an Invalid for
    a ragged list or a value at the wrong depth (FillTensorProto's messages)."""
    rank = len(shape)
    nodes = [value]
    for level in range(rank):
        children = []
        for node in nodes:
            if not isinstance(node, list):
                raise Invalid(
                    f"JSON Value: {show(node)} found at incorrect level: {level + 1} in the "
                    f"JSON DOM. Expected at level: {rank} (a value where a list was expected: the "
                    f"shape read down the first elements is {shape_text(shape)})"
                )
            if len(node) != shape[level]:
                raise Invalid(
                    f"Encountered list at unexpected size: {len(node)} at level: {level} "
                    f"expected size: {shape[level]} (a ragged list: the lists at a level "
                    "must all have the same length)"
                )
            children.extend(node)
        nodes = children
    for node in nodes:
        if isinstance(node, list):
            raise Invalid(f"Encountered list at unexpected level: {rank} expected < {rank}")
    return nodes


def _type_error(value, dtype, takes):
    return Invalid(
        f"JSON Value: {show(value)} Type: {json_type(value)} is not of expected type: "
        f"{_type_name(dtype)} ({takes})"
    )


def _bytes(value, dtype, takes):
    if isinstance(value, str):
        return value.encode("utf-8", "surrogatepass")
    if not isinstance(value, dict):
        raise _type_error(value, dtype, takes)
    text = value.get("b64")
    if set(value) != {"b64"} or not isinstance(text, str):
        raise Invalid(
            f"JSON Value: {show(value)} not formatted correctly for base64 data "
            '(expected {"b64": "<base64 text>"})'
        )
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as err:
        raise Invalid(f"Unable to base64 decode ({show(value)}: {err})") from None


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
                raise Invalid(
                    f"Cannot convert JSON value: {show(v)} to {_type_name(dtype)} without loss of precision."
                )
        return np.array(leaves, target)
    if dtype.name == "string":
        takes = f'input {name!r} takes strings, binary ones as {{"b64": ...}}'
        return np.array([_bytes(v, dtype, takes) for v in leaves], object)
    first = leaves[0] if leaves else []
    raise Invalid(
        f"Conversion of JSON Value: {show(first)} to type: {_type_name(dtype)} (TF Serving's "
        "REST API carries no such type)",
        code="Unimplemented",
    )


def dense_tensor(value, spec):
    """(flat values, shape) of the dense JSON tensor ``value`` for input ``spec``."""
    shape = _dense_shape(value)
    return _values(_leaves(value, shape), spec.dtype, spec.name), shape


def shape_text(shape):
    return "[" + ",".join(str(d) for d in shape) + "]"
