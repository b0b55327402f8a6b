import gzip
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _float32_policy():
    """Every test starts and ends in float32, whatever policy it set."""
    keras.config.set_dtype_policy("float32")
    yield
    keras.config.set_dtype_policy("float32")


def _idx(array):
    array = np.asarray(array, np.uint8)
    return bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes() + array.tobytes()


@pytest.fixture(scope="session")
def fmnist_like_dir(tmp_path_factory):
    """Fashion-MNIST-format IDX files, small enough for CI: 2,000 training and 200 test
    images whose class is readable from their brightness."""
    folder = tmp_path_factory.mktemp("fmnist")
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 2000), ("t10k", 200)):
        labels = rng.integers(0, 10, n)
        images = np.clip(rng.normal(20 * labels[:, None, None], 30, (n, 28, 28)), 0, 255)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels)))
    return str(folder)


@pytest.fixture(scope="session")
def fmnist_subset_dir(tmp_path_factory):
    """The first 1,200 training and 500 test images of the real Fashion-MNIST (Debian's
    copy, found the way kzoo finds it), as IDX files: a real-data search small enough for CI."""
    from kzoo import data

    try:
        (x_train, y_train), (x_test, y_test) = data.idx.read_arrays(data.dataset_info("fashion_mnist"), None)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST is not on this machine (make data installs Debian's copy)")
    folder = tmp_path_factory.mktemp("fmnist_subset")
    for prefix, images, labels, n in (("train", x_train, y_train, 1200), ("t10k", x_test, y_test, 500)):
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx(np.squeeze(images[:n]))))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(labels[:n])))
    return str(folder)
