"""``kzoo.adapt``: a model made ready to fine-tune on other data: a new classifier head for
another class count (timm's ``reset_classifier``, keras-hub's ``num_classes``) and a new
input shape, the first convolution adapted to another channel count (timm's
``in_chans``: an RGB-pretrained stem sums its kernel over the colours for a grayscale
input; a grayscale one repeats its kernel, scaled, for RGB)."""

import keras
import numpy as np

from kzoo import checks
from kzoo.models import common
from kzoo.models.deep_graphs import deep_graphs
from kzoo.transform.graph import check_model, is_model_with_graph, layer_graph
from kzoo.transform.rebuild import Rebuilder, as_functional, free_name

# What may stand between the classifier and the model's output, and is replaced with it.
_HEAD_TAIL = (
    keras.layers.Activation,
    keras.layers.Softmax,
    keras.layers.Dropout,
    keras.layers.Identity,
)
# Layers between the input and the first convolution whose weights or settings are per
# input channel: adapted with it.
_CHANNELWISE = (
    keras.layers.Normalization,
    keras.layers.Rescaling,
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
)
_KERNELS = (keras.layers.Conv1D, keras.layers.Conv2D, keras.layers.Conv3D)


def _per_channel(values, old, new):
    """A per-channel vector for ``new`` channels: the mean of ``old`` for one, else repeated."""
    values = np.asarray(values)
    if values.shape[-1:] != (old,):
        return values
    if new == 1:
        return values.mean(axis=-1, keepdims=True)
    reps = -(-new // old)
    return np.concatenate([values] * reps, axis=-1)[..., :new]


def adapt_kernel(kernel, new):
    """A convolution kernel (..., in, out) for ``new`` input channels, as timm's
    ``adapt_input_conv``: one channel sums the colours' kernels (a grey image is their
    sum's response); more channels repeat the kernel cyclically, scaled by old/new so
    the response to a uniform image is kept."""
    old = kernel.shape[-2]
    if new == old:
        return kernel
    if new == 1:
        return kernel.sum(axis=-2, keepdims=True)
    reps = -(-new // old)
    return np.concatenate([kernel] * reps, axis=-2)[..., :new, :] * (old / new)


def _first_layers(model):
    """The layers from the input to the first layer that mixes channels (a convolution),
    through weight-free layers: ``(channel-wise layers, first kernels)``."""
    calls = layer_graph(model)
    channelwise, kernels = [], []
    stack = [o for c in calls if c.is_input for o in c.outputs]
    seen = set()
    while stack:
        c = calls[stack.pop()]
        if c.index in seen:
            continue
        seen.add(c.index)
        layer = c.layer
        if isinstance(layer, _KERNELS) and not isinstance(
            layer, (keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
        ):
            if getattr(layer, "groups", 1) != 1:
                raise ValueError(
                    f"the first convolution of {model.name!r}, {c.name!r}, is grouped; kzoo.adapt cannot "
                    "change its input channels"
                )
            kernels.append(layer)
            continue
        if isinstance(layer, _CHANNELWISE):
            channelwise.append(layer)
        elif getattr(layer, "weights", None):
            raise ValueError(
                f"{model.name!r} reads its input through {c.name!r} ({type(layer).__name__}), whose "
                "weights are per input channel and which is not a convolution; kzoo.adapt can change "
                "the channels of a model whose first weighted layer is a convolution"
            )
        stack.extend(c.outputs)
    return channelwise, kernels


def _head(model):
    """``(classifier layer, the tensor it reads)`` when ``model`` ends in a Dense
    classifier (behind its softmax or dropout), else None."""
    tensor = model.outputs[0]
    while True:
        layer = tensor._keras_history.operation
        node = getattr(layer, "_inbound_nodes", [None])[tensor._keras_history.node_index]
        if isinstance(layer, keras.layers.Dense):
            return layer, node.input_tensors[0]
        tail = isinstance(layer, _HEAD_TAIL) and (
            not isinstance(layer, keras.layers.Activation)
            or getattr(layer.activation, "__name__", "") in ("softmax", "linear", "sigmoid")
        )
        if not tail:
            return None
        tensor = node.input_tensors[0]


def check_resize(resize):
    """``resize`` is None or (height, width), both positive."""
    if resize is None:
        return
    if not isinstance(resize, (tuple, list)) or len(resize) != 2:
        raise ValueError(f"`resize` must be (height, width), got {resize!r}")
    for d in resize:
        checks.integer(d, "resize", minimum=1)


def _shape(input_shape, model):
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != len(model.input_shape) - 1:
        raise ValueError(
            f"`input_shape` must be a tuple of {len(model.input_shape) - 1} sizes (height, width, channels) "
            f"like the input of {model.name!r}, {tuple(model.input_shape[1:])}; got {input_shape!r}"
        )
    for d in input_shape[:-1]:
        if d is not None:
            checks.integer(d, "input_shape", minimum=1)
    checks.integer(input_shape[-1], "input_shape's channels", minimum=1)
    return tuple(input_shape)


def adapt(model, classes=None, input_shape=None, resize=None, classifier_activation="softmax"):
    """``model`` made ready to fine-tune: a new model whose every layer it keeps holds the
    original's weights.

    Args:
        model: a functional (or Sequential) Keras model, a placed one included, with one
            image input (channels last).
        classes: the class count of the new classifier. A model ending in a ``Dense``
            classifier (behind its softmax or dropout) gets a new one, freshly initialised,
            under that layer's name, when the count differs (the same count keeps it); a
            model without one (``include_top=False``) gets global average pooling (for
            a feature map) and a ``Dense`` named ``predictions``. None keeps the head.
        input_shape: the new ``(height, width, channels)`` (height and width may be None).
            Another channel count adapts the first convolution (timm's ``in_chans``: a
            grayscale input sums an RGB kernel over its colours) and the per-channel
            preprocessing before it (``Normalization``, ``Rescaling``: their mean); a size
            the network cannot take (an empty feature map, a Dense after Flatten) is refused.
        resize: ``(height, width)`` the images are resized to (bilinear, a ``Resizing``
            layer named ``resize`` after the input) before the network: small images
            (Fashion-MNIST's 28x28) into a network that needs larger ones (MobileNetV2
            takes 32x32 at least). Needs ``input_shape`` for the channels.
        classifier_activation: of a new classifier (``"softmax"``, or None for logits); it
            computes in float32 under a mixed-precision policy.
    """
    check_model(model)
    if resize is not None and input_shape is None:
        raise ValueError("`resize` needs `input_shape` (the images' own shape, with their channels)")
    if classes is None and input_shape is None:
        raise ValueError("kzoo.adapt needs `classes` or `input_shape` (or both): there is nothing to change")
    common.check_common_args(
        True, None, None, 1 if classes is None else classes, classifier_activation, model.name
    )
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ValueError(
            f"kzoo.adapt takes a model with one input and one output; {model.name!r} has "
            f"{len(model.inputs)} and {len(model.outputs)}"
        )
    model = as_functional(model)
    head = _head(model) if classes is not None else None
    new_head = head is not None and head[0].units != classes
    if classes is not None and head is None:
        new_head = True
    trunk = model
    if new_head and head is not None:
        with deep_graphs():
            trunk = keras.Model(model.input, head[1], name=model.name)
    weights_fn, config_fn, shapes, prefix = None, None, None, None
    check_resize(resize)
    if input_shape is not None:
        input_shape = _shape(input_shape, model)
        shapes = [(None, *input_shape)]
        if resize is not None:

            def prefix(tensor):
                return keras.layers.Resizing(
                    *resize, name=free_name({layer.name for layer in model.layers}, "resize")
                )(tensor)

        old, new = model.input_shape[-1], input_shape[-1]
        if old != new:
            channelwise, kernels = _first_layers(trunk)
            if not kernels:
                raise ValueError(
                    f"{model.name!r} has no convolution reading its input, so kzoo.adapt cannot change "
                    f"its channels from {old} to {new}"
                )
            firsts = {id(layer) for layer in kernels}
            chans = {id(layer) for layer in channelwise}

            def weights_fn(old_layer, new_layer, weights):
                if id(old_layer) in firsts:
                    return [adapt_kernel(weights[0], new), *weights[1:]]
                if id(old_layer) in chans:
                    return [_per_channel(w, old, new) for w in weights]
                return weights

            def config_fn(layer, config):
                if id(layer) not in chans:
                    return config
                for key in ("scale", "offset", "mean", "variance"):
                    value = config.get(key)
                    if isinstance(value, (list, tuple)) and len(value) == old:
                        config[key] = _per_channel(value, old, new).tolist()
                return config

    rebuilt = Rebuilder(weights_fn=weights_fn, config_fn=config_fn).rebuild(trunk, shapes, prefix)
    _check_nonempty(rebuilt, input_shape)
    if not new_head:
        return rebuilt
    x = rebuilt.outputs[0]
    name = head[0].name if head is not None else "predictions"
    mixed = common.compute_dtype(rebuilt) != "float32"
    if len(x.shape) > 2:
        pool = {3: keras.layers.GlobalAveragePooling1D, 4: keras.layers.GlobalAveragePooling2D}.get(
            len(x.shape)
        )
        if pool is None:
            raise ValueError(f"kzoo.adapt cannot pool {model.name!r}'s output of shape {tuple(x.shape)}")
        x = pool(name=free_name({layer.name for layer in rebuilt.layers}, "avg_pool"))(x)
    y = keras.layers.Dense(
        classes, activation=classifier_activation, name=name, **({"dtype": "float32"} if mixed else {})
    )(x)
    with deep_graphs():
        return keras.Model(rebuilt.input, y, name=model.name)


def _check_nonempty(model, input_shape):
    """Refuse a size at which some feature map is empty (a network too deep for it)."""
    for call in layer_graph(model):
        if call.layer is None or is_model_with_graph(call.layer):
            continue
        for node in call.layer._inbound_nodes:
            for t in node.outputs:
                if any(d == 0 for d in t.shape[1:]):
                    raise ValueError(
                        f"`input_shape`={input_shape!r} is too small for {model.name!r}: the output of "
                        f"{call.name!r} would be empty ({tuple(t.shape)})"
                    )
