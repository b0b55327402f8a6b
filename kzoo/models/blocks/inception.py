"""EraseReLU's CIFAR Inception module (BN-Inception's layout) and its activation slots.

Four branches of conv-BN-act units from a base width w: 1x1(w); 1x1(w) -> 3x3(8w);
1x1(w) -> 3x3(2w) -> 3x3(2w); avg-pool 3x3 -> 1x1(w), concatenated to 12w channels. A
strided module strides in every branch's last convolution and in the pooling.
"""

from keras import layers

from kzoo.models.blocks.conv_bn import conv_bn_act
from kzoo.placement import BlockSlots

# "reduce" (the 1x1 reductions), "inner" (between the two 3x3s of the double-3x3 branch)
# and "last" (each branch's last activation, before the concat).
INCEPTION = BlockSlots(
    ("reduce", "inner", "last"), {"first": "reduce", "middle": "inner"}, "an Inception module"
)
# Branch outputs 1x1 : 3x3 : double 3x3 : pool, in units of the base width.
RATIOS = (1, 8, 2, 1)


def _unit(x, filters, kernel, stride, act, name, block, slot):
    return conv_bn_act(x, filters, kernel, act, name, block, slot, strides=stride)


def inception_module(x, *, width, stride, act, prefix, block):
    """One module of base width ``width``: four branches concatenated to 12 x width."""
    w1, w3, wd, wp = (r * width for r in RATIOS)
    b1 = _unit(x, w1, 1, stride, act, f"{prefix}_1x1", block, "last")
    b3 = _unit(x, width, 1, 1, act, f"{prefix}_3x3_reduce", block, "reduce")
    b3 = _unit(b3, w3, 3, stride, act, f"{prefix}_3x3", block, "last")
    bd = _unit(x, width, 1, 1, act, f"{prefix}_dbl_reduce", block, "reduce")
    bd = _unit(bd, wd, 3, 1, act, f"{prefix}_dbl_3x3a", block, "inner")
    bd = _unit(bd, wd, 3, stride, act, f"{prefix}_dbl_3x3b", block, "last")
    bp = layers.AveragePooling2D(3, strides=stride, padding="same", name=f"{prefix}_pool")(x)
    bp = _unit(bp, wp, 1, 1, act, f"{prefix}_pool_proj", block, "last")
    return layers.Concatenate(name=f"{prefix}_concat")([b1, b3, bd, bp])
