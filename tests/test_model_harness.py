"""keras-hub style checks for every registered model: forward, one training step, a
.keras round trip with identical outputs in a fresh process that imports kzoo, and the
mixed-precision rules (float32 weights, float32 output)."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

import kzoo

SLOW = {
    "resnet1202",
    "resnet1001",
    "resnet200",
    "resnet200v2",
    "resnext152_32x4d",
    # the same code as preact_resnet62 / resnet164 at other depths
    "preact_resnet164",
    "preact_bottleneck56",
    "preact_bottleneck110",
}
# Extra variants whose custom layers must survive serialization too.
VARIANTS = {
    "resnet20-frelu-erase": ("resnet20", {"activation": "frelu", "erase": "last", "proportion": 0.5}),
    "resnet164-type1-prelu": ("resnet164", {"erase": "first", "activation": "prelu"}),
    "resnet50v2-erase-last": ("resnet50v2", {"erase": "last", "activation": "frelu"}),
    "wrn16_8-D-erase-sd": ("wrn16_8", {"dropout_rate": 0.3, "erase": "last", "stochastic_depth": 0.5}),
    "dfn_mr1-mix1-frelu": ("dfn_mr1", {"cross_type": "mix1", "activation": "frelu"}),
    "plain38-2to1-ensemble": ("plain38", {"erase": "last", "proportion": 0.5, "ensemble": True}),
    "inception-erase-prelu": ("inception_v2_cifar", {"erase": "last", "activation": "prelu"}),
}
SHAPE = (32, 32, 3)
CASES = [pytest.param(n, n, {}, marks=[pytest.mark.slow] if n in SLOW else []) for n in kzoo.list_models()]
CASES += [pytest.param(k, n, kw) for k, (n, kw) in VARIANTS.items()]

FRESH = textwrap.dedent("""
    import json, sys
    import numpy as np
    import kzoo
    spec = json.loads(sys.argv[1])
    model = kzoo.load_model(spec["path"])
    x = np.load(spec["x"])
    infer = np.asarray(model(x, training=False))
    np.savez(spec["out"], infer=infer, train=np.asarray(model(x, training=True)))
""")


@pytest.mark.parametrize("case, name, kwargs", CASES)
def test_model_contract(case, name, kwargs, tmp_path):
    keras.utils.set_random_seed(1)
    info = kzoo.model_info(name)
    classes = 5
    model = info.build(input_shape=SHAPE, classes=classes, **kwargs)
    x = np.random.default_rng(0).normal(size=(2,) + SHAPE).astype("float32")
    y = np.array([1, 3])

    # Eager calls: tracing a graph of a thousand layers costs more than one step.
    # Training mode: at initialisation BN's moving statistics (0, 1) do not normalise,
    # and in inference mode ResNet-1001/1202's residual stream overflows even float32.
    probs = np.asarray(model(x, training=True))
    assert probs.shape == (2, classes) and np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)

    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        run_eagerly=True,
    )
    before = [w.numpy().copy() for w in model.trainable_weights[:3]]
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights[:3]))

    path = tmp_path / f"{case}.keras"
    model.save(path)
    # Same order as the fresh process: a training-mode call moves BN's statistics.
    expected = {"infer": np.asarray(model(x, training=False)), "train": np.asarray(model(x, training=True))}
    assert np.all(np.isfinite(expected["train"]))
    np.save(tmp_path / "x.npy", x)
    spec = {"path": str(path), "x": str(tmp_path / "x.npy"), "out": str(tmp_path / "out.npz")}
    run = subprocess.run(
        [sys.executable, "-c", FRESH, json.dumps(spec)], capture_output=True, text=True, timeout=900
    )
    assert run.returncode == 0, run.stderr[-3000:]
    got = np.load(spec["out"])
    # Dropout and stochastic depth draw from seed-generator state keras does not save:
    # their training-mode outputs differ between processes by design.
    stochastic = any(
        isinstance(layer, (keras.layers.Dropout, kzoo.layers.StochasticDepth)) for layer in model.layers
    )
    for mode in ("infer",) if stochastic else ("infer", "train"):
        np.testing.assert_array_equal(got[mode], expected[mode], err_msg=mode)


@pytest.mark.parametrize("case, name, kwargs", CASES)
def test_mixed_precision_rules(case, name, kwargs):
    keras.config.set_dtype_policy("mixed_float16")
    model = kzoo.model_info(name).build(input_shape=SHAPE, **kwargs)
    assert all(w.dtype == "float32" for w in model.weights)
    assert model.output.dtype == "float32"
    assert model.get_layer("predictions").dtype_policy.compute_dtype == "float32"
    weighted = [
        layer for layer in model.layers if isinstance(layer, (keras.layers.Conv2D, keras.layers.Dense))
    ]
    assert weighted[0].compute_dtype == "float16"
    # Training mode, for the reason given in test_model_contract (float16 overflows
    # sooner: a deep pre-activation net already does in inference mode).
    x = np.random.default_rng(0).normal(size=(2,) + SHAPE).astype("float32")
    out = model(x, training=True)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    assert np.all(np.isfinite(np.asarray(out)))


def test_mixed_bfloat16_trains_frelu():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = kzoo.ResNet20(activation="frelu", input_shape=(16, 16, 3))
    assert model.get_layer("stem_frelu").bias.dtype == "float32"
    assert model.output.dtype == "float32"
    model.compile("sgd", "sparse_categorical_crossentropy")
    loss = model.train_on_batch(np.ones((2, 16, 16, 3), "float32"), np.array([0, 1]))
    assert np.isfinite(loss)
