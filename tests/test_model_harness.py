"""keras-hub and timm style checks for every registered model: forward, one training
step in which every trainable weight gets a finite, non-zero gradient, a .keras round
trip with identical outputs in a fresh process that imports kzoo, the mixed-precision
rules (float32 weights, float32 output), and the backbone (``include_top=False`` with
each pooling at a non-default input size) beside a compiled ``predict``."""

import json
import os
import subprocess
import sys
import textwrap
import time

import keras
import numpy as np
import pytest

import kzoo

# Tensors and variables to NumPy on every backend (torch's need detaching first).
to_numpy = keras.ops.convert_to_numpy

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
    # deeper or wider copies of a lighter case that stays (resnet50/50v2, resnext29_8x64d,
    # resnext50_32x4d, wrn28_10, resnet56, the resnet164-type1-prelu variant, preact_resnet62)
    "resnet101",
    "resnet101v2",
    "resnet152",
    "resnet152v2",
    "resnext29_16x64d",
    "resnext101_32x4d",
    "wrn52_10",
    "resnet110",
    "resnet164",
    "preact_resnet110",
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
    # keras.applications architectures placed by kzoo.place and given the data's head and
    # input by kzoo.adapt (keras:NAME)
    "keras-vgg16-2to1": ("keras:VGG16", {"erase": "last", "proportion": 0.5}),
    "keras-resnet50-eraserelu-frelu": (
        "keras:ResNet50",
        {"erase": "last", "proportion": 0.5, "activation": "frelu"},
    ),
    "keras-resnet50v2-erase-first": ("keras:ResNet50V2", {"erase": "first"}),
    "keras-mobilenetv2-erase-second": (
        "keras:MobileNetV2",
        {"erase": "second", "proportion": 0.5, "alpha": 0.35},
    ),
    "keras-densenet121-frelu-middle": (
        "keras:DenseNet121",
        {"activation": "frelu", "erase": "middle", "proportion": [1, 3]},
    ),
    "keras-efficientnetb0-erase-middle": ("keras:EfficientNetB0", {"erase": "middle", "proportion": 0.5}),
    "keras-convnexttiny-prelu-ensemble": ("keras:ConvNeXtTiny", {"activation": "prelu", "ensemble": True}),
}
# Under JAX and PyTorch one placed keras.applications model runs (MobileNetV2, the
# lightest); the others are the same transformation of larger graphs.
KERAS_SLOW_ELSEWHERE = {k for k, (n, _) in VARIANTS.items() if n.startswith("keras:")} - {
    "keras-mobilenetv2-erase-second"
}
SHAPE = (32, 32, 3)


def smallest_of_each_family(exclude=()):
    """{family: (parameters as registered, the registered model with the fewest)}, in
    family order, over the models not in ``exclude`` (tests/test_backends.py uses it too)."""
    smallest = {}
    for name in kzoo.list_models(exclude=sorted(exclude)):
        info = kzoo.model_info(name)
        size = info.expected_params or float("inf")
        if info.family not in smallest or size < smallest[info.family][0]:
            smallest[info.family] = (size, name)
    return dict(sorted(smallest.items()))


# Under another backend (make test-jax) the sweep is one model per family plus the
# variants: JAX on a CPU compiles every op of every new shape (15-30 s a model), so the
# whole zoo would take over ten minutes there; the code a family's other depths share is
# covered once. Of those, four are slow there too, each made of the same blocks as a
# lighter case that stays: inception-erase-prelu, dfn_mr1-mix1-frelu, resnet50v2-erase-last,
# and resnext50_32x4d (the same ResNeXt build, an ImageNet stem).
JAX_SLOW = {"inception_v2_cifar", "dfn_mr1", "resnet50v2", "resnext29_8x64d", *KERAS_SLOW_ELSEWHERE}
if keras.backend.backend() == "tensorflow":
    MODELS, SLOW_HERE = kzoo.list_models(), SLOW
else:
    # of the models the TensorFlow sweep runs outside SLOW
    MODELS = sorted(name for _, name in smallest_of_each_family(exclude=SLOW).values())
    SLOW_HERE = SLOW | JAX_SLOW
CASES = [pytest.param(n, n, {}, marks=[pytest.mark.slow] if n in SLOW_HERE else []) for n in MODELS]
CASES += [
    pytest.param(k, n, kw, marks=[pytest.mark.slow] if k in SLOW_HERE else [])
    for k, (n, kw) in VARIANTS.items()
]

# The file is loaded back in a fresh process that imports kzoo (its layers registered by
# that import alone) under TensorFlow; under JAX, where that process would compile every
# op again (~7 s a model), in this one: the registration is the same code on every
# backend, and tests/test_backends.py loads kzoo's layers in a fresh JAX process.
# One such process serves the module: it imports kzoo once (starting Python and
# TensorFlow took about 4 s of each case's 7-25 s) and loads each file it is sent, after
# clearing what the one before left; it never sees the tests' own imports or models.
FRESH_PROCESS = keras.backend.backend() == "tensorflow"
FRESH = textwrap.dedent("""
    import json, os, sys, traceback
    import keras
    import numpy as np
    import kzoo
    for line in sys.stdin:
        spec, error = json.loads(line), None
        keras.backend.clear_session()
        try:
            model = kzoo.load_model(spec["path"])
            x = np.load(spec["x"])
            infer = np.asarray(model(x, training=False))
            np.savez(spec["out"], infer=infer, train=np.asarray(model(x, training=True)))
            del model
        except Exception:
            error = traceback.format_exc()
        with open(spec["reply"] + ".tmp", "w") as f:
            json.dump({"error": error}, f)
        os.replace(spec["reply"] + ".tmp", spec["reply"])
""")


class FreshKzoo:
    """The fresh process: ``outputs(spec)`` sends it a file to load and waits (up to
    ``timeout`` seconds) for its reply file, then reads the inference- and training-mode
    outputs it computed."""

    def __init__(self, preamble, log):
        self.log = log
        self.proc = subprocess.Popen(
            [sys.executable, "-c", preamble + FRESH],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=log,
            text=True,
        )

    def outputs(self, spec, timeout=900):
        reply, deadline = spec["out"] + ".reply.json", time.monotonic() + timeout
        if self.proc.poll() is None:
            self.proc.stdin.write(json.dumps({**spec, "reply": reply}) + "\n")
            self.proc.stdin.flush()
        while self.proc.poll() is None and time.monotonic() < deadline and not os.path.exists(reply):
            time.sleep(0.02)
        if not os.path.exists(reply):
            self.proc.kill()  # it died or hung: what it said is in its log
            self.log.seek(0)
            pytest.fail(f"the fresh process did not answer for {spec['path']}:\n{self.log.read()[-3000:]}")
        with open(reply) as f:
            error = json.load(f)["error"]
        assert error is None, f"the fresh process failed on {spec['path']}:\n{error}"
        return np.load(spec["out"])

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


@pytest.fixture(scope="module")
def fresh_kzoo(python_preamble, tmp_path_factory):
    if not FRESH_PROCESS:
        yield None
        return
    with open(tmp_path_factory.mktemp("fresh") / "stderr.txt", "w+") as log:
        fresh = FreshKzoo(python_preamble, log)
        yield fresh
        fresh.close()


def _draws_at_random(model):
    """Whether the model has dropout or stochastic depth: training-mode calls draw."""
    return any(
        isinstance(layer, (keras.layers.Dropout, kzoo.layers.StochasticDepth)) for layer in model.layers
    )


def _step_with_every_gradient(model, x, y):
    """One training step (TensorFlow, eager) that first checks timm's ``num_params ==
    num_grad``: every trainable weight, FReLU's biases and the weights beside an erased
    activation included, gets a finite gradient, non-zero unless a stochastic-depth or
    dropout draw cut it off in this step. A weight whose training-mode gradient is zero
    must get one in inference mode: batch statistics cancel a per-channel constant (a
    bias right before BN, or an offset whose every path runs linearly into BN), so its
    training-mode gradient is zero by construction. Returns the loss."""
    import tensorflow as tf

    def gradients(training):
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=x, y=y, y_pred=model(x, training=training))
        return loss, tape.gradient(loss, model.trainable_weights)

    loss, grads = gradients(True)
    missing = [w.path for w, g in zip(model.trainable_weights, grads) if g is None]
    assert missing == [], f"no gradient reaches {missing}"
    assert all(np.all(np.isfinite(to_numpy(g))) for g in grads)
    random_cuts = _draws_at_random(model)
    zero = {w.path for w, g in zip(model.trainable_weights, grads) if not np.any(to_numpy(g))}
    if zero and not random_cuts:
        _, inference = gradients(False)
        dead = [
            w.path
            for w, g in zip(model.trainable_weights, inference)
            if w.path in zero and not np.any(to_numpy(g))
        ]
        assert dead == [], f"zero gradient for {dead}, in training and in inference mode"
    model.optimizer.apply_gradients(zip(grads, model.trainable_weights))
    return float(to_numpy(loss))


@pytest.mark.parametrize("case, name, kwargs", CASES)
def test_model_contract(case, name, kwargs, tmp_path, fresh_kzoo):
    keras.utils.set_random_seed(1)
    info = kzoo.model_info(name)
    classes = 5
    model = info.build(input_shape=SHAPE, classes=classes, **kwargs)
    x = np.random.default_rng(0).normal(size=(2,) + SHAPE).astype("float32")
    y = np.array([1, 3])

    # Eager calls: tracing a graph of a thousand layers costs more than one step.
    # Training mode: at initialisation BN's moving statistics (0, 1) do not normalise,
    # and in inference mode ResNet-1001/1202's residual stream overflows even float32.
    probs = to_numpy(model(x, training=True))
    assert probs.shape == (2, classes) and np.all(np.isfinite(probs))
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)

    model.compile(
        # Clipped: at 32x32 an ImageNet net ends at 1x1, where training-mode BN over a batch
        # of 2 has a near-zero variance and the first gradient can reach 1e7 (ResNet-50V2
        # with FReLU on the torch backend, on an AMD EPYC: weights of 5e5, then NaN). The
        # contract is that a step moves the weights and round-trips, not its size.
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9, clipnorm=1.0),
        loss="sparse_categorical_crossentropy",
        # TensorFlow: eager, for the reason above. JAX: compiling the whole step once is
        # cheaper than compiling each of its ops, as JAX does outside jit.
        run_eagerly=keras.backend.backend() == "tensorflow",
    )
    before = [to_numpy(w).copy() for w in model.trainable_weights[:3]]
    if keras.backend.backend() == "tensorflow":
        loss = _step_with_every_gradient(model, x, y)
    else:  # the TensorFlow sweep checks the gradients of every registered model
        loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert any(not np.array_equal(b, to_numpy(w)) for b, w in zip(before, model.trainable_weights[:3]))

    path = tmp_path / f"{case}.keras"
    model.save(path)
    # Same order as the fresh process: a training-mode call moves BN's statistics.
    expected = {"infer": to_numpy(model(x, training=False)), "train": to_numpy(model(x, training=True))}
    assert np.all(np.isfinite(expected["train"]))
    if fresh_kzoo is not None:
        np.save(tmp_path / "x.npy", x)
        spec = {"path": str(path), "x": str(tmp_path / "x.npy"), "out": str(tmp_path / "out.npz")}
        got = fresh_kzoo.outputs(spec)
    else:
        loaded = kzoo.load_model(path)
        got = {"infer": to_numpy(loaded(x, training=False)), "train": to_numpy(loaded(x, training=True))}
    # Dropout and stochastic depth draw from seed-generator state keras does not save:
    # their training-mode outputs differ between processes by design.
    stochastic = _draws_at_random(model)
    for mode in ("infer",) if stochastic else ("infer", "train"):
        np.testing.assert_array_equal(got[mode], expected[mode], err_msg=mode)


@pytest.mark.parametrize("case, name, kwargs", CASES)
def test_mixed_precision_rules(case, name, kwargs):
    keras.config.set_dtype_policy("mixed_float16")
    model = kzoo.model_info(name).build(input_shape=SHAPE, **kwargs)
    # (Normalization's sample count, in keras.applications' EfficientNet, is an int64.)
    assert all(w.dtype == "float32" for w in model.weights if "int" not in w.dtype)
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
    assert np.all(np.isfinite(to_numpy(out)))


def test_mixed_bfloat16_trains_frelu():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = kzoo.ResNet20(activation="frelu", input_shape=(16, 16, 3))
    assert model.get_layer("stem_frelu").bias.dtype == "float32"
    assert model.output.dtype == "float32"
    model.compile("sgd", "sparse_categorical_crossentropy")
    loss = model.train_on_batch(np.ones((2, 16, 16, 3), "float32"), np.array([0, 1]))
    assert np.isfinite(loss)


def test_features_taps_and_stats_on_this_backend(tmp_path):
    """kzoo.features, kzoo.taps and kzoo.activation_stats use Keras only: on this backend a
    features model gives the stage outputs, trains a step and round-trips with its
    feature_info (tests/test_features.py covers them in depth under TensorFlow)."""
    keras.utils.set_random_seed(0)
    model = kzoo.ResNet20(input_shape=(16, 16, 3), activation="frelu")
    feats = kzoo.features(model, out_indices=[0, -1])
    assert [f.layer for f in feats.feature_info] == ["stage1_block3_last_frelu", "stage3_block3_last_frelu"]
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    stage = keras.Model(model.input, model.get_layer("stage3_block3_last_frelu").output)
    np.testing.assert_allclose(to_numpy(feats(x)[1]), to_numpy(stage(x)), atol=1e-6)
    path = str(tmp_path / "features.keras")
    feats.save(path)
    loaded = kzoo.load_model(path)
    assert loaded.feature_info == feats.feature_info
    loaded.compile(optimizer="sgd", loss=["mse", "mse"])
    assert np.all(
        np.isfinite(loaded.train_on_batch(x, [np.zeros((2, *o.shape[1:])) for o in loaded.outputs]))
    )
    tapped = kzoo.taps(model, [(1, "last")], where="both")(x)
    relu_in, relu_out = (
        to_numpy(tapped[f"module1/last/stage1_block1_last_frelu/{p}"]) for p in ("input", "output")
    )
    np.testing.assert_allclose(relu_out, np.maximum(relu_in, 0) - 1.0, atol=1e-6)  # FReLU's bias starts at -1
    rows = kzoo.activation_stats(model, x, verbose=0).rows
    assert len(rows) == 19 and rows[0]["frelu_bias"] == -1.0 and 0 < rows[0]["zero_fraction"] < 1


# The backbone sweep builds each model three times: one per family in the default run
# (the code a family's depths share), every other registered model with ``make test-slow``.
FAMILY_FIRST = sorted(name for _, name in smallest_of_each_family(exclude=SLOW).values())
BACKBONE_CASES = [
    pytest.param(n, marks=[] if n in FAMILY_FIRST else [pytest.mark.slow])
    for n in (kzoo.list_models() if keras.backend.backend() == "tensorflow" else FAMILY_FIRST)
]


@pytest.mark.parametrize("name", BACKBONE_CASES)
def test_backbone_poolings_and_compiled_predict(name):
    """``include_top=False`` at a non-default input size gives the feature map (pooling
    None) or its average / maximum over space (the same channels); a model that needs a
    fixed size says so. The whole model's compiled ``predict`` gives its eager outputs."""
    info = kzoo.model_info(name)
    channels = info.input_shape[-1]
    size = (40, 40, channels)  # no registered model's default; above every minimum
    x = np.random.default_rng(0).normal(size=(2, *size)).astype("float32")
    outputs = {}
    for pooling in (None, "avg", "max"):
        keras.utils.set_random_seed(0)
        try:
            backbone = info.build(include_top=False, pooling=pooling, input_shape=size)
        except ValueError as err:  # an MLP flattens: its size is fixed and pooling refused
            assert "input" in str(err) or "pooling" in str(err), err
            continue
        outputs[pooling] = to_numpy(backbone(x, training=False))
    if outputs:
        assert None in outputs, f"{name}: a backbone without pooling must build"
        feature_map = outputs[None]
        assert feature_map.ndim == 4 and feature_map.shape[0] == 2
        for pooling, reduce in (("avg", np.mean), ("max", np.max)):
            if pooling in outputs:
                assert outputs[pooling].shape == (2, feature_map.shape[-1])
                np.testing.assert_allclose(
                    outputs[pooling], reduce(feature_map, axis=(1, 2)), rtol=1e-4, atol=1e-5
                )
    keras.utils.set_random_seed(0)
    model = info.build(input_shape=SHAPE if channels == 3 else info.input_shape, classes=5)
    x = np.random.default_rng(1).normal(size=(2, *model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(
        model.predict(x, verbose=0), to_numpy(model(x, training=False)), rtol=1e-4, atol=1e-6
    )
