"""ImageNet ResNets, v1 (post-activation) and v2 (pre-activation), 50 to 200 layers.

With ``erase=None`` and ReLU, ``ResNet50/101/152`` and ``ResNet50V2/101V2/152V2`` are
layer for layer the models of ``keras.applications`` (same layers, names, weights and
outputs), so keras' weight files load into them. The activations go through
``kzoo.placement``; layer names keep keras' scheme (``conv2_block1_1_relu``), with the
activation's kind in place of ``relu`` when it is another one (``conv2_block1_1_frelu``).
"""

from keras import layers

from kzoo.models import common
from kzoo.models.registry import register_model
from kzoo.placement import POST_BOTTLENECK, PRE_BOTTLENECK, ActivationPlacement

STACKS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3), 200: (3, 24, 36, 3)}
FILTERS = (64, 128, 256, 512)
MIN_SIZE = 32
BN_EPS = 1.001e-5


def _bn(name):
    return layers.BatchNormalization(axis=3, epsilon=BN_EPS, name=name)


def _block_v1(x, filters, stride, conv_shortcut, act, block, name):
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = _bn(f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = _bn(f"{name}_1_bn")(x)
    x = act(x, f"{name}_1_{{kind}}", block, "first")
    x = layers.Conv2D(filters, 3, padding="SAME", name=f"{name}_2_conv")(x)
    x = _bn(f"{name}_2_bn")(x)
    x = act(x, f"{name}_2_{{kind}}", block, "second")
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = _bn(f"{name}_3_bn")(x)
    x = layers.Add(name=f"{name}_add")([shortcut, x])
    return act(x, f"{name}_out", block, "last")


def _block_v2(x, filters, stride, conv_shortcut, act, block, name):
    preact = _bn(f"{name}_preact_bn")(x)
    preact = act(preact, f"{name}_preact_{{kind}}", block, "first")
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(preact)
    elif stride > 1:
        shortcut = layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")(x)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(preact)
    x = _bn(f"{name}_1_bn")(x)
    x = act(x, f"{name}_1_{{kind}}", block, "second")
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_2_pad")(x)
    x = layers.Conv2D(filters, 3, strides=stride, use_bias=False, name=f"{name}_2_conv")(x)
    x = _bn(f"{name}_2_bn")(x)
    x = act(x, f"{name}_2_{{kind}}", block, "third")
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    return layers.Add(name=f"{name}_out")([shortcut, x])


def _stacks(x, depth, preact, act):
    """The four stages. v1 strides in the first block of stages 3-5 (keras' stride1),
    v2 in the last block of stages 2-4, both exactly as keras.applications."""
    block = 0
    for stage, (filters, blocks) in enumerate(zip(FILTERS, STACKS[depth]), start=2):
        for b in range(1, blocks + 1):
            block += 1
            name = f"conv{stage}_block{b}"
            if preact:
                stride = 2 if (b == blocks and stage < 5) else 1
                x = _block_v2(x, filters, stride, b == 1, act, block, name)
            else:
                stride = 2 if (b == 1 and stage > 2) else 1
                x = _block_v1(x, filters, stride, b == 1, act, block, name)
    return x


def ImageNetResNet(
    depth,
    preact=False,
    activation="relu",
    erase=None,
    proportion=None,
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
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``; default input
            (224, 224, 3), smallest size 32; ``weights`` is None or a file path.
    """
    if depth not in STACKS:
        raise ValueError(f"`depth` must be one of {sorted(STACKS)} for an ImageNet ResNet, got {depth!r}")
    common.check_bool(preact, "preact")
    if name is None:
        name = f"resnet{depth}{'v2' if preact else ''}"
    common.check_common_args(include_top, weights, pooling, classes, classifier_activation, name)
    act = ActivationPlacement(activation, erase, proportion)
    if preact and act.erase == "last":
        preact = False
    act.bind(sum(STACKS[depth]), PRE_BOTTLENECK if preact else POST_BOTTLENECK)
    img_input, source = common.resolve_input(
        input_tensor, input_shape, include_top, default_size=224, min_size=MIN_SIZE
    )

    x = layers.ZeroPadding2D(padding=((3, 3), (3, 3)), name="conv1_pad")(img_input)
    x = layers.Conv2D(64, 7, strides=2, name="conv1_conv")(x)
    if not preact:
        x = _bn("conv1_bn")(x)
        x = act(x, "conv1_{kind}")
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name="pool1_pad")(x)
    x = layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)
    x = _stacks(x, depth, preact, act)
    if preact:
        x = _bn("post_bn")(x)
        x = act(x, "post_{kind}")
    x = common.top(x, include_top, pooling, classes, classifier_activation)
    return common.finish(img_input, source, x, name, weights)


def _named(depth, preact, model_name, summary):
    return common.named_builder(
        ImageNetResNet, model_name, summary, classes=1000, fixed={"depth": depth},
        options={"preact": preact, "activation": "relu", "erase": None, "proportion": None},
    )


ResNet50 = _named(50, False, "resnet50", "ResNet-50 v1 for ImageNet; keras.applications.ResNet50 layer for layer.")
ResNet101 = _named(101, False, "resnet101", "ResNet-101 v1 for ImageNet; keras.applications.ResNet101 layer for layer.")
ResNet152 = _named(152, False, "resnet152", "ResNet-152 v1 for ImageNet; keras.applications.ResNet152 layer for layer.")
ResNet200 = _named(200, False, "resnet200", "ResNet-200 v1 for ImageNet (stacks 3-24-36-3).")
ResNet50V2 = _named(50, True, "resnet50v2", "ResNet-50 v2 (pre-activation); keras.applications.ResNet50V2 layer for layer.")
ResNet101V2 = _named(101, True, "resnet101v2", "ResNet-101 v2 (pre-activation); keras.applications.ResNet101V2 layer for layer.")
ResNet152V2 = _named(152, True, "resnet152v2", "ResNet-152 v2 (pre-activation); keras.applications.ResNet152V2 layer for layer.")
ResNet200V2 = _named(200, True, "resnet200v2", "ResNet-200 v2 (pre-activation, stacks 3-24-36-3).")

_PAPERS = {False: "He et al. 2016, Deep Residual Learning for Image Recognition",
           True: "He et al. 2016b, Identity Mappings in Deep Residual Networks"}
_PUBLISHED = {50: 25.6e6, 101: 44.5e6, 152: 60.2e6, 200: 64.7e6}
# Trainable counts of the keras.applications models (v1, v2) and of the 200s.
_EXACT = {(50, False): 25_583_592, (101, False): 44_601_832, (152, False): 60_268_520,
          (200, False): 64_761_832, (50, True): 25_568_360, (101, True): 44_577_896,
          (152, True): 60_236_904, (200, True): 64_726_120}
for _builder, _depth, _preact in (
    (ResNet50, 50, False), (ResNet101, 101, False), (ResNet152, 152, False), (ResNet200, 200, False),
    (ResNet50V2, 50, True), (ResNet101V2, 101, True), (ResNet152V2, 152, True), (ResNet200V2, 200, True),
):
    register_model(
        f"resnet{_depth}{'v2' if _preact else ''}", _builder,
        family="imagenet_resnet_v2" if _preact else "imagenet_resnet",
        paper=_PAPERS[_preact], published_params=_PUBLISHED[_depth],
        expected_params=_EXACT[(_depth, _preact)],
        input_shape=(224, 224, 3), classes=1000, dataset="ImageNet-2012",
    )
