"""Networks of single-activation modules: FReLU's SmallNet, EraseReLU's 12-layer MLP and
its 31-layer VGG-style and residual-style nets (Sec. 3.2, the proportion sweeps), and the
proportional paper's plain networks (paired, 2:1 proportional and ensemble modules).

Each module has one activation slot ("last", ``kzoo.models.blocks.single``), so
``erase="last", proportion=p`` removes the nonlinearity of the fraction p of modules,
counted from 1 over the network.
"""

from keras import layers

from kzoo.models import common
from kzoo.models.blocks.conv_bn import bn, conv
from kzoo.models.blocks.residual import check_options
from kzoo.models.blocks.single import SINGLE, conv_module
from kzoo.models.blocks.stems import CIFAR_MIN_SIZE, cifar_stem
from kzoo.models.merge_run import split_depth
from kzoo.models.named_builders import member_of
from kzoo.models.registry import register_model
from kzoo.placement import ActivationPlacement

FRELU_PAPER = "Qiu & Cai 2018, Flexible Rectified Linear Units for Improving Convolutional Neural Networks"
ERASE_PAPER = "Dong et al. 2018, EraseReLU: A Simple Way to Ease the Training of Deep CNNs"
PROPORTIONAL_PAPER = "Zhao et al. 2018, Training Better CNNs Requires to Rethink ReLU"


def _facts(paper, classes, exact, family="single_relu", shape=(32, 32, 3), dataset=None):
    """The registry's facts of one of these nets: no paper prints its count, the tests
    derive it by hand (``exact``)."""
    return {
        "family": family,
        "paper": paper,
        "published_params": None,
        "expected_params": exact,
        "input_shape": shape,
        "classes": classes,
        "dataset": dataset or ("CIFAR-100" if classes == 100 else "CIFAR-10/100"),
        "params_note": "no figure published; the test derives the count by hand",
    }


def _placement(activation, erase, proportion, modules):
    return ActivationPlacement(activation, erase, proportion).bind(modules, SINGLE)


def _single_relu_net(
    per_stage,
    residual,
    act,
    name,
    include_top,
    weights,
    input_tensor,
    input_shape,
    pooling,
    classes,
    classifier_activation,
):
    common.check_common_args(include_top, weights, pooling, classes, classifier_activation, name)
    act = act.bind(sum(per_stage), SINGLE)
    img_input, source = common.resolve_input(input_tensor, input_shape, include_top, 32, CIFAR_MIN_SIZE)
    x = _single_relu_stages(img_input, per_stage, residual, act)
    x = common.top(x, include_top, pooling, classes, classifier_activation)
    return common.finish(img_input, source, x, name, weights)


def _single_relu_stages(img_input, per_stage, residual, act):
    """A 3x3, 16-filter stem (conv-BN-act, not a module), then three stages of
    conv-BN-act modules with 16, 32 and 64 channels, ``per_stage[s]`` modules in stage
    s; the first module of stages 2 and 3 strides by 2. A residual module adds a
    zero-padded identity before its activation."""
    x = cifar_stem(img_input, 16, act)
    module = 0
    for stage, (filters, n) in enumerate(zip((16, 32, 64), per_stage), start=1):
        for b in range(1, n + 1):
            module += 1
            stride = 2 if stage > 1 and b == 1 else 1
            x = conv_module(x, filters, stride, act, f"stage{stage}_block{b}", module, residual)
    return x


@register_model(kwargs={"batch_norm": False}, **_facts(FRELU_PAPER, 100, 1_193_636))
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

    Four modules carry an activation (the three convolutions and the 512-unit layer).

    Args:
        batch_norm: BN before each activation (``SmallNetBN``).
        activation, erase, proportion: the placement (``kzoo.placement``), one
            ``last`` slot per module.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``; default input
            (32, 32, 3), 100 classes (CIFAR-100), smallest input 8; ``include_top=False``
            returns the convolutional features.
    """
    common.check_bool(batch_norm, "batch_norm")
    name = name or ("smallnet_bn" if batch_norm else "smallnet")
    common.check_common_args(include_top, weights, pooling, classes, classifier_activation, name)
    act = _placement(activation, erase, proportion, 4)
    img_input, source = common.resolve_input(input_tensor, input_shape, include_top, 32, CIFAR_MIN_SIZE)
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

    Args:
        depth: fully connected layers, the classifier included.
        units: units of each hidden layer.
        dropout_rate: dropout after each hidden layer's activation (the paper's text
            does not give it; kzoo defaults to 0.2).
        activation, erase, proportion: the placement (``kzoo.placement``), one
            ``last`` slot per hidden layer.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``; images are flattened,
            default input (28, 28, 1); ``pooling`` must be None (no spatial features).
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
    img_input, source = common.resolve_input(
        input_tensor, input_shape, include_top, 28, 1, 1, fixed_size=True
    )
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

    Args:
        depth: weighted layers, 3k+1 (31 in the paper).
        residual: residual-style modules instead of VGG-style ones.
        activation, erase, proportion: the placement (``kzoo.placement``), one
            ``last`` slot per module.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``; default input
            (32, 32, 3), 10 classes.
    """
    common.check_int(depth, "depth")
    if depth < 4 or (depth - 1) % 3:
        raise ValueError(f"`depth`={depth} is not of the form 3n+1 (e.g. 31) for a single-ReLU network")
    common.check_bool(residual, "residual")
    n = (depth - 1) // 3
    return _single_relu_net(
        (n, n, n),
        residual,
        ActivationPlacement(activation, erase, proportion),
        name or f"{'residual' if residual else 'vgg'}_style{depth}",
        include_top,
        weights,
        input_tensor,
        input_shape,
        pooling,
        classes,
        classifier_activation,
    )


def PlainNet(
    depth=38,
    ensemble=False,
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
    """The proportional paper's VGG-style plain CIFAR network (Tables 1-2).

    He et al.'s plain net: a 3x3 16-filter stem, then conv-BN-ReLU modules in three
    stages of 16, 32 and 64 channels, global average pooling and the classifier;
    ``depth`` counts the weighted layers (stem + convolutions + classifier, so 38 and
    62 are He's 6n+2). 84 is not of that form; kzoo splits its 82 convolutions 27/27/28
    as the merge-and-run authors' code does (``merge_run.split_depth``).

    The paper's three modules are placement options:
    - paired module (1:1 conv:ReLU): the default;
    - 2:1 proportional module: ``erase="last", proportion=0.5`` (modules 1, 3, 5, ...
      lose their ReLU, as the paper's journal version states);
    - ensemble module: ``ensemble=True``, a shortcut across each ReLU (``relu(x) + x``,
      a leaky ReLU of slope 0.5 up to scale), the stem's included.

    Args:
        depth: weighted layers (38, 62 or 84 in the paper).
        ensemble: the ensemble module: a shortcut across each ReLU (``relu(x) + x``),
            the stem's included.
        activation, erase, proportion: the placement (``kzoo.placement``), one
            ``last`` slot per module.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``; default input
            (32, 32, 3), 100 classes (CIFAR-100).
    """
    common.check_int(depth, "depth")
    if depth < 5:
        raise ValueError(f"`depth` must be at least 5 (stem, one module per stage, classifier), got {depth}")
    common.check_bool(ensemble, "ensemble")
    return _single_relu_net(
        split_depth(depth, 1),
        False,
        ActivationPlacement(activation, erase, proportion, ensemble),
        name or f"plain{depth}{'_ensemble' if ensemble else ''}",
        include_top,
        weights,
        input_tensor,
        input_shape,
        pooling,
        classes,
        classifier_activation,
    )


_PLACEMENT = {"activation": "relu", "erase": None, "proportion": None}


@register_model(name="smallnet_bn", **_facts(FRELU_PAPER, 100, 1_194_372))
@member_of(SmallNet, classes=100, model_name="smallnet_bn", fixed={"batch_norm": True}, options=_PLACEMENT)
def SmallNetBN():
    """SmallNet with batch normalisation."""


@register_model(**_facts(ERASE_PAPER, 10, 10_816_010, shape=(28, 28, 1), dataset="MNIST"))
@member_of(MLP, classes=10, fixed={"depth": 12}, options={"units": 1000, "dropout_rate": 0.2, **_PLACEMENT})
def MLP12():
    """EraseReLU's 12-layer MLP for MNIST."""


@register_model(name="vgg_style31", **_facts(ERASE_PAPER, 10, 464_154))
@member_of(
    SingleReLUNet,
    classes=10,
    model_name="vgg_style31",
    fixed={"depth": 31, "residual": False},
    options=_PLACEMENT,
)
def VGGStyle31():
    """EraseReLU's 31-layer VGG-style net."""


@register_model(name="residual_style31", **_facts(ERASE_PAPER, 10, 464_154))
@member_of(
    SingleReLUNet,
    classes=10,
    model_name="residual_style31",
    fixed={"depth": 31, "residual": True},
    options=_PLACEMENT,
)
def ResidualStyle31():
    """EraseReLU's 31-layer residual-style net."""


def _plain(depth):
    """Make the stub below it the builder of the ``depth``-layer plain net (model "plain{depth}")."""
    return member_of(
        PlainNet,
        classes=100,
        model_name=f"plain{depth}",
        fixed={"depth": depth},
        options={"ensemble": False, **_PLACEMENT},
    )


_PLAIN = {"paper": PROPORTIONAL_PAPER, "classes": 100, "family": "plain"}


@register_model(name="plain38", **_facts(exact=567_220, **_PLAIN))
@_plain(38)
def PlainNet38():
    """The proportional paper's 38-layer plain net."""


@register_model(name="plain62", **_facts(exact=956_084, **_PLAIN))
@_plain(62)
def PlainNet62():
    """The proportional paper's 62-layer plain net."""


@register_model(name="plain84_ensemble", kwargs={"ensemble": True}, **_facts(exact=1_333_332, **_PLAIN))
@register_model(name="plain84", **_facts(exact=1_333_332, **_PLAIN))
@_plain(84)
def PlainNet84():
    """The proportional paper's 84-layer plain net."""
