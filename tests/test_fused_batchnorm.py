"""kzoo.layers.BatchNormalization: TensorFlow's fused kernel gives keras'
BatchNormalization's results (outputs, moving statistics, gradients) in training and
inference, in float32 and mixed_bfloat16, and keras' own path runs where the kernel
does not apply."""

import keras
import numpy as np
import pytest

from kzoo.layers import BatchNormalization

TF = keras.backend.backend() == "tensorflow"


def _pair(shape, **kwargs):
    """A kzoo and a keras layer built with the same (random) weights and statistics."""
    rng = np.random.default_rng(0)
    ours, theirs = BatchNormalization(**kwargs), keras.layers.BatchNormalization(**kwargs)
    ours.build(shape)
    theirs.build(shape)
    values = [rng.uniform(0.5, 1.5, v.shape).astype("float32") for v in theirs.weights]
    theirs.set_weights(values)
    ours.set_weights(values)
    return ours, theirs


def _grads(layer, x):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(
            tf.cast(y, "float32") * tf.cos(tf.range(tf.size(y), dtype="float32")[: y.shape[-1]])
        )
    return [np.asarray(g) for g in tape.gradient(loss, [x, *layer.trainable_weights])]


@pytest.mark.parametrize(
    "kwargs", [{}, {"momentum": 0.9, "epsilon": 1e-5}, {"scale": False}, {"center": False}]
)
def test_training_and_inference_match_keras(kwargs):
    x = np.random.default_rng(1).normal(2.0, 3.0, (8, 6, 6, 5)).astype("float32")
    ours, theirs = _pair(x.shape, **kwargs)
    for training in (True, False, True):  # the statistics move twice
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(ours(x, training=training)),
            keras.ops.convert_to_numpy(theirs(x, training=training)),
            rtol=1e-5,
            atol=1e-5,
        )
    for a, b in zip(ours.non_trainable_weights, theirs.non_trainable_weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    assert not np.allclose(ours.moving_variance.numpy(), 1.0)  # the update happened


@pytest.mark.skipif(not TF, reason="the fused kernel is TensorFlow's; elsewhere keras' call runs")
def test_gradients_match_keras():
    x = np.random.default_rng(2).normal(0.0, 2.0, (4, 5, 5, 3)).astype("float32")
    ours, theirs = _pair(x.shape)
    for a, b in zip(_grads(ours, x), _grads(theirs, x)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


@pytest.mark.skipif(not TF, reason="the fused kernel is TensorFlow's")
def test_mixed_bfloat16_stays_bfloat16_and_close_to_keras():
    keras.config.set_dtype_policy("mixed_bfloat16")
    x = np.random.default_rng(3).normal(1.0, 2.0, (8, 6, 6, 4)).astype("float32")
    ours, theirs = _pair(x.shape)
    xb = keras.ops.cast(x, "bfloat16")
    y = ours(xb, training=True)
    assert keras.backend.standardize_dtype(y.dtype) == "bfloat16"
    assert ours.moving_mean.dtype == "float32"
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")),
        keras.ops.convert_to_numpy(keras.ops.cast(theirs(xb, training=True), "float32")),
        atol=0.05,
    )
    np.testing.assert_allclose(ours.moving_mean.numpy(), theirs.moving_mean.numpy(), rtol=1e-2)


def test_frozen_layer_normalises_with_its_moving_statistics():
    x = np.random.default_rng(4).normal(size=(4, 3, 3, 2)).astype("float32")
    ours, theirs = _pair(x.shape)
    ours.trainable = theirs.trainable = False
    before = ours.moving_mean.numpy().copy()
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(x, training=True)),
        keras.ops.convert_to_numpy(theirs(x, training=True)),
        rtol=1e-5,
        atol=1e-6,
    )
    np.testing.assert_array_equal(ours.moving_mean.numpy(), before)


@pytest.mark.parametrize("shape, axis", [((4, 5), -1), ((4, 3, 3, 2), 1), ((2, 3, 4, 4, 2), -1)])
def test_other_shapes_and_axes_run_keras_call(shape, axis):
    x = np.random.default_rng(5).normal(size=shape).astype("float32")
    ours, theirs = _pair(x.shape, axis=axis)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(ours(x, training=True)),
        keras.ops.convert_to_numpy(theirs(x, training=True)),
        rtol=1e-6,
        atol=1e-6,
    )


def test_serialises_as_kzoo_and_keeps_keras_config(tmp_path):
    layer = BatchNormalization(momentum=0.9, epsilon=1e-5, name="stage1_block1_bn1")
    config = layer.get_config()
    assert config == {
        **keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name="stage1_block1_bn1").get_config()
    }
    inputs = keras.Input((6, 6, 3))
    model = keras.Model(inputs, layer(inputs))
    x = np.random.default_rng(6).normal(size=(2, 6, 6, 3)).astype("float32")
    model(x, training=True)
    model.save(tmp_path / "m.keras")
    back = keras.models.load_model(tmp_path / "m.keras")
    assert type(back.layers[-1]) is BatchNormalization
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(back(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-6, atol=1e-6
    )
