"""kzoo.train on small Fashion-MNIST-format IDX data: the run directory, resuming after
kill -9, NaN handling, seeded repeatability, errors before any work, and the CLI."""

import csv
import json
import os
import re
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
# What a finished run directory holds, and nothing else.
FINISHED_RUN = ["best.keras", "config.json", "curves.png", "epochs.csv", "last.keras", "metrics.json"]


@pytest.fixture
def data_dir(fmnist_like_dir):
    return fmnist_like_dir


def _rows(run_dir):
    with open(os.path.join(run_dir, "epochs.csv")) as f:
        return list(csv.DictReader(f))


def test_run_directory(data_dir, tmp_path):
    out = tmp_path / "run"
    result = train(
        "smallnet_bn",
        "fashion_mnist",
        "fashion_mnist_cpu",
        epochs=2,
        data_dir=data_dir,
        out=str(out),
        verbose=0,
        model_kwargs={"erase": "last", "proportion": 0.5},
        **SMALL,
    )
    assert sorted(os.listdir(out)) == FINISHED_RUN
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 2 and 0 <= m["test_top1"] <= m["test_top5"] <= 1
    assert m["params"] == kzoo.trainable_params(result.model) and m["train_images_per_s"] > 0
    assert m["hardware"]["cpu_count"] and m["versions"]["kzoo"] == kzoo.__version__
    assert m["model_kwargs"] == {"erase": "last", "proportion": 0.5}
    config = json.loads((out / "config.json").read_text())
    assert config["protocol_fields"]["epochs"] == 2 and config["precision"] == "float32"
    # The record is the run's RunConfig: it rebuilds the same record.
    assert json.loads(json.dumps(kzoo.training.RunConfig.from_config(config).get_config())) == config
    assert [int(r["epoch"]) for r in _rows(out)] == [0, 1] == [int(r["epoch"]) for r in result.history]
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    # The published metric can be re-checked from the run directory.
    again = kzoo.evaluate(str(out))
    assert again["test_top1"] == pytest.approx(m["test_top1"]) and again["examples"] == 200
    assert again["test_loss"] == pytest.approx(m["test_loss"], rel=1e-5)  # cross-entropy, no penalty
    # A finished run is returned as it is, not retrained.
    before = (out / "epochs.csv").read_text()
    done = train(
        "smallnet_bn",
        "fashion_mnist",
        "fashion_mnist_cpu",
        epochs=2,
        data_dir=data_dir,
        out=str(out),
        verbose=0,
        model_kwargs={"erase": "last", "proportion": 0.5},
        **SMALL,
    )
    assert (out / "epochs.csv").read_text() == before and done.metrics == m
    with pytest.raises(ValueError, match="different run.*model_kwargs"):
        train(
            "smallnet_bn",
            "fashion_mnist",
            "fashion_mnist_cpu",
            epochs=2,
            data_dir=data_dir,
            out=str(out),
            verbose=0,
            **SMALL,
        )
    # So does a protocol field given as an override: a longer run is another run.
    with pytest.raises(ValueError, match="different run.*epochs, lr"):
        train(
            "smallnet_bn",
            "fashion_mnist",
            "fashion_mnist_cpu",
            epochs=3,
            lr=0.05,
            data_dir=data_dir,
            out=str(out),
            verbose=0,
            model_kwargs={"erase": "last", "proportion": 0.5},
            **SMALL,
        )


def test_kill_and_resume(data_dir, tmp_path):
    out = str(tmp_path / "run")
    cmd = [
        sys.executable,
        "-m",
        "kzoo.cli",
        "train",
        "smallnet_bn",
        "--dataset",
        "fashion_mnist",
        "--protocol",
        "fashion_mnist_cpu",
        "--epochs",
        "8",
        "--batch-size",
        "32",
        "--validation-size",
        "64",
        "--data-dir",
        data_dir,
        "--out",
        out,
        "--quiet",
        "--test-curve",
    ]
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


# kill -9 at each point of an epoch's writes (epoch 1 of 3): before its test-curve pass,
# while a model file is half written, and after its backup but before its best model
# is promoted. Each runs in a child process that kills itself there, and the re-run of the
# same call must leave the record (and nothing else) an uninterrupted run leaves.
_KILLERS = {
    "test_curve": """
def killer(self, epoch, logs=None):
    if epoch == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, epoch, logs)
cls, attr = cb.TestCurve, "on_epoch_end"
""",
    "model_half_written": """
saves = []
def killer(self, path, *args, **kwargs):
    saves.append(path)
    if len(saves) == 3:  # epoch 0 saved last.keras and best.keras: epoch 1's last.keras
        open(path, "wb").write(b"PK")  # half of it, in its temporary
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, path, *args, **kwargs)
import keras
cls, attr = keras.Model, "save"
""",
    "after_backup": """
def killer(self, epoch):
    if epoch == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return original(self, epoch)
cls, attr = cb.Checkpoints, "commit"
""",
}


def _kill_test_kwargs(data_dir, out):
    return dict(epochs=3, data_dir=data_dir, out=out, verbose=0, test_curve=True, **SMALL)


@pytest.fixture(scope="module")
def uninterrupted(fmnist_like_dir, tmp_path_factory):
    """The epochs of the run the kill tests interrupt, run without interruption."""
    out = str(tmp_path_factory.mktemp("uninterrupted") / "run")
    return train(
        "smallnet_bn", "fashion_mnist", "fashion_mnist_cpu", **_kill_test_kwargs(fmnist_like_dir, out)
    )


@pytest.mark.parametrize("point", sorted(_KILLERS))
def test_a_kill_at_any_point_of_an_epoch_resumes_to_the_uninterrupted_record(
    data_dir, tmp_path, point, uninterrupted
):
    out = str(tmp_path / "run")
    kwargs = _kill_test_kwargs(data_dir, out)
    script = "\n".join(
        [
            "import os, signal, sys",
            "from kzoo.training import callbacks as cb, train",
            _KILLERS[point],
            "original = getattr(cls, attr)",
            "setattr(cls, attr, killer)",
            f"train('smallnet_bn', 'fashion_mnist', 'fashion_mnist_cpu', **{kwargs!r})",
        ]
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]
    assert not os.path.exists(os.path.join(out, "metrics.json"))

    result = train("smallnet_bn", "fashion_mnist", "fashion_mnist_cpu", **kwargs)
    rows = _rows(out)
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]  # no epoch lost, none twice
    assert all(r["test_accuracy"] and r["val_accuracy"] for r in rows)
    assert result.metrics["epochs"] == 3 and len(result.history) == 3
    # Without TTA the final validation score is the last epoch's pass of the same model.
    assert result.metrics["val_top1"] == result.history[-1]["val_accuracy"]
    # The same numbers as the uninterrupted run: the resumed epochs saw the same batches
    # (the data starts at the resumed epoch) and the same dropout masks (the seed
    # generators are in the backup); SmallNet has Dropout.
    timings = ("seconds", "test_seconds")  # how long, not what was computed
    for got, want in zip(result.history, uninterrupted.history):
        assert got.keys() == want.keys()
        assert {k: v for k, v in got.items() if k not in timings} == pytest.approx(
            {k: v for k, v in want.items() if k not in timings}, rel=1e-6
        )
    assert result.metrics["test_top1"] == uninterrupted.metrics["test_top1"]
    assert sorted(os.listdir(out)) == FINISHED_RUN  # no temporary, no candidate, no backup left
    # best.keras is the best epoch of the record: its validation top-1 is the log's best.
    _, val_ds, _, _ = kzoo.data.make_datasets(
        "fashion_mnist", batch_size=64, data_dir=data_dir, validation_size=64, seed=0
    )
    best = keras.saving.load_model(os.path.join(out, "best.keras"))
    score = best.evaluate(val_ds, return_dict=True, verbose=0)["accuracy"]
    assert score == pytest.approx(max(float(r["val_accuracy"]) for r in rows), abs=1e-6)


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
        train(
            model,
            "fashion_mnist",
            "fashion_mnist_cpu",
            epochs=3,
            data_dir=data_dir,
            out=str(out),
            verbose=0,
            **SMALL,
        )
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


def test_atomic_writes_leave_files_readable_as_open_would(tmp_path):
    """Every file kzoo writes through kzoo.atomic (records, models, the moving average of a
    backup, figures) gets the mode a plain open would give it; mkstemp's 0600 made the
    backup's ema.npz private before it went through kzoo.atomic."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kzoo import atomic
    from kzoo.training.ema import WeightEMA
    from kzoo.training.report import save_figure

    old = os.umask(0o022)
    try:
        atomic.write_text(str(tmp_path / "record.json"), "{}\n")
        atomic.save_model(_tiny_model(), str(tmp_path / "model.keras"))
        ema = WeightEMA(0.9)
        ema.set_model(_tiny_model())
        ema.save(str(tmp_path))
        save_figure(plt.figure(), str(tmp_path / "curves.png"))
        os.umask(0o077)
        atomic.write_text(str(tmp_path / "private.json"), "{}\n")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {  # and no temporary left
        "record.json": 0o644,
        "model.keras": 0o644,
        "ema.npz": 0o644,
        "curves.png": 0o644,
        "private.json": 0o600,
    }
    assert (tmp_path / "record.json").read_text() == "{}\n"


def test_seeded_cpu_runs_repeat(data_dir, tmp_path):
    runs = [
        train(
            "smallnet_bn",
            "fashion_mnist",
            "fashion_mnist_cpu",
            epochs=1,
            seed=3,
            data_dir=data_dir,
            out=str(tmp_path / f"r{i}"),
            verbose=0,
            **SMALL,
        )
        for i in range(2)
    ]
    a, b = ([r[k] for r in run.history for k in ("loss", "val_loss", "accuracy")] for run in runs)
    assert a == b


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"dataset": "cifar11"}, ValueError, "cifar11"),
        ({"protocol": "he_cifa"}, ValueError, "protocol"),
        ({"epochs": -1}, ValueError, "epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"model_kwargs": {"classes": 5}}, ValueError, "classes"),
        ({"model": "resnet21"}, ValueError, "resnet21"),
        ({"mixed_precision": "float8"}, ValueError, "mixed_precision"),
        (
            {
                "model": keras.Sequential(
                    [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(3)]
                )
            },
            ValueError,
            "predicts 3 classes but dataset .fashion_mnist. has 10",
        ),
        (
            {"model": "resnet50", "dataset": "imagenet2012", "protocol": "imagenet"},
            FileNotFoundError,
            "ILSVRC2012_img_train.tar",
        ),
    ],
)
def test_bad_inputs_fail_before_any_work(kwargs, err, match, data_dir, tmp_path):
    args = {
        "model": "smallnet_bn",
        "dataset": "fashion_mnist",
        "protocol": "fashion_mnist_cpu",
        "data_dir": data_dir,
        **SMALL,
        **kwargs,
    }
    if args["dataset"] == "imagenet2012":
        args["data_dir"] = str(tmp_path / "tfds")
        os.makedirs(args["data_dir"])  # an explicit data_dir must exist
    with pytest.raises(err, match=match):
        train(
            args.pop("model"),
            args.pop("dataset"),
            args.pop("protocol"),
            out=str(tmp_path / "run"),
            verbose=0,
            **args,
        )
    assert not (tmp_path / "run").exists()


def test_cli_train_errors_are_clear(data_dir):
    out = subprocess.run(
        [sys.executable, "-m", "kzoo_command", "train", "resnet20", "--dataset", "cifar11"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2 and "kzoo: error:" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run(
        [sys.executable, "-m", "kzoo_command", "protocols"], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0 and "he_cifar" in out.stdout and "fashion_mnist_demo" in out.stdout


def test_mixed_precision_on_cpu(data_dir, tmp_path):
    """bfloat16 compute with float32 weights and output; the run records its policy."""
    result = train(
        "smallnet_bn",
        "fashion_mnist",
        "fashion_mnist_cpu",
        epochs=1,
        data_dir=data_dir,
        out=str(tmp_path / "run"),
        verbose=0,
        mixed_precision="bfloat16",
        **SMALL,
    )
    assert result.model.dtype_policy.name == "mixed_bfloat16"
    assert all(w.dtype == "float32" for w in result.model.weights)
    assert result.metrics["precision"] == "mixed_bfloat16" and np.isfinite(result.metrics["test_loss"])
    assert keras.config.dtype_policy().name == "float32"  # the global policy is restored


@pytest.mark.parametrize(
    "flags, gpus, override, expected",
    [
        (["avx512f", "avx512_bf16", "amx_bf16"], [], "", "mixed_bfloat16"),  # AMX: measured to pay
        (["avx512f", "avx512_bf16"], [], "", "mixed_bfloat16"),  # AVX512_BF16 without AMX: measured too
        (["avx2", "avx512f"], [], "", "float32"),  # no bfloat16 instructions
        ([], [], "", "float32"),
        (["amx_bf16"], ["GPU:0"], "", "mixed_float16"),  # a GPU wins
        (["amx_bf16"], [], "0", "float32"),
        ([], [], "1", "mixed_bfloat16"),
    ],
)
def test_auto_precision_picks_bfloat16_on_bfloat16_cpus(monkeypatch, flags, gpus, override, expected):
    from kzoo.training import distribute, machine, precision

    monkeypatch.setattr(machine, "cpu_info", lambda: {"cpu_model": "test", "cpu_flags": flags})
    monkeypatch.setattr(distribute, "gpus", lambda: gpus)
    monkeypatch.setenv("KZOO_AUTO_BFLOAT16", override)
    assert precision.resolve_precision("auto") == expected
    assert precision.resolve_precision("float32") == "float32"  # asked for, never changed


def test_auto_precision_override_must_be_0_or_1(monkeypatch):
    from kzoo.training import precision

    monkeypatch.setenv("KZOO_AUTO_BFLOAT16", "yes")
    with pytest.raises(ValueError, match=r"\$KZOO_AUTO_BFLOAT16 must be 0, 1 or unset, got 'yes'"):
        precision.resolve_precision("auto")


def test_dtype_policy_is_restored_after_the_block_even_on_error():
    from kzoo.training.precision import dtype_policy

    with pytest.raises(RuntimeError), dtype_policy("mixed_bfloat16"):
        assert keras.config.dtype_policy().name == "mixed_bfloat16"
        raise RuntimeError
    assert keras.config.dtype_policy().name == "float32"


def test_float16_trains_with_loss_scaling(data_dir, tmp_path):
    """mixed_float16 (the GPU default) wraps SGD in a dynamic loss scale and keeps a
    float32 softmax; run on CPU with the MLP, whose float16 matmuls are cheap here."""
    keras.config.set_dtype_policy("mixed_float16")
    model = kzoo.MLP(depth=3, units=32)  # a built model keeps the policy it was built with
    keras.config.set_dtype_policy("float32")
    result = train(
        model,
        "fashion_mnist",
        "fashion_mnist_cpu",
        epochs=1,
        data_dir=data_dir,
        out=str(tmp_path / "run"),
        verbose=0,
        **SMALL,
    )
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


class _Subclassed(keras.Model):
    def call(self, x):
        return x


def _two_outputs():
    x = keras.Input((28, 28, 1))
    y = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(x, [y, y])


def _per_pixel():
    x = keras.Input((28, 28, 1))
    return keras.Model(x, keras.layers.Conv2D(10, 1, activation="softmax")(x))


@keras.saving.register_keras_serializable(package="kzoo_tests")
class _OwnHead(keras.layers.Layer):
    """A last layer keras does not know: what it outputs is found by running it."""

    def __init__(self, softmax=False, **kwargs):
        super().__init__(**kwargs)
        self.softmax = softmax
        self.dense = keras.layers.Dense(10)

    def call(self, x):
        y = self.dense(x)
        return keras.ops.softmax(y) if self.softmax else y

    def get_config(self):
        return {**super().get_config(), "softmax": self.softmax}


def _ending_in(head):
    """A 28x28x1 classifier whose last layer is ``head`` (a layer, or an activation name)."""
    x = keras.Input((28, 28, 1))
    flat = keras.layers.Flatten()(x)
    if isinstance(head, keras.layers.Layer):
        return keras.Model(x, head(flat))
    return keras.Model(x, keras.layers.Dense(10, activation=head)(flat))


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        # runs that would train on nothing
        ({"epochs": 0}, ValueError, "`epochs` must be an integer at least 1"),
        ({"protocol": "he_cifar", "dataset": "fashion_mnist", "steps": 0}, ValueError, "`steps`"),
        ({"batch_size": 60000}, ValueError, "batch_size.*0 steps per epoch"),
        ({"batch_size": 128, "train_fraction": 1e-4}, ValueError, "train_fraction.*0 steps per epoch"),
        # non-finite numbers
        ({"lr": float("nan")}, ValueError, "`lr` must be a finite number"),
        ({"lr": float("inf")}, ValueError, "`lr` must be a finite number"),
        ({"weight_decay": float("inf")}, ValueError, "`weight_decay` must be a finite"),
        ({"momentum": float("nan")}, ValueError, "`momentum`"),
        ({"train_fraction": float("nan")}, ValueError, "`train_fraction`"),
        # builder arguments, before the data
        ({"model_kwargs": {"stochastik_depth": 0.5}}, TypeError, "model_kwargs.*stochastik_depth"),
        ({"model_kwargs": {"erase": "lastt"}}, ValueError, "model_kwargs.*erase"),
        ({"model_kwargs": {"activation": "rleu"}}, ValueError, "model_kwargs.*rleu"),
        ({"model_kwargs": {"stochastic_depth": float("nan")}}, ValueError, "model_kwargs.*stochastic_depth"),
        (
            {"model_kwargs": {"input_shape": (32, 32, 3)}},
            ValueError,
            r"`model_kwargs`: input_shape=\(32, 32, 3\) disagrees with dataset 'fashion_mnist'",
        ),
        ({"model_kwargs": ["erase"]}, TypeError, "`model_kwargs` must be a dict"),
        # seeds, verbosity, the model given
        ({"seed": -1}, ValueError, "`seed` must be an integer in \\[0, 4294967295\\]"),
        ({"seed": 2**40}, ValueError, "`seed`"),
        ({"seed": 1.5}, TypeError, "`seed`"),
        ({"verbose": 3}, ValueError, "`verbose` must be 'auto', 0, 1 or 2"),
        ({"verbose": "loud"}, ValueError, "`verbose`"),
        ({"model": _Subclassed()}, ValueError, "`model` is not built"),
        ({"model": _two_outputs()}, ValueError, "one image input and one output"),
        ({"model": _per_pixel()}, ValueError, "must output \\[batch, classes\\]"),
        ({"data_dir": 3}, TypeError, "`data_dir` must be a path"),
        (
            {"data_dir": "/nonexistent/fmnist"},
            FileNotFoundError,
            "`data_dir`='/nonexistent/fmnist' does not exist",
        ),
        ({"data_dir": "/etc/hostname"}, ValueError, "`data_dir`=.* is a file"),
        # models that give logits or other scores, trained as if they gave probabilities
        ({"model": _ending_in(None)}, ValueError, "`model` ends in Dense .* no activation, not a softmax"),
        ({"model": _ending_in("sigmoid")}, ValueError, "activation sigmoid, not a softmax"),
        ({"model": _ending_in(_OwnHead())}, ValueError, "custom _OwnHead.*random images.*not a softmax"),
        ({"model_kwargs": {"classifier_activation": None}}, ValueError, "`model_kwargs` ends in Dense"),
        # settings the run's length leaves without effect (936 steps of 64 per epoch)
        ({"epochs": 1, "warmup_steps": 936}, ValueError, "`warmup_steps`=936 is not shorter than the run"),
        ({"ema_decay": 0.99, "ema_every": 10**4}, ValueError, "`ema_every`=10000 would never update"),
        ({"ema_every": 5}, ValueError, "`ema_every`=5 does nothing here: it needs `ema_decay`"),
        ({"warmup_lr": 0.01}, ValueError, "`warmup_lr`=0.01 does nothing here"),
        (
            {"tta": "flip", "test": False, "validation_size": 0},
            ValueError,
            "`tta`='flip' averages the test and final validation scores.*`test`=False and validation_size=0",
        ),
        (
            {"model": _ending_in("softmax"), "mixed_precision": "bfloat16"},
            ValueError,
            "`mixed_precision`='bfloat16' does nothing for a built model, which computes in float32",
        ),
    ],
)
def test_refused_before_data_and_before_writing(kwargs, err, match, tmp_path, monkeypatch):
    """Each of these is refused from the arguments alone: no data is read (the loaders
    are booby-trapped) and the run directory is never created."""
    from kzoo import data

    def no_data(*args, **kw):
        raise AssertionError("data was read before the arguments were checked")

    monkeypatch.setattr(data, "load", no_data)
    monkeypatch.setattr(data, "make_datasets", no_data)
    args = {"model": "resnet20", "dataset": "fashion_mnist", "protocol": "fashion_mnist_demo", **kwargs}
    with pytest.raises(err, match=match):
        train(
            args.pop("model"),
            args.pop("dataset"),
            args.pop("protocol"),
            out=str(tmp_path / "run"),
            **{"verbose": 0, **args},
        )
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "where, match",
    [
        ("file", "`out`=.* is a file, not a directory"),
        ("under_file", "`out`=.* lies under the file"),
    ],
)
def test_unusable_out_is_refused_before_the_build(where, match, tmp_path, monkeypatch):
    from kzoo.training import trainer

    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    out = blocker if where == "file" else blocker / "deeper" / "run"
    monkeypatch.setattr(trainer, "build_model", lambda *a: pytest.fail("the model was built"))
    with pytest.raises(ValueError, match=match):
        train("resnet20", "fashion_mnist", out=str(out), verbose=0)


def test_splits_too_small_for_a_batch(tmp_path):
    """Files of fewer examples than the dataset's published size: the batch that does not
    fit the training split actually found, and an empty test split, are refused before
    training instead of giving a finished run of no steps or no test score."""
    import gzip

    from conftest import _idx

    folder = tmp_path / "data"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 300), ("t10k", 0)):
        images = rng.integers(0, 255, (n, 28, 28))
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(rng.integers(0, 10, n))))
    with pytest.raises(ValueError, match="train.*batch|batch.*train"):
        train(
            "mlp12",
            "fashion_mnist",
            data_dir=str(folder),
            out=str(tmp_path / "a"),
            verbose=0,
            validation_size=100,
            batch_size=256,
            model_kwargs={"units": 8},
        )
    with pytest.raises(ValueError, match="test"):
        train(
            "mlp12",
            "fashion_mnist",
            data_dir=str(folder),
            out=str(tmp_path / "b"),
            verbose=0,
            validation_size=100,
            batch_size=32,
            model_kwargs={"units": 8},
        )
    assert not (tmp_path / "a" / "metrics.json").exists() and not (tmp_path / "b" / "metrics.json").exists()


def _tiny_model_file(path):
    model = keras.Sequential(
        [keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10, activation="softmax")]
    )
    model.save(path)
    return model


@pytest.mark.parametrize(
    "damage, err, match",
    [
        ("config_not_json", ValueError, "config.json.*damaged.*delete the run directory"),
        ("config_a_list", ValueError, "config.json.*damaged.*JSON object"),
        ("metrics_not_json", ValueError, "metrics.json.*damaged"),
        ("metrics_without_model", FileNotFoundError, "last.keras.*missing"),
        ("model_not_zip", ValueError, "last.keras.*not a Keras archive"),
        ("epochs_csv_damaged", ValueError, "epochs.csv.*damaged"),
    ],
)
def test_damaged_run_files_are_named(damage, err, match, tmp_path):
    """Files kzoo wrote and reads back: a damaged or missing one is named, with what to do."""
    run = tmp_path / "run"
    run.mkdir()
    if damage.startswith("config"):
        (run / "config.json").write_text("{not json" if damage == "config_not_json" else "[1, 2]")
    else:
        (run / "metrics.json").write_text("{oops" if damage == "metrics_not_json" else "{}")
        if damage == "model_not_zip":
            (run / "last.keras").write_text("not a zip")
        elif damage == "epochs_csv_damaged":
            _tiny_model_file(str(run / "last.keras"))
            (run / "epochs.csv").write_text("epoch,loss\nzero,abc\n")
    with pytest.raises(err, match=match):
        train("resnet20", "fashion_mnist", out=str(run), verbose=0)


@pytest.mark.parametrize(
    "case, err, match",
    [
        ("hundred_classes", ValueError, "predicts 100 classes but dataset 'fashion_mnist' has 10"),
        ("other_shape", ValueError, "inputs of shape \\(32, 32, 3\\)"),
        ("batch_size", ValueError, "`batch_size`"),
        ("not_zip", ValueError, "not a Keras archive"),
        ("missing", FileNotFoundError, "does not exist"),
        ("damaged_config", ValueError, "config.json.*damaged"),
        ("config_without_dataset", ValueError, "names no dataset"),
        ("another_dataset", ValueError, "trained on 'fashion_mnist', and 'mnist' has mean"),
        ("another_dataset_cifar", ValueError, "'cifar10' has image shape \\(32, 32, 3\\)"),
    ],
)
def test_evaluate_checks_the_model_before_the_data(case, err, match, tmp_path, monkeypatch):
    from kzoo import data

    monkeypatch.setattr(data, "load", lambda *a, **k: pytest.fail("data was read"))
    path, kwargs = str(tmp_path / "m.keras"), {"dataset": "fashion_mnist"}
    if case == "hundred_classes":
        kzoo.MLP(depth=2, units=8, classes=100, input_shape=(28, 28, 1)).save(path)
    elif case == "other_shape":
        kzoo.MLP(depth=2, units=8, classes=10, input_shape=(32, 32, 3)).save(path)
    elif case == "batch_size":
        _tiny_model_file(path)
        kwargs["batch_size"] = 0
    elif case == "not_zip":
        (tmp_path / "m.keras").write_text("text")
    elif case == "missing":
        path = str(tmp_path / "nothing.keras")
    elif case.startswith("another_dataset"):  # a Fashion-MNIST run scored under another's preprocessing
        path, kwargs = str(tmp_path / "run"), {"dataset": "cifar10" if case.endswith("cifar") else "mnist"}
        os.makedirs(path)
        _tiny_model_file(os.path.join(path, "last.keras"))
        (tmp_path / "run" / "config.json").write_text('{"dataset": "fashion_mnist"}')
    else:
        path, kwargs = str(tmp_path / "run"), {}
        os.makedirs(path)
        _tiny_model_file(os.path.join(path, "last.keras"))
        (tmp_path / "run" / "config.json").write_text("{" if case == "damaged_config" else "{}")
    with pytest.raises(err, match=match):
        kzoo.evaluate(path, **kwargs)


def _cli(*args):
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI quiets TensorFlow itself
    return subprocess.run(
        [sys.executable, "-m", "kzoo_command", *args], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.mark.parametrize(
    "args, code, match",
    [
        (("train", "resnet20", "--epochs", "0"), 2, "`epochs` must be an integer at least 1"),
        (("train", "resnet20", "--lr", "nan"), 2, "`lr` must be a finite number"),
        (("train", "resnet20", "--out", "/proc/version/run"), 2, "lies under the file"),
        (("evaluate", "/nonexistent/run"), 2, "does not exist"),
        (("export", "/nonexistent/run"), 2, "does not exist"),
    ],
)
def test_cli_errors_are_one_line_without_tensorflow_noise(args, code, match):
    out = _cli(*args)
    lines = out.stderr.strip().splitlines()
    assert out.returncode == code, out.stderr
    assert len(lines) == 1 and lines[0].startswith("kzoo: error: "), out.stderr
    assert re.search(match, lines[0]), lines[0]


@pytest.mark.parametrize(
    "error, code",
    [
        (NonFiniteLossError("the training loss became nan"), 1),
        (OSError(28, "No space left on device"), 1),
        (KeyboardInterrupt(), 130),
        (PermissionError(13, "Permission denied"), 2),
    ],
)
def test_cli_exit_codes(error, code, monkeypatch, capsys):
    from kzoo import cli

    def boom(args):
        raise error

    monkeypatch.setattr(cli, "_train", boom)
    assert cli.main(["train", "resnet20"]) == code
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("kzoo: error: ")


def test_a_built_models_precision_is_read_from_its_layers(tmp_path):
    """A loaded mixed-precision model says float32 as a whole; the run records what its
    layers compute in, and an explicit request that matches it is accepted."""
    from kzoo.training import model as run_model
    from kzoo.training.precision import dtype_policy

    with dtype_policy("mixed_bfloat16"):
        _ending_in("softmax").save(str(tmp_path / "m.keras"))
    loaded = kzoo.load_model(str(tmp_path / "m.keras"))
    assert run_model.model_precision(loaded, "auto", "float32") == "mixed_bfloat16"
    assert run_model.model_precision(loaded, "bfloat16", "mixed_bfloat16") == "mixed_bfloat16"
    with pytest.raises(ValueError, match="computes in bfloat16"):
        run_model.model_precision(loaded, "float32", "float32")
