"""Counting the activation layers that remain proves the placement picks the right
slots in the right blocks."""

import functools
import re

import keras
import pytest

import kzoo
from kzoo.models.blocks.residual import POST_BOTTLENECK
from kzoo.placement import ERASE_LOCATIONS, ActivationPlacement, uniform_selection

SMALL = {"input_shape": (16, 16, 3)}


def _slot_blocks(model, slot, kind="relu"):
    """Global 1-based indices of the blocks whose ``slot`` activation remains."""
    per_stage = None
    found = []
    pat = re.compile(rf"stage(\d)_block(\d+)_{slot}_{kind}$")
    blocks = [layer.name for layer in model.layers if re.match(r"stage\d_block\d+_add$", layer.name)]
    per_stage = len(blocks) // 3
    for name in kzoo.activation_layers(model):
        m = pat.match(name)
        if m:
            found.append((int(m.group(1)) - 1) * per_stage + int(m.group(2)))
    return found


@pytest.mark.parametrize(
    "p, expected",
    [
        (0.5, [1, 3, 5, 7, 9]),
        (0.25, [1, 5, 9]),
        (0.75, [1, 2, 3, 5, 6, 7, 9, 10]),
        (1.0, list(range(1, 11))),
        (0.1, [1]),
        (0.2, [1, 6]),
    ],
)
def test_uniform_selection(p, expected):
    assert list(uniform_selection(10, p)) == expected


def test_resnet110_half_erased_keeps_even_blocks():
    model = kzoo.ResNet110(erase="last", proportion=0.5, **SMALL)
    kept = _slot_blocks(model, "last")
    assert len(kept) == 27
    assert kept == list(range(2, 55, 2))
    assert len(_slot_blocks(model, "first")) == 54  # the first ReLUs are untouched
    assert len(kzoo.activation_layers(model)) == 1 + 54 + 27


def test_default_erase_proportion_is_all_blocks():
    model = kzoo.ResNet20(erase="last", **SMALL)
    assert _slot_blocks(model, "last") == []
    assert len(kzoo.activation_layers(model)) == 1 + 9


def test_quarter_and_explicit_indices():
    model = kzoo.ResNet56(erase="last", proportion=0.25, **SMALL)
    erased = set(range(1, 28)) - set(_slot_blocks(model, "last"))
    assert sorted(erased) == [1, 5, 9, 13, 17, 21, 25]
    model = kzoo.ResNet20(erase="first", proportion=[2, 9], **SMALL)
    assert sorted(set(range(1, 10)) - set(_slot_blocks(model, "first"))) == [2, 9]


def test_er_star_is_the_middle_relu():
    a = kzoo.ResNet20(erase="middle", **SMALL)
    b = kzoo.ResNet20(erase="first", **SMALL)
    assert kzoo.activation_layers(a) == kzoo.activation_layers(b)
    assert _slot_blocks(a, "first") == [] and len(_slot_blocks(a, "last")) == 9


def test_preact_erase_last_converts_to_after_activation():
    model = kzoo.ResNet164(erase="last", **SMALL)
    names = {layer.name for layer in model.layers}
    assert "stem_bn" in names and "post_bn" not in names  # after-activation structure
    assert _slot_blocks(model, "last") == []
    assert len(_slot_blocks(model, "first")) == 54 and len(_slot_blocks(model, "second")) == 54
    original = kzoo.ResNet164(**SMALL)
    assert "post_bn" in {layer.name for layer in original.layers}
    assert len(kzoo.activation_layers(original)) == 3 * 54 + 1  # 3 per block + post


@pytest.mark.parametrize("slot", ["first", "second", "third"])
def test_preact_bottleneck_types(slot):
    model = kzoo.ResNet164(erase=slot, **SMALL)
    assert _slot_blocks(model, slot) == []
    others = {"first", "second", "third"} - {slot}
    assert all(len(_slot_blocks(model, s)) == 54 for s in others)


def test_pre_proportional_2_to_1_removes_first_relu():
    model = kzoo.CifarResNet(62, preact=True, erase="first", **SMALL)
    assert _slot_blocks(model, "first") == []
    assert len(_slot_blocks(model, "second")) == 30
    assert "post_relu" in kzoo.activation_layers(model)


def test_frelu_variants():
    a = kzoo.ResNet20(activation="frelu", **SMALL)
    kept = kzoo.activation_layers(a)
    kinds = {type(model_layer).__name__ for model_layer in a.layers if model_layer.name in kept}
    assert kinds == {"FReLU"} and len(kzoo.activation_layers(a)) == 19
    b = kzoo.ResNet20(activation="frelu", erase="last", **SMALL)
    assert len(_slot_blocks(b, "first", "frelu")) == 9 and _slot_blocks(b, "last", "frelu") == []


def test_prelu_sum_replaces_only_the_post_addition_relu():
    model = kzoo.ResNet20(activation={"default": "relu", "last": "prelu"}, **SMALL)
    assert len(_slot_blocks(model, "last", "prelu")) == 9
    assert len(_slot_blocks(model, "first", "relu")) == 9
    prelu = model.get_layer("stage3_block1_last_prelu")
    assert prelu.alpha.shape == (1, 1, 64)  # one slope per channel


def test_activation_classes_and_factories():
    model = kzoo.ResNet20(activation=functools.partial(kzoo.layers.FReLU, per_channel=True), **SMALL)
    assert model.get_layer("stage1_block1_first_frelu").bias.shape == (16,)
    model = kzoo.ResNet20(activation=keras.layers.ELU, **SMALL)
    assert isinstance(model.get_layer("stem_elu"), keras.layers.ELU)
    model = kzoo.ResNet20(activation=keras.activations.gelu, **SMALL)
    assert "stem_gelu" in kzoo.activation_layers(model)


def test_imagenet_placement_names():
    model = kzoo.ResNet50(erase="last", proportion=0.5, activation="frelu", input_shape=(32, 32, 3))
    acts = kzoo.activation_layers(model)
    outs = [a for a in acts if a.endswith("_out")]
    assert len(outs) == 8  # 16 blocks, the odd ones erased
    assert "conv2_block1_out" not in acts and "conv2_block2_out" in acts
    assert "conv2_block1_1_frelu" in acts
    v2 = kzoo.ResNet50V2(erase="first", input_shape=(32, 32, 3))
    assert not any(a.endswith("_preact_relu") for a in kzoo.activation_layers(v2))
    assert len(kzoo.activation_layers(v2)) == 2 * 16 + 1


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"proportion": 0.0, "erase": "last"}, ValueError, "proportion"),
        ({"proportion": 1.5, "erase": "last"}, ValueError, "proportion"),
        ({"proportion": -0.5, "erase": "last"}, ValueError, "proportion"),
        ({"proportion": "half", "erase": "last"}, TypeError, "proportion"),
        ({"proportion": [0, 3], "erase": "last"}, ValueError, "proportion"),
        ({"proportion": [1, 1], "erase": "last"}, ValueError, "proportion"),
        ({"proportion": [], "erase": "last"}, ValueError, "proportion"),
        ({"proportion": [100], "erase": "last"}, ValueError, r"1\.\.9"),
        ({"proportion": 0.5}, ValueError, "erase"),
        ({"erase": "fourth"}, ValueError, "erase"),
        ({"erase": 1}, TypeError, "erase"),
        ({"erase": "third"}, ValueError, "erase.*post-activation basic"),
        ({"erase": "second"}, ValueError, "erase"),
        ({"activation": "swishy"}, ValueError, "activation"),
        ({"activation": 3}, TypeError, "activation"),
        ({"activation": keras.layers.ReLU()}, TypeError, "activation"),
        ({"activation": {"last": "prelu"}}, ValueError, "default"),
        ({"activation": {"default": "relu", "third": "prelu"}}, ValueError, "activation"),
    ],
)
def test_bad_placement_arguments(kwargs, err, match):
    with pytest.raises(err, match=match):
        kzoo.ResNet20(**SMALL, **kwargs)


def test_preact_has_no_last_slot_but_converts():
    with pytest.raises(ValueError, match="third"):
        kzoo.CifarResNet(20, preact=True, erase="third")
    placement = ActivationPlacement("relu", "first", 0.5)
    with pytest.raises(RuntimeError):
        placement(keras.Input((4,)), "x")


# erase as a list: every location converts exactly like the string form, in every family.
# The tiny members of each family run in CI; the registered models, slower, as a sweep
# (the smaller ones in CI too).
TINY_FAMILIES = {
    "cifar_post_basic": (kzoo.CifarResNet, {"depth": 8}),
    "cifar_post_bottleneck": (kzoo.CifarResNet, {"depth": 11, "bottleneck": True}),
    "cifar_pre_basic": (kzoo.CifarResNet, {"depth": 8, "preact": True}),
    "cifar_pre_bottleneck": (kzoo.CifarResNet, {"depth": 11, "bottleneck": True, "preact": True}),
    "wrn": (kzoo.WideResNet, {"depth": 10, "width": 1}),
    "resnext": (kzoo.CifarResNeXt, {"depth": 11, "cardinality": 2, "bottleneck_width": 4}),
    "dfn_mr": (kzoo.DFNMR, {"depth": 14}),
    "inception": (kzoo.CifarInceptionV2, {"modules_per_stage": 1, "stem_width": 8}),
    "single_relu": (kzoo.SingleReLUNet, {"depth": 4, "residual": True}),
    "plain": (kzoo.PlainNet, {"depth": 5}),
    "smallnet": (kzoo.SmallNet, {"batch_norm": True}),
    "mlp": (kzoo.MLP, {"depth": 3, "units": 8, "input_shape": (8, 8, 1)}),
}
SWEEP_IN_CI = {"resnet20", "resnet50v2", "smallnet", "smallnet_bn", "vgg_style31"}


def _erase_outcome(builder, erase, **kwargs):
    """What ``erase`` builds: the layers and the activations kept, or the error raised."""
    try:
        model = builder(erase=erase, **kwargs)
    except (TypeError, ValueError) as err:
        return type(err), str(err)
    return [(layer.name, type(layer).__name__) for layer in model.layers], kzoo.activation_layers(model)


def _check_list_converts_like_string(builder, **kwargs):
    built = []
    for location in ERASE_LOCATIONS:
        string = _erase_outcome(builder, location, **kwargs)
        assert _erase_outcome(builder, [location], **kwargs) == string, location
        if isinstance(string[0], list):
            built.append(location)
    # Every family erases its "last" activations, pre-activation ones after converting.
    assert "last" in built and len(built) >= 2, built


@pytest.mark.parametrize("family", sorted(TINY_FAMILIES))
def test_erase_list_converts_like_string_in_every_family(family):
    builder, kwargs = TINY_FAMILIES[family]
    kwargs = {"input_shape": (8, 8, 3), **kwargs}
    _check_list_converts_like_string(builder, **kwargs)


@pytest.mark.parametrize(
    "name",
    [pytest.param(n, marks=[] if n in SWEEP_IN_CI else [pytest.mark.slow]) for n in kzoo.list_models()],
)
def test_erase_list_converts_like_string_in_every_model(name):
    info = kzoo.model_info(name)
    # The smallest input each accepts: 8x8 for CIFAR nets, 32x32 for ImageNet ones, MNIST's.
    shape = {32: (8, 8, 3), 224: (32, 32, 3)}.get(info.input_shape[0], info.input_shape)
    _check_list_converts_like_string(info.build, input_shape=shape)


def test_erase_list_of_last_converts_pre_activation_nets():
    a = kzoo.ResNet164(erase=["last"], **SMALL)
    names = {layer.name for layer in a.layers}
    assert "stem_bn" in names and "post_bn" not in names and _slot_blocks(a, "last") == []
    assert kzoo.activation_layers(a) == kzoo.activation_layers(kzoo.ResNet164(erase="last", **SMALL))
    # A list naming "last" with other slots converts too, and erases all of them.
    b = kzoo.ResNet164(erase=["middle", "Last"], **SMALL)
    assert _slot_blocks(b, "last") == [] and _slot_blocks(b, "second") == []
    assert len(_slot_blocks(b, "first")) == 54
    c = kzoo.ResNet50V2(erase=("last",), input_shape=(32, 32, 3))
    names = {layer.name for layer in c.layers}
    assert "conv1_bn" in names and "post_bn" not in names
    assert kzoo.activation_layers(c) == kzoo.activation_layers(
        kzoo.ResNet50V2(erase="last", input_shape=(32, 32, 3))
    )
    wrn = kzoo.WideResNet(10, 1, erase=[["last"]], **SMALL)
    assert "post_bn" not in {layer.name for layer in wrn.layers}


def test_placement_erases_reads_every_form():
    for erase in ("last", " Last ", ["last"], ("LAST",), ["first", "last"], [["first"], ["last"]]):
        placement = ActivationPlacement("relu", erase)
        assert placement.erases("last"), erase
    assert not ActivationPlacement("relu", ["first"]).erases("last")
    assert not ActivationPlacement("relu", None).erases("last")
    # The slots resolve location by location through the block's aliases.
    placement = ActivationPlacement("relu", ["middle", "last"]).bind(2, POST_BOTTLENECK)
    assert all(placement.is_erased(b, s) for b in (1, 2) for s in ("second", "last"))
    assert not placement.is_erased(1, "first")


def test_bind_gives_a_bound_copy_and_leaves_the_placement_as_it_was():
    """A placement bound to one network is not changed by it: binding it again (another
    depth, another block kind) starts from the user's options, per-slot ones included."""
    user = {"default": "relu", "last": "frelu"}
    placement = ActivationPlacement(user, "last", 0.5)
    six = placement.bind(6, POST_BOTTLENECK)
    assert six is not placement and six.num_blocks == 6 and six.erased_blocks
    assert placement.num_blocks is None and placement.slots is None and placement.erased_blocks == ()
    four = placement.bind(4, POST_BOTTLENECK)
    assert four.num_blocks == 4 and len(four.erased_blocks) == 2 and len(six.erased_blocks) == 3
    assert six.num_blocks == 6 and len(six.erased_blocks) == 3  # the first binding kept its own
    again = placement.bind(6, POST_BOTTLENECK)
    assert again.erased_blocks == six.erased_blocks
    assert again._by_slot == six._by_slot and placement._options == placement._by_slot
