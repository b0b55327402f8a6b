"""kzoo.train on small Fashion-MNIST-format IDX data: the run directory, resuming after
kill -9, NaN handling, seeded repeatability, errors before any work, and the CLI."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest

import kzoo
from kzoo.training import NonFiniteLossError, train

SMALL = {"validation_size": 64, "batch_size": 64}


@pytest.fixture
def data_dir(fmnist_like_dir):
    return fmnist_like_dir


def _rows(run_dir):
    with open(os.path.join(run_dir, "epochs.csv")) as f:
        return list(csv.DictReader(f))


def test_run_directory(data_dir, tmp_path):
    out = tmp_path / "run"
    result = train("smallnet_bn", "fashion_mnist", "fashion_mnist_cpu", epochs=2, data_dir=data_dir,
                   out=str(out), verbose=0, model_kwargs={"erase": "last", "proportion": 0.5}, **SMALL)
    assert sorted(os.listdir(out)) == ["best.keras", "config.json", "curves.png", "epochs.csv",
                                       "last.keras", "metrics.json"]
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 2 and 0 <= m["test_top1"] <= m["test_top5"] <= 1
    assert m["params"] == kzoo.trainable_params(result.model) and m["train_images_per_s"] > 0
    assert m["hardware"]["cpu_count"] and m["versions"]["kzoo"] == kzoo.__version__
    assert m["model_kwargs"] == {"erase": "last", "proportion": 0.5}
    config = json.loads((out / "config.json").read_text())
    assert config["protocol_fields"]["epochs"] == 2 and config["precision"] == "float32"
    assert [int(r["epoch"]) for r in _rows(out)] == [0, 1] == [int(r["epoch"]) for r in result.history]
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # The published metric can be re-checked from the run directory.
    again = kzoo.evaluate(str(out))
    assert again["test_top1"] == pytest.approx(m["test_top1"]) and again["examples"] == 200
    assert again["test_loss"] == pytest.approx(m["test_loss"], rel=1e-5)  # cross-entropy, no penalty
    # A finished run is returned as it is, not retrained.
    before = (out / "epochs.csv").read_text()
    done = train("smallnet_bn", "fashion_mnist", "fashion_mnist_cpu", epochs=2, data_dir=data_dir,
                 out=str(out), verbose=0, model_kwargs={"erase": "last", "proportion": 0.5}, **SMALL)
    assert (out / "epochs.csv").read_text() == before and done.metrics == m
    with pytest.raises(ValueError, match="different run.*model_kwargs"):
        train("smallnet_bn", "fashion_mnist", "fashion_mnist_cpu", epochs=2, data_dir=data_dir,
              out=str(out), verbose=0, **SMALL)
    # So does a protocol field given as an override: a longer run is another run.
    with pytest.raises(ValueError, match="different run.*epochs, lr"):
        train("smallnet_bn", "fashion_mnist", "fashion_mnist_cpu", epochs=3, lr=0.05, data_dir=data_dir,
              out=str(out), verbose=0, model_kwargs={"erase": "last", "proportion": 0.5}, **SMALL)


def test_kill_and_resume(data_dir, tmp_path):
    out = str(tmp_path / "run")
    cmd = [sys.executable, "-m", "kzoo.cli", "train", "smallnet_bn", "--dataset", "fashion_mnist",
           "--protocol", "fashion_mnist_cpu", "--epochs", "8", "--batch-size", "32",
           "--validation-size", "64", "--data-dir", data_dir, "--out", out, "--quiet", "--test-curve"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    csv_path = os.path.join(out, "epochs.csv")
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(csv_path) and len(_rows(out)) >= 2:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.05)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    first_rows = _rows(out)
    assert 2 <= len(first_rows) < 8 and not os.path.exists(os.path.join(out, "metrics.json"))

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = _rows(out)
    assert [int(r["epoch"]) for r in rows] == list(range(8))  # as many epochs as an uninterrupted run
    assert rows[0] == first_rows[0]  # resumed, not restarted
    assert all(r["test_accuracy"] and r["test_cross_entropy"] for r in rows)  # the test curve goes on too
    assert not os.path.exists(os.path.join(out, "backup"))
    model = keras.saving.load_model(os.path.join(out, "last.keras"))
    steps = (2000 - 64) // 32
    assert int(model.optimizer.iterations) == 8 * steps  # optimizer state came back too
    assert float(rows[-1]["lr"]) < float(rows[1]["lr"])  # the schedule continued, not restarted
    # The published test score is the last epoch's test-curve score (not a second pass),
    # and it is the saved model's own.
    metrics = json.loads(open(os.path.join(out, "metrics.json")).read())
    assert metrics["test_top1"] == pytest.approx(float(rows[-1]["test_accuracy"]))
    assert metrics["eval_seconds"] is None  # no separate test pass was made or timed
    assert kzoo.evaluate(out, data_dir=data_dir)["test_top1"] == pytest.approx(metrics["test_top1"])


@keras.saving.register_keras_serializable(package="kzoo_tests")
class NaNAfter(keras.layers.Layer):
    """Identity for the first ``steps`` training calls, NaN afterwards."""

    def __init__(self, steps, **kwargs):
        super().__init__(**kwargs)
        self.steps = steps

    def build(self, input_shape):
        self.calls = self.add_weight(shape=(), initializer="zeros", trainable=False, name="calls")

    def call(self, x, training=False):
        if training:
            self.calls.assign_add(1.0)
        poison = keras.ops.where(self.calls > self.steps, float("nan"), 1.0)
        return x * keras.ops.cast(poison, x.dtype)

    def get_config(self):
        return {**super().get_config(), "steps": self.steps}


def test_nan_stops_with_error_and_keeps_backup(data_dir, tmp_path):
    inputs = keras.Input((28, 28, 1))
    x = keras.layers.Flatten()(inputs)
    x = NaNAfter(40)(keras.layers.Dense(16)(x))  # epoch 1 has 30 steps of 64
    model = keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))
    out = tmp_path / "run"
    with pytest.raises(NonFiniteLossError, match="nan"):
        train(model, "fashion_mnist", "fashion_mnist_cpu", epochs=3, data_dir=data_dir, out=str(out),
              verbose=0, **SMALL)
    backup = out / "backup"
    assert sorted(os.listdir(backup)) == ["epoch-0001"]
    assert json.loads((backup / "epoch-0001" / "state.json").read_text()) == {"epochs": 1}
    assert not (out / "metrics.json").exists()


def _tiny_model():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9), loss="sparse_categorical_crossentropy")
    return model


def test_backup_is_atomic_keeps_two_and_falls_back(tmp_path):
    from kzoo.training.callbacks import Backup

    x, y = np.random.default_rng(0).normal(size=(32, 4)), np.arange(32) % 2
    model = _tiny_model()
    model.fit(x, y, epochs=3, verbose=0, callbacks=[Backup(str(tmp_path))])
    assert sorted(os.listdir(tmp_path)) == ["epoch-0002", "epoch-0003"]  # no temporary left
    # A damaged newest backup (as after a disk fault) falls back to the one before.
    (tmp_path / "epoch-0003" / "model.weights.h5").write_bytes(b"garbage")
    fresh = _tiny_model()
    fresh.fit(x, y, epochs=3, verbose=0, callbacks=[Backup(str(tmp_path), writer=False)])
    assert fresh.optimizer.iterations.numpy() == 32 // 32 * 2 + 1  # two restored steps + one
    assert sorted(os.listdir(tmp_path)) == ["epoch-0002", "epoch-0003"]  # a reader writes nothing


def test_seeded_cpu_runs_repeat(data_dir, tmp_path):
    runs = [train("smallnet_bn", "fashion_mnist", "fashion_mnist_cpu", epochs=1, seed=3,
                  data_dir=data_dir, out=str(tmp_path / f"r{i}"), verbose=0, **SMALL) for i in range(2)]
    a, b = ([r[k] for r in run.history for k in ("loss", "val_loss", "accuracy")] for run in runs)
    assert a == b


@pytest.mark.parametrize("kwargs, err, match", [
    ({"dataset": "cifar11"}, ValueError, "cifar11"),
    ({"protocol": "he_cifa"}, ValueError, "protocol"),
    ({"epochs": -1}, ValueError, "epochs"),
    ({"batch_size": 0}, ValueError, "batch_size"),
    ({"model_kwargs": {"classes": 5}}, ValueError, "classes"),
    ({"model": "resnet21"}, ValueError, "resnet21"),
    ({"mixed_precision": "float8"}, ValueError, "mixed_precision"),
    ({"model": keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])},
     ValueError, "predicts 3 classes but dataset .fashion_mnist. has 10"),
    ({"model": "resnet50", "dataset": "imagenet2012", "protocol": "imagenet"}, FileNotFoundError,
     "ILSVRC2012_img_train.tar"),
])
def test_bad_inputs_fail_before_any_work(kwargs, err, match, data_dir, tmp_path):
    args = {"model": "smallnet_bn", "dataset": "fashion_mnist", "protocol": "fashion_mnist_cpu",
            "data_dir": data_dir, **SMALL, **kwargs}
    if args["dataset"] == "imagenet2012":
        args["data_dir"] = str(tmp_path / "tfds")
    with pytest.raises(err, match=match):
        train(args.pop("model"), args.pop("dataset"), args.pop("protocol"), out=str(tmp_path / "run"),
              verbose=0, **args)
    assert not (tmp_path / "run").exists()


def test_cli_train_errors_are_clear(data_dir):
    out = subprocess.run([sys.executable, "-m", "kzoo.cli", "train", "resnet20", "--dataset", "cifar11"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2 and "kzoo: error:" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "kzoo.cli", "protocols"], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and "he_cifar" in out.stdout and "fashion_mnist_demo" in out.stdout


def test_mixed_precision_on_cpu(data_dir, tmp_path):
    """bfloat16 compute with float32 weights and output; the run records its policy."""
    result = train("smallnet_bn", "fashion_mnist", "fashion_mnist_cpu", epochs=1, data_dir=data_dir,
                   out=str(tmp_path / "run"), verbose=0, mixed_precision="bfloat16", **SMALL)
    assert result.model.dtype_policy.name == "mixed_bfloat16"
    assert all(w.dtype == "float32" for w in result.model.weights)
    assert result.metrics["precision"] == "mixed_bfloat16" and np.isfinite(result.metrics["test_loss"])
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


def test_float16_trains_with_loss_scaling(data_dir, tmp_path):
    """mixed_float16 (the GPU default) wraps SGD in a dynamic loss scale and keeps a
    float32 softmax; run on CPU with the MLP, whose float16 matmuls are cheap here."""
    keras.config.set_dtype_policy("mixed_float16")
    model = kzoo.MLP(depth=3, units=32)  # a built model keeps the policy it was built with
    keras.config.set_dtype_policy("float32")
    result = train(model, "fashion_mnist", "fashion_mnist_cpu", epochs=1, data_dir=data_dir,
                   out=str(tmp_path / "run"), verbose=0, **SMALL)
    assert isinstance(result.model.optimizer, keras.optimizers.LossScaleOptimizer)
    assert result.model.output.dtype == "float32" and result.metrics["precision"] == "mixed_float16"
    assert np.isfinite(result.metrics["test_loss"])


@pytest.mark.parametrize("callbacks", ["tensorboard", keras.callbacks.History(), [object()]])
def test_bad_callbacks_are_refused_before_data(callbacks, tmp_path):
    with pytest.raises(TypeError, match="`callbacks` must"):
        kzoo.train("resnet20", "fashion_mnist", callbacks=callbacks, out=str(tmp_path / "r"))
    with pytest.raises(TypeError, match="`test` must be True or False"):
        kzoo.train("resnet20", "fashion_mnist", test="no", out=str(tmp_path / "r"))
    assert not (tmp_path / "r").exists()
