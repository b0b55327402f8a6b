"""kzoo.place and kzoo.modules on any Keras model: the oracles are kzoo's own builders
(placing a model equals building it with the same options, layer for layer and output for
output once both hold the same weights), keras.applications models left unchanged by an
empty placement, and their module reports, pinned."""

import keras
import numpy as np
import pytest

import kzoo
from kzoo.placement import uniform_selection

A = keras.applications
to_numpy = keras.ops.convert_to_numpy


def assert_same_model(placed, built, shape):
    """Same layers (names and kinds, the input aside), then, with ``built`` given
    ``placed``'s weights, the same outputs."""
    names = sorted(layer.name for layer in placed.layers[1:])
    assert names == sorted(layer.name for layer in built.layers[1:])
    for p in placed.layers[1:]:
        b = built.get_layer(p.name)
        assert type(p).__name__ == type(b).__name__ or isinstance(p, keras.layers.BatchNormalization), p.name
        b.set_weights(p.get_weights())
    x = np.random.default_rng(0).normal(size=(2, *shape)).astype("float32")
    # In training mode keras' BatchNormalization and kzoo's fused one (keras.applications
    # against kzoo's ImageNet ResNets) agree to float32 rounding of the batch statistics;
    # dropout draws differently in each model.
    fused = any(type(p).__module__ != type(built.get_layer(p.name)).__module__ for p in placed.layers[1:])
    random = any(isinstance(layer, keras.layers.Dropout) for layer in placed.layers)
    modes = ((False, 1e-6),) if random else ((False, 1e-6), (True, 1e-3 if fused else 1e-6))
    for training, tolerance in modes:
        np.testing.assert_allclose(
            to_numpy(placed(x, training=training)),
            to_numpy(built(x, training=training)),
            rtol=tolerance,
            atol=tolerance,
            err_msg=f"training={training}",
        )


# ----------------------------------------------------------------- keras.applications.ResNet50 = kzoo.ResNet50

RESNET50_SHAPE = (64, 64, 3)


@pytest.fixture(scope="module")
def keras_resnet50():
    return A.ResNet50(weights=None, input_shape=RESNET50_SHAPE, classes=7)


@pytest.mark.parametrize(
    "options",
    [
        {"erase": "last", "proportion": 0.25},
        {"erase": "last", "proportion": 0.5},
        {"erase": "last", "proportion": 0.75},
        {"erase": "last"},
        {"erase": "last", "proportion": [1, 5, 16]},
        {"erase": "middle"},
        {"erase": "first", "proportion": 0.5},
        {"activation": "frelu"},
        {"activation": "frelu", "erase": "last", "proportion": 0.5},
        {"activation": {"default": "relu", "last": "prelu"}},
    ],
    ids=repr,
)
def test_placing_keras_resnet50_is_kzoos_resnet50(keras_resnet50, options):
    placed = kzoo.place(keras_resnet50, **options)
    built = kzoo.ResNet50(input_shape=RESNET50_SHAPE, classes=7, **options)
    assert_same_model(placed, built, RESNET50_SHAPE)


# ----------------------------------------------------------------- every kzoo family = its builder

# The smallest model of each family, and options each supports (pre-activation nets have
# no activation after their addition: "last" is their builder's conversion, refused below).
FAMILY_CASES = [
    ("resnet20", {"erase": "last", "proportion": 0.5}),
    ("resnet56", {"erase": "last", "proportion": 0.5}),
    ("resnet56", {"erase": "middle"}),
    ("resnet56", {"activation": "frelu"}),
    ("resnet56", {"erase": "last", "activation": {"default": "relu", "last": "prelu"}}),
    ("preact_resnet62", {"erase": "first", "proportion": 0.5}),
    ("preact_bottleneck56", {"erase": "third", "activation": "frelu"}),
    ("preact_bottleneck56", {"erase": "middle"}),
    ("wrn16_8", {"erase": "first", "proportion": [1, 6]}),
    ("resnext29_8x64d", {"erase": "last", "proportion": 0.5}),
    ("resnext50_32x4d", {"erase": "middle", "activation": "frelu"}),
    ("resnet50v2", {"erase": "first", "proportion": 0.5}),
    ("dfn_mr1", {"erase": "last", "proportion": 0.5}),
    ("dfn_mr1", {"cross_type": "mix1"}),
    ("inception_v2_cifar", {"erase": "last", "proportion": 0.5}),
    ("inception_v2_cifar", {"erase": "middle", "proportion": 1.0}),
    ("inception_v2_cifar", {"erase": "first", "proportion": [2, 30]}),
    ("residual_style31", {"erase": "last", "proportion": 0.25}),
    ("smallnet_bn", {"erase": "last", "proportion": 0.5}),
    ("mlp12", {"erase": "last", "proportion": 0.5, "activation": "frelu"}),
    ("plain38", {"ensemble": True}),
]
SHAPES = {"mlp12": (28, 28, 1), "resnext50_32x4d": (32, 32, 3), "resnet50v2": (32, 32, 3)}


def _as_placement(options):
    """The builder's options as kzoo.place takes them (cross types are presets of erase)."""
    from kzoo.models.merge_run import CROSS_TYPES

    options = dict(options)
    if "cross_type" in options:
        options["erase"] = CROSS_TYPES[options.pop("cross_type")]
    return options


@pytest.mark.parametrize("name, options", FAMILY_CASES, ids=lambda v: v if isinstance(v, str) else repr(v))
def test_placing_a_kzoo_model_is_building_it_with_the_options(name, options):
    shape = SHAPES.get(name, (16, 16, 3))
    base = kzoo.create_model(name, input_shape=shape, classes=5)
    placed = kzoo.place(base, **_as_placement(options))
    built = kzoo.create_model(name, input_shape=shape, classes=5, **options)
    assert_same_model(placed, built, shape)


@pytest.mark.parametrize("name", ["vgg_style31", "plain38"])
@pytest.mark.parametrize("proportion", [0.5, 0.25])
def test_a_plain_chain_counts_its_stem_as_module_one(name, proportion):
    """Without merges every activation is a module: kzoo's plain nets keep their stem out
    of their count, so the builder's module k is the placed model's module k + 1."""
    base = kzoo.create_model(name, input_shape=(16, 16, 3), classes=5)
    report = kzoo.modules(base)
    assert report.plain and report.modules[0].slots["last"][0].layer == "stem_relu"
    n = len(report.modules) - 1
    indices = [i + 1 for i in uniform_selection(n, proportion)]
    placed = kzoo.place(base, erase="last", proportion=indices)
    built = kzoo.create_model(name, input_shape=(16, 16, 3), classes=5, erase="last", proportion=proportion)
    assert_same_model(placed, built, (16, 16, 3))


def test_a_pre_activation_net_has_no_last_slot_and_says_what_it_has():
    base = kzoo.ResNet164(input_shape=(16, 16, 3), classes=5)
    with pytest.raises(ValueError) as err:
        kzoo.place(base, erase="last")
    text = str(err.value)
    assert "'first', 'second', 'third', 'middle'" in text
    assert "No activation follows its merges" in text and "kzoo.ResNet50V2(erase='last')" in text


# ----------------------------------------------------------------- keras.applications: unchanged, reports pinned

# name: (builder kwargs, modules, activations in modules, outside, module 1's slots,
# an option and the layers module 1 loses by it)
APPLICATIONS = {
    "VGG16": ({"input_shape": (32, 32, 3), "classes": 10}, 15, 15, 0, ("last",), True),
    "ResNet50": (
        {"include_top": False, "input_shape": (32, 32, 3)},
        16,
        48,
        1,
        ("first", "second", "last"),
        False,
    ),
    "ResNet50V2": (
        {"include_top": False, "input_shape": (32, 32, 3)},
        16,
        48,
        1,
        ("first", "second", "third"),
        False,
    ),
    "MobileNetV2": (
        {"include_top": False, "alpha": 0.35, "input_shape": (32, 32, 3)},
        10,
        20,
        15,
        ("first", "second"),
        False,
    ),
    "DenseNet121": (
        {"include_top": False, "input_shape": (32, 32, 3)},
        58,
        116,
        5,
        ("first", "second"),
        False,
    ),
    "EfficientNetB0": (
        {"include_top": False, "input_shape": (32, 32, 3)},
        9,
        27,
        22,
        ("first", "second", "third"),
        False,
    ),
    "ConvNeXtTiny": ({"include_top": False, "input_shape": (32, 32, 3)}, 18, 18, 0, ("first",), False),
}
FIRST_LAYERS = {
    "VGG16": {"last": ["block1_conv1"]},
    "ResNet50": {
        "first": ["conv2_block1_1_relu"],
        "second": ["conv2_block1_2_relu"],
        "last": ["conv2_block1_out"],
    },
    "ResNet50V2": {
        "first": ["conv2_block1_preact_relu"],
        "second": ["conv2_block1_1_relu"],
        "third": ["conv2_block1_2_relu"],
    },
    "MobileNetV2": {"first": ["block_2_expand_relu"], "second": ["block_2_depthwise_relu"]},
    "DenseNet121": {"first": ["conv2_block1_0_relu"], "second": ["conv2_block1_1_relu"]},
    "EfficientNetB0": {
        "first": ["block2b_expand_activation"],
        "second": ["block2b_activation"],
        "third": ["block2b_se_reduce"],
    },
    "ConvNeXtTiny": {"first": ["convnext_tiny_stage_0_block_0_gelu"]},
}


def _application(name):
    kwargs, *_ = APPLICATIONS[name]
    return getattr(A, name)(weights=None, **kwargs)


@pytest.mark.parametrize("name", list(APPLICATIONS))
def test_an_empty_placement_leaves_a_keras_application_as_it_was(name):
    model = _application(name)
    _, modules, in_modules, outside, slots, plain = APPLICATIONS[name]
    report = kzoo.modules(model)
    assert (len(report.modules), sum(len(m.sites()) for m in report.modules), len(report.outside)) == (
        modules,
        in_modules,
        outside,
    )
    assert report.plain is plain
    first = report.modules[0]
    assert tuple(first.slots) == slots
    assert {k: [s.layer for s in v] for k, v in first.slots.items()} == FIRST_LAYERS[name]
    placed = kzoo.place(model)
    assert placed is not model and placed.name == model.name
    assert [layer.name for layer in placed.layers] == [layer.name for layer in model.layers]
    x = np.random.default_rng(1).uniform(0, 255, size=(2, *model.input_shape[1:])).astype("float32")
    np.testing.assert_allclose(to_numpy(placed(x)), to_numpy(model(x)), rtol=1e-6, atol=1e-6)


def test_the_placed_model_holds_the_weights_and_trains_apart_from_the_original():
    model = _application("MobileNetV2")
    placed = kzoo.place(model, erase="second", proportion=0.5)
    kept = {layer.name: layer for layer in placed.layers}
    for layer in model.layers:
        if layer.name in kept:
            for a, b in zip(layer.get_weights(), kept[layer.name].get_weights()):
                np.testing.assert_array_equal(a, b)
    gone = [f"block_{b}_depthwise_relu" for b in (2, 5, 8, 11, 14)]
    assert not set(gone) & set(kept) and {f"block_{b}_depthwise_relu" for b in (4, 7)} <= set(kept)
    before = [to_numpy(w).copy() for w in model.weights]
    head = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(placed.output))
    net = keras.Model(placed.input, head)
    net.compile(keras.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    net.fit(np.random.default_rng(0).normal(size=(4, 32, 32, 3)), np.array([0, 1, 2, 0]), verbose=0)
    assert all(np.array_equal(b, to_numpy(w)) for b, w in zip(before, model.weights))
    assert any(not np.array_equal(to_numpy(a), to_numpy(b)) for a, b in zip(placed.weights, model.weights))


@pytest.mark.parametrize(
    "name, options, removed, added",
    [
        ("VGG16", {"erase": "last", "proportion": 0.5}, [], []),
        ("VGG16", {"activation": "frelu"}, [], ["block1_conv1_frelu", "fc2_frelu"]),
        ("ResNet50V2", {"erase": "first", "proportion": [2]}, ["conv2_block2_preact_relu"], []),
        ("DenseNet121", {"activation": "frelu"}, ["conv1_relu", "relu"], ["conv1_frelu", "frelu"]),
        ("EfficientNetB0", {"erase": "middle", "proportion": 0.5}, ["block2b_activation"], []),
        (
            "ConvNeXtTiny",
            {"activation": "relu", "ensemble": True},
            ["convnext_tiny_stage_0_block_0_gelu"],
            ["convnext_tiny_stage_0_block_0_relu", "convnext_tiny_stage_0_block_0_ensemble_add"],
        ),
    ],
    ids=repr,
)
def test_a_placement_on_a_keras_application(name, options, removed, added):
    model = _application(name)
    report = kzoo.modules(model, erase=options.get("erase"), proportion=options.get("proportion"))
    placed = kzoo.place(model, **options)
    names = {layer.name for layer in placed.layers}
    assert not set(removed) & names and set(added) <= names
    erased = report.erased_sites()
    for site in erased:
        if site.fused:  # the layer stays, computing linearly
            assert placed.get_layer(site.layer).get_config()["activation"] == "linear"
        else:
            assert site.layer not in names
    x = np.random.default_rng(1).uniform(0, 255, size=(2, *model.input_shape[1:])).astype("float32")
    assert np.all(np.isfinite(to_numpy(placed(x))))


# ----------------------------------------------------------------- graphs of every kind


def _fused_net(second_activation="relu"):
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(4, 3, padding="same", activation=second_activation, name="c2")(x)
    out = keras.layers.Dense(2, activation="softmax", name="head")(keras.layers.Flatten(name="flat")(x))
    return keras.Model(inp, out)


def test_fused_activations_are_erased_and_replaced_in_their_layer():
    model = _fused_net()
    report = kzoo.modules(model)
    assert report.plain and [m.sites()[0].layer for m in report.modules] == ["c1", "c2"]
    assert all(m.sites()[0].fused for m in report.modules)  # softmax is a gate, not a slot
    erased = kzoo.place(model, erase="last", proportion=[2])
    assert erased.get_layer("c2").get_config()["activation"] == "linear"
    linear = _fused_net(second_activation=None)
    assert_same_model(erased, linear, (8, 8, 3))
    frelu = kzoo.place(model, activation="frelu", ensemble=True)
    assert {"c1_frelu", "c1_ensemble_add", "c2_frelu"} <= {layer.name for layer in frelu.layers}
    assert frelu.get_layer("c1").get_config()["activation"] == "linear"


def test_nested_models_and_sequential_ones_are_walked_into():
    backbone = kzoo.ResNet20(include_top=False, input_shape=(16, 16, 3))
    inp = keras.Input((16, 16, 3), name="image")
    features = backbone(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(features))
    classifier = keras.Model(inp, out, name="classifier")
    report = kzoo.modules(classifier)
    assert (
        len(report.modules) == 9
        and report.modules[0].slots["last"][0].layer == "resnet20/stage1_block1_last_relu"
    )
    placed = kzoo.place(classifier, erase="last", proportion=0.5)
    inner = placed.get_layer("resnet20")
    assert "stage1_block1_last_relu" not in {layer.name for layer in inner.layers}
    built = kzoo.ResNet20(include_top=False, input_shape=(16, 16, 3), erase="last", proportion=0.5)
    assert [layer.name for layer in inner.layers][1:] == [layer.name for layer in built.layers][1:]
    seq = keras.Sequential(
        [
            keras.Input((8,)),
            keras.layers.Dense(4, activation="relu"),
            keras.layers.Dense(4),
            keras.layers.ReLU(),
        ]
    )
    assert len(kzoo.modules(seq).modules) == 2
    flat = kzoo.place(seq, erase="last", proportion=[2])
    assert isinstance(flat, keras.Model) and not any(
        isinstance(layer, keras.layers.ReLU) for layer in flat.layers
    )


def test_a_backbone_called_twice_stays_one_shared_backbone():
    backbone = kzoo.ResNet20(include_top=False, pooling="avg", input_shape=(16, 16, 3))
    a, b = keras.Input((16, 16, 3), name="a"), keras.Input((16, 16, 3), name="b")
    out = keras.layers.Subtract()([backbone(a), backbone(b)])
    siamese = keras.Model([a, b], out)
    placed = kzoo.place(siamese, activation="frelu")
    assert [type(layer).__name__ for layer in placed.layers].count("Functional") == 1
    x = np.random.default_rng(0).normal(size=(2, 16, 16, 3)).astype("float32")
    assert np.allclose(to_numpy(placed([x, x])), 0.0)


def test_merges_written_as_operations_close_modules():
    inp = keras.Input((8, 8, 4))
    x = inp
    for i in range(3):
        y = keras.layers.Conv2D(4, 3, padding="same", name=f"b{i}_conv")(x)
        y = keras.layers.Activation("gelu", name=f"b{i}_gelu")(y)
        x = x + keras.layers.Conv2D(4, 1, name=f"b{i}_proj")(y)
        x = keras.ops.relu(x)
    model = keras.Model(inp, x)
    report = kzoo.modules(model)
    assert len(report.modules) == 3
    assert [s.layer for s in report.modules[1].slots["first"]] == ["b1_gelu"]
    assert report.modules[1].slots["last"][0].kind == "relu"
    placed = kzoo.place(model, erase="last", proportion=[3])
    x = np.abs(np.random.default_rng(0).normal(size=(2, 8, 8, 4))).astype("float32")
    assert np.any(to_numpy(placed(x)) < 0) and not np.any(to_numpy(model(x)) < 0)


def test_a_mixed_precision_model_keeps_its_policy_and_new_layers_take_it():
    keras.config.set_dtype_policy("mixed_bfloat16")
    model = kzoo.ResNet20(input_shape=(16, 16, 3), classes=5)
    keras.config.set_dtype_policy("float32")
    placed = kzoo.place(model, activation="frelu", erase="last", proportion=0.5)
    frelu = placed.get_layer("stage1_block1_first_frelu")
    assert frelu.dtype_policy.name == "mixed_bfloat16" and frelu.bias.dtype == "float32"
    assert placed.get_layer("predictions").dtype_policy.name == "float32"
    assert keras.config.dtype_policy().name == "float32"


def test_a_placed_model_round_trips_through_a_keras_file(tmp_path):
    model = _application("MobileNetV2")
    placed = kzoo.place(model, activation="frelu", erase="first", proportion=0.5, ensemble=True)
    path = tmp_path / "placed.keras"
    placed.save(path)
    loaded = kzoo.load_model(path)
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_array_equal(to_numpy(loaded(x)), to_numpy(placed(x)))


# ----------------------------------------------------------------- the report


def test_the_report_says_what_a_choice_removes():
    model = kzoo.ResNet20(input_shape=(16, 16, 3))
    report = kzoo.modules(model, erase="last", proportion=0.5)
    assert list(report.erased) == [1, 3, 5, 7, 9]
    assert report.erased[3] == (kzoo.transform.report.Site("stage1_block3_last_relu", "relu"),)
    text = str(report)
    assert "9 module(s)" in text and "removes 5 activation(s) in module(s) 1, 3, 5, 7, 9" in text
    assert "outside modules: stem_relu (relu)" in text
    data = report.to_dict()
    assert data["modules"][2]["erased"] == ["stage1_block3_last_relu"] and data["modules"][1]["erased"] == []
    dfn = kzoo.modules(kzoo.DFNMR1(input_shape=(16, 16, 3)), erase=["line2_last"], proportion=[1])
    assert [s.layer for s in dfn.erased[1]] == ["stage1_block1_line2_last_relu"]


# ----------------------------------------------------------------- refusals


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__(name="mine")
        self.dense = keras.layers.Dense(2, activation="relu")

    def call(self, x):
        return self.dense(x)


@pytest.mark.parametrize(
    "make, options, error, words",
    [
        (lambda: "resnet20", {}, TypeError, ["`model` must be a keras.Model"]),
        (Subclassed, {}, ValueError, ["'mine' is a subclassed Subclassed", "functional API"]),
        (lambda: keras.Sequential([keras.layers.Dense(2)]), {}, ValueError, ["not built"]),
        (
            lambda: _application("MobileNetV2"),
            {"erase": "last"},
            ValueError,
            ["linear bottleneck", "'first', 'second'"],
        ),
        (
            lambda: kzoo.ResNet20(input_shape=(16, 16, 3)),
            {"erase": "last", "proportion": [0, 10]},
            ValueError,
            ["1..9", "[0, 10]"],
        ),
        (lambda: kzoo.ResNet20(input_shape=(16, 16, 3)), {"proportion": 0.5}, ValueError, ["needs `erase`"]),
        (
            lambda: kzoo.ResNet20(input_shape=(16, 16, 3)),
            {"erase": "last", "proportion": 1.5},
            ValueError,
            ["(0, 1]"],
        ),
        (lambda: kzoo.ResNet20(input_shape=(16, 16, 3)), {"erase": 3}, TypeError, ["`erase` must be"]),
        (
            lambda: kzoo.ResNet20(input_shape=(16, 16, 3)),
            {"activation": "swishy"},
            ValueError,
            ["`activation`='swishy'"],
        ),
        (
            lambda: kzoo.ResNet20(input_shape=(16, 16, 3)),
            {"activation": {"third": "prelu"}},
            ValueError,
            ["`activation`['third']"],
        ),
        (lambda: kzoo.ResNet20(input_shape=(16, 16, 3)), {"ensemble": 1}, TypeError, ["`ensemble`"]),
        (lambda: _application("MobileNetV2"), {"erase": "third"}, ValueError, ["not a slot of any module"]),
        (
            lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(4)]),
            {"erase": "last"},
            ValueError,
            ["has no activation to erase"],
        ),
        (
            lambda: keras.Sequential([keras.Input((4,)), keras.layers.Dense(4, activation="softmax")]),
            {"activation": "frelu"},
            ValueError,
            ["has no activation for `activation`/`ensemble` to change"],
        ),
    ],
)
def test_what_cannot_be_placed_is_refused_clearly(make, options, error, words):
    with pytest.raises(error) as err:
        kzoo.place(make(), **options)
    for word in words:
        assert word in str(err.value)


def test_a_slot_some_chosen_modules_lack_is_refused_naming_them():
    inp = keras.Input((8, 8, 4))
    a = keras.layers.ReLU(name="a_relu")(keras.layers.Conv2D(4, 1)(inp))
    x = keras.layers.Add(name="add1")([inp, keras.layers.Conv2D(4, 1)(a)])
    b = keras.layers.ReLU(name="b1")(keras.layers.Conv2D(4, 1)(x))
    b = keras.layers.ReLU(name="b2")(keras.layers.Conv2D(4, 1)(b))
    y = keras.layers.Add(name="add2")([x, keras.layers.Conv2D(4, 1)(b)])
    model = keras.Model(inp, y)
    assert kzoo.place(model, erase="second", proportion=[2]).get_layer("b1")
    with pytest.raises(ValueError, match=r"module\(s\) 1 of .* have no slot 'second'.*proportion"):
        kzoo.place(model, erase="second")


def test_a_shared_layer_placed_two_ways_is_refused():
    inp = keras.Input((8, 8, 4))
    relu = keras.layers.ReLU(name="shared")
    a = relu(keras.layers.Conv2D(4, 1)(inp))
    x = keras.layers.Add()([inp, keras.layers.Conv2D(4, 1)(a)])
    b = relu(keras.layers.Conv2D(4, 1)(x))
    y = keras.layers.Add()([x, keras.layers.Conv2D(4, 1)(b)])
    model = keras.Model(inp, y)
    with pytest.raises(ValueError, match="'shared' is called more than once"):
        kzoo.place(model, erase="first", proportion=[1])


# ----------------------------------------------------------------- keras-hub backbones (from a config: no download)


def _hub_backbones():
    hub = pytest.importorskip("keras_hub")
    models = hub.models
    resnet = models.ResNetBackbone(
        input_conv_filters=[64],
        input_conv_kernel_sizes=[7],
        stackwise_num_filters=[64, 128, 256, 512],
        stackwise_num_blocks=[2, 2, 2, 2],
        stackwise_num_strides=[1, 2, 2, 2],
        block_type="basic_block",
        use_pre_activation=False,
        image_shape=(32, 32, 3),
    )
    efficientnet = models.EfficientNetBackbone(  # B0, as keras-hub's preset configures it
        stackwise_width_coefficients=[1.0] * 7,
        stackwise_depth_coefficients=[1.0] * 7,
        stackwise_kernel_sizes=[3, 3, 5, 3, 5, 5, 3],
        stackwise_num_repeats=[1, 2, 2, 3, 3, 4, 1],
        stackwise_input_filters=[32, 16, 24, 40, 80, 112, 192],
        stackwise_output_filters=[16, 24, 40, 80, 112, 192, 320],
        stackwise_expansion_ratios=[1, 6, 6, 6, 6, 6, 6],
        stackwise_squeeze_and_excite_ratios=[0.25] * 7,
        stackwise_strides=[1, 2, 2, 2, 1, 2, 1],
        stackwise_block_types=["v1"] * 7,
        input_shape=(32, 32, 3),
    )
    mobilenet = models.MobileNetBackbone(  # keras-hub's own test configuration
        stackwise_expansion=[[40, 56], [64, 144, 144], [72, 72], [144, 288, 288]],
        stackwise_num_blocks=[2, 3, 2, 3],
        stackwise_num_filters=[[16, 16], [24, 24, 24], [24, 24], [48, 48, 48]],
        stackwise_kernel_size=[[3, 3], [5, 5, 5], [5, 5], [5, 5, 5]],
        stackwise_num_strides=[[2, 1], [2, 1, 1], [1, 1], [2, 1, 1]],
        stackwise_se_ratio=[[None, None], [0.25, 0.25, 0.25], [0.3, 0.3], [0.3, 0.25, 0.25]],
        stackwise_activation=[["relu", "relu"], ["hard_swish"] * 3, ["hard_swish"] * 2, ["hard_swish"] * 3],
        stackwise_padding=[[1, 1], [2, 2, 2], [2, 2], [2, 2, 2]],
        output_num_filters=288,
        depthwise_filters=8,
        depthwise_stride=2,
        depthwise_residual=False,
        squeeze_and_excite=0.5,
        last_layer_filter=288,
        image_shape=(32, 32, 3),
    )
    return resnet, efficientnet, mobilenet


def test_keras_hub_backbones_are_placed_where_their_graph_shows_their_blocks():
    resnet, efficientnet, mobilenet = _hub_backbones()
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    report = kzoo.modules(resnet, erase="last", proportion=0.5)
    assert len(report.modules) == 8 and list(report.erased) == [1, 3, 5, 7]
    assert [s.layer for s in report.modules[0].slots["last"]] == ["stack0_block0_out"]
    for model in (resnet, efficientnet):
        np.testing.assert_allclose(to_numpy(kzoo.place(model)(x)), to_numpy(model(x)), rtol=1e-6, atol=1e-6)
    placed = kzoo.place(resnet, erase="last", proportion=0.5, activation="frelu")
    assert "stack0_block0_out" not in {layer.name for layer in placed.layers}
    assert len(kzoo.modules(efficientnet).modules) == 9
    # keras-hub's MobileNet writes its blocks as Layer subclasses: no graph to read inside.
    hidden = kzoo.modules(mobilenet).hidden
    assert hidden["block_2_0"] == 3 and sum(hidden.values()) == 31
    with pytest.raises(ValueError, match="inside layers whose graph kzoo cannot read: 'block_0_0' \\(2\\)"):
        kzoo.place(mobilenet, activation="frelu")
