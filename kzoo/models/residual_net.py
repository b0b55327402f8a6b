"""How the CIFAR ResNets, Wide ResNets and ResNeXts assemble ``blocks.residual`` blocks
into a network: stages, stochastic depth's decay over the whole network, EraseReLU's
pre- to post-activation conversion, the closing pre-activation and the top."""

import dataclasses

from kzoo.models import common
from kzoo.models.blocks import residual
from kzoo.models.blocks.conv_bn import bn
from kzoo.placement import ActivationPlacement


@dataclasses.dataclass(frozen=True)
class Stage:
    """``blocks`` blocks of inner ``width`` and ``out`` output channels; the first
    block strides by ``stride``."""

    blocks: int
    width: int
    out: int
    stride: int


def residual_stages(x, stages, spec, act, stochastic_depth=None):
    """All residual stages; blocks are counted from 1 over the whole network, as the
    placement's proportion and stochastic depth's decay count them."""
    block_fn = residual.pre_block if spec.preact else residual.post_block
    total = sum(stage.blocks for stage in stages)
    survival = residual.survival_probabilities(total, stochastic_depth)
    block = 0
    for s, stage in enumerate(stages, start=1):
        for b in range(1, stage.blocks + 1):
            block += 1
            x = block_fn(
                x,
                stage.width,
                stage.out,
                stage.stride if b == 1 else 1,
                spec,
                act,
                block,
                f"stage{s}_block{b}",
                survival[block - 1],
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
    EraseReLU (``erase`` naming "last", as a string or in a list) converts a
    pre-activation net to after-activation first."""
    act = ActivationPlacement(activation, erase, proportion)
    return act, preact and not act.erases("last")


def build(
    stem,
    stages,
    spec,
    act,
    stochastic_depth,
    *,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    name,
    default_size,
    min_size,
):
    """Bind the placement to the network's blocks, then stem, residual stages, the
    pre-activation head and the keras.applications top."""
    act = act.bind(sum(stage.blocks for stage in stages), spec.slots)
    img_input, source = common.resolve_input(
        input_tensor, input_shape, include_top, default_size=default_size, min_size=min_size
    )
    x = stem(img_input, spec, act)
    x = residual_stages(x, stages, spec, act, stochastic_depth)
    x = pre_activation_head(x, spec, act)
    x = common.top(x, include_top, pooling, classes, classifier_activation)
    return common.finish(img_input, source, x, name, weights)
