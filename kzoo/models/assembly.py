"""One way to assemble a network, as keras' ``ResNet(stack_fn, ...)`` and keras-hub's
backbone-plus-head: the input, a stem, stages of blocks counted over the whole network,
a head, then the keras.applications top. Every kzoo builder goes through ``assemble`` and
supplies only what differs (its stem, its block, its head); the block counter, the
placement's binding to it, the input checks, the top and the weights are written once.

Blocks are numbered from 1 over the whole network: the number a placement's
``proportion`` and stochastic depth's decay count by.
"""

import dataclasses

from kzoo.models import common


@dataclasses.dataclass(frozen=True)
class Position:
    """Where a block sits: its ``stage`` (from 1), its index ``block`` in that stage (from
    1) of ``blocks``, and its ``number`` (from 1) of ``total`` over the network."""

    stage: int
    block: int
    blocks: int
    number: int
    total: int

    @property
    def first(self):
        """The stage's first block (the one that strides, in most networks)."""
        return self.block == 1

    @property
    def last(self):
        """The stage's last block."""
        return self.block == self.blocks

    @property
    def name(self):
        """The block's layer-name prefix, ``stage{s}_block{b}``."""
        return f"stage{self.stage}_block{self.block}"


def positions(blocks_per_stage):
    """The ``Position`` of every block, in order, for stages of ``blocks_per_stage`` blocks."""
    total = sum(blocks_per_stage)
    number = 0
    for stage, blocks in enumerate(blocks_per_stage, start=1):
        for block in range(1, blocks + 1):
            number += 1
            yield Position(stage, block, blocks, number, total)


def keras_top(x, act, *, include_top, pooling, classes, classifier_activation):
    """keras.applications' top: average pooling and the classifier, or the pooling asked
    for (``act`` unused: a family's own top may place activations)."""
    return common.top(x, include_top, pooling, classes, classifier_activation)


def assemble(
    *,
    name,
    placement,
    slots,
    blocks_per_stage=(),
    block=None,
    stem=None,
    head=None,
    top=keras_top,
    modules=None,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
    default_size,
    min_size,
    default_channels=3,
    fixed_size=False,
):
    """Build the network: ``stem(input, act)``, then ``block(x, position, act)`` for every
    block of ``blocks_per_stage``, then ``head(x, act)`` and ``top(x, act, include_top=...,
    pooling=..., classes=..., classifier_activation=...)``.

    Args:
        name: the model's name.
        placement: the network's ``kzoo.placement.ActivationPlacement``; it is bound here
            to ``modules`` blocks (default: every block of ``blocks_per_stage``) of
            ``slots`` (a ``BlockSlots``), and the bound one is the ``act`` every part gets.
        blocks_per_stage: the number of blocks of each stage.
        block, stem, head: the family's parts (None: none). ``x`` may be any structure a
            family threads through its blocks (merge-and-run's two lines).
        top: the top (default keras.applications'); a family with another classifier
            (a flattening one, say) gives its own, with the same keyword arguments.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation: as in ``keras.applications``.
        default_size, min_size, default_channels, fixed_size: the input the network is
            built for (``common.resolve_input``).
    """
    common.check_common_args(include_top, weights, pooling, classes, classifier_activation, name)
    act = placement.bind(sum(blocks_per_stage) if modules is None else modules, slots)
    img_input, source = common.resolve_input(
        input_tensor,
        input_shape,
        include_top,
        default_size,
        min_size,
        default_channels=default_channels,
        fixed_size=fixed_size,
    )
    x = img_input if stem is None else stem(img_input, act)
    for position in positions(blocks_per_stage):
        x = block(x, position, act)
    if head is not None:
        x = head(x, act)
    x = top(
        x,
        act,
        include_top=include_top,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )
    return common.finish(img_input, source, x, name, weights)
