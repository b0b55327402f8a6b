"""keras.applications' ResNet bottlenecks, v1 (post-activation) and v2 (pre-activation),
layer for layer and name for name (``conv2_block1_1_conv`` ...), so keras' weight files
load into kzoo's ImageNet ResNets.

Their activation slots are those of the CIFAR bottlenecks (``blocks.residual``): v1
``first``, ``second`` (alias ``middle``), ``last`` after the addition; v2 ``first`` (the
pre-activation), ``second`` (alias ``middle``), ``third``. With a ``survival``
probability the addition is stochastic depth's (same layer name).
"""

from keras import layers

from kzoo.layers import BatchNormalization
from kzoo.models.blocks.residual import POST_BOTTLENECK, PRE_BOTTLENECK, merge

V1_SLOTS = POST_BOTTLENECK
V2_SLOTS = PRE_BOTTLENECK
BN_EPS = 1.001e-5


def bn(name):
    """keras.applications' batch normalisation (channels last, eps 1.001e-5), on kzoo's
    fused layer (kzoo.layers.BatchNormalization: the same weights and results)."""
    return BatchNormalization(axis=3, epsilon=BN_EPS, name=name)


def block_v1(x, *, filters, stride, conv_shortcut, act, block, name, survival=None):
    """keras' ``block1``: 1x1 (strided) - 3x3 - 1x1 (4x), each conv-BN, activations
    after the first two and after the addition; a projection shortcut if asked."""
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(x)
        shortcut = bn(f"{name}_0_bn")(shortcut)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, strides=stride, name=f"{name}_1_conv")(x)
    x = bn(f"{name}_1_bn")(x)
    x = act(x, f"{name}_1_{{kind}}", block, "first")
    x = layers.Conv2D(filters, 3, padding="SAME", name=f"{name}_2_conv")(x)
    x = bn(f"{name}_2_bn")(x)
    x = act(x, f"{name}_2_{{kind}}", block, "second")
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    x = bn(f"{name}_3_bn")(x)
    x = merge(shortcut, x, f"{name}_add", survival)
    return act(x, f"{name}_out", block, "last")


def block_v2(x, *, filters, stride, conv_shortcut, act, block, name, survival=None):
    """keras' ``block2``: BN-act pre-activation, then 1x1 - 3x3 (strided) - 1x1 (4x) with
    BN-act between; the shortcut is a projection of the pre-activation, a 1x1 max-pool
    where the block strides, or the identity."""
    preact = bn(f"{name}_preact_bn")(x)
    preact = act(preact, f"{name}_preact_{{kind}}", block, "first")
    if conv_shortcut:
        shortcut = layers.Conv2D(4 * filters, 1, strides=stride, name=f"{name}_0_conv")(preact)
    elif stride > 1:
        shortcut = layers.MaxPooling2D(1, strides=stride, name=f"{name}_0_pool")(x)
    else:
        shortcut = x
    x = layers.Conv2D(filters, 1, use_bias=False, name=f"{name}_1_conv")(preact)
    x = bn(f"{name}_1_bn")(x)
    x = act(x, f"{name}_1_{{kind}}", block, "second")
    x = layers.ZeroPadding2D(padding=((1, 1), (1, 1)), name=f"{name}_2_pad")(x)
    x = layers.Conv2D(filters, 3, strides=stride, use_bias=False, name=f"{name}_2_conv")(x)
    x = bn(f"{name}_2_bn")(x)
    x = act(x, f"{name}_2_{{kind}}", block, "third")
    x = layers.Conv2D(4 * filters, 1, name=f"{name}_3_conv")(x)
    return merge(shortcut, x, f"{name}_out", survival)
