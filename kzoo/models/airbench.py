"""An airbench-style fast network (Jordan 2024, "94% on CIFAR-10 in 3.29 seconds";
KellerJordan/cifar10-airbench, after Page's DAWNBench ResNet-9), sized for 28x28
grayscale images and two CPU cores.

A fixed patch-whitening layer (``kzoo.whitening``, computed from the training images by
``kzoo.train``) and its activation make the stem; then three blocks of conv -> 2x2
max-pool -> BN -> activation -> conv -> BN -> activation, each halving the resolution
(28x28 -> 27x27 after a 2x2 whitening, then 13, 6, 3); then a global max-pool, a fixed
scaling of the features (airbench's 1/9, which sets the logits' temperature) and the
classifier. Nothing runs at full resolution with few channels, the part of ResNet-20
that costs most of its time per FLOP.

As airbench trains it, batch normalisation has no learned scale (``center`` only) and a
fast running average (keras momentum 0.4: PyTorch's 0.6), and the convolutions may start
as identities on their first channels (``dirac=True``, airbench's Dirac initialisation).

Each block has two activation slots, ``first`` (after the pooled BN) and ``last``
(after the second BN), so EraseReLU (``erase="last"``), the 2:1 proportional module and
FReLU place on it as on every kzoo network.
"""

import functools

import keras
import numpy as np
from keras import layers

from kzoo import checks
from kzoo.layers import BatchNormalization, Scale
from kzoo.models import assembly, common
from kzoo.models.registry import register_model
from kzoo.placement import ActivationPlacement, BlockSlots
from kzoo.whitening import PatchWhitening

AIRBENCH_PAPER = 'Jordan 2024, "94% on CIFAR-10 in 3.29 Seconds on a Single GPU" (airbench)'
AIRBENCH_BLOCK = BlockSlots(("first", "last"), {"middle": "first", "second": "last"}, "an airbench block")
# Three 2x2 max-pools after a 2x2 whitening: 16x16 ends at 1x1.
AIRBENCH_MIN_SIZE = 16


@keras.saving.register_keras_serializable(package="kzoo")
class DiracInitializer(keras.initializers.Initializer):
    """A conv kernel that passes its first ``min(in, out)`` input channels through
    unchanged (a centred one), the remaining filters drawn from ``he_normal``: airbench's
    Dirac initialisation, which starts a deep stack close to the identity."""

    def __init__(self, seed=None):
        self.seed = seed

    def __call__(self, shape, dtype=None):
        kh, kw, cin, cout = shape
        kernel = keras.ops.convert_to_numpy(keras.initializers.HeNormal(self.seed)(shape, "float32"))
        n = min(cin, cout)
        kernel[:, :, :, :n] = 0.0
        kernel[kh // 2, kw // 2, np.arange(n), np.arange(n)] = 1.0
        return keras.ops.convert_to_tensor(kernel, dtype=dtype or "float32")

    def get_config(self):
        return {"seed": self.seed}


def _bn(name, bias_scale):
    return BatchNormalization(momentum=0.4, epsilon=1e-5, scale=False, bias_scale=bias_scale, name=name)


def _conv(filters, dirac, name):
    init = DiracInitializer() if dirac else "he_normal"
    return layers.Conv2D(filters, 3, padding="same", use_bias=False, kernel_initializer=init, name=name)


def _check_widths(widths):
    if not isinstance(widths, (tuple, list)) or len(widths) != 3:
        raise ValueError(f"`widths` must be three positive integers (one per block), got {widths!r}")
    return tuple(checks.integer(w, "widths", minimum=1) for w in widths)


@register_model(
    name="airbench_net",
    family="airbench",
    paper=AIRBENCH_PAPER,
    published_params=None,
    expected_params=289_746,
    input_shape=(28, 28, 1),
    classes=10,
    dataset="Fashion-MNIST",
    params_note="kzoo's 28x28x1 sizing of airbench's net; airbench prints no count for it",
)
def AirbenchNet(
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name="airbench_net",
    *,
    widths=(32, 64, 128),
    whitening=True,
    whitening_kernel=2,
    dirac=True,
    feature_scale=1 / 9,
    bn_bias_lr=1.0,
    activation="relu",
    erase=None,
    proportion=None,
):
    """The airbench-style fast network (see the module's docstring).

    Args:
        widths: the three blocks' channels (airbench's CIFAR-10 net has 64, 256, 256;
            the default 32, 64, 128 is sized for 28x28 grayscale on a CPU).
        whitening: the fixed whitening stem (False: a learned convolution of the same
            shape, ``stem_conv``, for ablations).
        whitening_kernel: the whitening patch size (2k^2C channels out).
        dirac: identity-initialised convolutions.
        feature_scale: the pooled features' factor before the classifier (a logit
            temperature).
        bn_bias_lr: how many times faster SGD moves the BN offsets than the other
            weights (airbench's 64; a reparametrisation: ``kzoo.layers.BatchNormalization``'s
            ``bias_scale`` is its square root).
        activation, erase, proportion: the placement (``kzoo.placement``), over the
            three blocks' ``first`` and ``last`` slots (the stem's activation is always
            the default one).
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``; default input (28, 28, 1)
            (Fashion-MNIST), 10 classes, smallest input 16x16. ``include_top=False``
            returns the last block's feature map.
    """
    widths = _check_widths(widths)
    checks.integer(whitening_kernel, "whitening_kernel", minimum=1)
    common.check_bool(dirac, "dirac")
    common.check_bool(whitening, "whitening")
    feature_scale = checks.number(feature_scale, "feature_scale")
    if feature_scale <= 0:
        raise ValueError(f"`feature_scale` must be positive, got {feature_scale!r}")
    bn_bias_lr = checks.number(bn_bias_lr, "bn_bias_lr")
    if bn_bias_lr <= 0:
        raise ValueError(f"`bn_bias_lr` must be positive, got {bn_bias_lr!r}")
    return assembly.assemble(
        placement=ActivationPlacement(activation, erase, proportion),
        slots=AIRBENCH_BLOCK,
        blocks_per_stage=(1,) * len(widths),
        stem=functools.partial(_stem, whitening=whitening, kernel=whitening_kernel),
        block=functools.partial(_block, widths=widths, dirac=dirac, bias_scale=bn_bias_lr**0.5),
        top=functools.partial(_top, feature_scale=feature_scale),
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name,
        default_size=28,
        min_size=AIRBENCH_MIN_SIZE + whitening_kernel - 2,
        default_channels=1,
    )


def _stem(img_input, act, *, whitening, kernel):
    """The fixed whitening patches (or, for ablations, a learned convolution of that
    shape), then the default activation."""
    if whitening:
        x = PatchWhitening(kernel, name="stem_whitening")(img_input)
    else:
        stem_width = 2 * kernel**2 * img_input.shape[-1]
        x = layers.Conv2D(stem_width, kernel, padding="valid", name="stem_conv")(img_input)
    return act(x, "stem_{kind}")


def _block(x, position, act, *, widths, dirac, bias_scale):
    """conv-pool-BN-act, conv-BN-act (slots ``first`` and ``last``)."""
    filters, prefix, block = widths[position.stage - 1], position.name, position.number
    x = _conv(filters, dirac, f"{prefix}_conv1")(x)
    x = layers.MaxPooling2D(2, name=f"{prefix}_pool")(x)
    x = _bn(f"{prefix}_bn1", bias_scale)(x)
    x = act(x, f"{prefix}_first_{{kind}}", block, "first")
    x = _conv(filters, dirac, f"{prefix}_conv2")(x)
    x = _bn(f"{prefix}_bn2", bias_scale)(x)
    return act(x, f"{prefix}_last_{{kind}}", block, "last")


def _top(x, act, *, include_top, pooling, classes, classifier_activation, feature_scale):
    """Global max-pooling, the feature scale and the classifier; or the pooling asked for."""
    if not include_top:
        return common.top(x, False, pooling, classes, classifier_activation)
    x = layers.GlobalMaxPooling2D(name="max_pool")(x)
    x = Scale(feature_scale, name="feature_scale")(x)
    return common.classifier(x, classes, classifier_activation)
