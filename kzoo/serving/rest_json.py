"""A REST predict body as TF Serving reads it (the JSON document, then the row format's
``instances`` or the columnar ``inputs`` as one array per signature input) and the JSON
it writes back for an output, with the server's messages for every body it refuses."""

import difflib
import json

import numpy as np

from kzoo.serving.rest_errors import Invalid, RestError, short, show
from kzoo.serving.rest_request import encode_bytes
from kzoo.serving.rest_tensors import dense_tensor, json_type, shape_text

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
        rapid = (
            "Missing a comma or '}' after an object member."
            if _inside(text, err.pos) == "{"
            else "Missing a comma or ']' after an array element."
        )
    else:
        rapid = next((r for p, r in _PARSE_ERRORS if err.msg.startswith(p)), err.msg + ".")
    return RestError(f"JSON Parse error: {rapid} at offset: {err.pos} ({err})")


def parse_document(body):
    """``body`` as the JSON object the server would parse it into."""
    if isinstance(body, (bytes, bytearray)):
        try:
            body = bytes(body).decode("utf-8")
        except UnicodeDecodeError as err:
            raise RestError(
                f"JSON Parse error: Invalid encoding in string. at offset: {err.start} "
                "(the body is not UTF-8)"
            ) from None
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
            raise RestError(
                f"the request body cannot be sent as JSON ({err}): send lists, numbers, "
                'strings and {"b64": ...}, e.g. array.tolist()'
            ) from None
    elif not isinstance(body, (list, int, float, type(None))):
        raise RestError(f"`body` must be a JSON object (a dict) or its text, got {short(body)}")
    if not isinstance(body, dict):
        raise RestError(
            f"JSON Value: {show(body)} Is not object "
            '(the body must be a JSON object such as {"instances": [...]})'
        )
    return body


def _is_b64(value):
    return isinstance(value, dict) and "b64" in value and len(value) == 1


def _is_named(value):
    return isinstance(value, dict) and not _is_b64(value)


def hint(key, known):
    close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1)
    return f"did you mean {close[0]!r}? " if close else ""


def _unknown_input(key, specs):
    return (
        f"JSON object: does not have named input: {key} ({hint(key, specs)}the signature's inputs "
        f"are {', '.join(sorted(specs))})"
    )


def from_instances(rows, specs):
    """TF Serving's FillTensorMapFromInstancesList: one array per input, batch first."""
    several = ", ".join(sorted(specs))
    named = _is_named(rows[0])
    if not named and len(specs) > 1:
        raise RestError(
            "instances is a plain list, but expecting list of objects as multiple input "
            f"tensors required as per tensorinfo_map (the signature takes {several}: give "
            "each instance as an object naming them)"
        )
    values = {key: [] for key in specs}
    shapes = {}

    def add(i, key, item, where):
        try:
            flat, shape = dense_tensor(item, specs[key])
            if key in shapes and len(flat) != int(np.prod(shapes[key])):
                raise Invalid(
                    f"Expecting tensor size: {int(np.prod(shapes[key]))} but got: {len(flat)} "
                    f"(instance {i} is not the shape of instance 0)"
                )
            if key in shapes and shape != shapes[key]:
                raise Invalid(
                    f"Expecting shape {shape_text(shapes[key])} but got: {shape_text(shape)} "
                    f"(instance {i} is not the shape of instance 0)"
                )
        except Invalid as err:
            raise RestError(
                f"Failed to process element: {i}{where} of 'instances' list. Error: {err}"
            ) from None
        shapes.setdefault(key, shape)
        values[key].append(flat)

    for i, row in enumerate(rows):
        if named:
            if not _is_named(row):
                what = "a base64 object" if _is_b64(row) else f"of JSON type {json_type(row)}"
                raise RestError(
                    f"Expecting object but got list at item {i} of input list (instance 0 "
                    f"names its inputs, so every instance must; instance {i} is {what})"
                )
            for key, item in row.items():
                if key not in specs:
                    raise RestError(
                        f"Failed to process element: {i} key: {key} of 'instances' list. "
                        f"Error: Invalid argument: {_unknown_input(key, specs)}"
                    )
                add(i, key, item, f" key: {key}")
            if set(row) != set(specs):
                raise RestError(
                    f"Failed to process element: {i} of 'instances' list. JSON object: "
                    f"{show(row)} keys must be equal to: {','.join(sorted(specs))} (missing "
                    f"{', '.join(sorted(set(specs) - set(row)))})"
                )
        else:
            if _is_named(row):
                raise RestError(
                    f"Expecting value/list but got object at item {i} of input list (instance "
                    "0 is a bare value, so every instance must be one)"
                )
            add(i, next(iter(specs)), row, "")
    return {
        key: (np.concatenate(values[key]) if len(rows) > 1 else values[key][0], [len(rows), *shapes[key]])
        for key in specs
    }


def from_inputs(inputs, specs, document):
    """TF Serving's FillTensorMapFromInputsMap, refusing empty and unknown inputs too."""
    if not isinstance(inputs, dict) or _is_b64(inputs):
        if len(specs) > 1:
            raise RestError(
                "inputs is a plain value/list, but expecting an object as multiple input "
                "tensors required as per tensorinfo_map (the signature takes "
                f"{', '.join(sorted(specs))}: give 'inputs' as an object naming them)"
            )
        if inputs == []:
            raise RestError(f"JSON Value: {show(document)} No values in 'inputs' array")
        try:
            flat, shape = dense_tensor(inputs, next(iter(specs.values())))
        except Invalid as err:
            raise RestError(f"Failed to process 'inputs'. Error: {err}") from None
        return {next(iter(specs)): (flat, shape)}
    for key in inputs:
        if key not in specs:
            raise RestError(
                f"Failed to process 'inputs' key: {key}. Error: Invalid argument: "
                f"{_unknown_input(key, specs)}"
            )
    tensors = {}
    for key in specs:
        if key not in inputs:
            empty = " (the 'inputs' object is empty)" if not inputs else ""
            raise RestError(f"Missing named input: {key} in 'inputs' object.{empty}")
        if inputs[key] == []:
            raise RestError(f"No values in 'inputs' key: {key} (an empty list, a batch of nothing)")
        try:
            tensors[key] = dense_tensor(inputs[key], specs[key])
        except Invalid as err:
            raise RestError(f"Failed to process 'inputs' key: {key}. Error: {err}") from None
    return tensors


def output_json(key, value):
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
            return encode_bytes(item)
        return [one(i) for i in item] if isinstance(item, list) else item

    return one(value.tolist())
