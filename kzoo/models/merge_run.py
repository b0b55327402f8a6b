"""Deep merge-and-run fused networks (DFN-MR, Zhao et al. 2016) and the proportional
paper's cross-proportional blocks.

A merge-and-run block runs two lines side by side, each conv-BN-act-conv-BN. Merge:
the average of the two lines' inputs; run: it is added to each line's output, and each
sum is activated to become that line's next input. The structure follows the authors'
code (github.com/zlmzju/fusenet, ``cross``): a 3x3 stem of 16w channels feeds both lines;
three stages of 16w/32w/64w; in the first block of stages 2 and 3 each line's first
convolution strides by 2 and each line's shortcut is its own 1x1 stride-2 convolution
+ BN before the average. ``depth`` is the depth of the corresponding plain network
(4 layers per block: two lines of two convolutions), so 110 gives 9 blocks per stage.
One difference, for uniform blocks: the authors' last block ends in one activation of
``average + deep1 + deep2``; kzoo keeps the last block like the others and adds the two
lines before pooling (same parameters).

Activation slots (``kzoo.models.blocks.merge_run.MERGE_RUN``): ``line1_first``, ``line1_last``,
``line2_first``, ``line2_last``; ``first``/``last`` name both lines. The proportional
paper's cross-proportional blocks are ``cross_type`` presets of ``erase``:
Type1 removes the activation after the addition in one line (``line2_last``), Type2 the
one before it in one line (``line2_first``). Type3 and Mix1 appear only in the paper's
figures; kzoo reads Type3 as both removals crossed over the lines (``line1_last`` and
``line2_first``) and Mix1 as blocks cycling through Type1, Type2, Type3.
"""

import functools

from keras import layers

from kzoo.models import assembly, common
from kzoo.models.blocks.merge_run import MERGE_RUN, merge_run_block
from kzoo.models.blocks.stems import CIFAR_MIN_SIZE, cifar_stem
from kzoo.models.named_builders import member_of
from kzoo.models.registry import register_model
from kzoo.placement import ActivationPlacement

PAPER = "Zhao et al. 2016, Deep Convolutional Neural Networks with Merge-and-Run Mappings"
LAYERS_PER_BLOCK = 4
WIDTHS = (16, 32, 64)  # the stages' widths, times the width multiplier

CROSS_TYPES = {
    "type1": "line2_last",
    "type2": "line2_first",
    "type3": ["line1_last", "line2_first"],
    "mix1": [["line2_last"], ["line2_first"], ["line1_last", "line2_first"]],
}


def _cross_erase(cross_type, erase):
    if cross_type is None:
        return erase
    if not isinstance(cross_type, str):
        raise TypeError(f"`cross_type` must be None or one of {', '.join(CROSS_TYPES)}, got {cross_type!r}")
    key = cross_type.strip().lower().replace("_", "").replace("-", "")
    if key not in CROSS_TYPES:
        raise ValueError(
            f"Unknown `cross_type`={cross_type!r}; expected None or one of {', '.join(CROSS_TYPES)}."
        )
    if erase is not None:
        raise ValueError(
            f"Give `cross_type` or `erase`, not both (got cross_type={cross_type!r}, erase={erase!r})"
        )
    return CROSS_TYPES[key]


def DFNMR(
    depth=110,
    width=1,
    cross_type=None,
    activation="relu",
    erase=None,
    proportion=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name=None,
):
    """A deep merge-and-run fused network for CIFAR.

    Args:
        depth: the corresponding plain network's depth, 12n+2 (n blocks per stage):
            110 for DFN-MR1, 62 for DFN-MR2.
        width: the width multiplier w (stage widths 16w, 32w, 64w): 1 for MR1, 4 for MR2.
        cross_type: None (paired blocks), "type1", "type2", "type3" or "mix1", the
            proportional paper's cross-proportional blocks (a preset of ``erase``;
            ``proportion`` still chooses which blocks).
        activation, erase, proportion: as in ``kzoo.CifarResNet``; slots
            ``line1_first``, ``line1_last``, ``line2_first``, ``line2_last``, and
            ``first``/``last`` for both lines.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``.
    """
    common.check_int(depth, "depth")
    common.check_int(width, "width")
    if depth < 14 or (depth - 2) % 12:
        raise ValueError(
            f"`depth`={depth} is not of the form 12n+2 (e.g. 110, 62) for a merge-and-run network"
        )
    if width < 1:
        raise ValueError(f"`width` (the width multiplier) must be a positive integer, got {width}")
    erase = _cross_erase(cross_type, erase)
    return assembly.assemble(
        placement=ActivationPlacement(activation, erase, proportion),
        slots=MERGE_RUN,
        blocks_per_stage=split_depth(depth, LAYERS_PER_BLOCK),
        stem=functools.partial(_stem, width=width),
        block=functools.partial(_block, width=width),
        head=_add_lines,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name or f"dfn_mr{depth}_{width}",
        default_size=32,
        min_size=CIFAR_MIN_SIZE,
    )


def _stem(img_input, act, *, width):
    """The CIFAR stem of 16w channels, feeding both lines."""
    x = cifar_stem(img_input, act, width=16 * width)
    return x, x


def _block(lines, position, act, *, width):
    """The block at ``position``; the first of stages 2 and 3 strides by 2."""
    return merge_run_block(
        lines,
        filters=WIDTHS[position.stage - 1] * width,
        stride=2 if position.stage > 1 and position.first else 1,
        act=act,
        prefix=position.name,
        block=position.number,
    )


def _add_lines(lines, act):
    """The two lines added before pooling."""
    return layers.Add(name="lines_add")(list(lines))


def _dfn_mr(depth, width, model_name):
    """Make the stub below it the named builder of ``DFNMR`` at this depth and width."""
    return member_of(
        DFNMR,
        classes=10,
        model_name=model_name,
        fixed={"depth": depth, "width": width},
        options={"cross_type": None, "activation": "relu", "erase": None, "proportion": None},
    )


_FACTS = {
    "family": "merge_run",
    "paper": PAPER,
    "input_shape": (32, 32, 3),
    "classes": 10,
    "dataset": "CIFAR-10/100",
    "params_note": "published figures: the authors' README (zlmzju/fusenet); REFERENCE gives MR1 1.7M",
}


@register_model(name="dfn_mr1", published_params=1.7e6, expected_params=1_710_426, **_FACTS)
@_dfn_mr(110, 1, "dfn_mr1")
def DFNMR1():
    """DFN-MR1: plain depth 110, width 1."""


@register_model(name="dfn_mr2", published_params=14.9e6, expected_params=14_851_402, **_FACTS)
@_dfn_mr(62, 4, "dfn_mr2")
def DFNMR2():
    """DFN-MR2: plain depth 62, width 4."""


def split_depth(depth, layers_per_block, stages=3):
    """Blocks per stage of a ``depth``-layer CIFAR net whose blocks hold
    ``layers_per_block`` layers of its depth, besides the stem and the classifier.

    The merge-and-run authors' rule (zlmzju/fusenet): stage i takes
    (depth - used) // (layers_per_block * (stages - i)) blocks, so a remainder goes to
    the later stages (a plain 84-layer net: 27, 27, 28 modules).
    """
    used, sizes = 2, []
    for i in range(stages):
        n = (depth - used) // (layers_per_block * (stages - i))
        sizes.append(n)
        used += n * layers_per_block
    return tuple(sizes)
