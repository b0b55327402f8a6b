"""kzoo.export: the TF Serving layout written atomically, the uint8 and bytes
signatures, a SavedModel that a process without kzoo serves with the Keras model's
answers, the warm-up file, the model card, offline serving checks (saved_model_cli,
REST-format requests, batch 1 vs N) and bad inputs."""

import json
import os
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import kzoo
from kzoo import data, rest
from kzoo.exporter import WARMUP_FILE, versions

SHAPE = (28, 28, 1)


@pytest.fixture(scope="module")
def model():
    """A small FReLU-erased ResNet (custom layers in the graph), not trained."""
    keras.utils.set_random_seed(1)
    return kzoo.ResNet20(input_shape=SHAPE, classes=10, activation="frelu", erase="last", proportion=0.5)


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    return kzoo.export(model, base, "fmnist_resnet20", dataset="fashion_mnist", keras_file=True)


def _images(n, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *SHAPE), dtype=np.uint8)


def _keras_probs(model, images):
    x = data.prepare_for_model(tf.constant(images, tf.float32), "fashion_mnist", SHAPE[:2])
    return np.asarray(model(x, training=False))


def test_layout_and_versions(exported, model):
    assert exported.version == 1 and exported.path.endswith(os.path.join("fmnist_resnet20", "1"))
    names = set(os.listdir(exported.path))
    assert {"saved_model.pb", "variables", "assets.extra", "model_card.json", "model_card.md",
            "model.keras"} <= names
    assert os.listdir(os.path.join(exported.path, "assets.extra")) == [WARMUP_FILE]
    assert os.stat(exported.path).st_mode & 0o005 == 0o005  # other users (the server's) can read it
    base = os.path.dirname(os.path.dirname(exported.path))
    # The next export gets the next version; no temporary directory is left behind.
    second = kzoo.export(model, base, "fmnist_resnet20", dataset="fashion_mnist", warmup=False)
    assert second.version == 2 and versions(os.path.dirname(exported.path)) == [1, 2]
    assert sorted(os.listdir(os.path.dirname(exported.path))) == ["1", "2"]
    shutil.rmtree(second.path)


def test_served_without_kzoo_matches_keras(exported, model, tmp_path):
    """A fresh process that never imports kzoo loads the SavedModel (FReLU traced into
    the graph) and returns the Keras model's probabilities and top-5."""
    images = _images(4)
    np.save(tmp_path / "images.npy", images)
    script = (
        "import sys, json, numpy as np, tensorflow as tf\n"
        f"m = tf.saved_model.load({exported.path!r})\n"
        f"out = m.signatures['serving_default'](images=tf.constant(np.load({str(tmp_path / 'images.npy')!r})))\n"
        "assert 'kzoo' not in sys.modules\n"
        "print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"), cwd=str(tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    expected = _keras_probs(model, images)
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
    np.testing.assert_array_equal(out["classes"], np.argsort(-expected, axis=1)[:, :5])
    np.testing.assert_allclose(out["scores"], np.sort(expected, axis=1)[:, ::-1][:, :5], atol=1e-5)


def test_signatures_have_no_half_precision(exported):
    loaded = tf.saved_model.load(exported.path)
    assert set(loaded.signatures) == {"serving_default", "image_bytes"}
    for fn in loaded.signatures.values():
        specs = list(fn.structured_input_signature[1].values()) + list(fn.structured_outputs.values())
        assert all(s.dtype in (tf.uint8, tf.string, tf.float32, tf.int32) for s in specs)
    assert loaded.signatures["serving_default"].structured_input_signature[1]["images"].dtype == tf.uint8


def test_mixed_precision_model_exports_float32(tmp_path):
    keras.config.set_dtype_policy("mixed_float16")
    model = kzoo.ResNet20(input_shape=SHAPE, classes=10)
    keras.config.set_dtype_policy("float32")
    result = kzoo.export(model, tmp_path, "half", dataset="fashion_mnist", warmup=False)
    fn = tf.saved_model.load(result.path).signatures["serving_default"]
    assert all(s.dtype in (tf.float32, tf.int32) for s in fn.structured_outputs.values())
    assert result.card["compute_dtype"] == "float16"


def test_bytes_signature_decodes_png_and_jpeg(exported, model):
    loaded = tf.saved_model.load(exported.path)
    images = _images(2, seed=3)
    png = [tf.io.encode_png(i).numpy() for i in images]
    out = loaded.signatures["image_bytes"](image_bytes=tf.constant(png))
    np.testing.assert_allclose(out["probabilities"].numpy(), _keras_probs(model, images), atol=1e-5)
    # A JPEG of another size and in colour is decoded to grey and resized to 28x28.
    big = np.random.default_rng(4).integers(0, 256, (56, 40, 3), dtype=np.uint8)
    jpeg = tf.io.encode_jpeg(big).numpy()
    out = loaded.signatures["image_bytes"](image_bytes=tf.constant([jpeg]))
    assert out["probabilities"].shape == (1, 10)
    np.testing.assert_allclose(out["probabilities"].numpy().sum(), 1, atol=1e-5)


def test_batch_one_and_n_agree(exported):
    fn = tf.saved_model.load(exported.path).signatures["serving_default"]
    images = _images(6, seed=5)
    together = fn(images=tf.constant(images))["probabilities"].numpy()
    alone = np.concatenate([fn(images=tf.constant(images[i:i + 1]))["probabilities"].numpy() for i in range(6)])
    np.testing.assert_allclose(alone, together, atol=1e-6)


def test_other_sizes_are_resized(exported, model):
    fn = tf.saved_model.load(exported.path).signatures["serving_default"]
    images = _images(2, seed=6)
    big = tf.image.resize(tf.constant(images, tf.float32), (56, 56), method="nearest")
    out = fn(images=tf.cast(big, tf.uint8))["probabilities"].numpy()
    expected = _keras_probs(model, tf.image.resize(big, (28, 28)).numpy())
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize("shape, match", [((28, 28, 1), "must be uint8 \\[batch.*wrong rank"), ((), "wrong rank"),
                                          ((2, 28, 28, 3), "wrong channel count")])
def test_bad_images_at_serving_time(exported, shape, match):
    fn = tf.saved_model.load(exported.path).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        fn(images=tf.zeros(shape, tf.uint8))


def test_saved_model_cli(exported, tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    show = subprocess.run([cli, "show", "--dir", exported.path, "--all"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert show.returncode == 0, show.stderr[-2000:]
    for needed in ("signature_def['serving_default']", "signature_def['image_bytes']", "inputs['images']",
                   "dtype: DT_UINT8", "outputs['probabilities']", "outputs['classes']", "DT_INT32"):
        assert needed in show.stdout, needed
    images = _images(3, seed=7)
    np.save(tmp_path / "in.npy", images)
    run = subprocess.run([cli, "run", "--dir", exported.path, "--tag_set", "serve", "--signature_def",
                          "serving_default", "--inputs", f"images={tmp_path / 'in.npy'}", "--outdir",
                          str(tmp_path / "out")], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    probs = np.load(tmp_path / "out" / "probabilities.npy")
    fn = tf.saved_model.load(exported.path).signatures["serving_default"]
    np.testing.assert_allclose(probs, fn(images=tf.constant(images))["probabilities"].numpy(), atol=1e-6)


def test_rest_row_and_columnar_requests(exported):
    images = _images(2, seed=8)
    loaded = tf.saved_model.load(exported.path)
    expected = loaded.signatures["serving_default"](images=tf.constant(images))
    body = json.dumps(rest.request(images))  # what a client posts
    answer = rest.predict(loaded, body)
    assert len(answer["predictions"]) == 2
    first = answer["predictions"][0]
    assert set(first) == {"probabilities", "classes", "scores"}
    np.testing.assert_allclose(first["probabilities"], expected["probabilities"][0].numpy(), atol=1e-6)
    assert first["classes"] == expected["classes"][0].numpy().tolist()
    # Named instances and the columnar format give the same answer.
    named = rest.predict(loaded, {"instances": [{"images": im.tolist()} for im in images]})
    assert named == answer
    columnar = rest.predict(loaded, {"inputs": {"images": images.tolist()}})
    assert columnar["outputs"]["classes"] == expected["classes"].numpy().tolist()
    # Encoded images travel as {"b64": ...}.
    pngs = [tf.io.encode_png(i).numpy() for i in images]
    by_bytes = rest.predict(loaded, json.dumps(rest.request(image_bytes=pngs)))
    assert [p["classes"] for p in by_bytes["predictions"]] == expected["classes"].numpy().tolist()


def test_rest_bad_requests(exported):
    loaded = tf.saved_model.load(exported.path)
    with pytest.raises(ValueError, match="signature_name 'nope'"):
        rest.predict(loaded, {"signature_name": "nope", "instances": []})
    with pytest.raises(ValueError, match="integers"):
        rest.predict(loaded, {"instances": np.zeros((1, *SHAPE)).tolist()})
    with pytest.raises(TypeError, match="uint8"):
        rest.request(np.zeros((1, *SHAPE), np.float32))


def test_warmup_file_parses_and_replays(exported):
    from tensorflow_serving.apis import prediction_log_pb2

    loaded = tf.saved_model.load(exported.path)
    path = os.path.join(exported.path, "assets.extra", WARMUP_FILE)
    logs = []
    for record in tf.data.TFRecordDataset(path):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    assert [log.predict_log.request.model_spec.signature_name for log in logs] == [
        "serving_default", "serving_default", "image_bytes"]
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "fmnist_resnet20"
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        out = loaded.signatures[request.model_spec.signature_name](**inputs)
        assert np.all(np.isfinite(out["probabilities"].numpy()))


def test_model_card_from_a_run(tmp_path, fmnist_like_dir):
    run = kzoo.train("resnet20", "fashion_mnist", "fashion_mnist_cpu", epochs=1, batch_size=64,
                     validation_size=64, data_dir=fmnist_like_dir, out=str(tmp_path / "run"), verbose=0,
                     model_kwargs={"erase": "last"}, command="kzoo train resnet20 ...")
    result = kzoo.export(str(tmp_path / "run"), tmp_path / "serving", "erased", warmup=False)
    card = json.loads(open(os.path.join(result.path, "model_card.json")).read())
    assert card["test_top1"] == run.metrics["test_top1"] and card["model_kwargs"] == {"erase": "last"}
    assert card["dataset"] == "fashion_mnist" and card["protocol"] == "fashion_mnist_cpu"
    assert card["params"] == run.metrics["params"] and card["command"] == "kzoo train resnet20 ..."
    assert card["input"]["shape"] == [None, 28, 28, 1] and card["hardware"] == run.metrics["hardware"]
    text = open(os.path.join(result.path, "model_card.md")).read()
    assert f"{run.metrics['test_top1']:.4f}" in text and "erase='last'" in text


def test_bad_exports_leave_nothing(model, exported, tmp_path):
    base = os.path.dirname(os.path.dirname(exported.path))
    before = sorted(os.listdir(os.path.dirname(exported.path)))
    with pytest.raises(ValueError, match="already exists"):
        kzoo.export(model, base, "fmnist_resnet20", version=1, dataset="fashion_mnist")
    with pytest.raises(TypeError, match="version"):
        kzoo.export(model, base, "fmnist_resnet20", version="3", dataset="fashion_mnist")
    with pytest.raises(TypeError, match="version"):
        kzoo.export(model, base, "fmnist_resnet20", version=2.0, dataset="fashion_mnist")
    with pytest.raises(ValueError, match="version"):
        kzoo.export(model, base, "fmnist_resnet20", version=0, dataset="fashion_mnist")
    assert sorted(os.listdir(os.path.dirname(exported.path))) == before
    afile = tmp_path / "file"
    afile.write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        kzoo.export(model, afile, "m", dataset="fashion_mnist")
    with pytest.raises(ValueError, match="dataset"):
        kzoo.export(model, tmp_path / "b", "m")
    with pytest.raises(ValueError, match="1 channels but dataset 'cifar100' has 3"):
        kzoo.export(model, tmp_path / "b", "m", dataset="cifar100")
    with pytest.raises(ValueError, match="predicts 100 classes"):
        kzoo.export(kzoo.SmallNet(input_shape=SHAPE), tmp_path / "b", "m", dataset="fashion_mnist")

    class Sub(keras.Model):
        def call(self, x):
            return x

    with pytest.raises(ValueError, match="not built"):
        kzoo.export(Sub(), tmp_path / "b", "m", dataset="fashion_mnist")
    with pytest.raises(TypeError, match="keras.Model"):
        kzoo.export(42, tmp_path / "b", "m", dataset="fashion_mnist")
    with pytest.raises(ValueError, match="not finished"):
        (tmp_path / "run").mkdir()
        kzoo.export(str(tmp_path / "run"), tmp_path / "b", "m")
    assert not (tmp_path / "b").exists() or not any(p.name.isdigit() for p in (tmp_path / "b").rglob("*"))


def test_failed_write_leaves_no_version(model, tmp_path, monkeypatch):
    from kzoo import exporter

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(exporter, "_write_warmup", broken)
    with pytest.raises(OSError, match="disk full"):
        kzoo.export(model, tmp_path, "m", dataset="fashion_mnist")
    assert os.listdir(tmp_path / "m") == []


def test_cli_export(exported, tmp_path, capsys):
    from kzoo import cli

    src = os.path.join(exported.path, "model.keras")
    assert cli.main(["export", src, "--base", str(tmp_path), "--name", "m", "--dataset", "fashion_mnist",
                     "--no-warmup"]) == 0
    assert os.path.isdir(tmp_path / "m" / "1") and "m/1" in capsys.readouterr().out
    assert cli.main(["export", src, "--base", str(tmp_path), "--name", "m", "--dataset", "fashion_mnist",
                     "--version", "1"]) == 2
    assert "already exists" in capsys.readouterr().err
