"""ImageNet ResNets, v1 (post-activation) and v2 (pre-activation), 50 to 200 layers.

With ``erase=None``, ReLU and no stochastic depth, ``ResNet50/101/152`` and
``ResNet50V2/101V2/152V2`` are layer for layer the models of ``keras.applications``
(same layers, names, weights and outputs), so keras' weight files load into them. The
activations go through ``kzoo.placement``; layer names keep keras' scheme
(``conv2_block1_1_relu``), with the activation's kind in place of ``relu`` when it is
another one (``conv2_block1_1_frelu``).
"""

import functools

from keras import layers

from kzoo.models import assembly, common, residual_net
from kzoo.models.blocks import keras_resnet, residual
from kzoo.models.named_builders import member_of
from kzoo.models.registry import register_model

STACKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}
FILTERS = (64, 128, 256, 512)
MIN_SIZE = 32


def _stem(img_input, act, *, preact):
    """keras' stem: 7x7/2 convolution (with BN-act in v1) and 3x3/2 max-pooling."""
    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)
    if not preact:
        x = keras_resnet.bn("conv1_bn")(x)
        x = act(x, "conv1_{kind}")
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    return layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def _block(x, position, act, *, preact, survival):
    """Block ``position`` under keras' names (``conv{stage + 1}_block{b}``). v1 strides in
    the first block of stages 3-5 (keras' stride1), v2 in the last block of stages 2-4,
    both exactly as keras.applications."""
    if preact:
        stride = 2 if (position.last and position.stage < len(FILTERS)) else 1
        block_fn = keras_resnet.block_v2
    else:
        stride = 2 if (position.first and position.stage > 1) else 1
        block_fn = keras_resnet.block_v1
    return block_fn(
        x,
        filters=FILTERS[position.stage - 1],
        stride=stride,
        conv_shortcut=position.first,
        act=act,
        block=position.number,
        name=f"conv{position.stage + 1}_block{position.block}",
        survival=survival[position.number - 1],
    )


def _post(x, act):
    """v2's closing BN-act before pooling."""
    x = keras_resnet.bn("post_bn")(x)
    return act(x, "post_{kind}")


def ImageNetResNet(
    depth,
    preact=False,
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
    """An ImageNet ResNet of depth 50, 101, 152 or 200.

    Args:
        depth: 50, 101, 152 or 200 (bottleneck stacks 3-4-6-3, 3-4-23-3, 3-8-36-3,
            3-24-36-3).
        preact: the v2 (pre-activation) form. With ``erase="last"`` a v2 net is built
            in the v1 (after-activation) form first, as EraseReLU does.
        activation, erase, proportion: see ``kzoo.placement``. Slots: v1 "first",
            "second" (alias "middle"), "last"; v2 "first" (the pre-activation),
            "second" (alias "middle"), "third".
        stochastic_depth: None, or the survival probability of the last block (0.5 in
            Huang et al.), decaying linearly from 1 as in ``kzoo.CifarResNet``; the
            addition keeps keras' layer name (v1 ``..._add``, v2 ``..._out``).
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``; default input
            (224, 224, 3), smallest size 32; ``weights`` is None or a file path.
    """
    if depth not in STACKS:
        raise ValueError(f"`depth` must be one of {sorted(STACKS)} for an ImageNet ResNet, got {depth!r}")
    common.check_bool(preact, "preact")
    residual.check_options(stochastic_depth=stochastic_depth)
    if name is None:
        name = f"resnet{depth}{'v2' if preact else ''}"
    act, preact = residual_net.placement(activation, erase, proportion, preact)
    survival = residual.survival_probabilities(sum(STACKS[depth]), stochastic_depth)
    return assembly.assemble(
        placement=act,
        slots=keras_resnet.V2_SLOTS if preact else keras_resnet.V1_SLOTS,
        blocks_per_stage=STACKS[depth],
        stem=functools.partial(_stem, preact=preact),
        block=functools.partial(_block, preact=preact, survival=survival),
        head=_post if preact else None,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        default_size=224,
        min_size=MIN_SIZE,
    )


def _resnet(depth, preact):
    """Make the stub below it the named builder of ``ImageNetResNet`` at this depth and form."""
    return member_of(
        ImageNetResNet,
        classes=1000,
        fixed={"depth": depth},
        options={
            "preact": preact,
            "activation": "relu",
            "erase": None,
            "proportion": None,
            "stochastic_depth": None,
        },
    )


_PUBLISHED = {50: 25.6e6, 101: 44.5e6, 152: 60.2e6, 200: 64.7e6}


def _facts(depth, preact, exact):
    """The registry's facts; ``exact``: the trainable count of the keras.applications
    model (or, for the 200s, of kzoo's)."""
    return {
        "family": "imagenet_resnet_v2" if preact else "imagenet_resnet",
        "paper": (
            "He et al. 2016b, Identity Mappings in Deep Residual Networks"
            if preact
            else "He et al. 2016, Deep Residual Learning for Image Recognition"
        ),
        "published_params": _PUBLISHED[depth],
        "expected_params": exact,
        "input_shape": (224, 224, 3),
        "classes": 1000,
        "dataset": "ImageNet-2012",
    }


@register_model(**_facts(50, False, 25_583_592))
@_resnet(50, False)
def ResNet50():
    """ResNet-50 v1 for ImageNet; keras.applications.ResNet50 layer for layer."""


@register_model(**_facts(101, False, 44_601_832))
@_resnet(101, False)
def ResNet101():
    """ResNet-101 v1 for ImageNet; keras.applications.ResNet101 layer for layer."""


@register_model(**_facts(152, False, 60_268_520))
@_resnet(152, False)
def ResNet152():
    """ResNet-152 v1 for ImageNet; keras.applications.ResNet152 layer for layer."""


@register_model(**_facts(200, False, 64_761_832))
@_resnet(200, False)
def ResNet200():
    """ResNet-200 v1 for ImageNet (stacks 3-24-36-3)."""


@register_model(**_facts(50, True, 25_568_360))
@_resnet(50, True)
def ResNet50V2():
    """ResNet-50 v2 (pre-activation); keras.applications.ResNet50V2 layer for layer."""


@register_model(**_facts(101, True, 44_577_896))
@_resnet(101, True)
def ResNet101V2():
    """ResNet-101 v2 (pre-activation); keras.applications.ResNet101V2 layer for layer."""


@register_model(**_facts(152, True, 60_236_904))
@_resnet(152, True)
def ResNet152V2():
    """ResNet-152 v2 (pre-activation); keras.applications.ResNet152V2 layer for layer."""


@register_model(**_facts(200, True, 64_726_120))
@_resnet(200, True)
def ResNet200V2():
    """ResNet-200 v2 (pre-activation, stacks 3-24-36-3)."""
