"""Wide ResNets (Zagoruyko & Komodakis 2016): WRN-d-k, depth 6n+4, widths 16k/32k/64k.

Pre-activation basic blocks with dropout between the two convolutions (the "-D"
variants, ``dropout_rate``) and 1x1 projections where the width changes. EraseReLU
converts them to the after-activation form first (``erase="last"``).
"""

import functools

from kzoo.models import common, residual_net
from kzoo.models.blocks import residual
from kzoo.models.blocks.stems import CIFAR_MIN_SIZE, cifar_stem
from kzoo.models.named_builders import member_of
from kzoo.models.registry import register_model

PAPER = "Zagoruyko & Komodakis 2016, Wide Residual Networks"


def _blocks_per_stage(depth, width):
    common.check_int(depth, "depth")
    common.check_int(width, "width")
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"`depth`={depth} is not of the form 6n+4 (e.g. 16, 28, 40, 52) for a Wide ResNet")
    if width < 1:
        raise ValueError(f"`width` (the widening factor k) must be a positive integer, got {width}")
    return (depth - 4) // 6


def WideResNet(
    depth,
    width,
    dropout_rate=0.0,
    preact=True,
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
    """WRN-``depth``-``width``.

    Args:
        depth: 6n+4 (n blocks per stage; the 4 counts the stem, the head and the two
            projection convolutions of the widening stages, as the paper counts).
        width: the widening factor k (stage widths 16k, 32k, 64k).
        dropout_rate: dropout between the two 3x3 convolutions of each block (0.3 for
            the CIFAR "-D" nets, 0.4 on SVHN in the paper).
        preact, activation, erase, proportion, stochastic_depth: as in
            ``kzoo.CifarResNet``.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``.
    """
    n = _blocks_per_stage(depth, width)
    common.check_bool(preact, "preact")
    residual.check_options(dropout_rate=dropout_rate, stochastic_depth=stochastic_depth)
    if name is None:
        name = f"wrn{depth}_{width}"
    act, preact = residual_net.placement(activation, erase, proportion, preact)
    return residual_net.build(
        stem=functools.partial(cifar_stem, width=16, preact=preact),
        stages=[
            residual_net.Stage(n, w * width, w * width, 1 if s == 0 else 2)
            for s, w in enumerate((16, 32, 64))
        ],
        spec=residual.BlockSpec(preact, False, "B", dropout_rate=float(dropout_rate)),
        placement=act,
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


def _wrn(depth, width):
    """Make the stub below it the builder of WRN-``depth``-``width`` (model "wrn{depth}_{width}")."""
    return member_of(
        WideResNet,
        classes=10,
        model_name=f"wrn{depth}_{width}",
        fixed={"depth": depth, "width": width},
        options={
            "dropout_rate": 0.0,
            "preact": True,
            "activation": "relu",
            "erase": None,
            "proportion": None,
            "stochastic_depth": None,
        },
    )


# Published counts (WRN paper) and hand counts (trainable, 10 classes).
_WRN = {"family": "wide_resnet", "paper": PAPER, "input_shape": (32, 32, 3), "classes": 10}
_UNPUBLISHED = "no figure published; REFERENCE computes 0.76M / 75.2M"


@register_model(name="wrn16_8", published_params=11.0e6, expected_params=10_961_370, dataset="SVHN", **_WRN)
@_wrn(16, 8)
def WideResNet16_8():
    """WRN-16-8 (Zagoruyko & Komodakis 2016)."""


@register_model(
    name="wrn28_10", published_params=36.5e6, expected_params=36_479_194, dataset="CIFAR-10", **_WRN
)
@_wrn(28, 10)
def WideResNet28_10():
    """WRN-28-10 (Zagoruyko & Komodakis 2016)."""


@register_model(name="wrn40_4", published_params=8.9e6, expected_params=8_949_210, dataset="CIFAR-10", **_WRN)
@_wrn(40, 4)
def WideResNet40_4():
    """WRN-40-4 (Zagoruyko & Komodakis 2016)."""


@register_model(
    name="wrn52_1",
    published_params=None,
    expected_params=758_362,
    dataset="SVHN",
    params_note=_UNPUBLISHED,
    **_WRN,
)
@_wrn(52, 1)
def WideResNet52_1():
    """WRN-52-1 (Zagoruyko & Komodakis 2016)."""


@register_model(
    name="wrn52_10",
    published_params=None,
    expected_params=75_204_314,
    dataset="CIFAR-100",
    params_note=_UNPUBLISHED,
    **_WRN,
)
@_wrn(52, 10)
def WideResNet52_10():
    """WRN-52-10 (Zagoruyko & Komodakis 2016)."""
