"""Seeing inside a model (issue 37): ``kzoo.features`` (stage outputs with
``feature_info``, timm's ``features_only``), ``kzoo.taps`` (tensors at module slots) and
``kzoo.activation_stats`` (what each activation does on images). The oracles: the models'
own layers (shapes, values), keras.applications' ResNet50 stages as detection code uses
them, and numbers computed by hand on tiny nets."""

import csv
import io
import json
import subprocess
import sys

import keras
import numpy as np
import pytest
from test_model_harness import SLOW

import kzoo
from kzoo import atomic
from kzoo.layers import FReLU

A = keras.applications
to_numpy = keras.ops.convert_to_numpy
SHAPE = (32, 32, 3)
RESNET50_STAGES = [
    "conv1_relu",
    "conv2_block3_out",
    "conv3_block4_out",
    "conv4_block6_out",
    "conv5_block3_out",
]
# kzoo's layer names pin what a stage is on each kind of network
STAGE_NAMES = {
    "resnet20": ["stage1_block3_last_relu", "stage2_block3_last_relu", "stage3_block3_last_relu"],
    "preact_resnet62": ["stage1_block10_add", "stage2_block10_add", "post_relu"],
    "resnet50": RESNET50_STAGES,
    "inception_v2_cifar": ["stage1_block10_concat", "stage2_block10_concat", "stage3_block10_concat"],
    # merge-and-run's two lines meet only at the end: each line's last tensor per stage
    "dfn_mr1": [
        "stage1_block9_line1_last_relu",
        "stage1_block9_line2_last_relu",
        "stage2_block9_line1_last_relu",
        "stage2_block9_line2_last_relu",
        "lines_add",
    ],
}
NO_FEATURE_MAPS = {"mlp12"}  # fully connected: refused, naming kzoo.taps
# airbench_net whitens with an unpadded 2x2 convolution (32 -> 31), then pools: 15, 7, 3.
UNPADDED = {"airbench_net"}


def _images(n=4, shape=SHAPE, seed=0):
    return np.random.default_rng(seed).normal(size=(n, *shape)).astype("float32")


def _layer_output(model, name):
    """The output of layer ``name`` (``outer/inner`` for a nested model's) computed by the model itself."""
    if "/" in name:
        outer, inner = name.split("/", 1)
        nested = model.get_layer(outer)
        return keras.Model(nested.input, nested.get_layer(inner).output)
    return keras.Model(model.input, model.get_layer(name).output)


# ----------------------------------------------------------------------- features: every registered model


@pytest.mark.parametrize(
    "name", [pytest.param(n, marks=[pytest.mark.slow] if n in SLOW else []) for n in kzoo.list_models()]
)
def test_features_of_every_registered_model_match_its_layers(name):
    """Every model's stages: its layers' own outputs, from the largest map to the
    smallest, each computed size a stage."""
    info = kzoo.model_info(name)
    shape = info.input_shape if name in NO_FEATURE_MAPS else SHAPE
    model = info.build(input_shape=shape, classes=5)
    if name in NO_FEATURE_MAPS:
        with pytest.raises(ValueError, match="no feature map.*kzoo.taps"):
            kzoo.features(model)
        return
    feats = kzoo.features(model)
    fi = feats.feature_info
    assert len(feats.outputs) == len(fi) >= 2
    assert [f.index for f in fi] == list(range(len(fi)))
    conv_sizes = set()
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            conv_sizes.add(tuple(layer.output.shape[1:3]))
    for f, out in zip(fi, feats.outputs):
        layer = model.get_layer(f.layer)  # a layer of the model, whose output it is
        assert tuple(out.shape) == tuple(layer.output.shape)
        assert f.channels == out.shape[-1] and f.shape == tuple(out.shape[1:3])
        if name in UNPADDED:  # its maps are not a divisor of the input: the ratio, rounded
            assert f.reduction == round(SHAPE[0] / f.shape[0], 4)
        else:
            assert f.reduction == SHAPE[0] // f.shape[0] and SHAPE[0] % f.shape[0] == 0
    reductions = [f.reduction for f in fi]
    assert reductions == sorted(reductions)
    # every size the convolutions compute at is a stage, and the deepest map is the last one
    assert conv_sizes <= {f.shape for f in fi}
    assert fi[-1].shape == min(conv_sizes | {f.shape for f in fi})
    if name in STAGE_NAMES:
        assert [f.layer for f in fi] == STAGE_NAMES[name]


def test_features_of_keras_resnet50_are_its_stage_outputs_with_their_values():
    base = A.ResNet50(weights=None, input_shape=(64, 64, 3), include_top=False)
    feats = kzoo.features(base)
    assert [f.layer for f in feats.feature_info] == RESNET50_STAGES
    assert [f.reduction for f in feats.feature_info] == [2, 4, 8, 16, 32]
    assert [f.channels for f in feats.feature_info] == [64, 256, 512, 1024, 2048]
    x = _images(2, (64, 64, 3))
    for f, got in zip(feats.feature_info, feats(x)):
        np.testing.assert_array_equal(to_numpy(got), to_numpy(_layer_output(base, f.layer)(x)))
    # the layers are the model's own: nothing copied
    assert feats.get_layer("conv1_conv") is base.get_layer("conv1_conv")


@pytest.mark.parametrize(
    "options, stages",
    [
        # modules 3, 7, 13 and 15 lose their last ReLU: a stage ending in one ends at its addition
        (
            {"erase": "last", "proportion": 0.5},
            ["conv1_relu", "conv2_block3_add", "conv3_block4_add", "conv4_block6_add", "conv5_block3_out"],
        ),
        ({"activation": "frelu"}, ["conv1_frelu", *RESNET50_STAGES[1:]]),
    ],
    ids=repr,
)
def test_features_of_a_placed_keras_application(options, stages):
    placed = kzoo.place(A.ResNet50(weights=None, input_shape=(64, 64, 3), classes=3), **options)
    feats = kzoo.features(placed)
    assert [f.layer for f in feats.feature_info] == stages
    x = _images(1, (64, 64, 3))
    np.testing.assert_array_equal(to_numpy(feats(x)[1]), to_numpy(_layer_output(placed, stages[1])(x)))


@pytest.mark.parametrize("sequential", [False, True])
def test_features_of_a_backbone_nested_in_a_model(sequential):
    base = A.MobileNetV2(weights=None, input_shape=(64, 64, 3), include_top=False, alpha=0.35)
    if sequential:
        model = keras.Sequential(
            [keras.Input((64, 64, 3)), base, keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(4)]
        )
    else:
        inputs = keras.Input((64, 64, 3))
        x = keras.layers.GlobalAveragePooling2D()(base(inputs))
        model = keras.Model(inputs, keras.layers.Dense(4)(x))
    feats = kzoo.features(model, out_indices=[1, -1])
    prefix = base.name + "/"
    # the stages keras' own segmentation tutorial taps (pix2pix's MobileNetV2 encoder)
    assert [f.layer for f in feats.feature_info] == [prefix + "block_3_expand_relu", prefix + "out_relu"]
    assert [f.index for f in feats.feature_info] == [1, 4]
    x = _images(2, (64, 64, 3))
    for f, got in zip(feats.feature_info, feats(x)):
        np.testing.assert_allclose(to_numpy(got), to_numpy(_layer_output(model, f.layer)(x)), atol=1e-6)


def test_out_indices_pick_stages_in_the_order_given():
    model = kzoo.ResNet20(input_shape=SHAPE)
    feats = kzoo.features(model, out_indices=(2, 0))
    assert [f.index for f in feats.feature_info] == [2, 0]
    assert [tuple(o.shape[1:]) for o in feats.outputs] == [(8, 8, 64), (32, 32, 16)]
    assert [f.index for f in kzoo.features(model, out_indices=range(-2, 0)).feature_info] == [1, 2]


def test_a_features_model_saves_loads_and_trains(tmp_path):
    keras.utils.set_random_seed(0)
    model = kzoo.ResNet20(input_shape=(16, 16, 3), activation="frelu")
    feats = kzoo.features(model, out_indices=[0, 2])
    x = _images(2, (16, 16, 3))
    path = str(tmp_path / "features.keras")
    feats.save(path)
    loaded = kzoo.load_model(path)
    assert isinstance(loaded, kzoo.transform.FeatureModel)
    assert loaded.feature_info == feats.feature_info
    for a, b in zip(feats(x), loaded(x)):
        np.testing.assert_array_equal(to_numpy(a), to_numpy(b))
    # a step on the features: the backbone's weights move (the model's own, shared)
    loaded.compile(optimizer=keras.optimizers.SGD(0.1), loss=["mse", "mse"])
    targets = [np.ones((2, *o.shape[1:]), "float32") for o in loaded.outputs]
    stem = loaded.get_layer("stem_conv").kernel
    before = to_numpy(stem).copy()
    loss = loaded.train_on_batch(x, targets)
    assert np.all(np.isfinite(loss)) and not np.array_equal(before, to_numpy(stem))


@pytest.mark.parametrize(
    "out_indices, error, words",
    [
        (3, TypeError, "`out_indices` must be a list"),
        ("0", TypeError, "`out_indices` must be a list"),
        ([], ValueError, "at least one stage"),
        ([0, 3], ValueError, r"`out_indices\[1\]`=3 is out of range: 'resnet20' has 3 stages"),
        ([-4], ValueError, r"`out_indices\[0\]`=-4 is out of range"),
        ([1.0], TypeError, r"`out_indices\[0\]` must be an integer"),
        ([True], TypeError, r"`out_indices\[0\]` must be an integer"),
        ([0, -3], ValueError, "names a stage more than once"),
    ],
)
def test_bad_out_indices_are_refused_naming_them(out_indices, error, words):
    with pytest.raises(error, match=words):
        kzoo.features(kzoo.ResNet20(input_shape=SHAPE), out_indices=out_indices)


def test_features_refuse_what_has_no_image_input_of_known_size():
    with pytest.raises(ValueError, match="known size"):
        kzoo.features(A.MobileNetV2(weights=None, include_top=False, input_shape=(None, None, 3)))
    a, b = keras.Input((8, 8, 3)), keras.Input((8, 8, 3))
    two = keras.Model([a, b], keras.layers.Conv2D(2, 3)(keras.layers.Add()([a, b])))
    with pytest.raises(ValueError, match="one image input; 'functional.*' has 2"):
        kzoo.features(two)
    with pytest.raises(TypeError, match="`model` must be a keras.Model"):
        kzoo.features("resnet20")


# ----------------------------------------------------------------------- taps


def test_taps_give_a_slots_input_and_output_by_module_and_slot():
    model = kzoo.ResNet20(input_shape=SHAPE)
    tapped = kzoo.taps(model, [(2, "last"), (2, "middle"), "stem_relu"], where="both")
    x = _images(2)
    got = tapped(x)
    assert sorted(got) == sorted(
        [
            "module2/last/stage1_block2_last_relu/input",
            "module2/last/stage1_block2_last_relu/output",
            "module2/middle/stage1_block2_first_relu/input",
            "module2/middle/stage1_block2_first_relu/output",
            "stem_relu/input",
            "stem_relu/output",
        ]
    )
    add = to_numpy(_layer_output(model, "stage1_block2_add")(x))
    np.testing.assert_array_equal(to_numpy(got["module2/last/stage1_block2_last_relu/input"]), add)
    np.testing.assert_array_equal(
        to_numpy(got["module2/last/stage1_block2_last_relu/output"]), np.maximum(add, 0)
    )
    # an Inception module's "last" is each branch's last activation: one tap each
    inception = kzoo.CifarInceptionV2(modules_per_stage=1, input_shape=SHAPE)
    assert len(kzoo.taps(inception, [(1, "last")]).output) == 4


def test_taps_inside_a_nested_backbone():
    base = A.ResNet50(weights=None, input_shape=(32, 32, 3), include_top=False)
    inputs = keras.Input((32, 32, 3))
    model = keras.Model(inputs, keras.layers.GlobalAveragePooling2D()(base(inputs)))
    tapped = kzoo.taps(model, (1, "last"))
    x = _images(2)
    ((key, value),) = tapped(x).items()
    assert key == "module1/last/resnet50/conv2_block1_out/output"
    np.testing.assert_array_equal(
        to_numpy(value), to_numpy(_layer_output(model, "resnet50/conv2_block1_out")(x))
    )


def _fused_net():
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(2, 1, activation="relu", name="conv")(inputs)
    return keras.Model(inputs, keras.layers.Dense(2, name="head")(keras.layers.Flatten()(x)), name="fused")


def test_any_layer_is_tapped_by_name_its_input_too():
    model = _fused_net()
    x = _images(2, (4, 4, 1))
    got = kzoo.taps(model, ["head"], where="both")(x)  # a linear Dense: its input is in the graph
    flattened = to_numpy(keras.Model(model.input, model.layers[-2].output)(x))
    np.testing.assert_array_equal(to_numpy(got["head/input"]), flattened)
    np.testing.assert_allclose(to_numpy(got["head/output"]), to_numpy(model(x)), atol=1e-6)


@pytest.mark.parametrize(
    "sites, where, error, words",
    [
        ([(1, "last")], "input", ValueError, "conv applies its relu inside the layer.*where='output'"),
        ([(1, "last")], "inside", ValueError, "`where` must be one of 'output', 'input', 'both'"),
        (
            [(2, "last")],
            "output",
            ValueError,
            r"`sites\[0\]\[0\] \(a 1-based module index\)` must be an integer in \[1, 1\]",
        ),
        (
            [(1, "middle")],
            "output",
            ValueError,
            r"module 1 of 'fused' has no slot 'middle'; it has 'last', 'first'",
        ),
        ([(1, 2)], "output", TypeError, "must be a slot name"),
        (["nope"], "output", ValueError, "'nope' is not a layer of 'fused'"),
        ([], "output", TypeError, "non-empty list"),
        ([3.0], "output", TypeError, r"`sites\[0\]` must be a \(module, slot\) pair or a layer name"),
    ],
)
def test_bad_taps_are_refused_naming_the_site(sites, where, error, words):
    with pytest.raises(error, match=words):
        kzoo.taps(_fused_net(), sites, where=where)


# ----------------------------------------------------------------------- activation_stats


def _tiny_chain(activation):
    """x -> 1x1 conv with kernel [1, -1] (channel 0 is x, channel 1 is -x) -> activation."""
    inputs = keras.Input((3, 3, 1))
    conv = keras.layers.Conv2D(2, 1, use_bias=False, name="conv")
    x = activation(conv(inputs))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)), name="tiny")
    conv.set_weights([np.array([1.0, -1.0], "float32").reshape(1, 1, 1, 2)])
    return model


def test_zero_fraction_dead_units_and_moments_by_hand():
    # 5 images of 9 values: 7 negatives, 2 zeros and 36 positives in channel 0 (x); channel 1
    # is -x. Batches of 2 (the last of 1) are combined into the numbers of the whole sample.
    x = np.abs(np.random.default_rng(1).normal(size=(5, 3, 3, 1))).astype("float32") + 0.1
    x.flat[[0, 4, 9, 13, 20, 30, 44]] *= -1
    x.flat[[7, 25]] = 0.0
    stats = kzoo.activation_stats(_tiny_chain(keras.layers.ReLU(name="relu")), x, batch_size=2, verbose=0)
    (row,) = stats.rows
    assert (row["module"], row["slot"], row["layer"], row["kind"]) == (1, "last", "relu", "relu")
    values = np.concatenate([x.ravel(), -x.ravel()])
    assert row["zero_fraction"] == pytest.approx(np.mean(values <= 0))  # (9 + 38) / 90
    assert row["zero_fraction"] == pytest.approx(47 / 90)
    assert row["dead_fraction"] == 0.0 and row["channels"] == 2
    assert row["in_mean"] == pytest.approx(values.mean(), abs=1e-6)
    assert row["in_std"] == pytest.approx(values.std(), rel=1e-5)
    assert row["out_mean"] == pytest.approx(np.maximum(values, 0).mean(), rel=1e-5)
    assert row["out_std"] == pytest.approx(np.maximum(values, 0).std(), rel=1e-5)
    # all positive: channel 1 (-x) never fires
    positive = np.abs(x) + 1
    (row,) = kzoo.activation_stats(_tiny_chain(keras.layers.ReLU()), positive, verbose=0).rows
    assert row["dead_fraction"] == 0.5 and row["zero_fraction"] == 0.5


def test_a_fused_relu_is_read_at_its_output_and_its_input_is_missing():
    x = _images(3, (4, 4, 1))
    model = _fused_net()
    (row,) = kzoo.activation_stats(model, x, verbose=0).rows
    assert row["fused"] and np.isnan(row["in_mean"]) and np.isnan(row["in_std"])
    out = to_numpy(_layer_output(model, "conv")(x))
    assert row["zero_fraction"] == pytest.approx(np.mean(out == 0))
    assert row["out_mean"] == pytest.approx(out.mean(), abs=1e-6)


@pytest.mark.parametrize("per_channel", [False, True])
def test_frelu_bias_is_read_back_and_its_zero_fraction_is_of_its_inputs(per_channel):
    model = _tiny_chain(FReLU(per_channel=per_channel, name="frelu"))
    bias = np.array([0.25, -0.5], "float32") if per_channel else np.float32(0.25)
    model.get_layer("frelu").set_weights([bias])
    x = _images(4, (3, 3, 1))
    (row,) = kzoo.activation_stats(model, x, verbose=0).rows
    assert row["kind"] == "frelu"
    assert row["frelu_bias"] == (pytest.approx([0.25, -0.5]) if per_channel else 0.25)
    values = np.concatenate([x.ravel(), -x.ravel()])
    assert row["zero_fraction"] == pytest.approx(np.mean(values <= 0))


def _tiny_residual():
    inputs = keras.Input((4, 4, 2))
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.ReLU(name="first_relu")(x)
    x = keras.layers.Conv2D(2, 3, padding="same", name="conv2")(x)
    x = keras.layers.Add(name="add")([inputs, x])
    x = keras.layers.ReLU(name="last_relu")(x)
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling2D()(x)), name="res")


def test_an_erased_relu_reports_what_it_would_have_zeroed():
    keras.utils.set_random_seed(3)
    base = _tiny_residual()
    placed = kzoo.place(base, erase="last")
    x = _images(6, (4, 4, 2))
    stats = kzoo.activation_stats(placed, x, original=base, batch_size=4, verbose=0)
    by_slot = {r["slot"]: r for r in stats.rows}
    assert set(by_slot) == {"first", "last"}
    last = by_slot["last"]
    assert last["erased"] and last["layer"] == "last_relu" and "add" in last["note"]
    add = to_numpy(_layer_output(base, "add")(x))
    assert last["zero_fraction"] == pytest.approx(np.mean(add <= 0))
    assert np.isnan(last["out_mean"]) and last["in_mean"] == pytest.approx(add.mean(), abs=1e-6)
    assert not by_slot["first"]["erased"]
    # without the original the erased ReLU leaves no trace, and has no row
    assert [r["layer"] for r in kzoo.activation_stats(placed, x, verbose=0).rows] == ["first_relu"]


def test_an_erased_fused_relu_is_measured_at_its_now_linear_layer():
    # VGG-like: conv1 and conv2 each with a fused ReLU; erasing module 1 makes conv1 linear,
    # and conv2 (which takes it) is still module 2, not module 1's ReLU
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv1")(inputs)
    x = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv2")(x)
    base = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)), name="vgg")
    placed = kzoo.place(base, erase="last", proportion=[1])
    x = _images(4, (6, 6, 2))
    rows = kzoo.activation_stats(placed, x, original=base, verbose=0).rows
    assert [(r["module"], r["layer"], r["erased"]) for r in rows] == [(1, "conv1", True), (2, "conv2", False)]
    linear = to_numpy(_layer_output(placed, "conv1")(x))
    assert rows[0]["zero_fraction"] == pytest.approx(np.mean(linear <= 0))
    assert (linear < 0).any()
    conv2 = to_numpy(_layer_output(placed, "conv2")(x))
    assert rows[1]["zero_fraction"] == pytest.approx(np.mean(conv2 == 0))


def test_a_builders_erased_blocks_are_found_against_the_builder_without_erasure():
    x = _images(4)
    erased = kzoo.ResNet20(input_shape=SHAPE, erase="last", proportion=0.5)
    stats = kzoo.activation_stats(erased, x, original=kzoo.ResNet20(input_shape=SHAPE), verbose=0)
    marked = [(r["module"], r["slot"]) for r in stats.rows if r["erased"]]
    assert marked == [(m, "last") for m in (1, 3, 5, 7, 9)]
    assert all(0 < r["zero_fraction"] < 1 for r in stats.rows)


def test_the_table_as_csv_json_text_and_plot(tmp_path):
    stats = kzoo.activation_stats(kzoo.ResNet20(input_shape=SHAPE, activation="frelu"), _images(3), verbose=0)
    rows = list(csv.DictReader(io.StringIO(stats.to_csv())))
    assert len(rows) == len(stats.rows) == 19 and rows[-1]["slot"] == "outside"
    assert float(rows[0]["frelu_bias"]) == -1.0
    data = json.loads(stats.to_json())
    assert data["images"] == 3 and data["rows"][0]["module"] == 1
    assert "stage1_block1_first_frelu" in str(stats)
    # a temporary a killed plot left (its process is gone) goes at the next write there
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (tmp_path / f"{atomic.PREFIX}{atomic.host()}-{gone.pid}-abcd1234.png").write_bytes(b"")
    path = stats.plot(str(tmp_path / "stats.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["stats.png"]
    with pytest.raises(ValueError, match="`path`=.* is a directory"):
        stats.plot(str(tmp_path))
    with pytest.raises(ValueError, match="`path's folder`=.* is a file"):
        stats.plot(str(tmp_path / "stats.png" / "x.png"))
    with pytest.raises(TypeError, match="`path` must be a path"):
        stats.plot(3)


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"images": "images"}, TypeError, "`images` must be an array of images"),
        (
            {"images": np.zeros((2, 8, 8, 3))},
            ValueError,
            r"`images` must have the shape the model takes, \(N, 32, 32, 3\)",
        ),
        ({"images": np.zeros((0, 32, 32, 3))}, ValueError, "`images` holds no image"),
        ({"images": np.array([["a"]])}, TypeError, "`images` must be numbers"),
        ({"batch_size": 0}, ValueError, "`batch_size` must be an integer at least 1"),
        ({"batch_size": True}, TypeError, "`batch_size` must be an integer"),
        ({"original": "resnet20"}, TypeError, "`original` must be a keras.Model"),
        ({"verbose": 3}, ValueError, "`verbose` must be"),
    ],
)
def test_bad_stats_arguments_are_refused_naming_them(kwargs, error, words):
    kwargs = {"images": np.zeros((2, *SHAPE), "float32"), **kwargs}
    with pytest.raises(error, match=words):
        kzoo.activation_stats(kzoo.ResNet20(input_shape=SHAPE), **kwargs)
