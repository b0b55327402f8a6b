"""Residual blocks and stages shared by the CIFAR ResNets, Wide ResNets and ResNeXts.

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
import functools

from keras import layers

from kzoo import checks
from kzoo.layers import StochasticDepth, ZeroPadShortcut
from kzoo.models import common
from kzoo.placement import (
    POST_BASIC,
    POST_BOTTLENECK,
    PRE_BASIC,
    PRE_BOTTLENECK,
    ActivationPlacement,
)

SHORTCUTS = ("A", "B")
SLOT_ORDER = ("first", "second", "third")
SLOTS = {
    (False, False): POST_BASIC,
    (False, True): POST_BOTTLENECK,
    (True, False): PRE_BASIC,
    (True, True): PRE_BOTTLENECK,
}

# Torch's BN (momentum 0.1, eps 1e-5) as the papers' code used it; MSRA conv init.
bn = functools.partial(layers.BatchNormalization, momentum=0.9, epsilon=1e-5)
conv = functools.partial(layers.Conv2D, padding="same", use_bias=False, kernel_initializer="he_normal")


def conv_bn_act(x, filters, kernel, act, name, block=None, slot=None, strides=1):
    """conv-BN-activation, named ``{name}_conv``, ``{name}_bn``, ``{name}_{kind}``; the
    activation goes through the placement as ``slot`` of ``block``."""
    x = conv(filters, kernel, strides=strides, name=f"{name}_conv")(x)
    x = bn(name=f"{name}_bn")(x)
    return act(x, f"{name}_{{kind}}", block, slot)


@dataclasses.dataclass(frozen=True)
class Stage:
    """``blocks`` blocks of inner ``width`` and ``out`` output channels; the first
    block strides by ``stride``."""

    blocks: int
    width: int
    out: int
    stride: int


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
    return [1.0 - l / num_blocks * (1.0 - last) for l in range(1, num_blocks + 1)]


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


def _merge(shortcut, residual, prefix, survival):
    if survival is None:
        return layers.Add(name=f"{prefix}_add")([shortcut, residual])
    return StochasticDepth(survival, name=f"{prefix}_add")([shortcut, residual])


def _dropout(y, spec, prefix):
    return layers.Dropout(spec.dropout_rate, name=f"{prefix}_dropout")(y) if spec.dropout_rate else y


def post_block(x, width, out, stride, spec, act, block, prefix, survival=None):
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
    y = _merge(s, y, prefix, survival)
    return act(y, f"{prefix}_last_{{kind}}", block, "last")


def pre_block(x, width, out, stride, spec, act, block, prefix, survival=None):
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
    return _merge(s, y, prefix, survival)


def residual_stages(x, stages, spec, act, stochastic_depth=None):
    """All residual stages; blocks are counted from 1 over the whole network, as the
    placement's proportion and stochastic depth's decay count them."""
    block_fn = pre_block if spec.preact else post_block
    total = sum(stage.blocks for stage in stages)
    survival = survival_probabilities(total, stochastic_depth)
    block = 0
    for s, stage in enumerate(stages, start=1):
        for b in range(1, stage.blocks + 1):
            block += 1
            x = block_fn(
                x, stage.width, stage.out, stage.stride if b == 1 else 1, spec, act, block,
                f"stage{s}_block{b}", survival[block - 1],
            )
    return x


def pre_activation_head(x, spec, act):
    """The BN-act that closes a pre-activation network before pooling."""
    if not spec.preact:
        return x
    x = bn(name="post_bn")(x)
    return act(x, "post_{kind}")


def placement(activation, erase, proportion, preact):
    """The network's ``ActivationPlacement``, and whether it stays pre-activation:
    EraseReLU (``erase="last"``) converts a pre-activation net to after-activation first."""
    act = ActivationPlacement(activation, erase, proportion)
    return act, preact and act.erase != "last"


def build(stem, stages, spec, act, stochastic_depth, *, include_top, weights, input_tensor,
          input_shape, pooling, classes, classifier_activation, name, default_size, min_size):
    """Bind the placement to the network's blocks, then stem, residual stages, the
    pre-activation head and the keras.applications top."""
    act.bind(sum(stage.blocks for stage in stages), spec.slots)
    img_input, source = common.resolve_input(
        input_tensor, input_shape, include_top, default_size=default_size, min_size=min_size
    )
    x = stem(img_input, spec, act)
    x = residual_stages(x, stages, spec, act, stochastic_depth)
    x = pre_activation_head(x, spec, act)
    x = common.top(x, include_top, pooling, classes, classifier_activation)
    return common.finish(img_input, source, x, name, weights)
