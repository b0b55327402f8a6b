"""CIFAR networks of single-activation modules in three stages: EraseReLU's 31-layer
VGG-style and residual-style nets (Sec. 3.2, the proportion sweeps) and the proportional
paper's plain networks (paired, 2:1 proportional and ensemble modules). FReLU's SmallNet
and EraseReLU's MLP, single-activation nets of another shape, are in ``small_nets``.

Each module has one activation slot ("last", ``kzoo.models.blocks.single``), so
``erase="last", proportion=p`` removes the nonlinearity of the fraction p of modules,
counted from 1 over the network.
"""

import functools

from kzoo.models import assembly, common
from kzoo.models.blocks.single import SINGLE, conv_module
from kzoo.models.blocks.stems import CIFAR_MIN_SIZE, cifar_stem
from kzoo.models.merge_run import split_depth
from kzoo.models.named_builders import member_of
from kzoo.models.registry import register_model
from kzoo.placement import ActivationPlacement

FRELU_PAPER = "Qiu & Cai 2018, Flexible Rectified Linear Units for Improving Convolutional Neural Networks"
ERASE_PAPER = "Dong et al. 2018, EraseReLU: A Simple Way to Ease the Training of Deep CNNs"
PROPORTIONAL_PAPER = "Zhao et al. 2018, Training Better CNNs Requires to Rethink ReLU"
WIDTHS = (16, 32, 64)  # the single-activation CIFAR nets' stage widths


def single_relu_facts(paper, classes, exact, family="single_relu", shape=(32, 32, 3), dataset=None):
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


def _single_relu_net(*, per_stage, residual, placement, **network):
    """A 3x3, 16-filter stem (conv-BN-act, not a module), then three stages of
    conv-BN-act modules with 16, 32 and 64 channels, ``per_stage[s]`` modules in stage
    s; the first module of stages 2 and 3 strides by 2. A residual module adds a
    zero-padded identity before its activation. ``network``: ``assembly.assemble``'s
    keras.applications arguments."""

    def module(x, position, act):
        return conv_module(
            x,
            filters=WIDTHS[position.stage - 1],
            stride=2 if position.stage > 1 and position.first else 1,
            act=act,
            prefix=position.name,
            module=position.number,
            residual=residual,
        )

    return assembly.assemble(
        placement=placement,
        slots=SINGLE,
        blocks_per_stage=per_stage,
        stem=functools.partial(cifar_stem, width=WIDTHS[0]),
        block=module,
        default_size=32,
        min_size=CIFAR_MIN_SIZE,
        **network,
    )


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
        per_stage=(n, n, n),
        residual=residual,
        placement=ActivationPlacement(activation, erase, proportion),
        name=name or f"{'residual' if residual else 'vgg'}_style{depth}",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
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
        per_stage=split_depth(depth, 1),
        residual=False,
        placement=ActivationPlacement(activation, erase, proportion, ensemble),
        name=name or f"plain{depth}{'_ensemble' if ensemble else ''}",
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
    )


PLACEMENT_OPTIONS = {"activation": "relu", "erase": None, "proportion": None}


@register_model(name="vgg_style31", **single_relu_facts(ERASE_PAPER, 10, 464_154))
@member_of(
    SingleReLUNet,
    classes=10,
    model_name="vgg_style31",
    fixed={"depth": 31, "residual": False},
    options=PLACEMENT_OPTIONS,
)
def VGGStyle31():
    """EraseReLU's 31-layer VGG-style net."""


@register_model(name="residual_style31", **single_relu_facts(ERASE_PAPER, 10, 464_154))
@member_of(
    SingleReLUNet,
    classes=10,
    model_name="residual_style31",
    fixed={"depth": 31, "residual": True},
    options=PLACEMENT_OPTIONS,
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
        options={"ensemble": False, **PLACEMENT_OPTIONS},
    )


_PLAIN = {"paper": PROPORTIONAL_PAPER, "classes": 100, "family": "plain"}


@register_model(name="plain38", **single_relu_facts(exact=567_220, **_PLAIN))
@_plain(38)
def PlainNet38():
    """The proportional paper's 38-layer plain net."""


@register_model(name="plain62", **single_relu_facts(exact=956_084, **_PLAIN))
@_plain(62)
def PlainNet62():
    """The proportional paper's 62-layer plain net."""


@register_model(
    name="plain84_ensemble", kwargs={"ensemble": True}, **single_relu_facts(exact=1_333_332, **_PLAIN)
)
@register_model(name="plain84", **single_relu_facts(exact=1_333_332, **_PLAIN))
@_plain(84)
def PlainNet84():
    """The proportional paper's 84-layer plain net."""
