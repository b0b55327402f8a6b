"""ONNX and LiteRT exports, each run by its own runtime (onnxruntime, ai_edge_litert)
as a user would, against the Keras model; LiteRT quantisation measured on real
Fashion-MNIST images; grouped convolutions to ONNX; the SavedModel's ``fixed_size``
signature read by tf2onnx and the TFLite converter themselves; options a format does
not take refused before anything is written."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import onnx
import onnxruntime as ort
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

import kzoo
from kzoo import data
from kzoo.serving import convert, versions

SHAPE = (28, 28, 1)


@pytest.fixture(scope="module")
def real(fmnist_subset_dir):
    """(train images, labels), (test images, labels) of the real Fashion-MNIST subset."""
    (x_train, y_train), (x_test, y_test) = data.idx.read_arrays(
        data.dataset_info("fashion_mnist"), fmnist_subset_dir
    )
    return (x_train, y_train), (x_test, y_test)


def _prepare(images):
    return data.prepare_for_model(tf.constant(images, tf.float32), "fashion_mnist", SHAPE[:2]).numpy()


@pytest.fixture(scope="module")
def trained(real):
    """A small FReLU-erased ResNet (custom layers in the graph) trained a little on real
    images, so that quantisation has a decision to keep."""
    (x_train, y_train), _ = real
    keras.utils.set_random_seed(0)
    model = kzoo.ResNet20(input_shape=SHAPE, classes=10, activation="frelu", erase="last", proportion=0.5)
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy")
    model.fit(_prepare(x_train), y_train, batch_size=64, epochs=2, verbose=0)
    return model


def _keras_probs(model, images):
    return np.asarray(model(_prepare(images), training=False))


def _onnx_run(path, images):
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (given,) = session.get_inputs()
    assert given.name == "images" and given.type == "tensor(uint8)" and given.shape[1:] == list(SHAPE)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"images": images})))


def _litert_run(path, images):
    interpreter = Interpreter(model_path=path)
    (signature,) = interpreter.get_signature_list().values()
    assert signature["inputs"] == ["images"]
    return interpreter.get_signature_runner()(images=images)


RUN = {"onnx": _onnx_run, "litert": _litert_run}
FILE = {"onnx": "model.onnx", "litert": "model.tflite"}


@pytest.mark.parametrize("fmt", ["onnx", "litert"])
def test_export_is_run_by_its_own_runtime(fmt, trained, real, fmnist_subset_dir, tmp_path):
    _, (x_test, y_test) = real
    result = kzoo.export(
        trained, tmp_path, "m", dataset="fashion_mnist", format=fmt, data_dir=fmnist_subset_dir
    )
    assert sorted(os.listdir(result.path)) == sorted([FILE[fmt], "model_card.json", "model_card.md"])
    assert not [e for e in os.listdir(tmp_path / "m") if e.startswith(".")]

    for batch in (1, 7, 64):
        out = RUN[fmt](os.path.join(result.path, FILE[fmt]), x_test[:batch])
        assert set(out) == {"probabilities", "classes", "scores"}
        expected = _keras_probs(trained, x_test[:batch])
        np.testing.assert_allclose(out["probabilities"], expected, atol=1e-4)
        assert out["classes"].dtype == np.int32 and out["classes"].shape == (batch, 5)
        np.testing.assert_array_equal(out["classes"][:, 0], expected.argmax(1))
        np.testing.assert_allclose(out["scores"], np.sort(expected, 1)[:, ::-1][:, :5], atol=1e-4)

    card = json.load(open(os.path.join(result.path, "model_card.json")))
    assert (
        card["format"] == fmt
        and card["input"]["file"] == FILE[fmt]
        and card["input"]["shape"] == [None, 28, 28, 1]
    )
    check = card["verification"]
    assert check["images"] == "the first 256 fashion_mnist test images"
    assert check["top1_agreement"] == 1.0 and check["max_abs_diff_probabilities"] <= 1e-4
    assert check["runtime"].startswith("onnxruntime " if fmt == "onnx" else "ai-edge-litert ")
    assert ("opset" in card["export"]) == (fmt == "onnx")
    assert "images must be 28x28" in card["preprocessing"]
    markdown = open(os.path.join(result.path, "model_card.md")).read()
    assert "## Verification" in markdown and f"Format: {fmt}" in markdown
    # Accuracy as served agrees with Keras' on the real test images.
    served = RUN[fmt](os.path.join(result.path, FILE[fmt]), x_test)["classes"][:, 0]
    assert np.mean(served == y_test) == pytest.approx(
        np.mean(_keras_probs(trained, x_test).argmax(1) == y_test)
    )


@pytest.mark.parametrize("quantize", ["dynamic_int8", "int8"])
def test_litert_quantisation_is_measured_on_the_test_set(
    quantize, trained, real, fmnist_subset_dir, tmp_path
):
    _, (x_test, y_test) = real
    float_file = kzoo.export(trained, tmp_path, "f", dataset="fashion_mnist", format="litert", verify=False)
    result = kzoo.export(
        trained,
        tmp_path,
        "q",
        dataset="fashion_mnist",
        format="litert",
        quantize=quantize,
        data_dir=fmnist_subset_dir,
    )
    path = os.path.join(result.path, "model.tflite")
    assert os.path.getsize(path) < 0.5 * os.path.getsize(os.path.join(float_file.path, "model.tflite"))
    check = result.card["verification"]
    assert result.card["export"]["quantization"] == quantize
    assert result.card["export"]["calibration_images"] == (200 if quantize == "int8" else None)
    # Measured, not assumed: the card's figures are what LiteRT answers on the test set.
    served = _litert_run(path, x_test)["classes"][:, 0]
    keras_top1 = float(np.mean(_keras_probs(trained, x_test).argmax(1) == y_test))
    assert check["test_images"] == "the 500 fashion_mnist test images"
    assert check["test_top1_export"] == pytest.approx(float(np.mean(served == y_test)))
    assert check["test_top1_keras"] == pytest.approx(keras_top1)
    assert check["test_top1_change"] == pytest.approx(check["test_top1_export"] - keras_top1)
    assert check["top1_agreement"] >= 0.9 and keras_top1 > 0.5


def test_int8_needs_training_images(trained, tmp_path):
    empty = tmp_path / "no_data"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="not found under `data_dir`"):
        kzoo.export(
            trained,
            tmp_path / "a",
            "m",
            dataset="fashion_mnist",
            format="litert",
            quantize="int8",
            data_dir=empty,
        )
    # CIFAR-10 is not prepared in an empty TFDS folder: nothing to calibrate on.
    cifar = kzoo.ResNet20(input_shape=(32, 32, 3), classes=10)
    with pytest.raises(ValueError, match="quantize='int8' calibrates on cifar10 training images"):
        kzoo.export(
            cifar, tmp_path / "b", "m", dataset="cifar10", format="litert", quantize="int8", data_dir=empty
        )
    assert not os.path.exists(tmp_path / "a" / "m") and not os.path.exists(tmp_path / "b" / "m")


def test_random_images_when_the_dataset_is_not_here(tmp_path):
    empty = tmp_path / "tfds"
    empty.mkdir()
    model = kzoo.ResNet20(input_shape=(32, 32, 3), classes=10)
    result = kzoo.export(model, tmp_path / "out", "m", dataset="cifar10", format="onnx", data_dir=empty)
    check = result.card["verification"]
    assert check["images"] == "16 random uint8 images (cifar10's test set is not on this machine)"
    assert check["max_abs_diff_probabilities"] <= 1e-4


def test_grouped_convolutions_export_to_onnx(tmp_path):
    """Keras' TF backend hides a grouped convolution in an XLA function tf2onnx cannot
    read (onnx/tensorflow-onnx#2099); kzoo traces it as a plain Conv with ``group``."""
    keras.utils.set_random_seed(0)
    model = kzoo.CifarResNeXt(depth=11, cardinality=4, bottleneck_width=16, input_shape=SHAPE, classes=10)
    result = kzoo.export(model, tmp_path, "rx", dataset="fashion_mnist", format="onnx")
    path = os.path.join(result.path, "model.onnx")
    graph = onnx.load(path).graph
    groups = [a.i for n in graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "group"]
    assert max(groups) == 4
    assert not [n for n in graph.node if n.op_type.endswith("PartitionedCall")]
    images = np.random.default_rng(0).integers(0, 256, (5, *SHAPE), dtype=np.uint8)
    np.testing.assert_allclose(
        _onnx_run(path, images)["probabilities"], _keras_probs(model, images), atol=1e-4
    )


def test_a_disagreeing_export_is_not_published(trained, tmp_path, monkeypatch):
    """A converter that wrote another network's weights: its own runtime's answers differ
    from the Keras model's, and the version never appears."""
    other = kzoo.ResNet20(input_shape=SHAPE, classes=10, activation="frelu", erase="last", proportion=0.5)
    original = convert.to_onnx

    def wrong(fn, signature, path, opset):
        from kzoo.serving import signatures

        wrong_fn, _ = signatures.fixed_size_function(other, data.dataset_info("fashion_mnist"), SHAPE, 5)
        return original(wrong_fn, signature, path, opset)

    monkeypatch.setattr(convert, "to_onnx", wrong)
    with pytest.raises(
        RuntimeError, match="onnx export, run by onnxruntime .* disagrees with the Keras model"
    ):
        kzoo.export(trained, tmp_path, "m", dataset="fashion_mnist", format="onnx")
    assert os.listdir(tmp_path) == []  # nor the model folder it made


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"format": "tflite"}, "`format` must be one of 'saved_model', 'onnx', 'litert', got 'tflite'"),
        ({"format": None}, "`format` must be one of"),
        ({"format": "onnx", "quantize": "int8"}, "`quantize` is for format='litert' only"),
        ({"format": "litert", "quantize": "fp16"}, "`quantize` must be None, 'dynamic_int8' or 'int8'"),
        ({"format": "litert", "opset": 17}, "`opset` is for format='onnx' only"),
        ({"format": "onnx", "opset": 30}, "`opset` must be an integer in \\[13, 18\\]"),
        ({"format": "onnx", "warmup": True}, "`warmup` writes TF Serving's warm-up requests"),
        ({"format": "litert", "data_dir": 3}, "`data_dir`"),
    ],
)
def test_options_a_format_does_not_take(kwargs, match, tmp_path):
    with pytest.raises((TypeError, ValueError), match=match):
        kzoo.export("does-not-exist.keras", tmp_path, "m", dataset="fashion_mnist", **kwargs)
    assert os.listdir(tmp_path) == []


def test_one_format_per_model_directory(tmp_path):
    model = kzoo.ResNet20(input_shape=SHAPE, classes=10)
    kzoo.export(model, tmp_path, "m", dataset="fashion_mnist", warmup=False, verify=False)
    with pytest.raises(ValueError, match="holds saved_model versions .* a onnx version there"):
        kzoo.export(model, tmp_path, "m", dataset="fashion_mnist", format="onnx")
    assert sorted(os.listdir(tmp_path / "m")) == ["1"]
    second = kzoo.export(model, tmp_path, "m_onnx", dataset="fashion_mnist", format="onnx", verify=False)
    assert second.version == 1 and second.card["format"] == "onnx" and "verification" not in second.card


def test_cli_exports_each_format(trained, tmp_path, fmnist_subset_dir, capsys):
    from kzoo import cli

    path = tmp_path / "m.keras"
    trained.save(path)
    for fmt, extra in (("onnx", []), ("litert", ["--quantize", "dynamic_int8"])):
        argv = [
            "export",
            str(path),
            "--base",
            str(tmp_path / fmt),
            "--dataset",
            "fashion_mnist",
            "--format",
            fmt,
        ]
        assert cli.main([*argv, "--data-dir", fmnist_subset_dir, *extra]) == 0
        out = capsys.readouterr().out
        assert f"({fmt} version 1;" in out and "verified by " in out and "top-1 agreement" in out
        assert os.path.isfile(tmp_path / fmt / trained.name / "1" / FILE[fmt])
    assert (
        cli.main(
            ["export", str(path), "--base", str(tmp_path / "x"), "--format", "onnx", "--quantize", "int8"]
        )
        != 0
    )
    assert "`quantize` is for format='litert' only" in capsys.readouterr().err


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: kzoo.ResNet20(input_shape=SHAPE, classes=10, activation="frelu"), id="resnet20"),
        pytest.param(
            lambda: kzoo.CifarResNeXt(
                depth=11, cardinality=4, bottleneck_width=16, input_shape=SHAPE, classes=10
            ),
            id="resnext",
        ),
    ],
)
def test_converters_read_the_saved_models_fixed_size_signature(build, tmp_path):
    """tf2onnx's command line and the TFLite converter, given the SavedModel as TF Serving
    gets it, convert its ``fixed_size`` signature into files their runtimes run with the
    served answers."""
    keras.utils.set_random_seed(0)
    result = kzoo.export(build(), tmp_path, "m", dataset="fashion_mnist", warmup=False)
    assert result.card["input"]["fixed_size_signature"] == "fixed_size"
    images = np.random.default_rng(1).integers(0, 256, (6, *SHAPE), dtype=np.uint8)
    loaded = tf.saved_model.load(result.path)
    served = loaded.signatures["serving_default"](images=tf.constant(images))["probabilities"].numpy()
    fixed = loaded.signatures["fixed_size"](images=tf.constant(images))["probabilities"].numpy()
    np.testing.assert_allclose(fixed, served, atol=1e-6)

    onnx_path = str(tmp_path / "cli.onnx")
    cmd = [
        sys.executable,
        "-m",
        "tf2onnx.convert",
        "--saved-model",
        result.path,
        "--signature_def",
        "fixed_size",
    ]
    subprocess.run([*cmd, "--output", onnx_path], check=True, capture_output=True, timeout=600)
    np.testing.assert_allclose(_onnx_run(onnx_path, images)["probabilities"], served, atol=1e-4)

    converter = tf.lite.TFLiteConverter.from_saved_model(result.path, signature_keys=["fixed_size"])
    tflite_path = str(tmp_path / "model.tflite")
    with open(tflite_path, "wb") as f:
        f.write(converter.convert())
    np.testing.assert_allclose(_litert_run(tflite_path, images)["probabilities"], served, atol=1e-4)


def test_other_backends_are_refused_by_name(tmp_path):
    code = (
        "import kzoo\n"
        "m = kzoo.ResNet20(input_shape=(28, 28, 1), classes=10)\n"
        "try:\n"
        f"    kzoo.export(m, {str(tmp_path)!r}, 'm', dataset='fashion_mnist', format='onnx')\n"
        "except ValueError as e:\n"
        "    print('REFUSED', e)\n"
    )
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert "REFUSED" in out.stdout and "KERAS_BACKEND is 'jax'" in out.stdout, out.stderr[-2000:]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("fmt", ["saved_model", "onnx", "litert"])
def test_mixed_precision_models_convert_as_float32(fmt, tmp_path):
    """bfloat16 ops have no ONNX Runtime / LiteRT CPU kernels: the float32 copy (same
    weights) is converted and checked against itself at float32's tolerance; how far the
    copy is from the mixed-precision model is on the card. A model loaded from a run's
    .keras file (its own policy float32, its layers' bfloat16) is seen as mixed too."""
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = kzoo.ResNet20(input_shape=SHAPE, classes=10, activation="frelu")
    keras.config.set_dtype_policy("float32")
    model.save(tmp_path / "run.keras")
    model = kzoo.load_model(tmp_path / "run.keras")
    assert model.dtype_policy.name == "float32"
    result = kzoo.export(model, tmp_path, "m", dataset="fashion_mnist", format=fmt)
    assert result.card["export"]["computed_in"] == "float32 (the model computes in bfloat16)"
    assert result.card["compute_dtype"] == "bfloat16"
    check = result.card["verification"]
    assert check["tolerance"] == 1e-4 and check["mixed_precision_model"] == "bfloat16"
    assert 0 < check["max_abs_diff_to_mixed_precision_model"] < 1e-1
    from kzoo.serving import runtimes

    images = np.random.default_rng(0).integers(0, 256, (4, *SHAPE), dtype=np.uint8)
    path = result.path if fmt == "saved_model" else os.path.join(result.path, FILE[fmt])
    out = runtimes.runner(fmt, path)(images)
    np.testing.assert_allclose(out["probabilities"], _keras_probs(model, images).astype("float32"), atol=1e-2)


def test_a_published_saved_model_converts_with_its_record(tmp_path):
    """A SavedModel version kzoo exported is rebuilt from its card and variables (checked
    to answer as it does), and the new card keeps its training record."""
    folder = os.path.join(
        os.path.dirname(os.path.dirname(__file__)), "saved_models", "resnet20_fashion_mnist_eraserelu"
    )
    source = os.path.join(folder, str(versions(folder)[-1]))  # the newest, as served
    original = json.load(open(os.path.join(source, "model_card.json")))
    result = kzoo.export(source, tmp_path, "m", format="onnx")
    card = result.card
    assert card["test_top1"] == original["test_top1"] and card["model_kwargs"] == {"erase": "last"}
    assert card["command"] == original["command"] and card["run_dir"] == original["run_dir"]
    assert card["converted_from"] == os.path.relpath(source, os.path.join(tmp_path, "m", "1")).replace(
        os.sep, "/"
    )
    assert card["verification"]["top1_agreement"] == 1.0


def test_a_saved_model_without_a_kzoo_card_is_refused(tmp_path):
    model = keras.Sequential(
        [keras.Input(SHAPE), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    )
    plain = kzoo.export(model, tmp_path, "plain", dataset="fashion_mnist", warmup=False)
    with pytest.raises(ValueError, match="does not describe a kzoo-built SavedModel"):
        kzoo.export(plain.path, tmp_path, "again", format="onnx")
    os.remove(os.path.join(plain.path, "model_card.json"))
    with pytest.raises(FileNotFoundError, match="model card"):
        kzoo.export(plain.path, tmp_path, "again", format="onnx")
    assert not os.path.exists(tmp_path / "again")
