"""kzoo.export: the TF Serving layout written atomically, the uint8 and bytes
signatures, a SavedModel that a process without kzoo serves with the Keras model's
answers, the warm-up file, the model card, offline serving checks (saved_model_cli,
REST-format requests, batch 1 vs N) and bad inputs."""

import json
import os
import re
import shutil
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

import kzoo
from kzoo import atomic, data
from kzoo.serving import WARMUP_FILE, rest, versions

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
    assert {
        "saved_model.pb",
        "variables",
        "assets.extra",
        "model_card.json",
        "model_card.md",
        "model.keras",
    } <= names
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
        f"out = m.signatures['serving_default']"
        f"(images=tf.constant(np.load({str(tmp_path / 'images.npy')!r})))\n"
        "assert 'kzoo' not in sys.modules\n"
        "print(json.dumps({k: v.numpy().tolist() for k, v in out.items()}))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        cwd=str(tmp_path),
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    expected = _keras_probs(model, images)
    np.testing.assert_allclose(out["probabilities"], expected, atol=1e-5)
    np.testing.assert_array_equal(out["classes"], np.argsort(-expected, axis=1)[:, :5])
    np.testing.assert_allclose(out["scores"], np.sort(expected, axis=1)[:, ::-1][:, :5], atol=1e-5)


def test_signatures_have_no_half_precision(exported):
    loaded = tf.saved_model.load(exported.path)
    assert set(loaded.signatures) == {"serving_default", "image_bytes", "fixed_size"}
    for fn in loaded.signatures.values():
        specs = list(fn.structured_input_signature[1].values()) + list(fn.structured_outputs.values())
        assert all(s.dtype in (tf.uint8, tf.string, tf.float32, tf.int32) for s in specs)
    assert loaded.signatures["serving_default"].structured_input_signature[1]["images"].dtype == tf.uint8


def test_each_weight_is_stored_once(exported, model):
    """The SavedModel's checkpoint holds the model's weights once (keras' ExportArchive
    alone stored each twice: keras-team/keras#23553), and the loaded object still lists
    them all by name, trainable and not."""
    reader = tf.train.load_checkpoint(os.path.join(exported.path, "variables", "variables"))
    shapes = reader.get_variable_to_shape_map()
    stored = sum(
        int(np.prod(shape)) for key, shape in shapes.items() if key != "_CHECKPOINTABLE_OBJECT_GRAPH"
    )
    assert stored == model.count_params()
    loaded = tf.saved_model.load(exported.path)
    assert sorted(v.name.split(":")[0] for v in loaded.variables) == sorted(v.path for v in model.variables)
    assert len(loaded.trainable_variables) == len(model.trainable_variables)
    assert len(loaded.non_trainable_variables) == len(model.non_trainable_variables)


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
    alone = np.concatenate(
        [fn(images=tf.constant(images[i : i + 1]))["probabilities"].numpy() for i in range(6)]
    )
    np.testing.assert_allclose(alone, together, atol=1e-6)


def test_other_sizes_are_resized(exported, model):
    fn = tf.saved_model.load(exported.path).signatures["serving_default"]
    images = _images(2, seed=6)
    big = tf.image.resize(tf.constant(images, tf.float32), (56, 56), method="nearest")
    out = fn(images=tf.cast(big, tf.uint8))["probabilities"].numpy()
    expected = _keras_probs(model, tf.image.resize(big, (28, 28)).numpy())
    np.testing.assert_allclose(out, expected, atol=1e-5)


@pytest.mark.parametrize(
    "shape, match",
    [
        ((28, 28, 1), "must be uint8 \\[batch.*wrong rank"),
        ((), "wrong rank"),
        ((2, 28, 28, 3), "wrong channel count"),
    ],
)
def test_bad_images_at_serving_time(exported, shape, match):
    fn = tf.saved_model.load(exported.path).signatures["serving_default"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        fn(images=tf.zeros(shape, tf.uint8))


def test_saved_model_cli(exported, tmp_path):
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    show = subprocess.run(
        [cli, "show", "--dir", exported.path, "--all"], capture_output=True, text=True, env=env, timeout=300
    )
    assert show.returncode == 0, show.stderr[-2000:]
    for needed in (
        "signature_def['serving_default']",
        "signature_def['image_bytes']",
        "inputs['images']",
        "dtype: DT_UINT8",
        "outputs['probabilities']",
        "outputs['classes']",
        "DT_INT32",
    ):
        assert needed in show.stdout, needed
    images = _images(3, seed=7)
    np.save(tmp_path / "in.npy", images)
    run = subprocess.run(
        [
            cli,
            "run",
            "--dir",
            exported.path,
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"images={tmp_path / 'in.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
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
        "serving_default",
        "serving_default",
        "image_bytes",
    ]
    for log in logs:
        request = log.predict_log.request
        assert request.model_spec.name == "fmnist_resnet20"
        inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
        out = loaded.signatures[request.model_spec.signature_name](**inputs)
        assert np.all(np.isfinite(out["probabilities"].numpy()))


def test_model_card_from_a_run(tmp_path, fmnist_like_dir):
    run = kzoo.train(
        "resnet20",
        "fashion_mnist",
        "fashion_mnist_cpu",
        epochs=1,
        batch_size=64,
        validation_size=64,
        data_dir=fmnist_like_dir,
        out=str(tmp_path / "run"),
        verbose=0,
        model_kwargs={"erase": "last"},
        command="kzoo train resnet20 ...",
    )
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
    with pytest.raises(ValueError, match="is an empty folder: expected a finished run directory"):
        (tmp_path / "run").mkdir()
        kzoo.export(str(tmp_path / "run"), tmp_path / "b", "m")
    assert not (tmp_path / "b").exists() or not any(p.name.isdigit() for p in (tmp_path / "b").rglob("*"))


def test_failed_write_leaves_no_version(model, tmp_path, monkeypatch):
    from kzoo.serving import signatures

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(signatures, "write_warmup", broken)
    with pytest.raises(OSError, match="disk full"):
        kzoo.export(model, tmp_path, "m", dataset="fashion_mnist")
    assert os.listdir(tmp_path) == []  # nor the model folder it made


def test_cli_export(exported, tmp_path, capsys):
    from kzoo import cli

    src = os.path.join(exported.path, "model.keras")
    assert (
        cli.main(
            [
                "export",
                src,
                "--base",
                str(tmp_path),
                "--name",
                "m",
                "--dataset",
                "fashion_mnist",
                "--no-warmup",
            ]
        )
        == 0
    )
    assert os.path.isdir(tmp_path / "m" / "1") and "m/1" in capsys.readouterr().out
    assert (
        cli.main(
            [
                "export",
                src,
                "--base",
                str(tmp_path),
                "--name",
                "m",
                "--dataset",
                "fashion_mnist",
                "--version",
                "1",
            ]
        )
        == 2
    )
    assert "already exists" in capsys.readouterr().err


# ----------------------------------------------------------------------------- what is served


class _Custom(keras.layers.Layer):
    """A last layer kzoo cannot read: the numeric probe decides."""

    def __init__(self, fn, **kwargs):
        super().__init__(**kwargs)
        self.fn = fn

    def call(self, x):
        return {"softmax": keras.ops.softmax, "id": lambda t: t, "sigmoid": keras.ops.sigmoid}[self.fn](x)


def _tiny(head="softmax", dtype=None):
    """Input -> Flatten -> Dense(10) -> ``head``: a model that exports in a second or two."""
    keras.utils.set_random_seed(2)
    inp = keras.Input(SHAPE)
    x = keras.layers.Flatten()(inp)
    dense = lambda act=None: keras.layers.Dense(10, activation=act, dtype=dtype)(x)  # noqa: E731
    out = {
        "softmax": lambda: dense("softmax"),
        "logits": lambda: dense(),
        "sigmoid": lambda: dense("sigmoid"),
        "softmax_layer": lambda: keras.layers.Softmax()(dense()),
        "activation_softmax_dropout": lambda: keras.layers.Dropout(0.5)(
            keras.layers.Activation("softmax")(dense())
        ),
        "ops_softmax": lambda: keras.ops.softmax(dense()),
        "logits_dropout": lambda: keras.layers.Dropout(0.5)(dense()),
        "relu": lambda: keras.layers.ReLU()(dense()),
        "softmax_batch_axis": lambda: keras.layers.Softmax(axis=0)(dense()),
        "nested_logits": lambda: keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])(x),
        "custom_softmax": lambda: _Custom("softmax", dtype=dtype)(dense()),
        "custom_logits": lambda: _Custom("id")(dense()),
        "custom_sigmoid": lambda: _Custom("sigmoid")(dense()),
        "lambda_logits": lambda: keras.layers.Lambda(lambda t: t * 2)(dense()),
    }[head]()
    return keras.Model(inp, out)


@pytest.mark.parametrize(
    "head",
    ["logits", "logits_dropout", "nested_logits", "custom_logits", "lambda_logits", "custom_sigmoid", "kzoo"],
)
def test_logits_are_refused_without_apply_softmax(head, tmp_path):
    net = (
        kzoo.SmallNet(input_shape=SHAPE, classes=10, classifier_activation=None)
        if head == "kzoo"
        else _tiny(head)
    )
    with pytest.raises(ValueError, match=r"outputs logits.*`apply_softmax=True`"):
        kzoo.export(net, tmp_path, "m", dataset="fashion_mnist", warmup=False)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "head, match",
    [("sigmoid", "activation sigmoid"), ("relu", "ReLU"), ("softmax_batch_axis", "over axis 0")],
)
@pytest.mark.parametrize("apply_softmax", [False, True])
def test_other_activations_are_refused(head, match, apply_softmax, tmp_path):
    with pytest.raises(ValueError, match=f"{match}.*must be a softmax over the classes"):
        kzoo.export(_tiny(head), tmp_path, "m", dataset="fashion_mnist", apply_softmax=apply_softmax)


@pytest.mark.parametrize(
    "head",
    ["softmax", "softmax_layer", "activation_softmax_dropout", "ops_softmax", "custom_softmax", "kzoo"],
)
def test_apply_softmax_on_softmax_is_refused(head, tmp_path):
    net = kzoo.SmallNet(input_shape=SHAPE, classes=10) if head == "kzoo" else _tiny(head)
    with pytest.raises(ValueError, match="already.*double softmax"):
        kzoo.export(net, tmp_path, "m", dataset="fashion_mnist", apply_softmax=True)


@pytest.mark.parametrize("head", ["softmax", "custom_softmax"])
@pytest.mark.parametrize("dtype", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_softmax_in_any_precision_passes_the_probe(head, dtype):
    from kzoo.serving import classifier

    net = _tiny(head, dtype=dtype)
    info = data.dataset_info("fashion_mnist")
    assert classifier.check_classifier(net, info, SHAPE, False) == classifier.SOFTMAX_IN_MODEL


def test_a_softmax_that_is_not_probabilities_is_refused(tmp_path):
    net = _tiny("softmax")
    net.layers[-1].kernel.assign(np.full((784, 10), np.nan, np.float32))
    with pytest.raises(ValueError, match="ends in softmax.*not probabilities"):
        kzoo.export(net, tmp_path, "m", dataset="fashion_mnist")


@pytest.mark.parametrize("head", ["logits", "custom_logits"])
def test_apply_softmax_serves_softmax_of_logits(head, tmp_path):
    net = _tiny(head)
    result = kzoo.export(
        net,
        tmp_path,
        "m",
        dataset="fashion_mnist",
        apply_softmax=True,
        warmup=False,
        version=np.int64(7),
        top_k=10,
    )
    assert (
        result.version == 7 and type(result.version) is int and result.path.endswith(os.path.join("m", "7"))
    )
    images = _images(3, seed=9)
    out = tf.saved_model.load(result.path).signatures["serving_default"](images=tf.constant(images))
    np.testing.assert_allclose(
        out["probabilities"].numpy(), tf.nn.softmax(_keras_probs(net, images)), atol=1e-6
    )
    assert out["classes"].shape == (3, 10)
    card = json.loads(open(os.path.join(result.path, "model_card.json")).read())
    assert "softmax applied at export" in card["classifier"]
    assert "softmax applied at export" in card["outputs"]["probabilities"]
    assert "softmax applied at export" in open(os.path.join(result.path, "model_card.md")).read()


class _Unbuilt(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(10, activation="softmax")

    def call(self, x):
        return self.dense(keras.ops.reshape(x, (-1, 784)))


def _shaped(kind):
    inp = keras.Input(SHAPE)
    if kind == "spatial":
        return keras.Model(inp, keras.layers.Conv2D(10, 1, activation="softmax")(inp))
    if kind == "rank3":
        return keras.Model(inp, keras.layers.Softmax()(keras.layers.Reshape((28, 28))(inp)))
    probs = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(inp))
    if kind == "two_outputs":
        return keras.Model(inp, [probs, probs])
    if kind == "two_inputs":
        other = keras.Input(SHAPE)
        return keras.Model(
            [inp, other],
            keras.layers.Dense(10, activation="softmax")(
                keras.layers.Flatten()(keras.layers.Add()([inp, other]))
            ),
        )
    if kind == "flat_input":
        flat = keras.Input((784,))
        return keras.Model(flat, keras.layers.Dense(10, activation="softmax")(flat))
    net = _Unbuilt()
    if kind == "subclassed_called":
        net(np.zeros((1, *SHAPE), np.float32))
    return net


@pytest.mark.parametrize(
    "kind, match",
    [
        ("spatial", r"per-pixel / spatial output.*\(None, 28, 28, 10\)"),
        ("rank3", r"\(None, 28, 28\)"),
        ("two_outputs", "2 outputs"),
        ("two_inputs", r"2 input\(s\)"),
        ("flat_input", r"\(None, 784\)"),
        ("subclassed", "not built"),
        ("subclassed_called", "subclassed model whose input is not known"),
    ],
)
def test_only_image_classifiers_are_exported(kind, match, tmp_path):
    with pytest.raises(
        ValueError, match=r"one image input \[batch, H, W, C\] and one output \[batch, classes\]"
    ) as err:
        kzoo.export(_shaped(kind), tmp_path, "m", dataset="fashion_mnist", warmup=False)
    assert re.search(match, str(err.value)), str(err.value)
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- arguments, before the model

MISSING = "no-such-model.keras"  # these checks must fail before the model is even looked for


@pytest.mark.parametrize(
    "version, error, match",
    [
        (2**63, ValueError, r"9223372036854775807\].*got 9223372036854775808.*int64"),
        (2**64 + 1, ValueError, "version"),
        (np.uint64(2**63), ValueError, "version"),
        (np.int64(0), ValueError, "version"),
        (np.float64(3), TypeError, "version"),
    ],
)
def test_bad_versions(version, error, match, tmp_path):
    with pytest.raises(error, match=match):
        kzoo.export(MISSING, tmp_path, "m", dataset="fashion_mnist", version=version)
    with pytest.raises(TypeError, match="version"):  # bools are not versions
        kzoo.export(MISSING, tmp_path, "m", dataset="fashion_mnist", version=True)


def test_next_version_past_int64_is_refused(tmp_path):
    os.makedirs(tmp_path / "m" / str(2**63 - 1))
    with pytest.raises(ValueError, match="largest"):
        kzoo.export(_tiny(), tmp_path, "m", dataset="fashion_mnist")
    os.makedirs(tmp_path / "n" / "007")  # TF Serving reads it as version 7
    with pytest.raises(ValueError, match="version 7 .* already exists"):
        kzoo.export(_tiny(), tmp_path, "n", dataset="fashion_mnist", version=7)


@pytest.mark.parametrize(
    "top_k, error, match",
    [
        (11, ValueError, r"`top_k` must be at most the class count.*10 classes, got top_k=11"),
        (1000, ValueError, "10 classes"),
        (np.int64(12), ValueError, "top_k=12"),
        (2.5, TypeError, "top_k"),
        ("3", TypeError, "top_k"),
        (None, TypeError, "top_k"),
    ],
)
def test_bad_top_k(top_k, error, match, tmp_path):
    with pytest.raises(error, match=match):
        kzoo.export(MISSING, tmp_path, "m", dataset="fashion_mnist", top_k=top_k)


def test_top_k_above_the_model_classes(tmp_path, fmnist_run):
    with pytest.raises(ValueError, match="the model has 10 classes, got top_k=11"):
        kzoo.export(fmnist_run, tmp_path, "m", top_k=11)  # the dataset comes from the run


@pytest.mark.parametrize(
    "name",
    [
        ".hidden",
        ".tmp-1-abcd",
        "..",
        "a/b",
        "a\0b",
        "",
        "   ",
        " m",
        "m\n",
        "m:predict",
        "x" * 256,
        "tab\there",
    ],
)
def test_bad_names(name, tmp_path):
    with pytest.raises(ValueError, match="`name` must be a plain directory name TF Serving can use"):
        kzoo.export(MISSING, tmp_path, name, dataset="fashion_mnist")


@pytest.mark.parametrize("name", [5, b"m", ["m"]])
def test_names_that_are_not_strings(name, tmp_path):
    with pytest.raises(TypeError, match="`name` must be a plain directory name"):
        kzoo.export(MISSING, tmp_path, name, dataset="fashion_mnist")


@pytest.mark.parametrize(
    "where, match",
    [
        ("file", "is a file"),
        ("under_file", "lies under the file"),
        ("model_dir_is_file", "is a file, not a model"),
        ("read_only", "not writable"),
        ("empty", "non-empty path"),
    ],
)
def test_bad_base_dirs_fail_before_the_model(where, match, tmp_path):
    afile = tmp_path / "file"
    afile.write_text("x")
    base = {
        "file": afile,
        "under_file": afile / "x" / "y",
        "model_dir_is_file": tmp_path,
        "read_only": tmp_path / "ro" / "new",
        "empty": "",
    }[where]
    if where == "model_dir_is_file":
        (tmp_path / "m").write_text("x")
    if where == "read_only":
        if os.geteuid() == 0:
            pytest.skip("root may write anywhere")
        (tmp_path / "ro").mkdir(mode=0o500)
    with pytest.raises(ValueError, match=match) as err:
        kzoo.export(MISSING, base, "m", dataset="fashion_mnist")
    assert where == "empty" or str(tmp_path) in str(err.value)
    with pytest.raises(TypeError, match="base_dir"):
        kzoo.export(MISSING, None, "m", dataset="fashion_mnist")


# ----------------------------------------------------------------------------- sources


@pytest.fixture(scope="module")
def fmnist_run(tmp_path_factory):
    """A run directory as kzoo.train leaves it, with a tiny model."""
    run = tmp_path_factory.mktemp("run")
    _tiny().save(run / "last.keras")
    (run / "config.json").write_text(json.dumps({"model": "tiny", "dataset": "fashion_mnist"}))
    (run / "metrics.json").write_text(json.dumps({"test_top1": 0.5, "test_top5": 0.9}))
    return str(run)


@pytest.mark.parametrize(
    "damage, error, match",
    [
        (("config.json", "{not json"), ValueError, r"run's config .*config\.json' is damaged"),
        (
            ("config.json", "[1, 2]"),
            ValueError,
            r"config\.json' is damaged \(expected a JSON object, got list",
        ),
        (("metrics.json", '{"test_top1": '), ValueError, r"run's metrics .*metrics\.json' is damaged"),
        (("metrics.json", "null"), ValueError, r"metrics\.json' is damaged \(expected a JSON object"),
        (("metrics.json", b"\xff\xfe"), ValueError, r"metrics\.json' is damaged"),
        (("config.json", None), FileNotFoundError, r"run's config .*config\.json' is missing"),
        (("last.keras", None), FileNotFoundError, r"run's last model .*last\.keras' is missing"),
        (("last.keras", "not a zip"), ValueError, r"last\.keras' is not a Keras archive"),
    ],
)
def test_damaged_run_directories(damage, error, match, fmnist_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(fmnist_run, run)
    file, content = damage
    os.remove(run / file)
    if isinstance(content, bytes):
        (run / file).write_bytes(content)
    elif content is not None:
        (run / file).write_text(content)
    with pytest.raises(error, match=match):
        kzoo.export(str(run), tmp_path / "serving", "m")
    assert not (tmp_path / "serving" / "m").exists()


@pytest.mark.parametrize("content", ["just text", "", "zip"])
def test_a_keras_file_that_is_not_an_archive(content, tmp_path):
    import zipfile

    path = tmp_path / "x.keras"
    if content == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("hello.txt", "not a model")
    else:
        path.write_text(content)
    with pytest.raises(ValueError, match=r"x\.keras' is not a Keras archive"):
        kzoo.export(str(path), tmp_path / "serving", "m", dataset="fashion_mnist")


# ----------------------------------------------------------------------------- the card's run directory


@pytest.mark.parametrize("git", ["dir", "file"])  # a clone, or a worktree / submodule (.git a file)
def test_card_stores_the_run_dir_relative_to_the_repository(git, fmnist_run, tmp_path):
    """A card published inside a repository names the run directory relative to it,
    never by the exporting machine's absolute path; ExportResult.path stays absolute."""
    repo = tmp_path / "repo"
    repo.mkdir()
    if git == "dir":
        (repo / ".git").mkdir()
    else:
        (repo / ".git").write_text("gitdir: /elsewhere/.git/worktrees/repo\n")
    run = repo / "runs" / "publish" / "tiny"
    shutil.copytree(fmnist_run, run)
    result = kzoo.export(str(run), repo / "saved_models", "m", warmup=False)
    assert os.path.isabs(result.path) and result.path == str(repo / "saved_models" / "m" / "1")
    card = json.loads(open(os.path.join(result.path, "model_card.json")).read())
    assert card["run_dir"] == result.card["run_dir"] == "runs/publish/tiny"
    for name in ("model_card.json", "model_card.md"):
        text = open(os.path.join(result.path, name)).read()
        assert str(tmp_path) not in text and os.path.realpath(tmp_path) not in text, name


def test_card_stores_a_run_dir_outside_the_repository_relative_to_the_version(fmnist_run, tmp_path):
    """A run outside the repository that holds the export (or with no repository at
    all) is named relative to the version's folder, which the card lies in."""
    (tmp_path / "repo" / ".git").mkdir(parents=True)
    run = tmp_path / "elsewhere" / "tiny"
    shutil.copytree(fmnist_run, run)
    result = kzoo.export(str(run), tmp_path / "repo" / "saved_models", "m", warmup=False)
    card = json.loads(open(os.path.join(result.path, "model_card.json")).read())
    assert card["run_dir"] == "../../../../elsewhere/tiny"
    assert os.path.samefile(os.path.join(result.path, card["run_dir"]), run)
    assert str(tmp_path) not in open(os.path.join(result.path, "model_card.json")).read()


def test_portable_path_uses_the_nearest_repository(tmp_path):
    from kzoo.serving.card import portable_path

    outer = tmp_path / "outer"
    inner = outer / "vendor" / "inner"
    for repo in (outer, inner):
        (repo / ".git").mkdir(parents=True)
    version = inner / "saved_models" / "m" / "1"
    version.mkdir(parents=True)
    assert portable_path(str(inner / "runs" / "a"), str(version)) == "runs/a"
    # In the outer repository only, so outside the one holding the export: relative to the version.
    assert portable_path(str(outer / "runs" / "b"), str(version)) == "../../../../../runs/b"


# ----------------------------------------------------------------------------- publication


def _tmp_folders(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith(".tmp-"))


def test_stale_temporary_folders_are_removed(tmp_path, monkeypatch):
    from kzoo.serving import card as cards

    folder = tmp_path / "m"
    host = atomic.host()
    done = subprocess.Popen([sys.executable, "-c", ""])
    done.wait()
    stale = [f".tmp-3-{host}-{done.pid}-abcd1234", ".tmp-2-oldstyle"]
    kept = [
        f".tmp-4-{host}-{os.getpid()}-live1234",  # a live export: this process
        ".tmp-5-otherhost_ns1-1-abcd1234",
        ".tmp-6-freshone",
        ".tmp-notours",
        ".tmpx",
    ]
    for entry in stale + kept:
        os.makedirs(folder / entry / "variables")
    two_days_ago = os.path.getmtime(folder) - 2 * 86400
    os.utime(folder / ".tmp-2-oldstyle", (two_days_ago, two_days_ago))
    seen = []
    markdown = cards.card_markdown
    monkeypatch.setattr(
        cards, "card_markdown", lambda card: seen.extend(_tmp_folders(folder)) or markdown(card)
    )
    result = kzoo.export(_tiny(), tmp_path, "m", dataset="fashion_mnist", warmup=False, verify=False)
    assert result.version == 1
    ours = [n for n in seen if n not in kept]
    assert len(ours) == 1 and re.fullmatch(rf"\.tmp-1-{re.escape(host)}-{os.getpid()}-\w+", ours[0]), seen
    assert _tmp_folders(folder) == sorted(k for k in kept if k.startswith(".tmp-"))


@pytest.mark.parametrize("rename", ["renameat2", "no_renameat2", "einval"])
def test_a_version_that_appears_meanwhile_is_not_replaced(rename, tmp_path, monkeypatch):
    import ctypes
    import errno

    from kzoo.serving import card as cards
    from kzoo.serving import versions_dir

    if rename == "renameat2" and versions_dir._renameat2() is None:
        pytest.skip("no renameat2 in this libc")
    if rename == "no_renameat2":
        monkeypatch.setattr(versions_dir, "_renameat2", lambda: None)
    if rename == "einval":  # a file system without RENAME_NOREPLACE

        def unsupported(*args):
            ctypes.set_errno(errno.EINVAL)
            return -1

        monkeypatch.setattr(versions_dir, "_renameat2", lambda: unsupported)
    target = tmp_path / "m" / "1"
    markdown = cards.card_markdown
    monkeypatch.setattr(cards, "card_markdown", lambda card: target.mkdir() or markdown(card))
    with pytest.raises(ValueError, match="version 1 appeared while exporting; nothing was replaced"):
        kzoo.export(_tiny(), tmp_path, "m", dataset="fashion_mnist", warmup=False, verify=False)
    assert target.is_dir() and os.listdir(target) == []
    assert os.listdir(tmp_path / "m") == ["1"]
    # Without the race the same export is published.
    monkeypatch.setattr(cards, "card_markdown", markdown)
    result = kzoo.export(_tiny(), tmp_path, "m", dataset="fashion_mnist", warmup=False, verify=False)
    assert result.version == 2 and sorted(os.listdir(tmp_path / "m")) == ["1", "2"]


def test_cli_apply_softmax(tmp_path, capsys):
    from kzoo import cli

    src = str(tmp_path / "logits.keras")
    _tiny("logits").save(src)
    args = [
        "export",
        src,
        "--base",
        str(tmp_path / "serving"),
        "--name",
        "m",
        "--dataset",
        "fashion_mnist",
        "--no-warmup",
    ]
    assert cli.main(args) == 2 and "--apply-softmax" in capsys.readouterr().err
    assert cli.main(args + ["--apply-softmax"]) == 0
    card = json.loads((tmp_path / "serving" / "m" / "1" / "model_card.json").read_text())
    assert card["classifier"] == "softmax applied at export (the model outputs logits)"
