"""Residual blocks of the CIFAR ResNets, Wide ResNets and ResNeXts, and their slots.

One block function per structure, post-activation (conv-BN-act ..., add, act) or
pre-activation (BN-act-conv ..., add), each basic (two 3x3 convs) or bottleneck
(1x1, 3x3 with ``groups``, 1x1). Width, cardinality, dropout between the last two
convolutions (WRN) and stochastic depth are parameters of these blocks, and every
activation goes through ``kzoo.placement``: the slots are ``first``, ``second``,
``third`` in order, and ``last`` after the addition of post-activation blocks.
Layers are named ``stage{s}_block{b}_conv1``, ``..._bn1``, ``..._first_relu``,
``..._dropout``, ``..._add``, ``..._last_relu``, ``..._shortcut_conv``.
"""

import dataclasses

from keras import layers

from kzoo import checks
from kzoo.layers import StochasticDepth, ZeroPadShortcut
from kzoo.models.blocks.conv_bn import bn, conv
from kzoo.placement import BlockSlots

# "middle" is the activation between the convolutions of a two-activation block
# (EraseReLU's ER*), the second of three in a bottleneck.
POST_BASIC = BlockSlots(("first", "last"), {"middle": "first"}, "a post-activation basic block")
POST_BOTTLENECK = BlockSlots(
    ("first", "second", "last"), {"middle": "second"}, "a post-activation bottleneck block"
)
PRE_BASIC = BlockSlots(("first", "second"), {"middle": "second"}, "a pre-activation basic block")
PRE_BOTTLENECK = BlockSlots(
    ("first", "second", "third"), {"middle": "second"}, "a pre-activation bottleneck block"
)
SLOTS = {
    (False, False): POST_BASIC,
    (False, True): POST_BOTTLENECK,
    (True, False): PRE_BASIC,
    (True, True): PRE_BOTTLENECK,
}
SLOT_ORDER = ("first", "second", "third")
SHORTCUTS = ("A", "B")


@dataclasses.dataclass(frozen=True)
class BlockSpec:
    """The structure every block of a network shares."""

    preact: bool
    bottleneck: bool
    shortcut: str = "B"
    groups: int = 1
    dropout_rate: float = 0.0

    @property
    def slots(self):
        return SLOTS[(self.preact, self.bottleneck)]


def check_options(shortcut=None, dropout_rate=0.0, stochastic_depth=None):
    """Validate the block options builders expose."""
    if shortcut is not None and shortcut not in SHORTCUTS:
        raise ValueError(f"`shortcut` must be 'A' (zero-pad identity) or 'B' (projection), got {shortcut!r}")
    checks.number(dropout_rate, "dropout_rate", minimum=0, maximum=1, max_open=True)
    checks.number(stochastic_depth, "stochastic_depth", minimum=0, maximum=1, min_open=True, optional=True)


def survival_probabilities(num_blocks, last):
    """Huang et al.'s linear decay: block l of L survives with 1 - l/L * (1 - last)."""
    if last is None:
        return [None] * num_blocks
    return [1.0 - i / num_blocks * (1.0 - last) for i in range(1, num_blocks + 1)]


def merge(shortcut, residual, name, survival=None):
    """The residual addition ``name``: an ``Add``, or with a ``survival`` probability
    the ``StochasticDepth`` addition that drops the residual branch in training."""
    if survival is None:
        return layers.Add(name=name)([shortcut, residual])
    return StochasticDepth(survival, name=name)([shortcut, residual])


def shortcut(x, source, out, stride, kind, prefix, with_bn):
    """Identity when shapes agree; else option A (``kind="A"``: zero-pad ``x``) or B (1x1
    projection of ``source``, followed by BN in post-activation blocks)."""
    if x.shape[-1] == out and stride == 1:
        return x
    if kind == "A":
        return ZeroPadShortcut(out, stride, name=f"{prefix}_shortcut_pad")(x)
    s = conv(out, 1, strides=stride, name=f"{prefix}_shortcut_conv")(source)
    return bn(name=f"{prefix}_shortcut_bn")(s) if with_bn else s


def _convs(spec, width, out, stride):
    """(filters, kernel, stride, groups) of each convolution of a block."""
    if spec.bottleneck:
        return [(width, 1, 1, 1), (width, 3, stride, spec.groups), (out, 1, 1, 1)]
    return [(width, 3, stride, spec.groups), (out, 3, 1, 1)]


def _conv(y, i, filters, kernel, stride, groups, prefix):
    return conv(filters, kernel, strides=stride, groups=groups, name=f"{prefix}_conv{i}")(y)


def _dropout(y, spec, prefix):
    return layers.Dropout(spec.dropout_rate, name=f"{prefix}_dropout")(y) if spec.dropout_rate else y


def post_block(x, *, width, out, stride, spec, act, block, prefix, survival=None):
    """conv-BN-act ... conv-BN, add the shortcut, act (slot ``last``)."""
    s = shortcut(x, x, out, stride, spec.shortcut, prefix, with_bn=True)
    convs = _convs(spec, width, out, stride)
    y = x
    for i, (filters, kernel, st, groups) in enumerate(convs, start=1):
        if i == len(convs):
            y = _dropout(y, spec, prefix)
        y = _conv(y, i, filters, kernel, st, groups, prefix)
        y = bn(name=f"{prefix}_bn{i}")(y)
        if i < len(convs):
            slot = SLOT_ORDER[i - 1]
            y = act(y, f"{prefix}_{slot}_{{kind}}", block, slot)
    y = merge(s, y, f"{prefix}_add", survival)
    return act(y, f"{prefix}_last_{{kind}}", block, "last")


def pre_block(x, *, width, out, stride, spec, act, block, prefix, survival=None):
    """BN-act (slot ``first``, shared with a projection shortcut), then conv, BN-act,
    conv ..., added to the shortcut with no activation after."""
    p = bn(name=f"{prefix}_bn1")(x)
    p = act(p, f"{prefix}_first_{{kind}}", block, "first")
    s = shortcut(x, p, out, stride, spec.shortcut, prefix, with_bn=False)
    convs = _convs(spec, width, out, stride)
    y = p
    for i, (filters, kernel, st, groups) in enumerate(convs, start=1):
        if i > 1:
            slot = SLOT_ORDER[i - 1]
            y = bn(name=f"{prefix}_bn{i}")(y)
            y = act(y, f"{prefix}_{slot}_{{kind}}", block, slot)
            if i == len(convs):
                y = _dropout(y, spec, prefix)
        y = _conv(y, i, filters, kernel, st, groups, prefix)
    return merge(s, y, f"{prefix}_add", survival)
