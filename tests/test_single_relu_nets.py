"""SmallNet, MLP-12 and EraseReLU's 31-layer nets: hand-counted parameters, placement
over single-activation modules, and errors."""

import keras
import numpy as np
import pytest

import kzoo


def test_hand_counted_parameters():
    conv = lambda cin, cout, bias=True: 9 * cin * cout + (cout if bias else 0)  # noqa: E731
    smallnet = conv(3, 32) + conv(32, 64) + conv(64, 128) + (2048 * 512 + 512) + (512 * 100 + 100)
    smallnet_bn = (
        conv(3, 32, False)
        + conv(32, 64, False)
        + conv(64, 128, False)
        + 2048 * 512
        + 2 * (32 + 64 + 128 + 512)
        + (512 * 100 + 100)
    )
    mlp12 = 784 * 1000 + 10 * 1000 * 1000 + 11 * 2 * 1000 + (1000 * 10 + 10)
    vgg31 = (
        conv(3, 16, False)
        + 2 * 16
        + 10 * (conv(16, 16, False) + 32)
        + conv(16, 32, False)
        + 64
        + 9 * (conv(32, 32, False) + 64)
        + conv(32, 64, False)
        + 128
        + 9 * (conv(64, 64, False) + 128)
        + 64 * 10
        + 10
    )
    expected = {
        "smallnet": smallnet,
        "smallnet_bn": smallnet_bn,
        "mlp12": mlp12,
        "vgg_style31": vgg31,
        "residual_style31": vgg31,
    }
    for name, count in expected.items():
        assert kzoo.model_info(name).expected_params == count, name
        assert kzoo.trainable_params(kzoo.create_model(name)) == count, name


def test_smallnet_layout():
    model = kzoo.SmallNet(batch_norm=True, activation="frelu")
    names = [layer.name for layer in model.layers]
    assert names[1:7] == [
        "block1_conv",
        "block1_bn",
        "block1_frelu",
        "block1_pool",
        "block1_dropout",
        "block2_conv",
    ]
    assert kzoo.activation_layers(model) == ["block1_frelu", "block2_frelu", "block3_frelu", "fc1_frelu"]
    assert model.get_layer("fc1").units == 512 and model.get_layer("fc1_dropout").rate == 0.5
    features = kzoo.SmallNet(include_top=False, pooling="avg")
    assert features.output_shape == (None, 128)


def test_erase_proportion_over_modules():
    model = kzoo.VGGStyle31(erase="last", proportion=0.2)
    kept = kzoo.activation_layers(model)
    assert len(kept) == 1 + 24  # the stem, and 24 of 30 modules
    assert "stage1_block1_relu" not in kept and "stage1_block6_relu" not in kept
    assert "stage1_block2_relu" in kept and "stem_relu" in kept
    mlp = kzoo.MLP12(erase="last", proportion=0.5)
    assert kzoo.activation_layers(mlp) == [f"fc{i}_relu" for i in range(2, 12, 2)]


def test_residual_style_module():
    model = kzoo.ResidualStyle31(input_shape=(16, 16, 3))
    names = {layer.name for layer in model.layers}
    assert "stage2_block1_shortcut_pad" in names and "stage2_block2_add" in names
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    assert np.asarray(model(x)).shape == (2, 10)


def test_mlp_shapes():
    model = kzoo.MLP(depth=4, units=32, input_shape=(8, 8, 1), classes=3)
    assert model.output_shape == (None, 3)
    assert len(kzoo.activation_layers(model)) == 3
    assert kzoo.MLP(depth=4, units=32, include_top=False).output_shape == (None, 32)


@pytest.mark.parametrize(
    "builder, kwargs, err, match",
    [
        (kzoo.SmallNet, {"batch_norm": "yes"}, TypeError, "batch_norm"),
        (kzoo.SmallNet, {"input_shape": (4, 4, 3)}, ValueError, "at least 8"),
        (kzoo.SmallNet, {"erase": "second"}, ValueError, "single-activation"),
        (kzoo.MLP, {"depth": 1}, ValueError, "depth"),
        (kzoo.MLP, {"units": 0}, ValueError, "units"),
        (kzoo.MLP, {"dropout_rate": 1.0}, ValueError, "dropout_rate"),
        (kzoo.MLP, {"pooling": "avg", "include_top": False}, ValueError, "pooling"),
        (kzoo.MLP, {"input_shape": (None, None, 1), "include_top": False}, ValueError, "fixed height"),
        (kzoo.SingleReLUNet, {"depth": 30}, ValueError, r"3n\+1"),
        (kzoo.SingleReLUNet, {"residual": 1}, TypeError, "residual"),
        (kzoo.VGGStyle31, {"proportion": [31], "erase": "last"}, ValueError, r"1\.\.30"),
    ],
)
def test_bad_arguments(builder, kwargs, err, match):
    with pytest.raises(err, match=match):
        builder(**kwargs)


def test_mixed_precision_classifier_is_float32():
    keras.config.set_dtype_policy("mixed_float16")
    assert kzoo.MLP12().output.dtype == "float32"
    assert kzoo.SmallNet().output.dtype == "float32"
