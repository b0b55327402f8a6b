"""Fine-tuning what was placed: kzoo.adapt (a new head, a new input: channels summed or
repeated into the first convolution, images resized inside the model), models named
keras:NAME or by their .keras file in create_model, train, tune and the CLI."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import kzoo
from kzoo.transform.adapt import adapt_kernel

A = keras.applications
to_numpy = keras.ops.convert_to_numpy


# ----------------------------------------------------------------- the first convolution


def test_a_kernel_summed_over_colours_sees_a_grey_image_as_the_rgb_one_does():
    rgb = kzoo.ResNet20(input_shape=(16, 16, 3), classes=4)
    grey = kzoo.adapt(rgb, input_shape=(16, 16, 1))
    assert grey.input_shape == (None, 16, 16, 1) and grey.output_shape == (None, 4)
    np.testing.assert_allclose(
        to_numpy(grey.get_layer("stem_conv").kernel),
        to_numpy(rgb.get_layer("stem_conv").kernel).sum(2, keepdims=True),
    )
    g = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(grey(g)), to_numpy(rgb(np.repeat(g, 3, axis=-1))), rtol=1e-5, atol=1e-6
    )


def test_a_grey_kernel_repeated_for_rgb_answers_a_grey_rgb_image_alike():
    grey = kzoo.ResNet20(input_shape=(16, 16, 1), classes=4)
    rgb = kzoo.adapt(grey, input_shape=(16, 16, 3))
    g = np.random.default_rng(0).normal(size=(2, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(
        to_numpy(rgb(np.repeat(g, 3, axis=-1))), to_numpy(grey(g)), rtol=1e-5, atol=1e-6
    )
    kernel = np.arange(2 * 2 * 3 * 1, dtype="float32").reshape(2, 2, 3, 1)
    five = adapt_kernel(kernel, 5)
    assert five.shape == (2, 2, 5, 1)
    np.testing.assert_allclose(five[:, :, 3], kernel[:, :, 0] * 3 / 5)


def test_per_channel_preprocessing_before_the_first_convolution_is_adapted_too():
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Rescaling([1.0, 2.0, 3.0], name="scale")(inp)
    x = keras.layers.Normalization(mean=[1.0, 2.0, 3.0], variance=[4.0, 4.0, 4.0], name="norm")(x)
    x = keras.layers.Conv2D(2, 3, name="conv")(x)
    model = keras.Model(inp, x)
    grey = kzoo.adapt(model, input_shape=(8, 8, 1))
    assert grey.get_layer("scale").get_config()["scale"] == [2.0]
    assert grey.get_layer("norm").get_config()["mean"] == [2.0]
    assert grey.get_layer("conv").kernel.shape == (3, 3, 1, 2)
    effnet = kzoo.adapt(
        A.EfficientNetB0(weights=None, include_top=False, input_shape=(32, 32, 3)), input_shape=(32, 32, 1)
    )
    assert np.all(np.isfinite(to_numpy(effnet(np.zeros((1, 32, 32, 1))))))


# ----------------------------------------------------------------- the head


def test_a_new_head_for_another_class_count_and_the_old_one_kept_for_the_same():
    model = A.ResNet50(weights=None, input_shape=(32, 32, 3), classes=12)
    ten = kzoo.adapt(model, classes=10)
    head = ten.get_layer("predictions")
    assert ten.output_shape == (None, 10) and head.get_config()["activation"] == "softmax"
    assert not np.array_equal(
        to_numpy(head.kernel)[:, :10], to_numpy(model.get_layer("predictions").kernel)[:, :10]
    )
    np.testing.assert_array_equal(
        to_numpy(ten.get_layer("conv1_conv").kernel), to_numpy(model.get_layer("conv1_conv").kernel)
    )
    same = kzoo.adapt(model, classes=12)
    np.testing.assert_array_equal(
        to_numpy(same.get_layer("predictions").kernel), to_numpy(model.get_layer("predictions").kernel)
    )
    logits = kzoo.adapt(model, classes=3, classifier_activation=None)
    assert logits.get_layer("predictions").get_config()["activation"] == "linear"


def test_a_headless_model_gets_pooling_and_a_classifier():
    features = A.MobileNetV2(weights=None, include_top=False, alpha=0.35, input_shape=(32, 32, 3))
    net = kzoo.adapt(features, classes=5)
    assert [layer.name for layer in net.layers[-2:]] == ["avg_pool", "predictions"]
    probs = to_numpy(net(np.zeros((2, 32, 32, 3))))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_under_mixed_precision_the_new_head_computes_in_float32():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = A.MobileNetV2(weights=None, include_top=False, alpha=0.35, input_shape=(32, 32, 3))
    keras.config.set_dtype_policy("float32")
    net = kzoo.adapt(model, classes=5, input_shape=(32, 32, 1))
    assert net.get_layer("Conv1").dtype_policy.name == "mixed_bfloat16"
    assert net.get_layer("predictions").dtype_policy.name == "float32" and net.output.dtype == "float32"


def test_small_images_are_resized_inside_the_model():
    model = A.MobileNetV2(weights=None, alpha=0.35, classes=7, input_shape=(32, 32, 3))
    with pytest.raises(ValueError, match=r"cannot take inputs of shape \[\(28, 28, 1\)\]"):
        kzoo.adapt(model, classes=10, input_shape=(28, 28, 1))
    net = kzoo.adapt(model, classes=10, input_shape=(28, 28, 1), resize=(32, 32))
    assert net.input_shape == (None, 28, 28, 1) and net.layers[1].name == "resize"
    assert net.get_layer("Conv1").kernel.shape == (3, 3, 1, 16)
    assert to_numpy(net(np.zeros((1, 28, 28, 1)))).shape == (1, 10)


@pytest.mark.parametrize(
    "options, error, words",
    [
        ({}, ValueError, ["needs `classes` or `input_shape`"]),
        ({"classes": 0}, ValueError, ["`classes`"]),
        ({"classes": True}, TypeError, ["`classes`"]),
        ({"input_shape": (32, 32)}, ValueError, ["`input_shape` must be a tuple of 3 sizes"]),
        ({"resize": (32, 32)}, ValueError, ["`resize` needs `input_shape`"]),
        ({"input_shape": (32, 32, 1), "resize": 32}, ValueError, ["`resize` must be (height, width)"]),
        ({"classes": 3, "classifier_activation": "nope"}, ValueError, ["classifier_activation"]),
    ],
)
def test_bad_adapt_arguments_are_refused(options, error, words):
    model = kzoo.ResNet20(input_shape=(16, 16, 3))
    with pytest.raises(error) as err:
        kzoo.adapt(model, **options)
    for word in words:
        assert word in str(err.value)


def test_what_cannot_be_adapted_is_refused_naming_it():
    vgg = A.VGG16(weights=None, input_shape=(64, 64, 3), classes=10)
    with pytest.raises(ValueError, match="'fc1'.*Dense after Flatten"):
        kzoo.adapt(vgg, input_shape=(32, 32, 3))
    inp = keras.Input((8, 8, 3))
    depthwise = keras.Model(inp, keras.layers.DepthwiseConv2D(3, name="dw")(inp))
    with pytest.raises(ValueError, match="'dw'"):
        kzoo.adapt(depthwise, input_shape=(8, 8, 1))
    with pytest.raises(ValueError, match=r"shape \[\(16, 16, 3\)\] \(too small.*zero or negative"):
        kzoo.adapt(A.VGG16(weights=None, include_top=False, input_shape=(32, 32, 3)), input_shape=(16, 16, 3))


# ----------------------------------------------------------------- models by name: keras:NAME and .keras files


def test_a_keras_application_by_name_is_placed_and_given_the_data_s_head_and_input():
    model = kzoo.create_model(
        "keras:mobilenetv2",
        alpha=0.35,
        erase="second",
        proportion=0.5,
        classes=10,
        input_shape=(28, 28, 1),
        resize=(32, 32),
    )
    names = {layer.name for layer in model.layers}
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    assert "block_2_depthwise_relu" not in names and "block_4_depthwise_relu" in names
    info = kzoo.model_info("keras:ResNet50")
    assert (
        info.name == "keras:ResNet50"
        and info.family == "keras.applications"
        and info.slug == "keras-resnet50"
    )
    with pytest.raises(ValueError, match="Did you mean keras:ResNet50"):
        kzoo.model_info("keras:resnet5")
    with pytest.raises(TypeError, match=r"keras.applications.MobileNetV2\(weights=None, depth=3\)"):
        kzoo.create_model("keras:MobileNetV2", depth=3)
    with pytest.raises(FileNotFoundError, match="`weights`.*no such file"):
        kzoo.create_model("keras:MobileNetV2", weights="no/such.weights.h5")
    # a kzoo tag's name is not a keras.applications weights name
    with pytest.raises(
        ValueError, match="`weights`='fashion_mnist' for keras:MobileNetV2: must be None, 'imagenet'"
    ):
        kzoo.create_model("keras:MobileNetV2", weights="fashion_mnist")


@pytest.fixture
def saved_model_file(tmp_path):
    """A "pretrained" model (ImageNet weights cannot be downloaded here): a
    keras.applications model saved to a file, its weights the ones to carry."""
    model = A.MobileNetV2(weights=None, alpha=0.35, input_shape=(32, 32, 3), classes=7)
    path = tmp_path / "pretrained.keras"
    model.save(path)
    return str(path), model


def test_a_saved_model_by_its_file_keeps_its_weights(saved_model_file):
    path, original = saved_model_file
    info = kzoo.model_info(path)
    assert (info.input_shape, info.classes, info.slug) == ((32, 32, 3), 7, "pretrained")
    model = kzoo.create_model(
        path, erase="first", proportion=[1], classes=10, input_shape=(28, 28, 1), resize=(32, 32)
    )
    kept = model.get_layer("block_3_expand")
    np.testing.assert_array_equal(
        to_numpy(kept.kernel), to_numpy(original.get_layer("block_3_expand").kernel)
    )
    assert "block_2_expand_relu" not in {layer.name for layer in model.layers}
    as_is = kzoo.create_model(path)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(to_numpy(as_is(x)), to_numpy(original(x)), rtol=1e-6, atol=1e-7)
    with pytest.raises(FileNotFoundError):
        kzoo.create_model("no/such/model.keras")
    with pytest.raises(TypeError, match="its own weights in it; it takes no alpha, weights"):
        kzoo.create_model(path, weights="imagenet", alpha=0.5)


def test_a_saved_model_built_under_a_run_s_policy_takes_it(saved_model_file):
    path, _ = saved_model_file
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = kzoo.create_model(path, classes=10, input_shape=(32, 32, 1))
    assert model.get_layer("Conv1").compute_dtype == "bfloat16"
    assert model.output.dtype == "float32"


def test_kzoo_train_fine_tunes_a_placed_saved_model(saved_model_file, fmnist_like_dir, tmp_path):
    path, _ = saved_model_file
    result = kzoo.train(
        path,
        "fashion_mnist",
        "fashion_mnist_cpu",
        epochs=1,
        batch_size=64,
        validation_size=64,
        data_dir=fmnist_like_dir,
        out=str(tmp_path / "run"),
        verbose=0,
        model_kwargs={"erase": "second", "proportion": 0.5, "resize": (32, 32)},
    )
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["model"] == path and config["model_kwargs"]["erase"] == "second"
    assert result.model.input_shape == (None, 28, 28, 1) and result.model.output_shape == (None, 10)
    assert 0 <= result.metrics["test_top1"] <= 1
    loaded = kzoo.load_model(os.path.join(result.run_dir, "last.keras"))
    assert "block_2_depthwise_relu" not in {layer.name for layer in loaded.layers}


def test_a_keras_model_of_other_classes_is_refused_with_the_way_to_adapt_it(fmnist_like_dir, tmp_path):
    model = kzoo.ResNet20(input_shape=(28, 28, 1), classes=7)
    with pytest.raises(ValueError, match=r"kzoo.adapt\(model, classes=10\)"):
        kzoo.train(model, "fashion_mnist", data_dir=fmnist_like_dir, out=str(tmp_path / "r"), verbose=0)
    assert not (tmp_path / "r").exists()


def test_a_search_over_a_saved_model_checks_its_slots_first(saved_model_file, tmp_path):
    from kzoo import tuning

    path, _ = saved_model_file
    hypermodel = tuning.PlacementHyperModel(
        path,
        "fashion_mnist",
        space=tuning.SearchSpace(locations=["first", "second"]),
        model_kwargs={"resize": (32, 32)},
        out=str(tmp_path / "t"),
    )
    assert hypermodel.out.endswith("t")
    with pytest.raises(ValueError, match="cannot erase 'last'.*linear bottleneck"):
        tuning.PlacementHyperModel(
            path,
            "fashion_mnist",
            space=tuning.SearchSpace(locations=["last"]),
            model_kwargs={"resize": (32, 32)},
        )


# ----------------------------------------------------------------- the shell


def _kzoo(*args):
    return subprocess.run(
        [sys.executable, "-m", "kzoo_command", *args], capture_output=True, text=True, timeout=600
    )


def test_kzoo_summary_prints_the_modules_of_any_model(saved_model_file):
    out = _kzoo("summary", "keras:ResNet50", "--modules", "--erase", "last", "--proportion", "0.5")
    assert out.returncode == 0, out.stderr
    assert "resnet50: 16 module(s), 48 activation(s) in modules, 1 outside" in out.stdout
    assert "removes 8 activation(s) in module(s) 1, 3, 5, 7, 9, 11, 13, 15" in out.stdout
    assert "erased: conv2_block1_out" in out.stdout
    path, _ = saved_model_file
    out = _kzoo("summary", path, "--modules")
    assert out.returncode == 0, out.stderr
    assert "10 module(s)" in out.stdout and "block_2_expand_relu (relu6)" in out.stdout
    out = _kzoo("summary", path, "--erase", "last")
    assert out.returncode == 2 and "linear bottleneck" in out.stderr and "Traceback" not in out.stderr
    out = _kzoo("summary", "keras:MobileNetV2", "--resize", "32")
    assert out.returncode == 2 and "--resize" in out.stderr


def test_a_search_over_a_keras_model_saves_it_for_its_trials(tmp_path):
    from kzoo import tuning

    model = A.MobileNetV2(weights=None, alpha=0.35, input_shape=(32, 32, 3), classes=7)
    space = tuning.SearchSpace(locations=["second"], proportions=[0.5])
    out = tmp_path / "search"
    hypermodel = tuning.PlacementHyperModel(
        model, "fashion_mnist", space=space, model_kwargs={"resize": (32, 32)}, out=str(out)
    )
    assert hypermodel.info.name == str(out / "base.keras") and os.path.isfile(out / "base.keras")
    again = tuning.PlacementHyperModel(
        model, "fashion_mnist", space=space, model_kwargs={"resize": (32, 32)}, out=str(out)
    )
    assert again.info.name == hypermodel.info.name
    other = A.MobileNetV2(weights=None, alpha=0.35, input_shape=(32, 32, 3), classes=7)
    with pytest.raises(ValueError, match="holds another base model"):
        tuning.PlacementHyperModel(
            other, "fashion_mnist", space=space, model_kwargs={"resize": (32, 32)}, out=str(out)
        )
