"""What every kzoo builder shares with keras.applications: the input, the top, the
weights. Checked strictly, so a bad argument fails with a message naming it before
any layer is built."""

import math
import os

import keras
from keras import layers

from kzoo import checks
from kzoo.models import pretrained
from kzoo.models.deep_graphs import deep_graphs

POOLINGS = (None, "avg", "max")


def check_bool(value, arg):
    """A TypeError naming ``arg`` unless ``value`` is True or False."""
    checks.boolean(value, arg)


def check_int(value, arg):
    """A TypeError naming ``arg`` unless ``value`` is an integer (bools are not)."""
    checks.integer(value, arg)


def check_common_args(include_top, weights, pooling, classes, classifier_activation, name):
    """Validate the keras.applications arguments that do not depend on the input."""
    check_bool(include_top, "include_top")
    if weights is not None:
        if not isinstance(weights, (str, os.PathLike)):
            raise TypeError(
                f"`weights` must be None, a path to a weights file or the name of published "
                f"weights, got {weights!r}"
            )
        if pretrained.names_weights(weights):
            raise ValueError(
                f"`weights`={weights!r} names published weights, which load through a named "
                f"builder (kzoo.ResNet20(weights=...)) or kzoo.create_model(tag, pretrained=True). "
                + pretrained.listing()
            )
        if not os.path.isfile(weights):
            raise ValueError(
                f"`weights` must be None (random initialisation), the path of an existing weights "
                f"file or the name of published weights. No file at {os.fspath(weights)!r}"
            )
    if pooling not in POOLINGS:
        raise ValueError(f"`pooling` must be None, 'avg' or 'max', got {pooling!r}")
    checks.integer(classes, "classes", minimum=1)
    if classifier_activation is not None:
        try:
            keras.activations.get(classifier_activation)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"Unknown `classifier_activation`={classifier_activation!r}; expected None, "
                "'softmax' or another keras activation"
            ) from err
    if not isinstance(name, str) or not name:
        raise TypeError(f"`name` must be a non-empty string, got {name!r}")


def resolve_input(
    input_tensor, input_shape, include_top, default_size, min_size, default_channels=3, fixed_size=False
):
    """Return the model's input tensor, after checking its shape as keras.applications does.

    Without ``include_top`` the spatial size may be left unspecified (None); with it,
    kzoo asks for a fixed size, so a model's top always sees the size it was built for.
    ``fixed_size`` asks for one always (a model that flattens its input, like an MLP).
    """
    if keras.config.image_data_format() != "channels_last":
        raise ValueError(
            "kzoo models are channels_last; keras.config.image_data_format() is "
            f"{keras.config.image_data_format()!r}"
        )
    if input_tensor is not None:
        if not keras.backend.is_keras_tensor(input_tensor):
            raise TypeError(
                "`input_tensor` must be a Keras tensor (from keras.Input or a layer), got "
                f"a {type(input_tensor).__name__}"
            )
        tensor_shape = tuple(input_tensor.shape)[1:]
        if input_shape is None:
            input_shape = tensor_shape
    if input_shape is None:
        input_shape = (
            (default_size, default_size, default_channels)
            if include_top or fixed_size
            else (None, None, default_channels)
        )
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"`input_shape` must be a tuple (height, width, channels), got {input_shape!r}")
    input_shape = tuple(input_shape)
    for dim in input_shape:
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int) or dim < 1):
            raise ValueError(f"`input_shape` entries must be positive integers or None, got {input_shape!r}")
    if input_shape[2] is None:
        raise ValueError(f"`input_shape` must give the number of channels, got {input_shape!r}")
    height, width = input_shape[:2]
    if fixed_size and (height is None or width is None):
        raise pretrained.FixedSizeError(
            "This model flattens its input: `input_shape` needs a fixed height and width, "
            f"got {input_shape!r}"
        )
    if include_top and (height is None or width is None):
        raise ValueError(
            "With `include_top=True` the spatial size must be given, got "
            f"input_shape={input_shape!r}; pass e.g. input_shape=({default_size}, "
            f"{default_size}, {input_shape[2]}) or include_top=False"
        )
    for dim in (height, width):
        if dim is not None and dim < min_size:
            raise ValueError(
                f"`input_shape`={input_shape!r} is too small: this model needs height and "
                f"width of at least {min_size}"
            )
    if input_tensor is None:
        return layers.Input(shape=input_shape, name="image"), None
    if tuple(input_tensor.shape)[1:] != input_shape:
        raise ValueError(
            f"`input_shape`={input_shape!r} disagrees with `input_tensor` of shape "
            f"{tuple(input_tensor.shape)}"
        )
    return input_tensor, input_tensor


def top(x, include_top, pooling, classes, classifier_activation):
    """The classifier or pooling head, named as in keras.applications. Under a
    mixed-precision policy the output is float32 (TF Serving's JSON codec, safe softmax)."""
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        return classifier(x, classes, classifier_activation)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x


def classifier(x, classes, classifier_activation):
    """The ``predictions`` layer, computing in float32 under a mixed-precision policy."""
    mixed = keras.config.dtype_policy().compute_dtype != "float32"
    return layers.Dense(
        classes,
        activation=classifier_activation,
        name="predictions",
        **({"dtype": "float32"} if mixed else {}),
    )(x)


def finish(img_input, source_tensor, outputs, name, weights):
    """Create the functional model and load ``weights`` if a path was given."""
    if source_tensor is not None:
        from keras.src.ops import operation_utils

        inputs = operation_utils.get_source_inputs(source_tensor)
    else:
        inputs = img_input
    with deep_graphs():
        model = keras.Model(inputs, outputs, name=name)
    if weights is not None:
        try:
            with pretrained.quiet_weight_loading():
                model.load_weights(os.fspath(weights))
        except Exception as err:  # keras raises many types for a mismatched file
            raise ValueError(
                f"Could not load `weights` from {os.fspath(weights)!r} into {name}: {err}"
            ) from err
    return model


def compute_dtype(model):
    """The dtype ``model``'s layers compute in: that of its first layer that does not
    compute in float32 (a mixed-precision model's bfloat16 or float16), else float32.
    Read from the layers: a model loaded from a ``.keras`` file has a float32 policy of its
    own whatever its layers have."""
    for layer in model._flatten_layers(include_self=False):
        dtype = getattr(layer, "compute_dtype", None)
        if dtype not in (None, "float32") and "float" in str(dtype):
            return str(dtype)
    return "float32"


def trainable_params(model):
    """The number of trainable parameters, the figure papers print (BN's moving
    statistics, which ``count_params`` includes, are not learned)."""
    return sum(math.prod(v.shape) for v in model.trainable_weights)
