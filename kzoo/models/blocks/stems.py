"""The stem every CIFAR network of kzoo shares (ResNets, Wide ResNets, ResNeXts,
merge-and-run, Inception, the single-activation nets), and the smallest input it
accepts."""

from kzoo.models.blocks.conv_bn import bn, conv

# Two stride-2 stages after a stride-1 stem: an 8x8 input ends at 2x2.
CIFAR_MIN_SIZE = 8


def cifar_stem(img_input, act, *, width, preact=False):
    """A 3x3 convolution of ``width`` channels (``stem_conv``), then BN-act
    (``stem_bn``, ``stem_{kind}``) unless the blocks pre-activate their input."""
    x = conv(width, 3, name="stem_conv")(img_input)
    if not preact:
        x = bn(name="stem_bn")(x)
        x = act(x, "stem_{kind}")
    return x
