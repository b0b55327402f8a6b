"""Networks of single-activation modules: FReLU's SmallNet, EraseReLU's 12-layer MLP and
its 31-layer VGG-style and residual-style nets (Sec. 3.2, the proportion sweeps).

Each module has one activation slot ("last"), so ``erase="last", proportion=p`` removes
the nonlinearity of the fraction p of modules, counted from 1 over the network.
"""

from keras import layers

from kzoo.models import common
from kzoo.models.residual import bn, check_options, conv, shortcut
from kzoo.models.registry import register_model
from kzoo.placement import SINGLE, ActivationPlacement

FRELU_PAPER = "Qiu & Cai 2018, Flexible Rectified Linear Units for Improving Convolutional Neural Networks"
ERASE_PAPER = "Dong et al. 2018, EraseReLU: A Simple Way to Ease the Training of Deep CNNs"

def _placement(activation, erase, proportion, modules):
    return ActivationPlacement(activation, erase, proportion).bind(modules, SINGLE)


def SmallNet(
    batch_norm=False,
    activation="relu",
    erase=None,
    proportion=None,
    include_top=True,
    weights=None,
    input_tensor=None,
    input_shape=None,
    pooling=None,
    classes=100,
    classifier_activation="softmax",
    name=None,
):
    """FReLU's SmallNet (Table 3): three 3x3 convolutions (32, 64, 128) each followed by
    (BN +) activation, 2x2 max-pool and 20% dropout, then a 512-unit linear layer with
    (BN +) activation and 50% dropout, and the classifier.

    Four modules carry an activation (the three convolutions and the 512-unit layer);
    ``include_top=False`` returns the convolutional features. Default input (32, 32, 3),
    100 classes (CIFAR-100), smallest input 8.
    """
    common.check_bool(batch_norm, "batch_norm")
    name = name or ("smallnet_bn" if batch_norm else "smallnet")
    common.check_common_args(include_top, weights, pooling, classes, classifier_activation, name)
    act = _placement(activation, erase, proportion, 4)
    img_input, source = common.resolve_input(input_tensor, input_shape, include_top, 32, 8)
    x = img_input
    for i, filters in enumerate((32, 64, 128), start=1):
        x = conv(filters, 3, use_bias=not batch_norm, name=f"block{i}_conv")(x)
        if batch_norm:
            x = bn(name=f"block{i}_bn")(x)
        x = act(x, f"block{i}_{{kind}}", i, "last")
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
        x = layers.Dropout(0.2, name=f"block{i}_dropout")(x)
    if include_top:
        x = layers.Flatten(name="flatten")(x)
        x = layers.Dense(512, use_bias=not batch_norm, name="fc1")(x)
        if batch_norm:
            x = bn(name="fc1_bn")(x)
        x = act(x, "fc1_{kind}", 4, "last")
        x = layers.Dropout(0.5, name="fc1_dropout")(x)
        x = common.classifier(x, classes, classifier_activation)
    else:
        x = common.top(x, False, pooling, classes, classifier_activation)
    return common.finish(img_input, source, x, name, weights)


def MLP(
    depth=12,
    units=1000,
    dropout_rate=0.2,
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
    """EraseReLU's multilayer perceptron (Sec. 3.2, MNIST): ``depth`` fully connected
    layers, the first depth-1 of ``units`` units each followed by BN, activation and
    dropout (one module each), the last mapping to ``classes``.

    The paper's text does not give the dropout rate; kzoo defaults to 0.2. Images are
    flattened; default input (28, 28, 1). ``pooling`` must be None (no spatial features).
    """
    for arg, value, low in (("depth", depth, 2), ("units", units, 1)):
        common.check_int(value, arg)
        if value < low:
            raise ValueError(f"`{arg}` must be at least {low}, got {value}")
    check_options(dropout_rate=dropout_rate)
    if pooling is not None:
        raise ValueError(f"`pooling` must be None for an MLP (it has no spatial features), got {pooling!r}")
    name = name or f"mlp{depth}"
    common.check_common_args(include_top, weights, pooling, classes, classifier_activation, name)
    act = _placement(activation, erase, proportion, depth - 1)
    img_input, source = common.resolve_input(input_tensor, input_shape, include_top, 28, 1, 1,
                                              fixed_size=True)
    x = layers.Flatten(name="flatten")(img_input)
    for i in range(1, depth):
        x = layers.Dense(units, use_bias=False, kernel_initializer="he_normal", name=f"fc{i}")(x)
        x = bn(name=f"fc{i}_bn")(x)
        x = act(x, f"fc{i}_{{kind}}", i, "last")
        if dropout_rate:
            x = layers.Dropout(dropout_rate, name=f"fc{i}_dropout")(x)
    if include_top:
        x = common.classifier(x, classes, classifier_activation)
    return common.finish(img_input, source, x, name, weights)


def SingleReLUNet(
    depth=31,
    residual=False,
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
    """EraseReLU's VGG-style or residual-style CIFAR net of single-ReLU modules (Sec. 3.2).

    A 3x3, 16-filter stem convolution (with BN and activation), then 3 stages of
    (depth-1)/3 modules with 16, 32 and 64 channels; the first module of stages 2 and 3
    strides by 2. A VGG-style module is conv-BN-act; a residual-style module is
    act(x + BN(conv(x))), with a zero-padded identity where the shape changes. depth 31
    gives the paper's 30 modules. The stem's activation is not a module and is never
    erased.
    """
    common.check_int(depth, "depth")
    if depth < 4 or (depth - 1) % 3:
        raise ValueError(f"`depth`={depth} is not of the form 3n+1 (e.g. 31) for a single-ReLU network")
    common.check_bool(residual, "residual")
    n = (depth - 1) // 3
    name = name or f"{'residual' if residual else 'vgg'}_style{depth}"
    common.check_common_args(include_top, weights, pooling, classes, classifier_activation, name)
    act = _placement(activation, erase, proportion, 3 * n)
    img_input, source = common.resolve_input(input_tensor, input_shape, include_top, 32, 8)
    x = conv(16, 3, use_bias=False, name="stem_conv")(img_input)
    x = bn(name="stem_bn")(x)
    x = act(x, "stem_{kind}")
    module = 0
    for stage, filters in enumerate((16, 32, 64), start=1):
        for b in range(1, n + 1):
            module += 1
            prefix = f"stage{stage}_block{b}"
            stride = 2 if stage > 1 and b == 1 else 1
            y = conv(filters, 3, strides=stride, use_bias=False, name=f"{prefix}_conv")(x)
            y = bn(name=f"{prefix}_bn")(y)
            if residual:
                s = shortcut(x, x, filters, stride, "A", prefix, with_bn=False)
                y = layers.Add(name=f"{prefix}_add")([s, y])
            x = act(y, f"{prefix}_{{kind}}", module, "last")
    x = common.top(x, include_top, pooling, classes, classifier_activation)
    return common.finish(img_input, source, x, name, weights)


_PLACEMENT = {"activation": "relu", "erase": None, "proportion": None}
SmallNetBN = common.named_builder(SmallNet, "smallnet_bn", "SmallNet with batch normalisation.", 100,
                                  {"batch_norm": True}, _PLACEMENT, builder_name="SmallNetBN")
MLP12 = common.named_builder(MLP, "mlp12", "EraseReLU's 12-layer MLP for MNIST.", 10,
                             {"depth": 12}, {"units": 1000, "dropout_rate": 0.2, **_PLACEMENT},
                             builder_name="MLP12")
VGGStyle31 = common.named_builder(SingleReLUNet, "vgg_style31", "EraseReLU's 31-layer VGG-style net.",
                                  10, {"depth": 31, "residual": False}, _PLACEMENT,
                                  builder_name="VGGStyle31")
ResidualStyle31 = common.named_builder(SingleReLUNet, "residual_style31",
                                       "EraseReLU's 31-layer residual-style net.", 10,
                                       {"depth": 31, "residual": True}, _PLACEMENT,
                                       builder_name="ResidualStyle31")

for _name, _builder, _kwargs, _paper, _shape, _classes, _dataset, _exact in (
    ("smallnet", SmallNet, {"batch_norm": False}, FRELU_PAPER, (32, 32, 3), 100, "CIFAR-100", 1_193_636),
    ("smallnet_bn", SmallNetBN, {}, FRELU_PAPER, (32, 32, 3), 100, "CIFAR-100", 1_194_372),
    ("mlp12", MLP12, {}, ERASE_PAPER, (28, 28, 1), 10, "MNIST", 10_816_010),
    ("vgg_style31", VGGStyle31, {}, ERASE_PAPER, (32, 32, 3), 10, "CIFAR-10/100", 464_154),
    ("residual_style31", ResidualStyle31, {}, ERASE_PAPER, (32, 32, 3), 10, "CIFAR-10/100", 464_154),
):
    register_model(
        _name, _builder, family="single_relu", paper=_paper, published_params=None,
        expected_params=_exact, input_shape=_shape, classes=_classes, dataset=_dataset,
        params_note="no figure published; the test derives the count by hand", kwargs=_kwargs,
    )
