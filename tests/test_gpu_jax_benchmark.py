"""benchmarks/gpu_jax.py: its data reading and augmentation, and a smoke run on the CPU
under JAX in a fresh process (timings are not asserted, only that they are measured)."""

import gzip
import json
import math
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

BENCH = os.path.join(os.path.dirname(__file__), "..", "benchmarks")
sys.path.insert(0, BENCH)

import gpu_jax  # noqa: E402
import summary  # noqa: E402


def _idx(array):
    array = np.asarray(array, np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes() + array.tobytes()


def test_smoke_run_on_jax_writes_every_run(fmnist_like_dir, tmp_path):
    out = tmp_path / "gpu_jax.json"
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}  # replaced: the script sets jax itself
    command = [
        sys.executable,
        os.path.join(BENCH, "gpu_jax.py"),
        *("--limit", "256", "--epochs", "2", "--models", "resnet20,resnet20:frelu"),
        *("--precisions", "float32,mixed_bfloat16", "--data-dir", fmnist_like_dir, "--out", str(out)),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "KERAS_BACKEND=tensorflow replaced by jax" in done.stderr
    result = json.loads(out.read_text())
    assert result["benchmark"] == "gpu_jax" and result["machine"]["backend"] == "jax"
    assert result["machine"]["keras"] == keras.__version__ and result["machine"]["devices"]
    settings = result["settings"]
    assert (settings["train_images"], settings["test_images"]) == (256, 200)  # the fixture has 200
    assert (settings["lr"], settings["batch_size"], settings["epochs"]) == (0.1, 128, 2)
    assert set(result["results"]) == {"resnet20", "resnet20:frelu"}
    runs = result["results"]["resnet20"]
    assert set(runs) == set(result["results"]["resnet20:frelu"]) == {"float32", "mixed_bfloat16"}
    for run in [*runs.values(), *result["results"]["resnet20:frelu"].values()]:
        assert run["status"] == "done" and run["stop_reason"] == "max epochs (2)"
        assert run["epochs_run"] == len(run["epochs"]) == 2 and run["steps_per_epoch"] == 2
        assert math.isfinite(run["images_per_s"]) and run["images_per_s"] > 0
        assert run["images_per_s"] == run["epochs"][1]["images_per_s"]  # the first (compile) excluded
        assert run["seconds_per_epoch"] > 0 and run["first_epoch_s"] > 0
        assert run["test_accuracy"] == [e["test_accuracy"] for e in run["epochs"]]
        for epoch in run["epochs"]:
            assert 0 <= epoch["test_accuracy"] <= 1 and 0 <= epoch["train_accuracy"] <= 1
            assert epoch["steps"] == 2 and not epoch["cut"] and math.isfinite(epoch["train_loss"])
            assert epoch["seconds"] >= epoch["train_s"] > 0
        reached = run["time_to_target_s"]
        assert (reached is None) == (max(run["test_accuracy"]) < 0.94)
    text = summary.render({"gpu_jax": result})
    assert "## Keras on JAX, GPU" in text and "| resnet20 | mixed_bfloat16 | 2 |" in text
    assert "| resnet20:frelu | float32 | 2 |" in text
    assert "gpu_jax" not in text.split("Not in this run:")[1].split("\n")[0]


def test_missing_data_names_every_folder_tried(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="`--data-dir` .*nowhere.* is not a folder"):
        gpu_jax.find_data(tmp_path / "nowhere")
    # Three of the four files: not a dataset; the error names the folder and its subfolders.
    for stem, _ in gpu_jax.IDX_FILES[:3]:
        (tmp_path / f"{stem}.gz").write_bytes(gzip.compress(_idx(np.zeros((1, 28, 28)))))
    with pytest.raises(FileNotFoundError) as error:
        gpu_jax.find_data(tmp_path)
    message = str(error.value)
    assert "t10k-labels-idx1-ubyte[.gz]" in message and "--data-dir" in message
    for folder in (tmp_path / "fashion-mnist", tmp_path / "fashion_mnist", tmp_path):
        assert f"{folder} (--data-dir)" in message
    # No --data-dir: $KZOO_DATA_DIR, then Debian's folder, then the Keras cache.
    monkeypatch.setenv("KZOO_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    bases = [folder for folder, _ in gpu_jax.data_locations()][-3:]
    assert bases == [
        str(tmp_path),
        "/usr/share/datasets/fashion-mnist",
        str(tmp_path / "keras/datasets/fashion-mnist"),
    ]


def test_idx_files_are_read_and_checked_by_kzoo(tmp_path, fmnist_like_dir):
    (x_train, y_train), (x_test, y_test), folder = gpu_jax.load_fashion_mnist(fmnist_like_dir, limit=300)
    assert folder == fmnist_like_dir
    assert x_train.shape == (300, 28, 28, 1) and x_train.dtype == np.uint8 and y_train.dtype == np.int32
    assert x_test.shape == (200, 28, 28, 1) and y_test.shape == (200,)
    (all_train, _), _, _ = gpu_jax.load_fashion_mnist(fmnist_like_dir)
    assert len(all_train) == 2000 and np.array_equal(all_train[:300], x_train)
    # kzoo.data.idx reads and checks them: a file that is not Fashion-MNIST's is refused, named.
    for name in os.listdir(fmnist_like_dir):
        (tmp_path / name).write_bytes(open(os.path.join(fmnist_like_dir, name), "rb").read())
    short = tmp_path / "t10k-labels-idx1-ubyte.gz"
    short.write_bytes(gzip.compress(_idx(np.zeros(200))[:-1]))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz.*shape \(200,\) \(200 bytes of data\)"):
        gpu_jax.load_fashion_mnist(str(tmp_path))
    short.write_bytes(gzip.compress(_idx(np.full(200, 10))))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte.gz.* labels outside \[0, 10\)"):
        gpu_jax.load_fashion_mnist(str(tmp_path))


def test_augmented_epoch_is_shuffled_crops_and_flips_of_the_images():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (70, 28, 28, 1), dtype=np.uint8)
    labels = np.arange(70, dtype=np.int32)  # a label names its image
    padded = gpu_jax.padded(images)
    assert padded.shape == (70, 32, 32, 1)
    assert np.allclose(padded[:, 0], (0 - gpu_jax.MEAN) / gpu_jax.STD)  # black padding, normalised
    x, y = gpu_jax.augmented_epoch(padded, labels, 32, np.random.default_rng(1))
    assert x.shape == (64, 28, 28, 1) and x.dtype == np.float32 and len(set(y.tolist())) == 64
    flips = 0
    for image, label in zip(x, y):
        crops = [padded[label, dy : dy + 28, dx : dx + 28] for dy in range(5) for dx in range(5)]
        plain = any(np.array_equal(image, c) for c in crops)
        mirrored = any(np.array_equal(image, c[:, ::-1]) for c in crops)
        assert plain or mirrored, f"image {label} is no crop of its padded source"
        flips += mirrored and not plain
    assert 16 < flips < 48  # about half are mirrored


def test_models_are_names_or_name_activation_pairs():
    known = ("resnet20", "resnet56")
    assert gpu_jax._names("resnet20, resnet56:frelu", known, "--models", ("relu", "frelu")) == [
        "resnet20",
        "resnet56:frelu",
    ]
    for bad in ("resnet56:swish", "resnet57", "resnet20:", ""):
        with pytest.raises(SystemExit, match=r"`--models` must list some of resnet20, resnet56 \(each may"):
            gpu_jax._names(bad, known, "--models", ("relu", "frelu"))
    with pytest.raises(SystemExit, match="`--precisions` must list some of float32; got 'float32:frelu'"):
        gpu_jax._names("float32:frelu", ("float32",), "--precisions")


def test_a_keras_on_another_backend_is_refused():
    if keras.backend.backend() == "jax":
        pytest.skip("this test process runs Keras on JAX already")
    with pytest.raises(SystemExit, match=f"already imported with the '{keras.backend.backend()}' backend"):
        gpu_jax.import_keras()
