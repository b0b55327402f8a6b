"""EraseReLU's Inception-V2 for CIFAR (Dong et al., Sec. 4.2, Table 2, Fig. 2(e)).

The paper states: one 64-channel convolution, then three stages of ten Inception
modules with base widths 16, 32 and 64, branch outputs 1x1 : 3x3 : double 3x3 ("5x5 as
two 3x3") : pool = 1 : 8 : 2 : 1, and EraseReLU at 50%. It gives neither code nor the
rest, so kzoo completes it with BN-Inception's conventions (Ioffe & Szegedy 2015):

- the stem is conv3x3(64)-BN-act;
- a module of base width w has four branches, every convolution conv-BN-act:
  1x1(w); 1x1(w) -> 3x3(8w); 1x1(w) -> 3x3(2w) -> 3x3(2w); avg-pool 3x3 -> 1x1(w),
  concatenated to 12w channels (the 1x1 reductions are w wide, as the 1x1 branch, like
  BN-Inception's module 3a);
- the first module of stages 2 and 3 strides by 2 in every branch (its last
  convolution, and the pooling);
- global average pooling and the classifier.

EraseReLU's "last" slot is the last activation of each branch (the ones feeding the
concatenation), so erasing it makes the module's output linear as in the ResNets;
``erase`` without ``proportion`` erases 50% of the modules (1, 3, 5, ...), the paper's
choice for this network.
"""

import functools

from kzoo.models import assembly, common
from kzoo.models.blocks.inception import INCEPTION, inception_module
from kzoo.models.blocks.stems import CIFAR_MIN_SIZE, cifar_stem
from kzoo.models.registry import register_model
from kzoo.placement import ActivationPlacement

PAPER = "Dong et al. 2018, EraseReLU: A Simple Way to Ease the Training of Deep CNNs"
DEFAULT_PROPORTION = 0.5
WIDTHS = (16, 32, 64)  # the stages' base widths


@register_model(
    name="inception_v2_cifar",
    family="inception",
    paper=PAPER,
    published_params=None,
    expected_params=9_268_554,
    input_shape=(32, 32, 3),
    classes=10,
    dataset="CIFAR-10/100",
    params_note="no figure published; the test derives the count by hand from kzoo's documented layout",
)
def CifarInceptionV2(
    modules_per_stage=10,
    stem_width=64,
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
    """Inception-V2 for CIFAR as EraseReLU trains it.

    Args:
        modules_per_stage: Inception modules per stage (10 in the paper).
        stem_width: channels of the stem convolution (64).
        activation, erase, proportion: the placement options; slots ``reduce``
            (alias ``first``), ``inner`` (alias ``middle``) and ``last``. ``erase``
            alone erases 50% of the modules, the paper's setting.
        include_top, weights, input_tensor, input_shape, pooling, classes,
        classifier_activation, name: as in ``keras.applications``.
    """
    for arg, value in (("modules_per_stage", modules_per_stage), ("stem_width", stem_width)):
        common.check_int(value, arg)
        if value < 1:
            raise ValueError(f"`{arg}` must be a positive integer, got {value}")
    if erase is not None and proportion is None:
        proportion = DEFAULT_PROPORTION
    return assembly.assemble(
        placement=ActivationPlacement(activation, erase, proportion),
        slots=INCEPTION,
        blocks_per_stage=(modules_per_stage,) * len(WIDTHS),
        stem=functools.partial(cifar_stem, width=stem_width),
        block=_module,
        include_top=include_top,
        weights=weights,
        input_tensor=input_tensor,
        input_shape=input_shape,
        pooling=pooling,
        classes=classes,
        classifier_activation=classifier_activation,
        name=name or "inception_v2_cifar",
        default_size=32,
        min_size=CIFAR_MIN_SIZE,
    )


def _module(x, position, act):
    """The module at ``position``; the first of stages 2 and 3 strides by 2."""
    return inception_module(
        x,
        width=WIDTHS[position.stage - 1],
        stride=2 if position.stage > 1 and position.first else 1,
        act=act,
        prefix=position.name,
        block=position.number,
    )
