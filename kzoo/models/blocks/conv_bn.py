"""The convolution and batch normalisation of kzoo's CIFAR-style blocks: Torch's BN
(momentum 0.1, eps 1e-5) as the papers' code used it, and MSRA-initialised convolutions
without bias."""

import functools

from keras import layers

from kzoo.layers import BatchNormalization, GroupedConv2D

bn = functools.partial(BatchNormalization, momentum=0.9, epsilon=1e-5)


def conv(filters, kernel_size, groups=1, **kwargs):
    """A ``same``-padded, bias-free, MSRA-initialised ``Conv2D`` (``GroupedConv2D`` when
    ``groups`` > 1, for TensorFlow's grouped kernel); ``kwargs`` override the defaults."""
    kwargs = {"padding": "same", "use_bias": False, "kernel_initializer": "he_normal", **kwargs}
    if groups == 1:
        return layers.Conv2D(filters, kernel_size, **kwargs)
    return GroupedConv2D(filters, kernel_size, groups=groups, **kwargs)


def conv_bn_act(x, filters, kernel, act, name, block=None, slot=None, strides=1):
    """conv-BN-activation, named ``{name}_conv``, ``{name}_bn``, ``{name}_{kind}``; the
    activation goes through the placement as ``slot`` of ``block``."""
    x = conv(filters, kernel, strides=strides, name=f"{name}_conv")(x)
    x = bn(name=f"{name}_bn")(x)
    return act(x, f"{name}_{{kind}}", block, slot)
