"""A module with a single activation and its one slot: the modules of VGG-style, plain,
MLP and SmallNet networks and of EraseReLU's residual-style net.

Its only activation is its last, and erasing it removes the module's nonlinearity, so
``erase="last", proportion=p`` removes that of the fraction p of modules.
"""

from keras import layers

from kzoo.models.blocks.conv_bn import bn, conv
from kzoo.models.blocks.residual import shortcut
from kzoo.placement import BlockSlots

SINGLE = BlockSlots(("last",), {"first": "last"}, "a single-activation module")


def conv_module(x, *, filters, stride, act, prefix, module, residual=False):
    """conv-BN-act (``{prefix}_conv``, ``{prefix}_bn``, ``{prefix}_{kind}``); a residual
    module adds a zero-padded identity (``{prefix}_add``) before its activation."""
    y = conv(filters, 3, strides=stride, name=f"{prefix}_conv")(x)
    y = bn(name=f"{prefix}_bn")(y)
    if residual:
        s = shortcut(x, x, filters, stride, "A", prefix, with_bn=False)
        y = layers.Add(name=f"{prefix}_add")([s, y])
    return act(y, f"{prefix}_{{kind}}", module, "last")
