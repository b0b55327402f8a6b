"""kzoo's models on every Keras backend: ``import kzoo`` and the models need Keras only.

Each check runs in a fresh process under another backend than TensorFlow, with
TensorFlow and its family unimportable (conftest's ``BLOCK_TENSORFLOW``, as on a machine
without them): kzoo imports, the smallest model of every family builds, predicts, trains
a step and survives a ``.keras`` round trip, and the pipeline's TensorFlow parts are
refused with an ImportError that says what to install. The backend is JAX from the
TensorFlow session (``make test``), and this session's own where it is another one
(``make test-torch``: PyTorch, in a virtual environment without TensorFlow). A ``.keras``
file moves between TensorFlow and JAX."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
from test_model_harness import smallest_of_each_family

import kzoo

# The backend of the checks without TensorFlow.
BACKEND = "jax" if keras.backend.backend() == "tensorflow" else keras.backend.backend()
SHAPE = (32, 32, 3)
CLASSES = 5
# Families whose smallest model takes JAX on a CPU more than ~20 s to compile and run.
HEAVY_PARAMS = 5_000_000


# Under JAX, also slow: the families whose fresh-process check takes longest to compile
# (15-30 s each). Their models still run under JAX in make test-jax's harness (TensorFlow
# blocked, in that process) and in a fresh process under PyTorch (make test-torch).
JAX_SLOW_FAMILIES = {"merge_run", "cifar_preact_resnet", "wide_resnet", "single_relu"}


def _slow(family, size):
    return BACKEND == "jax" and (size > HEAVY_PARAMS or family in JAX_SLOW_FAMILIES)


FAMILIES = [
    pytest.param(name, id=family, marks=[pytest.mark.slow] if _slow(family, size) else [])
    for family, (size, name) in smallest_of_each_family().items()
]


def run_python(script, backend, preamble="", args=()):
    """Run ``preamble + script`` in a fresh interpreter under ``backend``; its last line of
    stdout, parsed as JSON."""
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="2")
    run = subprocess.run(
        [sys.executable, "-c", preamble + textwrap.dedent(script), *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    return json.loads(run.stdout.strip().splitlines()[-1])


IMPORTS = """
    import json, sys
    import keras
    import kzoo
    import kzoo.models
    from kzoo.models import create_model, list_models

    report = {"backend": keras.backend.backend(), "tf_after_import": sys.modules.get("tensorflow") is not None}
    report["dir"] = sorted(dir(kzoo))
    refused = {}
    for name in ("train", "evaluate", "export", "data", "training", "serving", "tuning", "reproduce"):
        try:
            getattr(kzoo, name)
        except ImportError as error:
            refused[name] = str(error)
    try:
        from kzoo import train  # noqa: F401
    except ImportError as error:
        refused["from kzoo import train"] = str(error)
    report["refused"] = refused
    report["tf_at_end"] = sys.modules.get("tensorflow") is not None
    print(json.dumps(report))
"""


def test_kzoo_imports_without_tensorflow_and_refuses_its_pipeline_clearly(block_tensorflow_source):
    report = run_python(IMPORTS, BACKEND, block_tensorflow_source)
    assert report["backend"] == BACKEND
    assert not report["tf_after_import"] and not report["tf_at_end"]
    assert {"train", "evaluate", "export", "data", "serving", "ResNet20", "models"} <= set(report["dir"])
    refused = report["refused"]
    lazy = ("train", "evaluate", "export", "data", "training", "serving", "tuning", "reproduce")
    assert set(refused) == {*lazy, "from kzoo import train"}, refused
    for name in lazy:
        assert refused[name].startswith(f"kzoo.{name} needs tensorflow"), refused[name]
        assert "pip install tensorflow" in refused[name], refused[name]
    assert refused["from kzoo import train"] == refused["train"]


FAMILY = """
    import json, sys
    import keras
    import numpy as np
    import kzoo

    name, path = sys.argv[1], sys.argv[2]
    keras.utils.set_random_seed(1)
    model = kzoo.create_model(name, input_shape=(32, 32, 3), classes=5)
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    y = np.array([0, 1, 3, 4])
    first = model.predict(x, verbose=0)
    # A fresh deep model's inference-mode softmax can be saturated (BN's moving statistics
    # still at their start), so training shows in the weights, not in the predictions.
    start = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9), loss="sparse_categorical_crossentropy")
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    after = model.predict(x, verbose=0)
    model.save(path)
    loaded = kzoo.load_model(path)
    again = loaded.predict(x, verbose=0)
    print(json.dumps({
        "backend": keras.backend.backend(),
        "tensorflow": sys.modules.get("tensorflow") is not None,
        "shape": list(first.shape),
        "sums": np.sum(first, axis=1).tolist(),
        "loss": history.history["loss"][-1],
        "trained": all(np.any(keras.ops.convert_to_numpy(w) != w0) for w, w0 in zip(model.trainable_weights, start)),
        "finite": bool(np.all(np.isfinite(after))),
        "identical": bool(np.array_equal(after, again)),
        "layers": [len(model.layers), len(loaded.layers)],
    }))
"""


@pytest.mark.parametrize("name", FAMILIES)
def test_each_family_builds_trains_and_round_trips_without_tensorflow(
    name, tmp_path, block_tensorflow_source
):
    report = run_python(FAMILY, BACKEND, block_tensorflow_source, (name, tmp_path / f"{name}.keras"))
    assert report["backend"] == BACKEND and not report["tensorflow"]
    assert report["shape"] == [4, CLASSES]
    np.testing.assert_allclose(report["sums"], 1.0, rtol=1e-5)
    assert np.isfinite(report["loss"]) and report["trained"] and report["finite"]
    assert report["identical"], f"a .keras round trip under {BACKEND} changed the outputs"
    assert report["layers"][0] == report["layers"][1]


SAVE = """
    import json, sys
    import keras
    import numpy as np
    import kzoo

    path, x_path = sys.argv[1], sys.argv[2]
    keras.utils.set_random_seed(2)
    # kzoo's own layers (FReLU, the erased activations' proportion) must cross too.
    model = kzoo.ResNet20(input_shape=(32, 32, 3), classes=5, activation="frelu", erase="last", proportion=0.5)
    x = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy", run_eagerly=True)
    model.train_on_batch(x, np.array([0, 1, 3, 4]))  # BN's statistics and FReLU's biases move off their start
    model.save(path)
    np.save(x_path, x)
    out = keras.ops.convert_to_numpy(model(x, training=False))
    print(json.dumps({"backend": keras.backend.backend(), "out": out.tolist()}))
"""

LOAD = """
    import json, sys
    import keras
    import numpy as np
    import kzoo

    model = kzoo.load_model(sys.argv[1])
    out = keras.ops.convert_to_numpy(model(np.load(sys.argv[2]), training=False))
    print(json.dumps({"backend": keras.backend.backend(), "tensorflow": sys.modules.get("tensorflow") is not None,
                      "out": out.tolist()}))
"""


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow" or os.environ.get("KZOO_BLOCK_TENSORFLOW") == "1",
    reason="needs TensorFlow (and JAX) for the two sides",
)
@pytest.mark.parametrize("saved_under, loaded_under", [("tensorflow", "jax"), ("jax", "tensorflow")])
def test_keras_file_moves_between_backends(saved_under, loaded_under, tmp_path, block_tensorflow_source):
    path, x_path = tmp_path / "model.keras", tmp_path / "x.npy"
    blocked = {"tensorflow": "", "jax": block_tensorflow_source}
    saved = run_python(SAVE, saved_under, blocked[saved_under], (path, x_path))
    loaded = run_python(LOAD, loaded_under, blocked[loaded_under], (path, x_path))
    assert (saved["backend"], loaded["backend"]) == (saved_under, loaded_under)
    if loaded_under == "jax":
        assert not loaded["tensorflow"]
    np.testing.assert_allclose(loaded["out"], saved["out"], rtol=1e-5, atol=1e-5)


def test_a_file_compiled_under_another_backend_is_refused_with_the_way_to_load_it(tmp_path):
    import zipfile

    other = "jax" if keras.backend.backend() == "torch" else "torch"
    model = kzoo.ResNet20(input_shape=(16, 16, 3), classes=3, activation="frelu")
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy")
    saved = tmp_path / "saved.keras"
    model.save(saved)
    # What Keras writes under that backend: its own optimizer class in the compile config.
    moved = tmp_path / "moved.keras"
    with zipfile.ZipFile(saved) as source, zipfile.ZipFile(moved, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "config.json":
                config = json.loads(content)
                config["compile_config"]["optimizer"]["module"] = (
                    f"keras.src.backend.{other}.optimizers.{other}_sgd"
                )
                content = json.dumps(config).encode()
            target.writestr(item, content)
    with pytest.raises(
        ValueError, match=rf"moved\.keras' was compiled under Keras' {other} backend.*compile=False"
    ):
        kzoo.load_model(moved)
    loaded = kzoo.load_model(moved, compile=False)
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(loaded(x)), keras.ops.convert_to_numpy(model(x)), rtol=1e-6, atol=1e-6
    )
