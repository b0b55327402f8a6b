import keras
import numpy as np
import pytest

import kzoo

DEEP = {"resnet1202", "resnet1001"}
# The two printed figures kzoo cannot be within 1% of, and what holds instead:
# ResNet-110's "1.7M" is rounded to 0.1M, so the count must lie in its rounding interval;
# ResNet-1001's "10.2M" is not what the described net has: REFERENCE's hand count, 10.33M.
EXCEPTIONS = {"resnet110": (1.65e6, 1.75e6), "resnet1001": (10.325e6, 10.335e6)}


def _check_count(name):
    info = kzoo.model_info(name)
    model = info.build()
    count = kzoo.trainable_params(model)
    assert count == info.expected_params, name
    if name in EXCEPTIONS:
        low, high = EXCEPTIONS[name]
        assert low <= count < high and info.params_note
    elif info.published_params:
        assert abs(count / info.published_params - 1) <= 0.01, (name, count)
    return model


@pytest.mark.parametrize("name", sorted(set(kzoo.list_models()) - DEEP))
def test_parameter_counts(name):
    _check_count(name)


@pytest.mark.parametrize("name", sorted(DEEP))
def test_parameter_counts_deepest(name):
    _check_count(name)


def test_published_counts_within_one_percent_where_exact():
    off = {
        n
        for n in kzoo.list_models()
        if kzoo.model_info(n).published_params
        and abs(kzoo.model_info(n).expected_params / kzoo.model_info(n).published_params - 1) > 0.01
    }
    assert off == set(EXCEPTIONS)


def test_shortcut_b_adds_projections():
    a = kzoo.trainable_params(kzoo.ResNet20())
    b = kzoo.trainable_params(kzoo.ResNet20(shortcut="B"))
    # two 1x1 projections (16->32, 32->64) with BN: 512 + 64 + 2048 + 128
    assert b - a == 2752


def test_builder_signature_matches_keras_applications():
    import inspect

    keras_params = list(inspect.signature(keras.applications.ResNet50).parameters)
    for builder in (kzoo.ResNet20, kzoo.ResNet164, kzoo.ResNet50, kzoo.ResNet50V2):
        params = list(inspect.signature(builder).parameters)
        assert params[: len(keras_params)] == keras_params
        assert inspect.signature(builder).parameters["weights"].default is None


def test_input_variants():
    m = kzoo.ResNet20(input_shape=(28, 28, 1), classes=7)
    assert m.output_shape == (None, 7) and m.input_shape == (None, 28, 28, 1)
    m = kzoo.ResNet20(include_top=False)
    assert m.output_shape == (None, None, None, 64)
    m = kzoo.ResNet20(include_top=False, pooling="max", input_shape=(None, None, 3))
    assert m.output_shape == (None, 64) and m.layers[-1].name == "max_pool"
    m = kzoo.ResNet50(include_top=False, pooling="avg", input_shape=(64, 64, 3))
    assert m.output_shape == (None, 2048)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0)(inp)
    m = kzoo.ResNet20(input_tensor=x, classifier_activation=None)
    assert m.inputs[0] is inp and m.output.shape == (None, 10)
    m = kzoo.ResNet56(input_shape=(8, 8, 3))
    assert m.output_shape == (None, 10)


def test_weights_file_round_trip(tmp_path):
    a = kzoo.ResNet20(input_shape=(16, 16, 3))
    path = tmp_path / "r20.weights.h5"
    a.save_weights(path)
    b = kzoo.ResNet20(input_shape=(16, 16, 3), weights=str(path))
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_array_equal(a.predict(x, verbose=0), b.predict(x, verbose=0))
    with pytest.raises(ValueError, match="weights"):
        kzoo.ResNet32(input_shape=(16, 16, 3), weights=str(path))


@pytest.mark.parametrize(
    "builder, kwargs, err, match",
    [
        (kzoo.CifarResNet, {"depth": 21}, ValueError, r"depth.*6n\+2"),
        (kzoo.CifarResNet, {"depth": 57, "bottleneck": True}, ValueError, r"depth.*9n\+2"),
        (kzoo.CifarResNet, {"depth": 2}, ValueError, "depth"),
        (kzoo.CifarResNet, {"depth": 20.0}, TypeError, "depth"),
        (kzoo.CifarResNet, {"depth": 20, "shortcut": "C"}, ValueError, "shortcut"),
        (kzoo.CifarResNet, {"depth": 20, "preact": "yes"}, TypeError, "preact"),
        (kzoo.ImageNetResNet, {"depth": 34}, ValueError, "depth"),
        (kzoo.ResNet20, {"input_shape": (4, 4, 3)}, ValueError, "at least 8"),
        (kzoo.ResNet50, {"input_shape": (16, 16, 3)}, ValueError, "at least 32"),
        (kzoo.ResNet20, {"input_shape": (None, None, 3)}, ValueError, "include_top"),
        (kzoo.ResNet20, {"input_shape": (32, 32)}, ValueError, "input_shape"),
        (kzoo.ResNet20, {"input_shape": (32, 32, 0)}, ValueError, "input_shape"),
        (kzoo.ResNet20, {"input_shape": (32, 32, None)}, ValueError, "channels"),
        (kzoo.ResNet20, {"classes": 0}, ValueError, "classes"),
        (kzoo.ResNet20, {"classes": -3}, ValueError, "classes"),
        (kzoo.ResNet20, {"classes": 2.5}, TypeError, "classes"),
        (kzoo.ResNet20, {"pooling": "mean", "include_top": False}, ValueError, "pooling"),
        (kzoo.ResNet20, {"weights": "imagenet"}, ValueError, "weights"),
        (kzoo.ResNet20, {"weights": "/no/such/file.weights.h5"}, ValueError, "weights"),
        (kzoo.ResNet20, {"weights": 3}, TypeError, "weights"),
        (kzoo.ResNet20, {"include_top": "yes"}, TypeError, "include_top"),
        (kzoo.ResNet20, {"classifier_activation": "softmaxx"}, ValueError, "classifier_activation"),
        (kzoo.ResNet20, {"name": ""}, TypeError, "name"),
        (kzoo.ResNet20, {"input_tensor": [1, 2]}, TypeError, "input_tensor"),
        (kzoo.ResNet20, {"input_tensor": np.zeros((1, 32, 32, 3))}, TypeError, "input_tensor.*Keras tensor"),
        (
            kzoo.ResNet20,
            {"input_tensor": keras.Input((32, 32, 3)), "input_shape": (16, 16, 3)},
            ValueError,
            "disagrees",
        ),
        (kzoo.ResNet20, {"depht": 3}, TypeError, "depht"),
        (kzoo.ResNet50, {"shortcut": "A"}, TypeError, "shortcut"),
    ],
)
def test_bad_arguments(builder, kwargs, err, match):
    with pytest.raises(err, match=match):
        builder(**kwargs)


def test_unknown_builder_argument_names_the_model_and_its_arguments():
    with pytest.raises(TypeError, match=r"vgg_style31: .*'depth'; it takes include_top, .*erase, proportion"):
        kzoo.create_model("vgg_style31", depth=19)


BUILDERS = [
    name
    for name in kzoo.models.__all__
    if name[0].isupper()
    and callable(getattr(kzoo.models, name))
    and not isinstance(getattr(kzoo.models, name), type)
]


@pytest.mark.parametrize("name", BUILDERS)
def test_help_documents_every_argument(name):
    """``help(kzoo.ResNet20)`` is complete on its own, as keras.applications' builders'
    are: every argument of the signature is named in the docstring's Args section."""
    import inspect
    import re

    builder = getattr(kzoo.models, name)
    doc = inspect.getdoc(builder)
    assert "Args:" in doc, name
    args = doc[doc.index("Args:") :]
    missing = [p for p in inspect.signature(builder).parameters if not re.search(rf"\b{p}\b", args)]
    assert missing == [], f"{name}'s docstring does not document {missing}"
