"""kzoo.serving.rest refuses every malformed request the way TF Serving's REST server does: a
RestError (a ValueError) with the server's message and its {"error": ...} body, never a
numpy, base64, TensorFlow or KeyError; a bad ``saved_model`` or ``request`` argument
raises an error naming it. Small models only: a tiny kzoo export and a tf.Module with
the input types the REST codec carries."""

import base64
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

import kzoo
from kzoo.serving import rest

SHAPE = (8, 8, 1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A kzoo export (``serving_default`` uint8 images, ``image_bytes``) of a tiny model."""
    keras.utils.set_random_seed(2)
    inputs = keras.Input(SHAPE)
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    return kzoo.export(
        model, tmp_path_factory.mktemp("serving"), "tiny", dataset="fashion_mnist", warmup=False
    ).path


@pytest.fixture(scope="module")
def loaded(exported):
    return tf.saved_model.load(exported)


class _Toy(tf.Module):
    @tf.function(
        input_signature=[
            tf.TensorSpec([None, 2], tf.float32, name="a"),
            tf.TensorSpec([None], tf.int32, name="b"),
        ]
    )
    def pair(self, a, b):
        return {"total": tf.reduce_sum(a, axis=1) + tf.cast(b, tf.float32)}

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.bool, name="flags"),
            tf.TensorSpec([None], tf.int64, name="big"),
            tf.TensorSpec([None], tf.string, name="text"),
            tf.TensorSpec([None], tf.float64, name="x"),
        ]
    )
    def typed(self, flags, big, text, x):
        return {"count": big + tf.cast(flags, tf.int64), "echo": text, "echo_bytes": text, "x2": x * 2}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float16, name="x")])
    def half(self, x):
        return {"y": x}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def scalar(self, x):
        return {"mean": tf.reduce_mean(x)}

    @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
    def shaped(self, x):
        return {"y": x * 1}

    @tf.function(input_signature=[])
    def nothing(self):
        return {"one": tf.constant([1])}


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    module = _Toy()
    path = str(tmp_path_factory.mktemp("toy") / "1")
    tf.saved_model.save(
        module,
        path,
        signatures={
            name: getattr(module, name) for name in ("pair", "typed", "half", "scalar", "shaped", "nothing")
        },
    )
    return tf.saved_model.load(path)


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *SHAPE), dtype=np.uint8)


IMG = _images(1)[0].tolist()
SMALL = _images(1)[0][:4, :4].tolist()  # another size (16 values)
OTHER = np.zeros((8, 4, 2), np.uint8).tolist()  # 64 values, another shape
PNG_B64 = base64.b64encode(tf.io.encode_png(_images(1)[0]).numpy()).decode()


def _refused(model, body, match):
    """``predict`` raises a RestError (a ValueError) matching ``match``, with its body."""
    with pytest.raises(rest.RestError, match=match) as info:
        rest.predict(model, body)
    assert isinstance(info.value, ValueError) and not isinstance(info.value, tf.errors.OpError)
    assert info.value.body == {"error": str(info.value)}
    assert rest.respond(model, body) == {"error": str(info.value)}
    return str(info.value)


# ----------------------------------------------------------------------------- the body


@pytest.mark.parametrize(
    "text, match",
    [
        ("", "JSON Parse error: The document is empty"),
        ("   \n", "JSON Parse error: The document is empty"),
        ("{", "JSON Parse error: Missing a name for object member"),
        ("{'instances': []}", "JSON Parse error: Missing a name for object member"),
        (
            '{"instances": [1 2]}',
            r"JSON Parse error: Missing a comma or '\]' after an array element\. at offset: 17",
        ),
        (
            '{"instances": [1] "inputs": 2}',
            r"JSON Parse error: Missing a comma or '\}' after an object member",
        ),
        ('{"instances": [1]} []', "JSON Parse error: The document root must not be followed by other values"),
        ('{"instances": nul}', r"JSON Parse error: Invalid value\. at offset: 14"),
        ('{"instances": ["\\x"]}', "JSON Parse error: Invalid escape character in string"),
        ('{"instances": ["abc', "JSON Parse error: Missing a closing quotation mark in string"),
        (b'{"instances": ["\xff"]}', "JSON Parse error: Invalid encoding in string. at offset: 16"),
        ("[" * 100000 + "]" * 100000, "JSON Parse error: the document is nested too deeply"),
    ],
)
def test_malformed_json_text(loaded, text, match):
    _refused(loaded, text, match)


@pytest.mark.parametrize(
    "body, match",
    [
        ([], r"JSON Value: \[\] Is not object"),
        (None, "JSON Value: null Is not object"),
        (3, "JSON Value: 3 Is not object"),
        ("[1, 2]", r"JSON Value: \[1,2\] Is not object"),
        ('"instances"', 'JSON Value: "instances" Is not object'),
        ({1, 2}, "`body` must be a JSON object"),
        (np.zeros(3), "`body` must be a JSON object"),
        ({"instances": np.zeros((1, *SHAPE), np.uint8)}, "cannot be sent as JSON.*ndarray.*tolist"),
    ],
)
def test_body_not_an_object(loaded, body, match):
    _refused(loaded, body, match)


@pytest.mark.parametrize(
    "body, match",
    [
        (
            {"instances": [IMG], "inputs": [IMG]},
            "expecting only one of 'inputs' or 'instances' keys to exist",
        ),
        ({}, "Missing 'inputs' or 'instances' key.*no keys"),
        ({"signature_name": "serving_default"}, "Missing 'inputs' or 'instances' key"),
        ({"instance": [IMG]}, "Missing 'inputs' or 'instances' key.*did you mean 'instances'"),
        ({"input": [IMG]}, "Missing 'inputs' or 'instances' key.*did you mean 'inputs'"),
        ({"instances": 5}, "Excepting 'instances' to be an list/array"),
        ({"instances": {"images": [IMG]}}, "Excepting 'instances' to be an list/array"),
        ({"instances": []}, "No values in 'instances' array"),
        ({"inputs": []}, "No values in 'inputs' array"),
        ({"inputs": {}}, "Missing named input: images in 'inputs' object.*empty"),
        ({"inputs": {"images": []}}, "No values in 'inputs' key: images"),
    ],
)
def test_instances_and_inputs_keys(loaded, body, match):
    _refused(loaded, body, match)


@pytest.mark.parametrize(
    "signature, match",
    [
        (5, "'signature_name' key must be a string value"),
        (None, "'signature_name' key must be a string value"),
        (["serving_default"], "'signature_name' key must be a string value"),
        ("nope", "Serving signature name: \"nope\" not found in signature def.*signature_name 'nope'"),
        ("serving_defualt", "did you mean 'serving_default'"),
        ("IMAGE_BYTES", "image_bytes, serving_default"),
    ],
)
def test_bad_signature_name(loaded, signature, match):
    _refused(loaded, {"signature_name": signature, "instances": [IMG]}, match)


def test_signature_without_inputs(toy):
    _refused(
        toy, {"signature_name": "nothing", "instances": [1]}, "Failed to get input map for signature: nothing"
    )


# ----------------------------------------------------------------------------- the values


@pytest.mark.parametrize(
    "body, match",
    [
        (
            {"signature_name": "image_bytes", "instances": [{"b64": "!!not base64!!"}]},
            "Failed to process element: 0 of 'instances' list. Error: Invalid argument: "
            "Unable to base64 decode",
        ),
        (
            {"signature_name": "image_bytes", "instances": [{"b64": PNG_B64}, {"b64": "A"}]},
            "Failed to process element: 1 of 'instances' list.*Unable to base64 decode",
        ),
        (
            {"signature_name": "image_bytes", "instances": [{"b64": 5}]},
            "not formatted correctly for base64 data",
        ),
        (
            {"signature_name": "image_bytes", "inputs": {"image_bytes": [{"b64": PNG_B64, "x": 1}]}},
            "not formatted correctly for base64 data",
        ),
        ({"signature_name": "image_bytes", "instances": [7]}, "Type: Number is not of expected type: string"),
        ({"instances": [{"b64": PNG_B64}]}, "Type: Object is not of expected type: uint8"),
    ],
)
def test_bad_base64(loaded, body, match):
    _refused(loaded, body, match)


@pytest.mark.parametrize(
    "instances, match",
    [
        (
            [IMG, IMG[:-1]],
            "Failed to process element: 1 of 'instances' list.*Expecting tensor size: 64 but got: 56",
        ),
        ([IMG, SMALL], "Failed to process element: 1.*Expecting tensor size: 64 but got: 16"),
        ([IMG, OTHER], r"Expecting shape \[8,8,1\] but got: \[8,4,2\]"),
        (
            [IMG[:4] + [row[:-1] for row in IMG[4:]]],
            "Encountered list at unexpected size: 7 at level: 1 expected size: 8.*ragged",
        ),
        (
            [[[[0], 0]]],
            r"JSON Value: 0 found at incorrect level: 3 in the JSON DOM. Expected at level: 3 .*\[1,2,1\]",
        ),
        ([[[0, [1]]]], "Encountered list at unexpected level: 2 expected < 2"),
        ([[[[0], ["a"]]]], 'JSON Value: "a" Type: String is not of expected type: uint8'),
    ],
)
def test_ragged_and_mixed_rows(loaded, instances, match):
    _refused(loaded, {"instances": instances}, match)


@pytest.mark.parametrize(
    "instances, match",
    [
        ([{"images": IMG}, IMG], "Expecting object but got list at item 1 of input list"),
        ([IMG, {"images": IMG}], "Expecting value/list but got object at item 1 of input list"),
        ([{"images": IMG}, {"b64": PNG_B64}], "Expecting object but got list at item 1"),
    ],
)
def test_mixed_named_and_unnamed_rows(loaded, instances, match):
    _refused(loaded, {"instances": instances}, match)


@pytest.mark.parametrize(
    "body, match",
    [
        (
            {"instances": [{"imgs": IMG}]},
            "Failed to process element: 0 key: imgs of 'instances' list. Error: Invalid argument: "
            "JSON object: does not have named input: imgs.*did you mean 'images'",
        ),
        ({"instances": [{"images": IMG, "extra": 1}]}, "does not have named input: extra"),
        ({"inputs": {"imgs": [IMG]}}, "does not have named input: imgs.*did you mean 'images'"),
        ({"inputs": {"images": [IMG], "labels": [1]}}, "does not have named input: labels"),
        (
            {"signature_name": "pair", "instances": [{"a": [1.0, 2.0]}]},
            "Failed to process element: 0 of 'instances' list. JSON object: .* keys must be equal to: "
            "a,b .*missing b",
        ),
        (
            {
                "signature_name": "pair",
                "instances": [{"a": [1.0, 2.0], "b": 1}, {"b": 2, "a": [1.0, 2.0], "c": 3}],
            },
            "Failed to process element: 1 key: c",
        ),
        (
            {"signature_name": "pair", "inputs": {"a": [[1.0, 2.0]]}},
            "Missing named input: b in 'inputs' object",
        ),
        (
            {"signature_name": "pair", "instances": [[1.0, 2.0]]},
            "instances is a plain list, but expecting list of objects as multiple input tensors.*a, b",
        ),
        (
            {"signature_name": "pair", "inputs": [[1.0, 2.0]]},
            "inputs is a plain value/list, but expecting an object",
        ),
    ],
)
def test_unknown_and_missing_input_names(loaded, toy, body, match):
    _refused(toy if body.get("signature_name") == "pair" else loaded, body, match)


@pytest.mark.parametrize(
    "pixel, match",
    [
        ("a", 'JSON Value: "a" Type: String is not of expected type: uint8'),
        (0.5, "JSON Value: 0.5 Type: Number is not of expected type: uint8 .*integers in \\[0, 255\\]"),
        (1.0, "Type: Number is not of expected type: uint8 .*integers"),
        (256, "JSON Value: 256 Type: Number is not of expected type: uint8 .*\\[0, 255\\]"),
        (-1, "JSON Value: -1 .*uint8"),
        (True, "JSON Value: true Type: True is not of expected type: uint8"),
        (None, "JSON Value: null Type: Null is not of expected type: uint8"),
        ({"x": 1}, "Type: Object is not of expected type: uint8"),
    ],
)
def test_bad_pixels(loaded, pixel, match):
    image = json.loads(json.dumps(IMG))
    image[3][5][0] = pixel
    message = _refused(loaded, {"instances": [IMG, image]}, match)
    assert message.startswith("Failed to process element: 1 of 'instances' list. Error: Invalid argument:")
    _refused(loaded, {"inputs": {"images": [image]}}, match)  # the columnar format too


@pytest.mark.parametrize(
    "signature, inputs, match",
    [
        ("pair", {"a": [[1.0, 2.0]], "b": [2**31]}, "JSON Value: 2147483648 .*not of expected type: int32"),
        ("pair", {"a": [[1.0, 2.0]], "b": [1.5]}, "not of expected type: int32 .*integers"),
        (
            "pair",
            {"a": [[1.0, "2"]], "b": [1]},
            'JSON Value: "2" Type: String is not of expected type: float',
        ),
        (
            "pair",
            {"a": [[2**24, 1.0]], "b": [1]},
            "Cannot convert JSON value: 16777216 to float without loss of precision",
        ),
        ("pair", {"a": [[1e39, 1.0]], "b": [1]}, "Cannot convert JSON value: 1e\\+39 to float without loss"),
        ("pair", {"a": [[True, 1.0]], "b": [1]}, "Type: True is not of expected type: float"),
        (
            "typed",
            {"flags": [1], "big": [1], "text": ["a"], "x": [1.0]},
            "not of expected type: bool .*true or false",
        ),
        (
            "typed",
            {"flags": [True], "big": [2**63], "text": ["a"], "x": [1.0]},
            "not of expected type: int64",
        ),
        (
            "typed",
            {"flags": [True], "big": [1], "text": [1], "x": [1.0]},
            "Type: Number is not of expected type: string",
        ),
        ("typed", {"flags": [True], "big": [1], "text": ["a"], "x": ["1"]}, "not of expected type: double"),
        ("half", [1.0], "Unimplemented: Conversion of JSON Value: 1.0 to type: half"),
    ],
)
def test_wrong_types_and_ranges(toy, signature, inputs, match):
    _refused(toy, {"signature_name": signature, "inputs": inputs}, match)


@pytest.mark.parametrize(
    "body, match",
    [
        ({"inputs": IMG}, r"assertion failed: \[`images` must be uint8 \[batch.*wrong rank\]$"),
        ({"inputs": np.zeros((1, 8, 8, 2), int).tolist()}, "wrong channel count"),
        (
            {
                "signature_name": "image_bytes",
                "instances": [{"b64": base64.b64encode(b"not an image").decode()}],
            },
            "Unknown image file format",
        ),
    ],
)
def test_graph_errors_become_rest_errors(loaded, body, match):
    message = _refused(loaded, body, match)
    assert "[[" not in message and "Op:" not in message and "Graph execution error" not in message


@pytest.mark.parametrize(
    "signature, body, match",
    [
        (
            "shaped",
            {"inputs": [[1.0, 2.0]]},
            r"input 'x' of signature 'shaped' takes shape \[-1,3\], got \[1,2\]",
        ),
        ("shaped", {"instances": [1.0]}, r"takes shape \[-1,3\], got \[1\]"),
        ("scalar", {"instances": [1.0, 2.0]}, "Tensor name: mean has no shape information"),
    ],
)
def test_signature_shapes(toy, signature, body, match):
    _refused(toy, {"signature_name": signature, **body}, match)


# ----------------------------------------------------------------------------- good requests


def test_good_requests_still_answered(loaded, toy):
    images = _images(2, seed=1)
    expected = loaded.signatures["serving_default"](images=tf.constant(images))
    rows = rest.predict(loaded, json.dumps(rest.request(images)))
    np.testing.assert_allclose(
        [p["probabilities"] for p in rows["predictions"]], expected["probabilities"].numpy(), atol=1e-6
    )
    assert rest.predict(loaded, {"instances": [{"images": im} for im in images.tolist()]}) == rows
    assert rest.predict(loaded, json.dumps(rest.request(images)).encode()) == rows
    assert rest.respond(loaded, rest.request(images)) == rows
    columnar = rest.predict(loaded, {"signature_name": "", "inputs": {"images": images.tolist()}})
    assert columnar["outputs"]["classes"] == expected["classes"].numpy().tolist()
    png = [tf.io.encode_png(i).numpy() for i in images]
    by_bytes = rest.predict(loaded, rest.request(image_bytes=tuple(png)))
    assert [p["classes"] for p in by_bytes["predictions"]] == expected["classes"].numpy().tolist()
    # Several inputs, named per row or per column; one output comes back bare.
    pair = {"signature_name": "pair", "instances": [{"a": [1.0, 2.0], "b": 3}, {"b": 0, "a": [0.5, 0.5]}]}
    assert rest.predict(toy, pair) == {"predictions": [6.0, 1.0]}
    assert rest.predict(toy, {"signature_name": "pair", "inputs": {"a": [[1, 2]], "b": [3]}}) == {
        "outputs": [6.0]
    }
    typed = rest.predict(
        toy,
        {
            "signature_name": "typed",
            "inputs": {
                "flags": [True, False],
                "big": [2**40, -1],
                "text": ["é", {"b64": "/w=="}],
                "x": [0.25, float("nan")],
            },
        },
    )
    out = typed["outputs"]
    assert out["count"] == [2**40 + 1, -1] and out["echo"] == ["é", {"b64": "/w=="}]
    assert out["echo_bytes"] == [{"b64": base64.b64encode("é".encode()).decode()}, {"b64": "/w=="}]
    assert out["x2"][0] == 0.5 and np.isnan(out["x2"][1])
    assert json.loads(json.dumps(typed)) is not None  # every answer is JSON


# ----------------------------------------------------------------------------- saved_model


def test_missing_or_wrong_saved_model(exported, tmp_path):
    body = {"instances": [IMG]}
    missing = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere.*does not exist") as info:
        rest.predict(missing, body)
    assert isinstance(info.value, ValueError) and isinstance(info.value, rest.SavedModelError)
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(rest.SavedModelError, match="is a file, not a directory"):
        rest.predict(str(afile), body)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="is not a SavedModel directory: it has no saved_model.pb"):
        rest.predict(tmp_path / "empty", body)
    with pytest.raises(
        FileNotFoundError, match=r"versions 1 of a served model: give one of them, e\.g\. .*1'"
    ):
        rest.predict(os.path.dirname(exported), body)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "saved_model.pb").write_bytes(b"\x00garbage")
    with pytest.raises(rest.SavedModelError, match="could not be loaded as a SavedModel"):
        rest.predict(str(damaged), body)
    with pytest.raises(rest.SavedModelError, match="non-empty path"):
        rest.predict("", body)
    assert rest.predict(exported, body)["predictions"][0]["classes"]  # a path (str or Path) is loaded


@pytest.mark.parametrize(
    "saved_model", [42, None, b"/tmp", {"signatures": {}}, ["serving"], keras.layers.Dense(1)]
)
def test_saved_model_of_a_wrong_type(saved_model):
    with pytest.raises(
        TypeError, match="`saved_model` must be a SavedModel directory or an object from tf.saved_model.load"
    ) as info:
        rest.predict(saved_model, {"instances": [IMG]})
    assert isinstance(info.value, ValueError)
    with pytest.raises(TypeError):
        rest.respond(saved_model, {"instances": [IMG]})  # not a request fault: raised, not answered


# ----------------------------------------------------------------------------- request()


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"images": np.zeros((1, *SHAPE), np.float32)}, TypeError, "`images` must be a uint8 array.*float32"),
        ({"images": np.zeros((1, *SHAPE), int).tolist()}, TypeError, "`images` must be a uint8 array.*int64"),
        ({"images": [[[[1]]], [[[1, 2]]]]}, TypeError, "`images` must be a uint8 array.*numpy cannot"),
        ({"images": "pixels"}, TypeError, "`images` must be a uint8 array"),
        (
            {"images": np.zeros(SHAPE, np.uint8)},
            ValueError,
            r"`images` must be a uint8 array \[batch, height, width, "
            r"channels\], got shape \(8, 8, 1\)",
        ),
        ({"images": np.zeros((1, 1, *SHAPE), np.uint8)}, ValueError, "got shape"),
        ({"images": np.zeros((0, *SHAPE), np.uint8)}, ValueError, "`images` must hold at least one image"),
        ({"images": np.zeros((1, 0, 8, 1), np.uint8)}, ValueError, "non-zero height"),
        ({"image_bytes": b"\x89PNG"}, TypeError, "`image_bytes` must be a list of bytes objects.*got b'"),
        ({"image_bytes": "a.png"}, TypeError, "`image_bytes` must be a list of bytes objects.*got 'a.png'"),
        (
            {"image_bytes": [b"\x89PNG", "b.png"]},
            TypeError,
            "`image_bytes` must be a list.*'b.png' at index 1",
        ),
        ({"image_bytes": []}, ValueError, "`image_bytes` must hold at least one encoded image"),
        ({"image_bytes": [b""]}, ValueError, "empty bytes at index 0"),
        (
            {"images": np.zeros((1, *SHAPE), np.uint8), "signature": 5},
            TypeError,
            "`signature` must be a signature name",
        ),
        ({"image_bytes": [b"x"], "signature": b"image_bytes"}, TypeError, "`signature` must be"),
        ({}, ValueError, "exactly one of `images` and `image_bytes`"),
        ({"images": np.zeros((1, *SHAPE), np.uint8), "image_bytes": [b"x"]}, ValueError, "exactly one"),
    ],
)
def test_request_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        rest.request(**kwargs)


def test_request_bodies():
    body = rest.request(np.zeros((2, *SHAPE), np.uint8), signature="mine")
    assert body["signature_name"] == "mine" and np.array(body["instances"]).shape == (2, *SHAPE)
    assert rest.request(image_bytes=[b"\x00\x01"]) == {
        "signature_name": "image_bytes",
        "instances": [{"b64": "AAE="}],
    }
