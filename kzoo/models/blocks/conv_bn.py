"""The convolution and batch normalisation of kzoo's CIFAR-style blocks: Torch's BN
(momentum 0.1, eps 1e-5) as the papers' code used it, and MSRA-initialised convolutions
without bias."""

import functools

from keras import layers

from kzoo.layers import BatchNormalization

bn = functools.partial(BatchNormalization, momentum=0.9, epsilon=1e-5)
conv = functools.partial(layers.Conv2D, padding="same", use_bias=False, kernel_initializer="he_normal")


def conv_bn_act(x, filters, kernel, act, name, block=None, slot=None, strides=1):
    """conv-BN-activation, named ``{name}_conv``, ``{name}_bn``, ``{name}_{kind}``; the
    activation goes through the placement as ``slot`` of ``block``."""
    x = conv(filters, kernel, strides=strides, name=f"{name}_conv")(x)
    x = bn(name=f"{name}_bn")(x)
    return act(x, f"{name}_{{kind}}", block, slot)
