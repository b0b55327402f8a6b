"""Two nets of single-activation modules that are not CIFAR stage nets: FReLU's SmallNet
(Qiu & Cai, Table 3) and EraseReLU's 12-layer MLP (Dong et al., Sec. 3.2).

Each module has one activation slot ("last", ``kzoo.models.blocks.single``), so
``erase="last", proportion=p`` removes the nonlinearity of the fraction p of modules,
counted from 1 over the network.
"""

import functools

from keras import layers

from kzoo.models import assembly, common
from kzoo.models.blocks.conv_bn import bn, conv
from kzoo.models.blocks.residual import check_options
from kzoo.models.blocks.single import SINGLE
from kzoo.models.blocks.stems import CIFAR_MIN_SIZE
from kzoo.models.named_builders import member_of
from kzoo.models.plain import ERASE_PAPER, FRELU_PAPER, PLACEMENT_OPTIONS, single_relu_facts
from kzoo.models.registry import register_model
from kzoo.placement import ActivationPlacement

SMALLNET_FILTERS = (32, 64, 128)


@register_model(kwargs={"batch_norm": False}, **single_relu_facts(FRELU_PAPER, 100, 1_193_636))
def SmallNet(
    batch_norm=False,
    activation="relu",
    erase=None,
    proportion=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=100,
    classifier_activation="softmax",
    name=None,
):
    """FReLU's SmallNet (Table 3): three 3x3 convolutions (32, 64, 128) each followed by
    (BN +) activation, 2x2 max-pool and 20% dropout, then a 512-unit linear layer with
    (BN +) activation and 50% dropout, and the classifier.

    Four modules carry an activation (the three convolutions and the 512-unit layer).

    Args:
        batch_norm: BN before each activation (``SmallNetBN``).
        activation, erase, proportion: the placement (``kzoo.placement``), one
            ``last`` slot per module.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``; default input
            (32, 32, 3), 100 classes (CIFAR-100), smallest input 8; ``include_top=False``
            returns the convolutional features.
    """
    common.check_bool(batch_norm, "batch_norm")
    return assembly.assemble(
        placement=ActivationPlacement(activation, erase, proportion),
        slots=SINGLE,
        blocks_per_stage=(3,),
        modules=4,
        block=functools.partial(_smallnet_conv, batch_norm=batch_norm),
        top=functools.partial(_smallnet_top, batch_norm=batch_norm),
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name or ("smallnet_bn" if batch_norm else "smallnet"),
        default_size=32,
        min_size=CIFAR_MIN_SIZE,
    )


def _smallnet_conv(x, position, act, *, batch_norm):
    """SmallNet's convolution module ``i``: conv (BN) act, max-pool, dropout."""
    i = position.number
    x = conv(SMALLNET_FILTERS[i - 1], 3, use_bias=not batch_norm, name=f"block{i}_conv")(x)
    if batch_norm:
        x = bn(name=f"block{i}_bn")(x)
    x = act(x, f"block{i}_{{kind}}", i, "last")
    x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
    return layers.Dropout(0.2, name=f"block{i}_dropout")(x)


def _smallnet_top(x, act, *, include_top, pooling, classes, classifier_activation, batch_norm):
    """SmallNet's top: the 512-unit module (the network's fourth) and the classifier."""
    if not include_top:
        return common.top(x, False, pooling, classes, classifier_activation)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(512, use_bias=not batch_norm, name="fc1")(x)
    if batch_norm:
        x = bn(name="fc1_bn")(x)
    x = act(x, "fc1_{kind}", 4, "last")
    x = layers.Dropout(0.5, name="fc1_dropout")(x)
    return common.classifier(x, classes, classifier_activation)


def MLP(
    depth=12,
    units=1000,
    dropout_rate=0.2,
    activation="relu",
    erase=None,
    proportion=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name=None,
):
    """EraseReLU's multilayer perceptron (Sec. 3.2, MNIST): ``depth`` fully connected
    layers, the first depth-1 of ``units`` units each followed by BN, activation and
    dropout (one module each), the last mapping to ``classes``.

    Args:
        depth: fully connected layers, the classifier included.
        units: units of each hidden layer.
        dropout_rate: dropout after each hidden layer's activation (the paper's text
            does not give it; kzoo defaults to 0.2).
        activation, erase, proportion: the placement (``kzoo.placement``), one
            ``last`` slot per hidden layer.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``; images are flattened,
            default input (28, 28, 1); ``pooling`` must be None (no spatial features).
    """
    for arg, value, low in (("depth", depth, 2), ("units", units, 1)):
        common.check_int(value, arg)
        if value < low:
            raise ValueError(f"`{arg}` must be at least {low}, got {value}")
    check_options(dropout_rate=dropout_rate)
    if pooling is not None:
        raise ValueError(f"`pooling` must be None for an MLP (it has no spatial features), got {pooling!r}")
    return assembly.assemble(
        placement=ActivationPlacement(activation, erase, proportion),
        slots=SINGLE,
        blocks_per_stage=(depth - 1,),
        stem=lambda img_input, act: layers.Flatten(name="flatten")(img_input),
        block=functools.partial(_dense_module, units=units, dropout_rate=dropout_rate),
        top=_mlp_top,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name or f"mlp{depth}",
        default_size=28,
        min_size=1,
        default_channels=1,
        fixed_size=True,
    )


def _dense_module(x, position, act, *, units, dropout_rate):
    """Hidden layer ``i``: dense-BN-act, then dropout."""
    i = position.number
    x = layers.Dense(units, use_bias=False, kernel_initializer="he_normal", name=f"fc{i}")(x)
    x = bn(name=f"fc{i}_bn")(x)
    x = act(x, f"fc{i}_{{kind}}", i, "last")
    return layers.Dropout(dropout_rate, name=f"fc{i}_dropout")(x) if dropout_rate else x


def _mlp_top(x, act, *, include_top, pooling, classes, classifier_activation):
    """The classifier, or the last hidden layer's features."""
    return common.classifier(x, classes, classifier_activation) if include_top else x


@register_model(name="smallnet_bn", **single_relu_facts(FRELU_PAPER, 100, 1_194_372))
@member_of(
    SmallNet, classes=100, model_name="smallnet_bn", fixed={"batch_norm": True}, options=PLACEMENT_OPTIONS
)
def SmallNetBN():
    """SmallNet with batch normalisation."""


@register_model(**single_relu_facts(ERASE_PAPER, 10, 10_816_010, shape=(28, 28, 1), dataset="MNIST"))
@member_of(
    MLP, classes=10, fixed={"depth": 12}, options={"units": 1000, "dropout_rate": 0.2, **PLACEMENT_OPTIONS}
)
def MLP12():
    """EraseReLU's 12-layer MLP for MNIST."""
