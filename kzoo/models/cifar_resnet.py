"""CIFAR ResNets: He et al. (2016) post-activation nets of depth 6n+2 and the
pre-activation nets of He et al. (2016b), basic (6n+2) or bottleneck (9n+2).

One builder, ``CifarResNet``, covers all of them; the named builders (``ResNet20`` ...
``ResNet1202``, ``ResNet164``, ``ResNet1001``) fix its depth and block. Activations go
through ``kzoo.placement``, so EraseReLU, the proportional module and FReLU are
arguments, not other blocks. Layers are named ``stage{s}_block{b}_conv1`` etc.; the
activation in slot ``first`` of that block is ``stage{s}_block{b}_first_relu``.
"""

import functools

from kzoo.models import common, residual_net
from kzoo.models.blocks import residual
from kzoo.models.blocks.stems import CIFAR_MIN_SIZE, cifar_stem
from kzoo.models.named_builders import member_of
from kzoo.models.registry import register_model

WIDTHS = (16, 32, 64)


def blocks_per_stage(depth, bottleneck):
    """n for a depth of 6n+2 (basic) or 9n+2 (bottleneck), or a ValueError."""
    common.check_int(depth, "depth")
    per_block = 9 if bottleneck else 6
    if depth < per_block + 2 or (depth - 2) % per_block:
        form = "9n+2 (e.g. 164, 1001)" if bottleneck else "6n+2 (e.g. 20, 56, 110)"
        raise ValueError(
            f"`depth`={depth} is not of the form {form} for a "
            f"{'bottleneck' if bottleneck else 'basic-block'} CIFAR ResNet"
        )
    return (depth - 2) // per_block


def CifarResNet(
    depth,
    bottleneck=False,
    preact=False,
    shortcut=None,
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
    """A CIFAR ResNet of any depth, in any of its four forms.

    Args:
        depth: weighted layers, 6n+2 for basic blocks, 9n+2 for bottlenecks.
        bottleneck: 1x1-3x3-1x1 blocks with 4x expansion (stage outputs 64/128/256).
        preact: pre-activation blocks (He et al. 2016b): BN-act-conv, with a final
            BN-act before pooling. With ``erase="last"`` (or a list naming "last") the
            net is first converted to the post-activation structure, as EraseReLU does.
        shortcut: "A" zero-pads the identity (no parameters, as published for basic
            nets; the default for basic blocks) or "B" projects with a 1x1 conv (the
            default for bottlenecks).
        activation, erase, proportion: see ``kzoo.placement``. Slots: post-activation
            blocks "first" (alias "middle"), ["second",] "last"; pre-activation blocks
            "first", "second" (alias "middle"), ["third"].
        stochastic_depth: None, or the survival probability of the last block (0.5 in
            Huang et al.), decaying linearly from 1; combinable with ``erase``.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``; the default input
            is (32, 32, 3) and the smallest accepted size is 8.
    """
    common.check_bool(bottleneck, "bottleneck")
    n = blocks_per_stage(depth, bottleneck)
    common.check_bool(preact, "preact")
    if shortcut is None:
        shortcut = "B" if bottleneck else "A"
    residual.check_options(shortcut=shortcut, stochastic_depth=stochastic_depth)
    if name is None:
        name = f"{'preact_' if preact else ''}resnet{depth}"
    act, preact = residual_net.placement(activation, erase, proportion, preact)
    expansion = 4 if bottleneck else 1
    return residual_net.build(
        stem=functools.partial(cifar_stem, width=WIDTHS[0], preact=preact),
        stages=[residual_net.Stage(n, w, expansion * w, 1 if s == 0 else 2) for s, w in enumerate(WIDTHS)],
        spec=residual.BlockSpec(preact, bottleneck, shortcut),
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


def _resnet(depth, bottleneck, preact):
    """Make the stub below it the named builder of ``CifarResNet`` at this depth and block."""
    return member_of(
        CifarResNet,
        classes=10,
        fixed={"depth": depth, "bottleneck": bottleneck},
        options={
            "preact": preact,
            "shortcut": None,
            "activation": "relu",
            "erase": None,
            "proportion": None,
            "stochastic_depth": None,
        },
    )


HE_2016 = "He et al. 2016, Deep Residual Learning for Image Recognition"
HE_2016B = "He et al. 2016b, Identity Mappings in Deep Residual Networks"
_CIFAR10 = {"input_shape": (32, 32, 3), "classes": 10, "dataset": "CIFAR-10"}
_HE = {"family": "cifar_resnet", "paper": HE_2016, **_CIFAR10}
# He et al.'s nets: trainable counts with option-A shortcuts, 16*27 stem + 3n blocks + BN
# + 64*10+10 head.


@register_model(published_params=0.27e6, expected_params=269_722, **_HE)
@_resnet(20, False, False)
def ResNet20():
    """ResNet-20 for CIFAR (He et al. 2016), 3 basic blocks per stage."""


@register_model(published_params=0.46e6, expected_params=464_154, **_HE)
@_resnet(32, False, False)
def ResNet32():
    """ResNet-32 for CIFAR (He et al. 2016), 5 basic blocks per stage."""


@register_model(published_params=0.66e6, expected_params=658_586, **_HE)
@_resnet(44, False, False)
def ResNet44():
    """ResNet-44 for CIFAR (He et al. 2016), 7 basic blocks per stage."""


@register_model(published_params=0.85e6, expected_params=853_018, **_HE)
@_resnet(56, False, False)
def ResNet56():
    """ResNet-56 for CIFAR (He et al. 2016), 9 basic blocks per stage."""


@register_model(
    published_params=1.7e6,
    expected_params=1_727_962,
    **_HE,
    params_note="published 1.7M is rounded; 1.728M is 1.6% above it, within its rounding",
)
@_resnet(110, False, False)
def ResNet110():
    """ResNet-110 for CIFAR (He et al. 2016), 18 basic blocks per stage."""


@register_model(published_params=19.4e6, expected_params=19_421_274, **_HE)
@_resnet(1202, False, False)
def ResNet1202():
    """ResNet-1202 for CIFAR (He et al. 2016), 200 basic blocks per stage."""


@register_model(
    family="cifar_preact_resnet",
    paper=HE_2016B,
    published_params=1.7e6,
    **_CIFAR10,
    expected_params=1_703_258,
    params_note="published 1.7M; hand count 1.703M (projection shortcuts in the first block of each stage)",
)
@_resnet(164, True, True)
def ResNet164():
    """Pre-activation ResNet-164 for CIFAR (He et al. 2016b), 18 bottlenecks per stage."""


@register_model(
    family="cifar_preact_resnet",
    paper=HE_2016B,
    published_params=10.2e6,
    **_CIFAR10,
    expected_params=10_327_706,
    params_note=(
        "published 10.2M; the architecture the paper describes has 10.33M (hand "
        "count), 1.3% more: kzoo builds the described architecture"
    ),
)
@_resnet(1001, True, True)
def ResNet1001():
    """Pre-activation ResNet-1001 for CIFAR (He et al. 2016b), 111 bottlenecks per stage."""


# The proportional paper's pre-activation networks: building blocks at depth 62, 110 and
# 164 (Table 3; kzoo's resnet164 is He et al.'s bottleneck net) and bottleneck nets at
# depth 110 (Fig. 8) and 56 (a CPU-sized one for the same figure). Counts by hand: the
# option-A basic net's formula (it gives 62's and 110's) and the bottleneck net's (it gives
# resnet164's and resnet1001's) at n = 27, 6 and 12 blocks per stage.
for _name, _depth, _bottleneck, _params in (
    ("preact_resnet62", 62, False, 950_234),
    ("preact_resnet110", 110, False, 1_727_962),
    ("preact_resnet164", 164, False, 2_602_906),
    ("preact_bottleneck56", 56, True, 590_426),
    ("preact_bottleneck110", 110, True, 1_146_842),
):
    register_model(
        name=_name,
        family="cifar_preact_resnet",
        paper=(
            "Zhao et al., Rethinking ReLU to Train Better CNNs (pre-activation "
            f"{'bottleneck' if _bottleneck else 'building'} block)"
        ),
        published_params=None,
        expected_params=_params,
        input_shape=(32, 32, 3),
        classes=10,
        dataset="CIFAR-10",
        kwargs={"depth": _depth, "preact": True, "bottleneck": _bottleneck, "name": _name},
    )(CifarResNet)
