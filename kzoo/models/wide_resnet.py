"""Wide ResNets (Zagoruyko & Komodakis 2016): WRN-d-k, depth 6n+4, widths 16k/32k/64k.

Pre-activation basic blocks with dropout between the two convolutions (the "-D"
variants, ``dropout_rate``) and 1x1 projections where the width changes. EraseReLU
converts them to the after-activation form first (``erase="last"``).
"""

from kzoo.models import common, residual
from kzoo.models.cifar_resnet import MIN_SIZE, stem
from kzoo.models.registry import register_model

PAPER = "Zagoruyko & Komodakis 2016, Wide Residual Networks"


def _blocks_per_stage(depth, width):
    common.check_int(depth, "depth")
    common.check_int(width, "width")
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"`depth`={depth} is not of the form 6n+4 (e.g. 16, 28, 40, 52) for a Wide ResNet")
    if width < 1:
        raise ValueError(f"`width` (the widening factor k) must be a positive integer, got {width}")
    return (depth - 4) // 6


def WideResNet(
    depth,
    width,
    dropout_rate=0.0,
    preact=True,
    activation="relu",
    erase=None,
    proportion=None,
    stochastic_depth=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=10,
    classifier_activation="softmax",
    name=None,
):
    """WRN-``depth``-``width``.

    Args:
        depth: 6n+4 (n blocks per stage; the 4 counts the stem, the head and the two
            projection convolutions of the widening stages, as the paper counts).
        width: the widening factor k (stage widths 16k, 32k, 64k).
        dropout_rate: dropout between the two 3x3 convolutions of each block (0.3 for
            the CIFAR "-D" nets, 0.4 on SVHN in the paper).
        preact, activation, erase, proportion, stochastic_depth: as in
            ``kzoo.CifarResNet``.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``.
    """
    n = _blocks_per_stage(depth, width)
    common.check_bool(preact, "preact")
    residual.check_options(dropout_rate=dropout_rate, stochastic_depth=stochastic_depth)
    if name is None:
        name = f"wrn{depth}_{width}"
    common.check_common_args(include_top, weights, pooling, classes, classifier_activation, name)
    act, preact = residual.placement(activation, erase, proportion, preact)
    stages = [residual.Stage(n, w * width, w * width, 1 if s == 0 else 2)
              for s, w in enumerate((16, 32, 64))]
    return residual.build(
        lambda img, spec, act: stem(img, 16, spec, act), stages,
        residual.BlockSpec(preact, False, "B", dropout_rate=float(dropout_rate)), act,
        stochastic_depth, include_top=include_top, weights=weights, input_tensor=input_tensor,
        input_shape=input_shape, pooling=pooling, classes=classes,
        classifier_activation=classifier_activation, name=name, default_size=32,
        min_size=MIN_SIZE,
    )


def _named(depth, width):
    name = f"wrn{depth}_{width}"
    return common.named_builder(
        WideResNet, name, f"WRN-{depth}-{width} (Zagoruyko & Komodakis 2016).", classes=10,
        builder_name=f"WideResNet{depth}_{width}",
        fixed={"depth": depth, "width": width},
        options={"dropout_rate": 0.0, "preact": True, "activation": "relu", "erase": None,
                 "proportion": None, "stochastic_depth": None},
    )


WideResNet16_8 = _named(16, 8)
WideResNet28_10 = _named(28, 10)
WideResNet40_4 = _named(40, 4)
WideResNet52_1 = _named(52, 1)
WideResNet52_10 = _named(52, 10)

# Published counts (WRN paper) and hand counts (trainable, 10 classes).
for _builder, _d, _k, _published, _exact, _dataset in (
    (WideResNet16_8, 16, 8, 11.0e6, 10_961_370, "SVHN"),
    (WideResNet28_10, 28, 10, 36.5e6, 36_479_194, "CIFAR-10"),
    (WideResNet40_4, 40, 4, 8.9e6, 8_949_210, "CIFAR-10"),
    (WideResNet52_1, 52, 1, None, 758_362, "SVHN"),
    (WideResNet52_10, 52, 10, None, 75_204_314, "CIFAR-100"),
):
    register_model(
        f"wrn{_d}_{_k}", _builder, family="wide_resnet", paper=PAPER, published_params=_published,
        expected_params=_exact, input_shape=(32, 32, 3), classes=10, dataset=_dataset,
        params_note="" if _published else "no figure published; REFERENCE computes 0.76M / 75.2M",
    )
