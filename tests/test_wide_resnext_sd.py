"""Wide ResNet, ResNeXt and stochastic depth: structure, placement and errors."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo.layers import StochasticDepth
from kzoo.models.blocks.residual import survival_probabilities

SMALL = {"input_shape": (16, 16, 3)}


def test_wrn_structure_and_dropout():
    model = kzoo.WideResNet(16, 2, dropout_rate=0.3, **SMALL)
    names = [layer.name for layer in model.layers]
    assert "post_bn" in names and "stem_bn" not in names  # pre-activation
    drops = [layer for layer in model.layers if isinstance(layer, keras.layers.Dropout)]
    assert len(drops) == 6 and all(d.rate == 0.3 for d in drops)
    # dropout sits between the second BN-ReLU and the second convolution
    assert (
        names.index("stage1_block1_second_relu")
        < names.index("stage1_block1_dropout")
        < names.index("stage1_block1_conv2")
    )
    assert model.get_layer("stage1_block1_shortcut_conv").filters == 32  # 16 -> 16k
    assert model.get_layer("stage3_block2_conv2").filters == 128


def test_wrn_erase_last_converts_and_keeps_dropout():
    model = kzoo.WideResNet(16, 2, dropout_rate=0.3, erase="last", **SMALL)
    names = [layer.name for layer in model.layers]
    assert "stem_bn" in names and "post_bn" not in names
    assert not any(n.endswith("_last_relu") for n in kzoo.activation_layers(model))
    assert (
        names.index("stage1_block1_first_relu")
        < names.index("stage1_block1_dropout")
        < names.index("stage1_block1_conv2")
    )


def test_resnext_grouped_convolutions_and_widths():
    model = kzoo.CifarResNeXt(29, cardinality=8, bottleneck_width=64, **SMALL)
    conv2 = model.get_layer("stage2_block1_conv2")
    assert conv2.groups == 8 and conv2.filters == 128 and conv2.strides == (2, 2)
    assert model.get_layer("stage3_block3_conv3").filters == 1024
    assert model.get_layer("stem_conv").filters == 64
    erased = kzoo.CifarResNeXt(29, cardinality=8, bottleneck_width=64, erase="last", proportion=0.5, **SMALL)
    lasts = [n for n in kzoo.activation_layers(erased) if n.endswith("_last_relu")]
    assert len(lasts) == 4  # 9 blocks: 1, 3, 5, 7, 9 erased
    model = kzoo.ResNeXt50_32x4d(input_shape=(64, 64, 3), classes=10)
    assert model.get_layer("stage4_block3_conv2").groups == 32
    assert model.output_shape == (None, 10)


def test_survival_probabilities_decay_linearly():
    probs = survival_probabilities(54, 0.5)
    assert probs[0] == pytest.approx(1 - 0.5 / 54) and probs[-1] == pytest.approx(0.5)
    assert np.all(np.diff(probs) < 0)
    model = kzoo.ResNet20(stochastic_depth=0.5, erase="last", **SMALL)
    layers = [layer for layer in model.layers if isinstance(layer, StochasticDepth)]
    assert len(layers) == 9 and layers[-1].survival_probability == pytest.approx(0.5)
    assert not any(n.endswith("_last_relu") for n in kzoo.activation_layers(model))


def test_stochastic_depth_trains_stochastically_and_predicts_deterministically():
    keras.utils.set_random_seed(3)
    model = kzoo.ResNet56(stochastic_depth=0.5, **SMALL)
    x = np.random.default_rng(0).normal(size=(4, 16, 16, 3)).astype("float32")
    train_outs = [np.asarray(model(x, training=True)) for _ in range(6)]
    assert any(not np.allclose(train_outs[0], t) for t in train_outs[1:])
    infer = [np.asarray(model(x, training=False)) for _ in range(3)]
    for y in infer[1:]:
        np.testing.assert_array_equal(infer[0], y)


@pytest.mark.parametrize("builder, add", [(kzoo.ResNet50, "add"), (kzoo.ResNet50V2, "out")])
def test_imagenet_stochastic_depth_decays_like_the_cifar_nets(builder, add):
    model = builder(stochastic_depth=0.5, input_shape=(32, 32, 3))
    sd = [layer for layer in model.layers if isinstance(layer, StochasticDepth)]
    blocks = [(s, b) for s, n in zip((2, 3, 4, 5), (3, 4, 6, 3)) for b in range(1, n + 1)]
    assert [layer.name for layer in sd] == [f"conv{s}_block{b}_{add}" for s, b in blocks]
    assert [layer.survival_probability for layer in sd] == pytest.approx(survival_probabilities(16, 0.5))
    assert not any(isinstance(layer, keras.layers.Add) for layer in model.layers)
    plain = builder(input_shape=(32, 32, 3))
    assert not any(isinstance(layer, StochasticDepth) for layer in plain.layers)
    # Same layers and weights otherwise: only the additions change class.
    assert [layer.name for layer in model.layers] == [layer.name for layer in plain.layers]
    assert kzoo.trainable_params(model) == kzoo.trainable_params(plain)
    model.set_weights(plain.get_weights())


def test_imagenet_stochastic_depth_combines_with_erase_and_the_family_builder():
    model = kzoo.ResNet50V2(stochastic_depth=0.8, erase="last", input_shape=(32, 32, 3))
    sd = [layer for layer in model.layers if isinstance(layer, StochasticDepth)]
    assert len(sd) == 16 and sd[0].name == "conv2_block1_add"  # converted to v1: keras' v1 names
    assert sd[-1].survival_probability == pytest.approx(0.8)
    assert not any(n.endswith("_out") for n in kzoo.activation_layers(model))
    direct = kzoo.ImageNetResNet(50, preact=True, stochastic_depth=0.8, erase="last", input_shape=(32, 32, 3))
    assert [layer.name for layer in direct.layers] == [layer.name for layer in model.layers]
    created = kzoo.create_model("resnet101", stochastic_depth=0.5, include_top=False, input_shape=(32, 32, 3))
    sd = [layer for layer in created.layers if isinstance(layer, StochasticDepth)]
    assert len(sd) == 33 and sd[-1].survival_probability == pytest.approx(0.5)


def test_imagenet_stochastic_depth_trains_stochastically_and_predicts_deterministically():
    keras.utils.set_random_seed(3)
    model = kzoo.ResNet50(stochastic_depth=0.5, input_shape=(32, 32, 3), classes=4)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    train_outs = [np.asarray(model(x, training=True)) for _ in range(6)]
    assert any(not np.allclose(train_outs[0], t) for t in train_outs[1:])
    infer = [np.asarray(model(x, training=False)) for _ in range(2)]
    np.testing.assert_array_equal(infer[0], infer[1])


def test_stochastic_depth_layer_values():
    layer = StochasticDepth(0.25)
    s, r = np.ones((2, 3), "float32"), np.full((2, 3), 4.0, "float32")
    np.testing.assert_allclose(np.asarray(layer([s, r], training=False)), 2.0)
    outs = {float(np.asarray(layer([s, r], training=True))[0, 0]) for _ in range(40)}
    assert outs == {1.0, 5.0}
    clone = StochasticDepth.from_config(layer.get_config())
    assert clone.survival_probability == 0.25


@pytest.mark.parametrize(
    "builder, kwargs, err, match",
    [
        (kzoo.WideResNet, {"depth": 28, "width": 0}, ValueError, "width"),
        (kzoo.WideResNet, {"depth": 20, "width": 2}, ValueError, r"depth.*6n\+4"),
        (kzoo.WideResNet, {"depth": 16, "width": 2.5}, TypeError, "width"),
        (kzoo.WideResNet, {"depth": 16, "width": 2, "dropout_rate": 1.0}, ValueError, "dropout_rate"),
        (kzoo.WideResNet, {"depth": 16, "width": 2, "erase": "third"}, ValueError, "erase"),
        (
            kzoo.CifarResNeXt,
            {"cardinality": 3, "bottleneck_width": 64},
            ValueError,
            "cardinality`=3 does not divide",
        ),
        (kzoo.CifarResNeXt, {"depth": 30}, ValueError, r"depth.*9n\+2"),
        (kzoo.CifarResNeXt, {"cardinality": 0}, ValueError, "cardinality"),
        (kzoo.ImageNetResNeXt, {"depth": 34}, ValueError, "depth"),
        (kzoo.ResNet20, {"stochastic_depth": 0.0}, ValueError, "stochastic_depth"),
        (kzoo.ResNet20, {"stochastic_depth": 1.5}, ValueError, "stochastic_depth"),
        (kzoo.ResNet20, {"stochastic_depth": "yes"}, TypeError, "stochastic_depth"),
        (kzoo.ResNet20, {"stochastic_depth": float("nan")}, ValueError, "stochastic_depth.*finite"),
        (kzoo.ResNet20, {"stochastic_depth": float("inf")}, ValueError, "stochastic_depth.*finite"),
        (
            kzoo.WideResNet,
            {"depth": 16, "width": 2, "dropout_rate": float("nan")},
            ValueError,
            "dropout_rate.*finite",
        ),
        (kzoo.ResNet20, {"classes": 0}, ValueError, "`classes` must be an integer at least 1"),
        (kzoo.ResNet20, {"classes": 10.0}, TypeError, "`classes`"),
        (kzoo.ResNet50, {"stochastic_depth": 0.0}, ValueError, "stochastic_depth"),
        (kzoo.ResNet50V2, {"stochastic_depth": 1.5}, ValueError, "stochastic_depth"),
        (kzoo.ResNet101, {"stochastic_depth": "yes"}, TypeError, "stochastic_depth"),
        (kzoo.ResNet50, {"stochastic_depth": float("nan")}, ValueError, "stochastic_depth.*finite"),
        (kzoo.ImageNetResNet, {"depth": 50, "stochastic_depth": True}, TypeError, "stochastic_depth"),
    ],
)
def test_bad_arguments(builder, kwargs, err, match):
    with pytest.raises(err, match=match):
        builder(**SMALL, **kwargs)
