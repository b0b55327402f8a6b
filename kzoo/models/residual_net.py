"""What the CIFAR ResNets, Wide ResNets and ResNeXts share on top of ``assembly``: their
stages of ``blocks.residual`` blocks, stochastic depth's decay over the whole network,
EraseReLU's pre- to post-activation conversion and the closing pre-activation."""

import dataclasses

from kzoo.models import assembly
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


def placement(activation, erase, proportion, preact):
    """The network's ``ActivationPlacement``, and whether it stays pre-activation:
    EraseReLU (``erase`` naming "last", as a string or in a list) converts a
    pre-activation net to after-activation first."""
    act = ActivationPlacement(activation, erase, proportion)
    return act, preact and not act.erases("last")


def pre_activation_head(x, act):
    """The BN-act that closes a pre-activation network before pooling."""
    x = bn(name="post_bn")(x)
    return act(x, "post_{kind}")


def build(*, stem, stages, spec, placement, stochastic_depth=None, **network):
    """A residual network: ``stem(input, act)``, the ``stages`` (``Stage``) of blocks of
    structure ``spec`` (``residual.BlockSpec``), the pre-activation head when ``spec`` is
    pre-activation, and the top; ``network``: ``assembly.assemble``'s other arguments."""
    survival = residual.survival_probabilities(sum(s.blocks for s in stages), stochastic_depth)
    block_fn = residual.pre_block if spec.preact else residual.post_block

    def block(x, position, act):
        stage = stages[position.stage - 1]
        return block_fn(
            x,
            width=stage.width,
            out=stage.out,
            stride=stage.stride if position.first else 1,
            spec=spec,
            act=act,
            block=position.number,
            prefix=position.name,
            survival=survival[position.number - 1],
        )

    return assembly.assemble(
        placement=placement,
        slots=spec.slots,
        blocks_per_stage=[s.blocks for s in stages],
        stem=stem,
        block=block,
        head=pre_activation_head if spec.preact else None,
        **network,
    )
