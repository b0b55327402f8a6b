"""The merge-and-run block of DFN-MR (Zhao et al. 2016) and its activation slots.

Two lines side by side, each conv-BN-act-conv-BN. Merge: the average of the two lines'
inputs (each through its own 1x1 stride-2 convolution + BN where the block strides or
widens); run: it is added to each line's output, and each sum is activated to become
that line's next input. Layers are named ``{prefix}_line{i}_conv1`` ...,
``{prefix}_merge``, ``{prefix}_line{i}_add``.
"""

from keras import layers

from kzoo.models.blocks.conv_bn import bn, conv
from kzoo.placement import BlockSlots

# "first"/"last" name the slot in both lines; the cross-proportional blocks erase one
# line's slot.
MERGE_RUN = BlockSlots(
    ("line1_first", "line1_last", "line2_first", "line2_last"),
    {
        "first": ("line1_first", "line2_first"),
        "middle": ("line1_first", "line2_first"),
        "last": ("line1_last", "line2_last"),
    },
    "a merge-and-run block",
)


def _line(x, filters, stride, act, prefix, line, block):
    y = conv(filters, 3, strides=stride, name=f"{prefix}_line{line}_conv1")(x)
    y = bn(name=f"{prefix}_line{line}_bn1")(y)
    y = act(y, f"{prefix}_line{line}_first_{{kind}}", block, f"line{line}_first")
    y = conv(filters, 3, name=f"{prefix}_line{line}_conv2")(y)
    return bn(name=f"{prefix}_line{line}_bn2")(y)


def _shortcut(x, filters, stride, prefix, line):
    if x.shape[-1] == filters and stride == 1:
        return x
    x = conv(filters, 1, strides=stride, name=f"{prefix}_line{line}_shortcut_conv")(x)
    return bn(name=f"{prefix}_line{line}_shortcut_bn")(x)


def merge_run_block(lines, *, filters, stride, act, prefix, block):
    """One merge-and-run block: takes and returns the two lines (a pair)."""
    deep = [_line(x, filters, stride, act, prefix, i, block) for i, x in enumerate(lines, start=1)]
    short = [_shortcut(x, filters, stride, prefix, i) for i, x in enumerate(lines, start=1)]
    merged = layers.Average(name=f"{prefix}_merge")(short)
    return tuple(
        act(
            layers.Add(name=f"{prefix}_line{i}_add")([merged, d]),
            f"{prefix}_line{i}_last_{{kind}}",
            block,
            f"line{i}_last",
        )
        for i, d in enumerate(deep, start=1)
    )
