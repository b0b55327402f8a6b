"""Patch whitening: a first layer fixed from the training images, as airbench's
(Jordan 2024, "94% on CIFAR-10 in 3.29 seconds"; Page's DAWNBench series) starts its
networks.

``PatchWhitening`` is a ``valid`` k x k convolution whose kernel is not learned: its
filters are the eigenvectors of the covariance of the training images' k x k patches,
each scaled by 1/sqrt(eigenvalue + epsilon), and their negations (2 k^2 C filters). What
comes out is the patches decorrelated and of unit variance, which is what the next
layers would otherwise spend epochs learning to undo. Before ``adapt`` the kernel is the
plain patch extractor (each patch pixel and its negation), so an un-adapted layer is
still a working, deterministic layer. The kernel is a (non-trainable) weight: it saves,
loads and exports with the model; the bias is learned.

``adapt_whitening(model, images)`` adapts every ``PatchWhitening`` of a model (nested
models included) to what reaches it when ``model`` sees ``images``; ``kzoo.train`` does
it (the ``AdaptWhitening`` callback) on the first training images (``WHITENING_IMAGES``, un-augmented) before a fresh
run's first epoch, for the layers not adapted yet (a model passed in adapted, or loaded
with its weights, keeps its own).
"""

import time

import keras
import numpy as np
from keras import ops

from kzoo import checks

# How many training images a run computes its whitening from (airbench's 5,000).
WHITENING_IMAGES = 5000


def _extractor(k, channels):
    """The un-adapted kernel: each pixel of a k x k patch, and its negation."""
    eye = np.eye(k * k * channels, dtype="float32").reshape(k, k, channels, -1)
    return np.concatenate([eye, -eye], axis=-1)


@keras.saving.register_keras_serializable(package="kzoo")
class PatchWhitening(keras.layers.Layer):
    """A fixed ``kernel_size`` x ``kernel_size`` whitening convolution (``valid``
    padding, stride 1) with a learned bias; ``adapt(images)`` sets its filters from the
    images' patches. ``epsilon`` regularises the small eigenvalues (airbench's 5e-4)."""

    def __init__(self, kernel_size=2, epsilon=5e-4, **kwargs):
        super().__init__(**kwargs)
        self.kernel_size = checks.integer(kernel_size, "kernel_size", minimum=1)
        self.epsilon = checks.number(epsilon, "epsilon")
        if self.epsilon < 0:
            raise ValueError(f"`epsilon` must be >= 0, got {epsilon!r}")

    def build(self, input_shape):
        channels = input_shape[-1]
        if channels is None:
            raise ValueError("PatchWhitening needs inputs with a known number of channels")
        k = self.kernel_size
        dims = k * k * channels
        self.filters = 2 * dims
        self.kernel = self.add_weight(
            shape=(k, k, channels, self.filters),
            initializer=keras.initializers.Constant(_extractor(k, channels)),
            trainable=False,
            name="kernel",
        )
        self.bias = self.add_weight(shape=(self.filters,), initializer="zeros", name="bias")

    def call(self, inputs):
        kernel = ops.cast(self.kernel, self.compute_dtype)
        y = ops.conv(inputs, kernel, strides=1, padding="valid")
        return y + ops.cast(self.bias, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        k = self.kernel_size
        spatial = [None if s is None else s - k + 1 for s in input_shape[1:3]]
        return (input_shape[0], *spatial, 2 * k * k * input_shape[-1])

    def whitening_kernel(self, images):
        """The kernel that whitens the k x k patches of ``images`` ([N, H, W, C], what
        reaches this layer), as a numpy array."""
        images = np.asarray(images, dtype="float64")
        k = self.kernel_size
        if images.ndim != 4 or images.shape[1] < k or images.shape[2] < k:
            raise ValueError(
                f"`images` must be a batch [N, H, W, C] of images at least {k}x{k}, got shape {images.shape}"
            )
        channels = images.shape[-1]
        if self.built and channels != self.kernel.shape[2]:
            raise ValueError(
                f"`images` have {channels} channels; {self.name!r} was built for {self.kernel.shape[2]}"
            )
        windows = np.lib.stride_tricks.sliding_window_view(images, (k, k), axis=(1, 2))
        # [N, H', W', C, k, k] -> one row per patch, ordered (row, column, channel) as the kernel
        patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, k * k * channels)
        if len(patches) < 2 or not np.all(np.isfinite(patches)):
            raise ValueError("`images` must be finite and give at least two patches")
        values, vectors = np.linalg.eigh(np.cov(patches, rowvar=False))
        scaled = vectors / np.sqrt(np.maximum(values, 0.0) + self.epsilon)  # column j: filter j
        kernel = scaled.reshape(k, k, channels, -1)
        return np.concatenate([kernel, -kernel], axis=-1).astype("float32")

    def is_adapted(self):
        """Whether ``adapt`` (or loaded weights) changed the kernel from the plain patch
        extractor it starts as."""
        kernel = keras.ops.convert_to_numpy(self.kernel)
        return not np.array_equal(kernel, _extractor(self.kernel_size, kernel.shape[2]))

    def adapt(self, images):
        """Set the filters to whiten the patches of ``images`` (see ``whitening_kernel``)."""
        kernel = self.whitening_kernel(images)
        if not self.built:
            self.build(images.shape)
        self.kernel.assign(kernel)

    def get_config(self):
        return {**super().get_config(), "kernel_size": self.kernel_size, "epsilon": self.epsilon}


def whitening_layers(model):
    """The ``PatchWhitening`` layers of ``model``, nested models included."""
    found = []
    for layer in model.layers:
        if isinstance(layer, PatchWhitening):
            found.append(layer)
        elif isinstance(layer, keras.Model):
            found.extend(whitening_layers(layer))
    return found


def adapt_whitening(model, images, batch_size=500, only_new=False):
    """Adapt every ``PatchWhitening`` of ``model`` (with ``only_new``: those not adapted
    yet) to what reaches it when ``model`` sees ``images`` (a float batch as the model
    takes it), in order, so that a later one sees the earlier ones adapted. Returns how
    many were adapted (0: none)."""
    layers = [w for w in whitening_layers(model) if not (only_new and w.is_adapted())]
    images = np.asarray(images, dtype="float32")
    for layer in layers:
        direct = any(layer.input is x for x in model.inputs)
        seen = images if direct else _inputs_reaching(model, layer, images, batch_size)
        layer.adapt(seen)
    return len(layers)


def _inputs_reaching(model, layer, images, batch_size):
    """What reaches ``layer`` (anywhere in ``model``, nested models included) when
    ``model`` sees ``images``, recorded by a spy on its ``call``."""
    seen = []
    original = layer.call

    def spy(inputs, *args, **kwargs):
        seen.append(keras.ops.convert_to_numpy(inputs).astype("float32"))
        return original(inputs, *args, **kwargs)

    object.__setattr__(layer, "call", spy)
    try:
        for start in range(0, len(images), batch_size):
            model(images[start : start + batch_size], training=False)
    finally:
        object.__delattr__(layer, "call")
    return np.concatenate(seen)


class AdaptWhitening(keras.callbacks.Callback):
    """Adapt the model's un-adapted ``PatchWhitening`` layers to ``images()`` (a function
    giving the batch, called only when needed) as a fresh run begins, after a backup
    would have been restored; a run resumed after its first epoch has its kernel back
    already. The seconds it took go into the first epoch's logs as
    ``whitening_seconds``, so the epoch log keeps them across a resume."""

    def __init__(self, images):
        super().__init__()
        self.images = images
        self.seconds = None

    def on_train_begin(self, logs=None):
        self.seconds = None
        if (getattr(self.model, "_initial_epoch", 0) or 0) > 0:
            return
        if all(layer.is_adapted() for layer in whitening_layers(self.model)):
            return
        start = time.perf_counter()
        adapt_whitening(self.model, self.images(), only_new=True)
        self.seconds = time.perf_counter() - start

    def on_epoch_end(self, epoch, logs=None):
        if self.seconds is not None and logs is not None:
            logs["whitening_seconds"] = self.seconds
            self.seconds = None
