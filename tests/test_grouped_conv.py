"""kzoo.layers.GroupedConv2D: TensorFlow's grouped kernel gives keras' Conv2D results
(outputs and gradients, float32 and mixed_bfloat16, strides, dilation, padding), kzoo's
ResNeXts use it for exactly their grouped convolutions, and it saves and reloads as a
kzoo layer with keras' config."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo.layers import GroupedConv2D

TF = keras.backend.backend() == "tensorflow"


def _pair(input_shape, filters, kernel_size, **kwargs):
    """A kzoo and a keras layer with the same (random) weights."""
    ours, theirs = (
        GroupedConv2D(filters, kernel_size, **kwargs),
        keras.layers.Conv2D(filters, kernel_size, **kwargs),
    )
    ours.build(input_shape)
    theirs.build(input_shape)
    rng = np.random.default_rng(0)
    values = [rng.normal(size=v.shape).astype("float32") for v in theirs.weights]
    ours.set_weights(values)
    theirs.set_weights(values)
    return ours, theirs


def _grads(layer, x):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.cast(layer(x), "float32")
        loss = tf.reduce_sum(y * tf.cos(y))
    return [np.asarray(y), *(np.asarray(g) for g in tape.gradient(loss, [x, *layer.trainable_weights]))]


@pytest.mark.skipif(not TF, reason="the TensorFlow kernel is what is tested")
@pytest.mark.parametrize(
    "shape, filters, kwargs",
    [
        ((2, 9, 9, 16), 32, {"groups": 8, "padding": "same", "use_bias": False}),
        ((3, 8, 8, 12), 6, {"groups": 3, "strides": 2, "padding": "same"}),
        ((2, 11, 11, 8), 8, {"groups": 4, "strides": (2, 1), "padding": "valid"}),
        ((2, 10, 10, 8), 16, {"groups": 2, "dilation_rate": 2, "padding": "same"}),
        ((2, 7, 7, 16), 16, {"groups": 16, "padding": "same"}),  # depthwise-like
        ((2, 7, 7, 4), 6, {"groups": 1, "padding": "same"}),
    ],
)
def test_outputs_and_gradients_match_keras(shape, filters, kwargs):
    ours, theirs = _pair(shape, filters, 3, **kwargs)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    for a, b in zip(_grads(ours, x), _grads(theirs, x)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not TF, reason="the TensorFlow kernel is what is tested")
def test_traces_one_conv2d_op_without_an_xla_function():
    import tensorflow as tf

    ours, theirs = _pair((2, 8, 8, 16), 16, 3, groups=4, padding="same")

    def ops_of(layer):
        graph = tf.function(layer).get_concrete_function(tf.TensorSpec((2, 8, 8, 16))).graph
        return [op.type for op in graph.get_operations()]

    assert ops_of(ours).count("Conv2D") == 1 and "StatefulPartitionedCall" not in ops_of(ours)
    assert "Conv2D" not in ops_of(theirs)  # keras' path: a nested jit_compile function


@pytest.mark.skipif(not TF, reason="the TensorFlow kernel is what is tested")
def test_mixed_bfloat16_stays_bfloat16_and_close_to_keras():
    from kzoo.training.precision import dtype_policy

    with dtype_policy("mixed_bfloat16"):
        ours, theirs = _pair((2, 8, 8, 16), 16, 3, groups=4, padding="same")
    x = np.random.default_rng(2).normal(size=(2, 8, 8, 16)).astype("float32")
    assert keras.backend.standardize_dtype(ours(x).dtype) == "bfloat16"
    for a, b in zip(_grads(ours, x), _grads(theirs, x)):
        np.testing.assert_allclose(a, b, rtol=0.05, atol=0.5)


def test_resnext_uses_it_for_its_grouped_convolutions_only():
    model = kzoo.CifarResNeXt(29, cardinality=4, bottleneck_width=16, input_shape=(32, 32, 3))
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    grouped = [layer.name for layer in convs if type(layer) is GroupedConv2D]
    assert grouped == [layer.name for layer in convs if layer.groups > 1]
    assert grouped and all(name.endswith("_conv2") for name in grouped)  # 1x1, grouped 3x3, 1x1
    assert all(layer.groups == 4 for layer in convs if type(layer) is GroupedConv2D)
    assert not any(isinstance(layer, GroupedConv2D) for layer in kzoo.ResNet20().layers)


def test_serialises_as_kzoo_and_keeps_keras_config(tmp_path):
    layer = GroupedConv2D(8, 3, groups=4, padding="same", name="stage1_block1_conv2")
    assert (
        layer.get_config()
        == keras.layers.Conv2D(8, 3, groups=4, padding="same", name="stage1_block1_conv2").get_config()
    )
    inputs = keras.Input((6, 6, 8))
    model = keras.Model(inputs, layer(inputs))
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras")
    assert type(back.layers[-1]) is GroupedConv2D
    x = np.random.default_rng(3).normal(size=(2, 6, 6, 8)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(back(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-6, atol=1e-6
    )
