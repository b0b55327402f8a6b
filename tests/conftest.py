import atexit
import gzip
import os
import shutil
import tempfile
import textwrap

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# precision="auto" picks mixed_bfloat16 on AMX CPUs; the suite runs as on CI's machines,
# which have none (tests/test_trainer.py checks the choice itself). Subprocesses inherit it.
os.environ.setdefault("KZOO_AUTO_BFLOAT16", "0")

if os.environ.get("KERAS_BACKEND") == "jax":
    # On a CPU, JAX's compiles dominate the tests: a cache on disk lets each test's
    # subprocess reuse what this session compiled, and XLA's unoptimised code generation
    # compiles sooner. Set in the environment, the tests' subprocesses inherit them.
    _jax_cache = tempfile.mkdtemp(prefix="kzoo-jax-cache-")
    atexit.register(shutil.rmtree, _jax_cache, ignore_errors=True)
    os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", _jax_cache)
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
    os.environ.setdefault(
        "XLA_FLAGS", "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    )
    # The cache's paths (etils.epath) would otherwise probe for TensorFlow, and import it where installed.
    os.environ.setdefault("EPATH_USE_TF", "false")

# Python source that makes TensorFlow and the packages of its family unimportable, as on
# a machine without them: ``KZOO_BLOCK_TENSORFLOW=1`` runs it here, before anything imports
# (``make test-jax``), and a test's subprocess can run it first (``python_preamble``).
BLOCK_TENSORFLOW = textwrap.dedent("""
    import sys

    # None in sys.modules is Python's own "not importable": ``import`` raises
    # ModuleNotFoundError naming the package, importlib.util.find_spec answers None.
    for _name in ("tensorflow", "tensorflow_datasets", "tf2onnx", "keras_tuner", "tensorflow_serving"):
        sys.modules[_name] = None
""")
TENSORFLOW_BLOCKED = os.environ.get("KZOO_BLOCK_TENSORFLOW") == "1"
if TENSORFLOW_BLOCKED:
    exec(BLOCK_TENSORFLOW)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_report_header(config):
    blocked = ", TensorFlow blocked (KZOO_BLOCK_TENSORFLOW=1)" if TENSORFLOW_BLOCKED else ""
    return f"keras backend: {keras.backend.backend()}{blocked}"


@pytest.fixture(scope="session")
def block_tensorflow_source():
    """``BLOCK_TENSORFLOW``, for a subprocess that must run without TensorFlow whatever this session has."""
    return BLOCK_TENSORFLOW


@pytest.fixture(scope="session")
def python_preamble():
    """What a test's ``python -c`` subprocess runs first so that it sees the same packages
    as this session: the TensorFlow block under ``KZOO_BLOCK_TENSORFLOW=1``, else nothing."""
    return BLOCK_TENSORFLOW if TENSORFLOW_BLOCKED else ""


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
