"""Tracing a graph converters can read: grouped convolutions as plain ``Conv2D`` ops.

Keras' TensorFlow backend (``keras.src.backend.tensorflow.nn.conv``, Keras 3.15) wraps a
grouped convolution (input channels != the kernel's) in a ``tf.function(jit_compile=True)``
because TF once had no CPU kernel for it. tf2onnx cannot see into that nested, XLA-marked
function and leaves a ``StatefulPartitionedCall`` that ONNX Runtime refuses
(onnx/tensorflow-onnx#2099). Traced inside ``plain_grouped_convolutions()`` the same
convolution is one ``tf.nn.convolution``, which tf2onnx turns into an ONNX ``Conv`` with
``group`` and which TensorFlow 2.21 runs on CPU too. This touches Keras' private code:
``kzoo._compat.KERAS_TESTED`` is the version it was checked against.
"""

import contextlib


@contextlib.contextmanager
def plain_grouped_convolutions():
    """Within the block, Keras' TF backend traces every convolution as ``tf.nn.convolution``."""
    import keras

    if keras.backend.backend() != "tensorflow":
        yield
        return
    from keras.src.backend.config import standardize_data_format
    from keras.src.backend.tensorflow import nn

    original = nn.conv

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        import tensorflow as tf

        data_format = standardize_data_format(data_format)
        channels = inputs.shape[-1] if data_format == "channels_last" else inputs.shape[1]
        if channels == kernel.shape[-2] or len(inputs.shape) != 4:
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        return tf.nn.convolution(
            inputs,
            kernel,
            strides,
            padding.upper(),
            data_format="NHWC" if data_format == "channels_last" else "NCHW",
            dilations=dilation_rate,
        )

    nn.conv = conv
    try:
        yield
    finally:
        nn.conv = original
