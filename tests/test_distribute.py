"""Distributed training. Two workers on localhost train one model with
MultiWorkerMirroredStrategy through ``kzoo train`` (Keras 3 ``fit`` plus kzoo's fixes):
they end with the weights a single process reaches with the same global batch, only
the chief writes the run directory, a kill -9 of both resumes from the chief's backup,
and the score they publish is the one the saved model gives. BatchNormalization's
moving statistics are averaged over replicas (MirroredStrategy on two CPU devices)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import kzoo.cli
from kzoo.training import distribute

# A registered user model without dropout or BatchNormalization, whose training is
# deterministic given the data, so one process and two workers can be compared exactly.
SCRIPT = """
import sys
import keras
import kzoo.cli
from kzoo.models.registry import register_model

def TinyCNN(input_shape=(28, 28, 1), classes=10, **kwargs):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu", name="conv2")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name="tiny_cnn")

def TinyBNCNN(input_shape=(28, 28, 1), classes=10, **kwargs):
    inputs = keras.Input(input_shape)
    x = keras.layers.Conv2D(8, 3, strides=2, use_bias=False, name="conv1")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(name="bn1")(x))
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x), name="tiny_bn_cnn")

for name, builder in (("tiny_cnn", TinyCNN), ("tiny_bn_cnn", TinyBNCNN)):
    register_model(name, builder, family="tests", paper="-", published_params=None,
                   input_shape=(28, 28, 1), classes=10, dataset="Fashion-MNIST")
sys.exit(kzoo.cli.main(sys.argv[1:]))
"""
ARGS = [
    "tiny_cnn",
    "--dataset",
    "fashion_mnist",
    "--protocol",
    "fashion_mnist_cpu",
    "--batch-size",
    "64",
    "--validation-size",
    "64",
    "--quiet",
]


def _ports(n):
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _launch(workers, args, logs, flags=False):
    """One process per log: with ``workers`` (ports), a localhost cluster given as
    TF_CONFIG, or as ``--workers``/``--task-index`` when ``flags``."""
    script = os.path.join(os.path.dirname(logs[0].name), "train_tiny.py")
    with open(script, "w") as f:
        f.write(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "TF_CONFIG"}
    env.update(TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="")
    hosts = [f"localhost:{p}" for p in workers or ()]
    procs = []
    for i, log in enumerate(logs):
        extra, worker_env = [], dict(env)
        if workers and flags:
            extra = ["--workers", ",".join(hosts), "--task-index", str(i)]
        elif workers:
            worker_env["TF_CONFIG"] = json.dumps(
                {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}}
            )
        procs.append(
            subprocess.Popen(
                [sys.executable, script, "train", *args, *extra],
                env=worker_env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        )
    return procs


def _wait(procs, logs, timeout=300):
    try:
        for proc, log in zip(procs, logs):
            rc = proc.wait(timeout=timeout)
            log.seek(0)
            assert rc == 0, log.read()[-3000:]
    finally:  # a worker left alone would wait for its peer forever
        for proc in procs:
            proc.kill()


def _weights(path):
    import zipfile

    import h5py

    with zipfile.ZipFile(path) as z, z.open("model.weights.h5") as f, h5py.File(f) as h5:
        arrays = []
        h5.visititems(
            lambda name, obj: arrays.append((name, obj[()])) if isinstance(obj, h5py.Dataset) else None
        )
    return [a for name, a in sorted(arrays) if name.startswith("layers")]


def test_two_workers_match_one_process(fmnist_like_dir, tmp_path):
    args = ARGS + ["--epochs", "2", "--data-dir", fmnist_like_dir]
    logs = [open(tmp_path / f"w{i}.log", "w+") for i in range(2)]
    _wait(_launch(_ports(2), args + ["--out", str(tmp_path / "multi")], logs), logs)
    single = [open(tmp_path / "single.log", "w+")]
    _wait(_launch(None, args + ["--out", str(tmp_path / "single")], single), single)

    multi = tmp_path / "multi"
    assert sorted(os.listdir(multi)) == [
        "best.keras",
        "config.json",
        "curves.png",
        "epochs.csv",
        "last.keras",
        "metrics.json",
    ]
    m = json.loads((multi / "metrics.json").read_text())
    s = json.loads((tmp_path / "single" / "metrics.json").read_text())
    assert m["workers"] == 2 and s["workers"] == 1 and m["epochs"] == 2
    # Each worker computed the gradient of its half of every global batch of 64; the
    # all-reduced update is the single process's.
    for a, b in zip(_weights(multi / "last.keras"), _weights(tmp_path / "single" / "last.keras")):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)
    # The test score the cluster reported covers the whole test set, not one shard.
    assert m["test_top1"] == pytest.approx(s["test_top1"], abs=1e-6)
    # Only the chief printed progress.
    logs[0].seek(0), logs[1].seek(0)
    assert "Epoch 2/2" in logs[0].read() and "Epoch" not in logs[1].read()


def test_two_workers_resume_after_kill(fmnist_like_dir, tmp_path):
    """With BatchNormalization, whose moving statistics each worker updates on its own."""
    out = tmp_path / "run"
    args = ["tiny_bn_cnn", *ARGS[1:], "--epochs", "5", "--data-dir", fmnist_like_dir, "--out", str(out)]
    logs = [open(tmp_path / f"w{i}.log", "w+") for i in range(2)]
    procs = _launch(_ports(2), args, logs, flags=True)
    deadline = time.time() + 300
    while not (out / "backup" / "epoch-0002").exists():
        assert time.time() < deadline and all(p.poll() is None for p in procs), "no backup appeared"
        time.sleep(0.2)
    for p in procs:
        p.send_signal(signal.SIGKILL)
        p.wait()
    done = int(sorted(os.listdir(out / "backup"))[-1][6:])
    assert 2 <= done < 5
    logs = [open(tmp_path / f"again{i}.log", "w+") for i in range(2)]
    _wait(_launch(_ports(2), args, logs, flags=True), logs)
    m = json.loads((out / "metrics.json").read_text())
    assert m["epochs"] == 5 and not (out / "backup").exists()
    with open(out / "epochs.csv") as f:
        assert [line.split(",")[0] for line in f][1:] == ["0", "1", "2", "3", "4"]
    # The workers' statistics were averaged before the test: the saved model, evaluated
    # in one process, gives the published score.
    again = kzoo.evaluate(str(out), data_dir=fmnist_like_dir)
    assert again["test_top1"] == pytest.approx(m["test_top1"], abs=1e-6)
    assert again["test_loss"] == pytest.approx(m["test_loss"], rel=1e-4)


MIRRORED = """
import sys
import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
from kzoo.training import distribute

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
x = np.concatenate([np.zeros((32, 4)), np.full((32, 4), 10.0)]).astype("float32")  # replica 1 sees 10s
ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(64, "int32"))).batch(64)
with strategy.scope():
    inputs = keras.Input((4,))
    bn = keras.layers.BatchNormalization(name="bn")
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(bn(inputs)))
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
callbacks = [distribute.SyncMovingStatistics()] if sys.argv[1] == "sync" else []
with distribute.distributed_fit_fixes(model):
    model.fit(ds, epochs=3, verbose=0, callbacks=callbacks)
print([float(np.mean(v.numpy())) for v in strategy.experimental_local_results(bn.moving_mean.value)])
"""


@pytest.mark.parametrize("mode", ["sync", "none"])
def test_moving_statistics_are_averaged_over_replicas(tmp_path, mode):
    script = tmp_path / "mirrored.py"
    script.write_text(MIRRORED)
    out = subprocess.run(
        [sys.executable, str(script), mode],
        capture_output=True,
        text=True,
        env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"),
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    first, second = json.loads(out.stdout.strip().splitlines()[-1])
    if mode == "sync":  # both replicas hold the mean of what they saw
        assert first == pytest.approx(second) and 0 < first < 10
    else:  # what keras does alone: each replica keeps its own
        assert first == 0 and second > 0


@pytest.mark.parametrize(
    "config, match",
    [
        ("not json", "TF_CONFIG must be JSON"),
        (
            '{"cluster": {"ps": ["a:1"], "worker": ["b:2"]}, "task": {"type": "worker", "index": 0}}',
            "workers.*only.*ps",
        ),
        (
            '{"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 2}}',
            "not in the cluster",
        ),
    ],
)
def test_bad_tf_config(monkeypatch, config, match):
    monkeypatch.setenv("TF_CONFIG", config)
    with pytest.raises(ValueError, match=match):
        distribute.cluster()


def test_cluster_roles(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert distribute.cluster() == (1, 0) and distribute.is_chief() and not distribute.is_multi_worker()
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps(
            {"cluster": {"chief": ["a:1"], "worker": ["b:2", "c:3"]}, "task": {"type": "worker", "index": 1}}
        ),
    )
    assert distribute.cluster() == (3, 2) and not distribute.is_chief()


def test_multi_worker_refuses_a_built_model(monkeypatch, fmnist_like_dir, tmp_path):
    monkeypatch.setenv(
        "TF_CONFIG",
        json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}}),
    )
    model = kzoo.SmallNet(input_shape=(28, 28, 1), classes=10)
    with pytest.raises(ValueError, match="registered name"):
        kzoo.train(
            model, "fashion_mnist", "fashion_mnist_cpu", data_dir=fmnist_like_dir, out=str(tmp_path / "r")
        )


@pytest.mark.parametrize(
    "extra, match",
    [
        (["--workers", "localhost:1,localhost:2"], "needs --task-index"),
        (["--task-index", "0"], "needs --workers"),
        (["--workers", "localhost,localhost:2", "--task-index", "0"], "host:port"),
        (["--workers", "localhost:1,localhost:2", "--task-index", "2"], "not in the cluster"),
    ],
)
def test_cli_cluster_flags_are_checked(monkeypatch, capsys, extra, match):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert kzoo.cli.main(["train", "smallnet", *extra]) == 2
    assert match in capsys.readouterr().err
    assert "TF_CONFIG" not in os.environ
