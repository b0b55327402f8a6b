"""The airbench-style fast net and its patch-whitening first layer (issue 35)."""

import csv
import json
import os

import keras
import numpy as np
import pytest

import kzoo
from kzoo.models.airbench import DiracInitializer
from kzoo.whitening import AdaptWhitening, PatchWhitening, adapt_whitening, whitening_layers


def _correlated_images(n=400, size=12, channels=1, seed=0):
    """Smooth random images: neighbouring pixels strongly correlated, as in photos."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, size + 1, size + 1, channels))
    x = (x[:, 1:, 1:] + x[:, :-1, 1:] + x[:, 1:, :-1] + x[:, :-1, :-1]) * 10.0 + 3.0
    return x.astype("float32")


@pytest.mark.parametrize("k,channels", [(2, 1), (3, 1), (2, 3)])
def test_whitening_decorrelates_the_patches(k, channels):
    """After ``adapt``, the first 2k^2C/2 output channels of the images it was adapted to
    have covariance diag(lambda / (lambda + eps)): the identity up to epsilon; the other
    half are their negations."""
    images = _correlated_images(channels=channels)
    layer = PatchWhitening(k, epsilon=1e-6)
    assert layer(images).shape == (len(images), 12 - k + 1, 12 - k + 1, 2 * k * k * channels)
    assert not layer.is_adapted()
    layer.adapt(images)
    assert layer.is_adapted()
    out = keras.ops.convert_to_numpy(layer(images)).astype("float64")
    dims = k * k * channels
    flat = out.reshape(-1, 2 * dims)
    cov = np.cov(flat[:, :dims], rowvar=False)
    np.testing.assert_allclose(cov, np.eye(dims), atol=2e-3)
    np.testing.assert_allclose(flat[:, dims:], -flat[:, :dims], atol=1e-4)


def test_unadapted_whitening_extracts_the_patch_pixels():
    """Before ``adapt``, channel j is patch pixel j (row, column, channel order) and
    channel dims + j its negation: a deterministic layer that loses nothing."""
    x = np.arange(2 * 3 * 3 * 2, dtype="float32").reshape(2, 3, 3, 2)
    out = keras.ops.convert_to_numpy(PatchWhitening(2)(x))
    patch = x[:, :2, :2, :].reshape(2, -1)  # the top-left patch, (row, column, channel)
    np.testing.assert_allclose(out[:, 0, 0, :8], patch)
    np.testing.assert_allclose(out[:, 0, 0, 8:], -patch)


def test_whitening_refuses_bad_arguments_and_images():
    with pytest.raises(ValueError, match="`kernel_size`"):
        PatchWhitening(0)
    with pytest.raises(ValueError, match="`epsilon`"):
        PatchWhitening(2, epsilon=-1.0)
    layer = PatchWhitening(2)
    layer.build((None, 8, 8, 1))
    with pytest.raises(ValueError, match="`images` have 3 channels"):
        layer.adapt(np.zeros((4, 8, 8, 3), "float32"))
    with pytest.raises(ValueError, match=r"`images` must be a batch \[N, H, W, C\]"):
        layer.adapt(np.zeros((8, 8, 1), "float32"))
    with pytest.raises(ValueError, match="finite"):
        layer.adapt(np.full((4, 8, 8, 1), np.nan, "float32"))


def test_adapt_whitening_sees_what_reaches_the_layer_and_keeps_adapted_ones(tmp_path):
    """A whitening layer behind another layer (here nested in a sub-model after a
    rescaling) is adapted to its own input; ``only_new`` leaves an adapted one alone;
    the kernel saves and loads with the model."""
    inner_in = keras.Input((12, 12, 1))
    inner = keras.Model(inner_in, PatchWhitening(2, epsilon=1e-6, name="white")(inner_in), name="inner")
    x_in = keras.Input((12, 12, 1))
    model = keras.Model(x_in, inner(keras.layers.Rescaling(0.5)(x_in)))
    images = _correlated_images()
    assert adapt_whitening(model, images) == 1
    (layer,) = whitening_layers(model)
    expected = layer.whitening_kernel(images * 0.5)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.kernel), expected, rtol=1e-5, atol=1e-6)
    assert adapt_whitening(model, images * 3.0, only_new=True) == 0  # adapted already: kept
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = kzoo.load_model(path)
    (again,) = whitening_layers(loaded)
    assert again.is_adapted()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again.kernel), expected, rtol=1e-5, atol=1e-6)


def test_airbench_net_structure_and_placement():
    """Three blocks conv -> pool -> BN -> act -> conv -> BN -> act, 27 -> 13 -> 6 -> 3,
    BN without scale; the placement erases and replaces its slots like every net's."""
    model = kzoo.AirbenchNet()
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    assert model.get_layer("stem_whitening").output.shape[1:] == (27, 27, 8)
    assert [model.get_layer(f"stage{b}_block1_pool").output.shape[1] for b in (1, 2, 3)] == [13, 6, 3]
    assert not model.get_layer("stage1_block1_bn1").scale
    relus = [layer.name for layer in model.layers if layer.name.endswith("_relu")]
    assert len(relus) == 7  # the stem's and two per block
    erased = kzoo.AirbenchNet(erase="last", proportion=0.5)  # blocks 1 and 3 lose their last ReLU
    names = {layer.name for layer in erased.layers}
    assert "stage1_block1_last_relu" not in names and "stage3_block1_last_relu" not in names
    assert "stage2_block1_last_relu" in names and "stage1_block1_first_relu" in names
    frelu = kzoo.AirbenchNet(activation="frelu", widths=(16, 32, 64))
    assert sum(isinstance(layer, kzoo.layers.FReLU) for layer in frelu.layers) == 7
    assert frelu.get_layer("stage3_block1_conv2").kernel.shape == (3, 3, 64, 64)
    learned = kzoo.AirbenchNet(whitening=False)  # the ablation: a learned stem of the same shape
    assert not whitening_layers(learned) and learned.get_layer("stem_conv").output.shape[1:] == (27, 27, 8)
    assert learned.get_layer("stem_conv").trainable_weights
    features = kzoo.AirbenchNet(include_top=False, input_shape=(None, None, 1), pooling="avg")
    assert features.output_shape == (None, 128)


def test_airbench_net_refuses_bad_arguments():
    with pytest.raises(ValueError, match="`widths` must be three positive integers"):
        kzoo.AirbenchNet(widths=(32, 64))
    with pytest.raises(ValueError, match="`widths`"):
        kzoo.AirbenchNet(widths=(32, 0, 64))
    with pytest.raises(ValueError, match="`feature_scale` must be positive"):
        kzoo.AirbenchNet(feature_scale=0)
    with pytest.raises(ValueError, match="too small"):
        kzoo.AirbenchNet(input_shape=(12, 12, 1))
    with pytest.raises(ValueError, match="`erase`='third' is not an activation slot of an airbench block"):
        kzoo.AirbenchNet(erase="third")


def test_dirac_initializer_starts_as_the_identity_on_the_first_channels():
    kernel = keras.ops.convert_to_numpy(DiracInitializer(seed=1)((3, 3, 4, 6)))
    x = np.random.default_rng(0).normal(size=(1, 5, 5, 4)).astype("float32")
    y = keras.ops.convert_to_numpy(keras.ops.conv(x, kernel, padding="same"))
    np.testing.assert_allclose(y[..., :4], x, atol=1e-6)  # the first four filters pass their channel
    assert np.abs(kernel[..., 4:]).sum() > 0  # the others are drawn
    again = keras.initializers.deserialize(keras.initializers.serialize(DiracInitializer(seed=1)))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(again((3, 3, 4, 6))), kernel)


def test_train_adapts_the_whitening_once(fmnist_subset_dir, tmp_path):
    """``kzoo.train`` whitens a fresh model's first layer from the training images (and
    says how long it took); a model passed in already adapted keeps its kernel."""
    out = str(tmp_path / "run")
    result = kzoo.train(
        "airbench_net",
        "fashion_mnist",
        epochs=1,
        batch_size=100,
        data_dir=fmnist_subset_dir,
        out=out,
        verbose=0,
        model_kwargs={"widths": [8, 8, 8]},
        validation_size=200,
        tta="flip",
        test=False,
    )
    (layer,) = whitening_layers(result.model)
    assert layer.is_adapted() and result.metrics["whitening_seconds"] > 0
    assert result.metrics["test_top1"] is None and 0 <= result.metrics["val_top1"] <= 1
    with open(os.path.join(out, "epochs.csv")) as f:
        first = next(csv.DictReader(f))
    assert float(first["whitening_seconds"]) == result.metrics["whitening_seconds"]  # kept for a resume
    config = json.load(open(os.path.join(out, "config.json")))
    assert config["model_kwargs"] == {"widths": [8, 8, 8]}
    net = kzoo.AirbenchNet(widths=(8, 8, 8))
    whitening_layers(net)[0].adapt(_correlated_images(n=20, size=28))
    before = keras.ops.convert_to_numpy(whitening_layers(net)[0].kernel)
    again = kzoo.train(
        net,
        "fashion_mnist",
        epochs=1,
        batch_size=100,
        data_dir=fmnist_subset_dir,
        out=str(tmp_path / "r2"),
        verbose=0,
        validation_size=0,
    )
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(whitening_layers(again.model)[0].kernel), before)
    assert again.metrics["whitening_seconds"] is None


@pytest.mark.parametrize("masked", [False, True])  # the fused kernel, and keras' own call
def test_bn_bias_scale_is_a_reparametrised_offset(masked):
    """``bias_scale`` s: the layer computes keras' BN with offset s * beta (the stored
    weight), so SGD's step on the offset is s^2 times larger; s=1 is keras' layer."""
    from kzoo.layers import BatchNormalization

    x = np.random.default_rng(0).normal(size=(4, 5, 5, 3)).astype("float32")
    scaled = BatchNormalization(scale=False, bias_scale=4.0)
    plain = keras.layers.BatchNormalization(scale=False)
    scaled.build(x.shape)
    plain.build(x.shape)
    beta = np.array([0.5, -1.0, 2.0], "float32")
    scaled.beta.assign(beta)
    plain.beta.assign(4.0 * beta)
    mask = np.ones((4, 5, 5), bool) if masked else None
    for training in (True, False):
        np.testing.assert_allclose(
            keras.ops.convert_to_numpy(scaled(x, training=training, mask=mask)),
            keras.ops.convert_to_numpy(plain(x, training=training, mask=mask)),
            atol=1e-4,
        )
    again = BatchNormalization.from_config(scaled.get_config())
    assert again.bias_scale == 4.0 and "bias_scale" not in BatchNormalization().get_config()
    with pytest.raises(ValueError, match="`bias_scale` must be positive"):
        BatchNormalization(bias_scale=0)
    assert kzoo.AirbenchNet(bn_bias_lr=64).get_layer("stage2_block1_bn2").bias_scale == 8.0


def test_adapt_whitening_callback_leaves_a_resumed_run_alone():
    """A run resumed after its first epoch (``_initial_epoch`` set by the backup) has its
    kernel back: the callback neither asks for images nor adapts; a fresh one does, once."""
    model = kzoo.AirbenchNet(widths=(8, 8, 8))
    asked = []

    def images():
        asked.append(1)
        return _correlated_images(n=20, size=28)

    callback = AdaptWhitening(images)
    callback.set_model(model)
    model._initial_epoch = 1
    callback.on_train_begin()
    assert not asked and not whitening_layers(model)[0].is_adapted()
    model._initial_epoch = 0
    callback.on_train_begin()
    logs = {}
    callback.on_epoch_end(0, logs)
    assert asked == [1] and whitening_layers(model)[0].is_adapted() and logs["whitening_seconds"] > 0
    callback.on_train_begin()  # adapted now: nothing asked again
    assert asked == [1]
