import keras
import numpy as np
import pytest
import tensorflow as tf

from kzoo.layers import FReLU, ZeroPadShortcut


def test_frelu_value_and_initial_bias():
    layer = FReLU()
    x = np.array([[-2.0, -0.5, 0.0, 0.5, 3.0]], dtype="float32")
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y, np.maximum(x, 0) - 1.0)
    assert layer.bias.shape == ()
    assert float(layer.bias.numpy()) == -1.0
    assert len(layer.trainable_weights) == 1


def test_frelu_gradient_wrt_bias_is_one_per_element():
    layer = FReLU(bias_initializer=0.25)
    x = tf.random.normal((3, 4, 5, 6))
    with tf.GradientTape() as tape:
        y = layer(x)
        loss = tf.reduce_sum(y)
    (grad,) = tape.gradient(loss, [layer.bias])
    assert float(grad) == pytest.approx(x.shape.num_elements())
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(layer(x))
    np.testing.assert_array_equal(tape.gradient(loss, x).numpy(), (x.numpy() > 0).astype("float32"))


def test_frelu_per_channel():
    layer = FReLU(per_channel=True, bias_initializer=-0.5)
    y = layer(np.zeros((2, 3, 3, 7), "float32"))
    assert layer.bias.shape == (7,)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(y), -0.5)


def test_frelu_config_round_trip():
    layer = FReLU(per_channel=True, bias_initializer=-0.3, name="f")
    clone = FReLU.from_config(layer.get_config())
    assert clone.per_channel and clone.name == "f"
    clone.build((None, 4))
    np.testing.assert_allclose(clone.bias.numpy(), -0.3)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(restored, FReLU)


@pytest.mark.parametrize("policy, compute", [("mixed_float16", "float16"), ("mixed_bfloat16", "bfloat16")])
def test_frelu_mixed_precision(policy, compute):
    keras.config.set_dtype_policy(policy)
    layer = FReLU()
    y = layer(np.ones((2, 3), "float32"))
    assert layer.bias.dtype == "float32"
    assert keras.backend.standardize_dtype(y.dtype) == compute
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.cast(y, "float32")), 0.0)


@pytest.mark.parametrize(
    "kwargs, err",
    [
        ({"per_channel": "yes"}, TypeError),
        ({"bias_initializer": "not-an-initializer"}, ValueError),
        ({"bias_initializer": True}, TypeError),
        ({"bias_initializer": float("nan")}, ValueError),
        ({"bias_initializer": float("-inf")}, ValueError),
    ],
)
def test_frelu_bad_arguments(kwargs, err):
    with pytest.raises(err, match=next(iter(kwargs))):
        FReLU(**kwargs)


def test_zero_pad_shortcut_subsamples_and_pads():
    x = np.arange(2 * 4 * 4 * 3, dtype="float32").reshape(2, 4, 4, 3)
    y = keras.ops.convert_to_numpy(ZeroPadShortcut(8, 2)(x))
    assert y.shape == (2, 2, 2, 8)
    np.testing.assert_array_equal(y[..., :3], x[:, ::2, ::2, :])
    np.testing.assert_array_equal(y[..., 3:], 0)
    assert ZeroPadShortcut(8, 2).compute_output_shape((None, 7, 7, 3)) == (None, 4, 4, 8)
