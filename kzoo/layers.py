"""Custom Keras layers of kzoo: FReLU, the parameter-free option-A shortcut, stochastic
depth's addition, batch normalisation with TensorFlow's fused kernel, a fixed scaling and
grouped convolution with TensorFlow's own kernel.

All are registered under the ``kzoo`` package so a ``.keras`` file that uses them
reloads wherever ``kzoo`` is imported.
"""

import keras
from keras import ops

from kzoo import checks


def _initializer(value, argname):
    """A float becomes a constant initializer; anything else goes through keras."""
    if isinstance(value, bool):
        raise TypeError(f"`{argname}` must be a float or a keras initializer, got {value!r}")
    if isinstance(value, (int, float)):
        return keras.initializers.Constant(checks.number(value, argname))
    try:
        return keras.initializers.get(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"`{argname}` must be a float or a keras initializer, got {value!r}") from err


@keras.saving.register_keras_serializable(package="kzoo")
class FReLU(keras.layers.Layer):
    """Flexible ReLU (Qiu & Cai): ``relu(x) + b`` with a learnable rectified point.

    The paper (and its official Torch code) uses **one scalar per layer**, initialised
    to -1; ``per_channel=True`` learns one value per channel of the last axis instead.
    The bias is created without a dtype, so under a mixed-precision policy it stays
    float32 and is cast to the compute dtype inside ``call``.

    Not to be confused with the 2020 "funnel activation", also called FReLU.
    """

    def __init__(self, per_channel=False, bias_initializer=-1.0, bias_regularizer=None, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(per_channel, bool):
            raise TypeError(f"`per_channel` must be a bool, got {per_channel!r}")
        self.per_channel = per_channel
        self.bias_initializer = _initializer(bias_initializer, "bias_initializer")
        try:
            self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"`bias_regularizer` must be a keras regularizer, got {bias_regularizer!r}"
            ) from err
        self.supports_masking = True

    def build(self, input_shape):
        if self.per_channel:
            channels = input_shape[-1]
            if channels is None:
                raise ValueError(
                    f"FReLU(per_channel=True) needs a known last dimension, got input shape {input_shape}"
                )
            shape = (channels,)
        else:
            shape = ()
        self.bias = self.add_weight(
            name="bias",
            shape=shape,
            initializer=self.bias_initializer,
            regularizer=self.bias_regularizer,
            trainable=True,
        )

    def call(self, inputs):
        return ops.relu(inputs) + ops.cast(self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            per_channel=self.per_channel,
            bias_initializer=keras.initializers.serialize(self.bias_initializer),
            bias_regularizer=keras.regularizers.serialize(self.bias_regularizer),
        )
        return config


@keras.saving.register_keras_serializable(package="kzoo")
class ZeroPadShortcut(keras.layers.Layer):
    """He et al.'s option-A shortcut: subsample by ``strides`` and append zero channels.

    It adds no parameter, which is why the published CIFAR ResNet counts (0.27M for
    ResNet-20) use it. The zeros go after the input channels, as in fb.resnet.torch.
    """

    def __init__(self, filters, strides=1, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.strides = int(strides)

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is not None and channels > self.filters:
            raise ValueError(f"ZeroPadShortcut cannot shrink {channels} channels to {self.filters}")

    def call(self, inputs):
        x = inputs
        if self.strides > 1:
            x = x[:, :: self.strides, :: self.strides, :]
        extra = self.filters - x.shape[-1]
        if extra:
            x = ops.pad(x, [[0, 0], [0, 0], [0, 0], [0, extra]])
        return x

    def compute_output_shape(self, input_shape):
        def out(size):
            return None if size is None else -(-size // self.strides)

        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), self.filters)

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, strides=self.strides)
        return config


@keras.saving.register_keras_serializable(package="kzoo")
class StochasticDepth(keras.layers.Layer):
    """The residual addition of a block with stochastic depth (Huang et al. 2016).

    Called on ``[shortcut, residual]``. In training the residual branch survives the
    whole mini-batch with probability ``survival_probability`` and is dropped otherwise;
    at inference it is always there, scaled by that probability (the paper's
    recalibration), so predictions are deterministic.
    """

    def __init__(self, survival_probability, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.survival_probability = checks.number(
            survival_probability, "survival_probability", minimum=0, maximum=1, min_open=True
        )
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=False):
        shortcut, residual = inputs
        p = self.survival_probability
        if training:
            keep = keras.random.uniform((), seed=self.seed_generator) < p
            return shortcut + ops.cast(keep, residual.dtype) * residual
        return shortcut + ops.cast(p, residual.dtype) * residual

    def compute_output_shape(self, input_shape):
        return input_shape[0]

    def get_config(self):
        config = super().get_config()
        config.update(survival_probability=self.survival_probability, seed=self.seed)
        return config


@keras.saving.register_keras_serializable(package="kzoo")
class BatchNormalization(keras.layers.BatchNormalization):
    """keras' ``BatchNormalization`` (same arguments, weights and results) that runs
    TensorFlow's fused kernel (``FusedBatchNormV3``, oneDNN's on CPU) on the TensorFlow
    backend, for 4-D inputs normalised over the last axis.

    Keras 3 computes batch normalisation from a dozen separate element-wise ops and
    reductions in float32, forward and backward; with convolutions on oneDNN that is a
    third of ResNet-20's float32 training step on a CPU, and over half of its
    mixed_bfloat16 one (the casts to and from float32 included), while the fused kernel
    takes bfloat16 and float16 inputs as they are (statistics in float32). Other
    backends, other shapes or axes, masks and renormalisation run keras' own ``call``.
    The batch variance kept in the moving average is keras' (biased) one.

    ``bias_scale`` (default 1: keras' layer exactly) stores the offset divided by it, so
    SGD moves the offset ``bias_scale**2`` times faster than the other weights (and weight
    decay pulls it ``bias_scale**2`` times less): airbench's higher learning rate for BN
    biases, as a reparametrisation that any optimizer and every backend keep.
    """

    def __init__(self, *args, bias_scale=1.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.bias_scale = checks.number(bias_scale, "bias_scale")
        if self.bias_scale <= 0:
            raise ValueError(f"`bias_scale` must be positive, got {bias_scale!r}")

    def get_config(self):
        config = super().get_config()
        if self.bias_scale != 1.0:
            config["bias_scale"] = self.bias_scale
        return config

    def _fused(self, inputs, mask):
        if keras.backend.backend() != "tensorflow" or mask is not None or self.renorm:
            return False
        if len(inputs.shape) != 4 or self.axis not in (3, -1):
            return False
        return keras.backend.standardize_dtype(inputs.dtype) in ("float32", "bfloat16", "float16")

    def call(self, inputs, training=None, mask=None):
        if not self._fused(inputs, mask):
            y = super().call(inputs, training=training, mask=mask)
            if self.center and self.bias_scale != 1.0:  # keras' call added beta once
                y = y + ops.cast(self.beta * (self.bias_scale - 1.0), y.dtype)
            return y
        import tensorflow as tf

        channels = inputs.shape[-1]
        gamma = tf.cast(self.gamma, "float32") if self.scale else tf.ones([channels], "float32")
        beta = (
            tf.cast(self.beta, "float32") * self.bias_scale
            if self.center
            else tf.zeros([channels], "float32")
        )
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                inputs, gamma, beta, epsilon=self.epsilon, is_training=True
            )[:3]
            # The kernel returns the unbiased (n - 1) variance for the running estimate.
            n = tf.cast(tf.reduce_prod(tf.shape(inputs)[:3]), "float32")
            variance = variance * (n - 1.0) / tf.maximum(n, 1.0)
            self.moving_mean.assign(self.moving_mean * self.momentum + mean * (1.0 - self.momentum))
            self.moving_variance.assign(
                self.moving_variance * self.momentum + variance * (1.0 - self.momentum)
            )
        else:
            y = tf.compat.v1.nn.fused_batch_norm(
                inputs,
                gamma,
                beta,
                mean=tf.cast(self.moving_mean, "float32"),
                variance=tf.cast(self.moving_variance, "float32"),
                epsilon=self.epsilon,
                is_training=False,
            )[0]
        return tf.cast(y, self.compute_dtype)


@keras.saving.register_keras_serializable(package="kzoo")
class Scale(keras.layers.Layer):
    """Multiply by a fixed ``factor`` (airbench's 1/9 before the classifier, which sets the
    logits' temperature). keras' ``Rescaling`` does the same but is a tf.data layer that
    needs TensorFlow under ``fit`` on the other backends."""

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = checks.number(factor, "factor")

    def call(self, inputs):
        return inputs * ops.cast(self.factor, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


@keras.saving.register_keras_serializable(package="kzoo")
class GroupedConv2D(keras.layers.Conv2D):
    """keras' ``Conv2D`` (same arguments, weights and results) whose grouped convolution
    (``groups`` > 1) runs as TensorFlow's own ``Conv2D`` op on the TensorFlow backend.

    Keras 3's TF backend compiles every grouped convolution with XLA, because TensorFlow
    once had no CPU kernel for it. XLA's CPU backward pass for it is very slow: a 3x3,
    512-channel, 8-group convolution's training step took 3.6 s there against 0.083 s in
    TensorFlow 2.21's kernel (``benchmarks/grouped_conv.py``), which left ResNeXt-29
    training at under 1 image/s on two cores. The plain op is also one ONNX ``Conv`` with
    ``group`` for tf2onnx. Other backends, ``groups=1`` and channels_first (no CPU kernel
    in TensorFlow) run keras' own ``convolution_op``.
    """

    def convolution_op(self, inputs, kernel):
        if keras.backend.backend() != "tensorflow" or self.groups == 1 or self.data_format != "channels_last":
            return super().convolution_op(inputs, kernel)
        import tensorflow as tf

        return tf.nn.convolution(
            inputs,
            kernel,
            strides=list(self.strides),
            padding=self.padding.upper(),
            dilations=list(self.dilation_rate),
        )
