"""ResNeXt (Xie et al. 2017): post-activation bottlenecks whose 3x3 convolution is
grouped into ``cardinality`` paths.

CIFAR ResNeXt-29 (8x64d, 16x64d): a 64-channel 3x3 stem, 3 stages of (depth-2)/9
blocks, stage outputs 256/512/1024. ImageNet ResNeXt-50/101/152 (32x4d): the ResNet
7x7 stem and max-pool, 4 stages, outputs 256 to 2048, stride on the 3x3 convolution.
``bottleneck_width`` is the width of the grouped convolution in the first stage
(cardinality x d: 512 for 8x64d, 128 for 32x4d); it doubles at every stage.
"""

import functools

from keras import layers

from kzoo.models import common, residual_net
from kzoo.models.blocks import residual
from kzoo.models.blocks.conv_bn import bn, conv
from kzoo.models.blocks.stems import CIFAR_MIN_SIZE, cifar_stem
from kzoo.models.cifar_resnet import blocks_per_stage
from kzoo.models.named_builders import member_of
from kzoo.models.registry import register_model

PAPER = "Xie et al. 2017, Aggregated Residual Transformations for Deep Neural Networks"
IMAGENET_STACKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}


def _check_width(cardinality, bottleneck_width):
    for arg, value in (("cardinality", cardinality), ("bottleneck_width", bottleneck_width)):
        common.check_int(value, arg)
        if value < 1:
            raise ValueError(f"`{arg}` must be positive, got {value}")
    if bottleneck_width % cardinality:
        raise ValueError(
            f"`cardinality`={cardinality} does not divide `bottleneck_width`={bottleneck_width}: "
            "each of the grouped convolution's paths needs the same number of channels"
        )


def _resnext(*, cardinality, activation, erase, proportion, stochastic_depth, **network):
    """A ResNeXt: post-activation bottlenecks with a projection shortcut and the 3x3
    grouped into ``cardinality`` paths; ``network``: ``residual_net.build``'s other arguments."""
    residual.check_options(stochastic_depth=stochastic_depth)
    act, _ = residual_net.placement(activation, erase, proportion, preact=False)
    return residual_net.build(
        spec=residual.BlockSpec(False, True, "B", groups=cardinality),
        placement=act,
        stochastic_depth=stochastic_depth,
        **network,
    )


def CifarResNeXt(
    depth=29,
    cardinality=8,
    bottleneck_width=512,
    activation="relu",
    erase=None,
    proportion=None,
    stochastic_depth=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name=None,
):
    """A CIFAR ResNeXt of depth 9n+2 (29 in the paper).

    Args:
        depth: 9n+2. cardinality: the number of paths (groups). bottleneck_width: the
            grouped convolution's width in the first stage (8x64d: 512; 16x64d: 1024).
        activation, erase, proportion, stochastic_depth: as in ``kzoo.CifarResNet``;
            slots "first", "second" (alias "middle"), "last".
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``.
    """
    n = blocks_per_stage(depth, bottleneck=True)
    _check_width(cardinality, bottleneck_width)
    if name is None:
        name = f"resnext{depth}_{cardinality}x{bottleneck_width // cardinality}d"
    return _resnext(
        stem=functools.partial(cifar_stem, width=64),
        stages=[
            residual_net.Stage(n, bottleneck_width * 2**s, 256 * 2**s, 1 if s == 0 else 2) for s in range(3)
        ],
        cardinality=cardinality,
        activation=activation,
        erase=erase,
        proportion=proportion,
        stochastic_depth=stochastic_depth,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        default_size=32,
        min_size=CIFAR_MIN_SIZE,
    )


def _imagenet_stem(img_input, act):
    x = conv(64, 7, strides=2, name="stem_conv")(img_input)
    x = bn(name="stem_bn")(x)
    x = act(x, "stem_{kind}")
    return layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)


def ImageNetResNeXt(
    depth=50,
    cardinality=32,
    bottleneck_width=128,
    activation="relu",
    erase=None,
    proportion=None,
    stochastic_depth=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=1000,
    classifier_activation="softmax",
    name=None,
):
    """An ImageNet ResNeXt of depth 50, 101 or 152 (32x4d: ``bottleneck_width=128``).

    Args:
        depth: 50, 101 or 152 (3-4-6-3, 3-4-23-3 or 3-8-36-3 blocks).
        cardinality, bottleneck_width, activation, erase, proportion, stochastic_depth:
            as in ``kzoo.CifarResNeXt``.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``; default input
            (224, 224, 3), smallest 32.
    """
    if depth not in IMAGENET_STACKS:
        raise ValueError(
            f"`depth` must be one of {sorted(IMAGENET_STACKS)} for an ImageNet ResNeXt, got {depth!r}"
        )
    _check_width(cardinality, bottleneck_width)
    if name is None:
        name = f"resnext{depth}_{cardinality}x{bottleneck_width // cardinality}d"
    return _resnext(
        stem=_imagenet_stem,
        stages=[
            residual_net.Stage(blocks, bottleneck_width * 2**s, 256 * 2**s, 1 if s == 0 else 2)
            for s, blocks in enumerate(IMAGENET_STACKS[depth])
        ],
        cardinality=cardinality,
        activation=activation,
        erase=erase,
        proportion=proportion,
        stochastic_depth=stochastic_depth,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        default_size=224,
        min_size=32,
    )


def _named(family, depth, cardinality, bottleneck_width):
    """Make the stub below it the named builder of ``family`` (the CIFAR or ImageNet ResNeXt)."""
    return member_of(
        family,
        classes=10 if family is CifarResNeXt else 1000,
        fixed={"depth": depth, "cardinality": cardinality, "bottleneck_width": bottleneck_width},
        options={"activation": "relu", "erase": None, "proportion": None, "stochastic_depth": None},
    )


_CIFAR = {
    "family": "resnext_cifar",
    "paper": PAPER,
    "input_shape": (32, 32, 3),
    "classes": 10,
    "dataset": "CIFAR-10/100",
}
_IMAGENET = {
    "family": "resnext_imagenet",
    "paper": PAPER,
    "input_shape": (224, 224, 3),
    "classes": 1000,
    "dataset": "ImageNet-2012",
}


@register_model(published_params=34.4e6, expected_params=34_426_698, **_CIFAR)
@_named(CifarResNeXt, 29, 8, 512)
def ResNeXt29_8x64d():
    """CIFAR ResNeXt-29, 8x64d (Xie et al. 2017)."""


@register_model(published_params=68.1e6, expected_params=68_155_210, **_CIFAR)
@_named(CifarResNeXt, 29, 16, 1024)
def ResNeXt29_16x64d():
    """CIFAR ResNeXt-29, 16x64d (Xie et al. 2017)."""


@register_model(published_params=25.0e6, expected_params=25_028_904, **_IMAGENET)
@_named(ImageNetResNeXt, 50, 32, 128)
def ResNeXt50_32x4d():
    """ImageNet ResNeXt-50, 32x4d (Xie et al. 2017)."""


@register_model(published_params=44.2e6, expected_params=44_177_704, **_IMAGENET)
@_named(ImageNetResNeXt, 101, 32, 128)
def ResNeXt101_32x4d():
    """ImageNet ResNeXt-101, 32x4d (Xie et al. 2017)."""


@register_model(
    published_params=None,
    expected_params=59_951_400,
    **_IMAGENET,
    params_note="no figure published; kzoo pins its hand count",
)
@_named(ImageNetResNeXt, 152, 32, 128)
def ResNeXt152_32x4d():
    """ImageNet ResNeXt-152, 32x4d."""
