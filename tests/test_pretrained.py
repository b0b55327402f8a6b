"""Pretrained tags (kzoo.models.pretrained): listing, building by tag or by
``weights="<dataset>"``, the options' match, ``include_top=False``, and the sha256-checked
lookup (package, cache, download from a local HTTP server), on a manifest of
random-initialised weights made here. The published tags themselves are re-scored in
tests/test_published.py."""

import dataclasses
import functools
import http.server
import json
import os
import re
import shutil
import threading

import keras
import numpy as np
import pytest

import kzoo
from kzoo.models import pretrained

SHAPE = (28, 28, 1)
TAGS = {"resnet20.fashion_mnist": {}, "resnet20.fashion_mnist_eraserelu": {"erase": "last"}}


def _record(tag, options, path):
    return pretrained.Pretrained(
        tag=tag,
        architecture="resnet20",
        dataset="fashion_mnist",
        options=options,
        input_shape=SHAPE,
        classes=10,
        top1=0.1,
        top5=0.5,
        params=269_434,
        command="made by tests/test_pretrained.py",
        protocol="none",
        epochs=0,
        sha256=pretrained.sha256(path),
        file=os.path.basename(path),
        source={"seed": 0},
    )


@pytest.fixture(scope="module")
def shipped(tmp_path_factory):
    """A weights directory as the package's: two tags' files and their manifest."""
    from kzoo.serving.manifest import write_manifest

    folder = tmp_path_factory.mktemp("weights")
    records = {}
    for seed, (tag, options) in enumerate(TAGS.items()):
        keras.utils.set_random_seed(seed)
        model = kzoo.ResNet20(input_shape=SHAPE, **options)
        path = str(folder / f"{tag}.weights.h5")
        model.save_weights(path)
        records[tag] = _record(tag, options, path)
    write_manifest(str(folder), records)
    return str(folder)


@pytest.fixture
def weights_dir(shipped, tmp_path, monkeypatch):
    """The manifest above as the package's, a fresh copy per test, and an empty cache."""
    folder = tmp_path / "package"
    shutil.copytree(shipped, folder)
    monkeypatch.setattr(pretrained, "PACKAGE_DIR", str(folder))
    monkeypatch.setenv("KZOO_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KZOO_WEIGHTS_URL", "http://127.0.0.1:9/nothing-listens-here")
    pretrained.reload()
    yield str(folder)
    monkeypatch.undo()
    pretrained.reload()


def _same_weights(a, b):
    wa, wb = a.get_weights(), b.get_weights()
    return len(wa) == len(wb) and all(np.array_equal(x, y) for x, y in zip(wa, wb))


def _reference(folder, tag):
    model = kzoo.ResNet20(input_shape=SHAPE, **TAGS[tag])
    model.load_weights(os.path.join(folder, f"{tag}.weights.h5"))
    return model


def test_list_models_lists_tags(weights_dir):
    assert kzoo.list_models(pretrained=True) == sorted(TAGS)
    assert kzoo.list_models("resnet20", pretrained=True) == sorted(TAGS)  # by architecture
    assert kzoo.list_models("*eraserelu", pretrained=True) == ["resnet20.fashion_mnist_eraserelu"]
    assert kzoo.list_models(pretrained=True, exclude="*eraserelu") == ["resnet20.fashion_mnist"]
    assert kzoo.list_models(pretrained=True, family="cifar_resnet") == sorted(TAGS)
    assert kzoo.list_models("resnet56*", pretrained=True) == []
    assert "resnet20.fashion_mnist" not in kzoo.list_models()
    with pytest.raises(TypeError, match="`pretrained` must be"):
        kzoo.list_models(pretrained="yes")


def test_model_info_of_a_tag(weights_dir):
    info = kzoo.model_info("resnet20.fashion_mnist_eraserelu")
    record = info.pretrained
    assert info.name == record.tag == "resnet20.fashion_mnist_eraserelu"
    assert info.architecture == record.architecture == "resnet20"
    assert info.input_shape == SHAPE and info.classes == 10 and info.dataset == "fashion_mnist"
    for field in (
        "dataset",
        "top1",
        "top5",
        "params",
        "command",
        "protocol",
        "epochs",
        "sha256",
        "file",
        "source",
    ):
        assert getattr(record, field) is not None
    assert kzoo.model_info("resnet20").pretrained is None
    with pytest.raises(
        ValueError, match=r"Unknown pretrained tag 'resnet20.cifar10'.*resnet20.fashion_mnist"
    ):
        kzoo.model_info("resnet20.cifar10")


def test_create_model_by_tag(weights_dir):
    for tag in TAGS:
        model = kzoo.create_model(tag, pretrained=True)
        assert model.input_shape == (None, *SHAPE)
        assert _same_weights(model, _reference(weights_dir, tag))
    random = kzoo.create_model("resnet20.fashion_mnist_eraserelu")  # the tag's build, not its weights
    assert random.input_shape == (None, *SHAPE)
    assert not _same_weights(random, _reference(weights_dir, "resnet20.fashion_mnist_eraserelu"))
    assert len(kzoo.activation_layers(random)) == len(
        kzoo.activation_layers(_reference(weights_dir, "resnet20.fashion_mnist_eraserelu"))
    )
    by_options = kzoo.create_model("resnet20", pretrained=True, erase="last")
    assert _same_weights(by_options, _reference(weights_dir, "resnet20.fashion_mnist_eraserelu"))


def test_keras_style_weights_pick_the_tag_whose_options_match(weights_dir):
    erased = kzoo.ResNet20(weights="fashion_mnist", erase="last", input_shape=SHAPE)
    assert _same_weights(erased, _reference(weights_dir, "resnet20.fashion_mnist_eraserelu"))
    plain = kzoo.ResNet20(weights="fashion_mnist")  # the input shape comes from the weights
    assert plain.input_shape == (None, *SHAPE)
    assert _same_weights(plain, _reference(weights_dir, "resnet20.fashion_mnist"))
    by_tag = kzoo.ResNet20(weights="resnet20.fashion_mnist_eraserelu", erase="last")
    assert _same_weights(by_tag, erased)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (
            {"activation": "frelu"},
            r"no pretrained resnet20 has the options \{'activation': 'frelu'.*"
            r"resnet20.fashion_mnist: the defaults; resnet20.fashion_mnist_eraserelu: \{'erase': 'last'\}",
        ),
        (
            {"weights": "imagenet"},
            r"a dataset with weights for resnet20 \(fashion_mnist\).*got 'imagenet'.*"
            r"Pretrained tags: resnet20.fashion_mnist",
        ),
        ({"classes": 5}, r"`classes`=5 does not fit the weights of resnet20.fashion_mnist \(10 classes\)"),
        ({"input_shape": (32, 32, 3)}, r"`input_shape`=\(32, 32, 3\) does not fit .*include_top=False"),
        ({"include_top": False, "input_shape": (32, 32, 3)}, r"has 3 channels; the weights of .* take 1"),
        ({"weights": "resnet20.fashion_mnist_eraserelu"}, r"no pretrained resnet20 has the options"),
    ],
)
def test_requests_no_tag_fits_are_refused(weights_dir, kwargs, match):
    with pytest.raises(ValueError, match=match):
        kzoo.ResNet20(**{"weights": "fashion_mnist", **kwargs})


def test_refusals_for_other_builders_and_arguments(weights_dir):
    with pytest.raises(ValueError, match=r"kzoo has no pretrained weights for resnet56"):
        kzoo.ResNet56(weights="fashion_mnist")
    with pytest.raises(ValueError, match=r"names published weights, which load through a named builder"):
        kzoo.CifarResNet(20, weights="fashion_mnist")
    with pytest.raises(ValueError, match=r"not both"):
        kzoo.create_model("resnet20.fashion_mnist", pretrained=True, weights="fashion_mnist")
    with pytest.raises(ValueError, match=r"No file at 'missing.weights.h5'"):
        kzoo.ResNet20(weights="missing.weights.h5")
    with pytest.raises(TypeError, match="`pretrained` must be"):
        kzoo.create_model("resnet20", pretrained=1)


def test_include_top_false_loads_the_backbone(weights_dir):
    reference = _reference(weights_dir, "resnet20.fashion_mnist_eraserelu")
    backbone = kzoo.ResNet20(
        weights="fashion_mnist", erase="last", include_top=False, input_shape=(40, 40, 1), pooling="avg"
    )
    assert backbone.input_shape == (None, 40, 40, 1) and "predictions" not in [
        layer.name for layer in backbone.layers
    ]
    for layer in backbone.layers:
        for a, b in zip(layer.get_weights(), reference.get_layer(layer.name).get_weights()):
            assert np.array_equal(a, b)
    other_head = kzoo.create_model("resnet20.fashion_mnist", pretrained=True, include_top=False)
    assert other_head.input_shape == (None, *SHAPE)


def test_a_tampered_file_is_refused(weights_dir):
    path = os.path.join(weights_dir, "resnet20.fashion_mnist.weights.h5")
    data = bytearray(open(path, "rb").read())
    data[len(data) // 2] ^= 0xFF  # one byte of the weights
    open(path, "wb").write(bytes(data))
    with pytest.raises(ValueError, match=r"has sha256 [0-9a-f]{64}, not the published .* refused"):
        kzoo.create_model("resnet20.fashion_mnist", pretrained=True)


class _Server:
    """An HTTP server on 127.0.0.1 serving one folder, counting its requests."""

    def __init__(self, folder):
        self.requests = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args):
                outer.requests.append(self.path)

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=folder)
        )
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def served(weights_dir, tmp_path, monkeypatch):
    """The package's weights moved to an HTTP server's folder: the package has none."""
    folder = tmp_path / "served"
    folder.mkdir()
    for tag in TAGS:
        shutil.move(os.path.join(weights_dir, f"{tag}.weights.h5"), folder / f"{tag}.weights.h5")
    server = _Server(str(folder))
    monkeypatch.setenv("KZOO_WEIGHTS_URL", server.url)
    yield server, folder
    server.close()


def test_download_into_the_cache(served, tmp_path, shipped):
    server, _ = served
    model = kzoo.create_model("resnet20.fashion_mnist", pretrained=True)
    cached = tmp_path / "home" / "weights" / "resnet20.fashion_mnist.weights.h5"
    assert cached.exists() and len(server.requests) == 1
    assert _same_weights(model, _reference(shipped, "resnet20.fashion_mnist"))
    kzoo.create_model("resnet20.fashion_mnist", pretrained=True)  # from the cache now
    assert len(server.requests) == 1
    cached.write_bytes(b"not the weights")  # a damaged cache file is downloaded again
    kzoo.create_model("resnet20.fashion_mnist", pretrained=True)
    assert (
        len(server.requests) == 2
        and pretrained.sha256(cached) == kzoo.model_info("resnet20.fashion_mnist").pretrained.sha256
    )


def test_a_download_with_the_wrong_checksum_is_refused(served, tmp_path):
    _, folder = served
    (folder / "resnet20.fashion_mnist.weights.h5").write_bytes(b"something else")
    with pytest.raises(ValueError, match=r"does not have the published sha256 .* refused, and not kept"):
        kzoo.create_model("resnet20.fashion_mnist", pretrained=True)
    assert not (tmp_path / "home" / "weights" / "resnet20.fashion_mnist.weights.h5").exists()


def test_offline_says_where_it_looked(weights_dir, tmp_path):
    os.remove(os.path.join(weights_dir, "resnet20.fashion_mnist.weights.h5"))
    with pytest.raises(FileNotFoundError) as info:
        kzoo.ResNet20(weights="fashion_mnist")
    message = str(info.value)
    assert os.path.join(weights_dir, "resnet20.fashion_mnist.weights.h5") in message
    assert str(tmp_path / "home" / "weights") in message and "127.0.0.1:9" in message


def test_the_cache_defaults_to_keras_models(monkeypatch):
    monkeypatch.delenv("KZOO_HOME", raising=False)
    assert pretrained.cache_dir() == (os.path.join(os.path.expanduser("~"), ".keras"), "models")
    monkeypatch.delenv("KZOO_WEIGHTS_URL", raising=False)
    assert pretrained.base_url() == pretrained.DEFAULT_BASE_URL


def test_manifest_round_trip_and_unknown_fields(weights_dir):
    records = pretrained.read_manifest(weights_dir)
    assert {t: r.to_dict() for t, r in records.items()} == {
        r["tag"]: r for r in json.load(open(os.path.join(weights_dir, pretrained.MANIFEST)))
    }
    with pytest.raises(ValueError, match=r"unknown fields \['colour'\]"):
        pretrained.Pretrained.from_dict({**records["resnet20.fashion_mnist"].to_dict(), "colour": 1})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        # every way of naming the input is checked alike, before anything is built
        (
            {"input_tensor": (32, 32, 1)},
            r"`input_tensor` of shape \(None, 32, 32, 1\) does not fit the weights of "
            r"resnet20.fashion_mnist \(input_shape \(28, 28, 1\)\); give it the shape",
        ),
        ({"input_tensor": (28, 28, 3)}, r"`input_tensor` of shape \(None, 28, 28, 3\) does not fit"),
        ({"input_shape": (28, 28, 3)}, r"`input_shape`=\(28, 28, 3\) does not fit"),
        (
            {"include_top": False, "input_tensor": (40, 40, 3)},
            r"`input_tensor` of shape \(None, 40, 40, 3\) has 3 channels; the weights of .* take 1",
        ),
        (
            {"include_top": False, "input_tensor": (None, None, 3), "pooling": "avg"},
            r"`input_tensor` of shape \(None, None, None, 3\) has 3 channels",
        ),
        ({"include_top": "no"}, r"`include_top` must be True or False"),
    ],
)
def test_every_way_of_giving_the_input_is_checked_alike(weights_dir, kwargs, match):
    if "input_tensor" in kwargs:
        kwargs = {**kwargs, "input_tensor": keras.Input(kwargs["input_tensor"])}
    for build in (
        lambda: kzoo.ResNet20(weights="fashion_mnist", **kwargs),
        lambda: kzoo.create_model("resnet20.fashion_mnist", pretrained=True, **kwargs),
        lambda: kzoo.create_model("resnet20", weights="resnet20.fashion_mnist", **kwargs),
    ):
        with pytest.raises((ValueError, TypeError), match=match):
            build()


def test_an_input_tensor_takes_the_weights_as_an_input_shape_does(weights_dir):
    reference = _reference(weights_dir, "resnet20.fashion_mnist")
    same = kzoo.create_model("resnet20.fashion_mnist", pretrained=True, input_tensor=keras.Input(SHAPE))
    assert same.input_shape == (None, *SHAPE) and _same_weights(same, reference)
    # a tag's own input_shape gives way to the input_tensor given (it is only a default)
    backbone = kzoo.create_model(
        "resnet20.fashion_mnist", pretrained=True, include_top=False, input_tensor=keras.Input((40, 40, 1))
    )
    assert backbone.input_shape == (None, 40, 40, 1)
    for layer in backbone.layers[1:]:  # after its input layer, keras.Input's
        for a, b in zip(layer.get_weights(), reference.get_layer(layer.name).get_weights()):
            assert np.array_equal(a, b)
    random = kzoo.create_model("resnet20.fashion_mnist", input_tensor=keras.Input((36, 36, 1)))
    assert random.input_shape == (None, 36, 36, 1)


def test_a_wrong_argument_gets_the_same_message_with_or_without_weights(weights_dir):
    expected = r"^resnet20: got an unexpected keyword argument 'widht'; it takes include_top, weights, "
    for build in (
        lambda: kzoo.create_model("resnet20", widht=2),
        lambda: kzoo.create_model("resnet20", pretrained=True, widht=2),
        lambda: kzoo.create_model("resnet20.fashion_mnist", widht=2),
        lambda: kzoo.create_model("resnet20.fashion_mnist", pretrained=True, widht=2),
        lambda: kzoo.create_model("resnet20", weights="fashion_mnist", widht=2),
        lambda: kzoo.ResNet20(weights="fashion_mnist", widht=2),
        lambda: kzoo.ResNet20(weights="resnet20.fashion_mnist", widht=2),
    ):
        with pytest.raises(TypeError, match=expected):
            build()
    # a model registered as a family's builder with fixed arguments is named the same way
    with pytest.raises(TypeError, match=r"^preact_resnet62: got an unexpected keyword argument 'widht'"):
        kzoo.create_model("preact_resnet62", pretrained=True, widht=2)
    with pytest.raises(TypeError, match=r"^preact_resnet62: got an unexpected keyword argument 'widht'"):
        kzoo.create_model("preact_resnet62", widht=2)
    with pytest.raises(ValueError, match=r"^`pretrained=True`: kzoo has no pretrained weights for resnet56"):
        kzoo.create_model("resnet56", pretrained=True)


# (architecture, options, input_shape): a builder of each kind of input and top — a
# convolutional one at any size, a fully connected one that flattens its input.
OTHERS = {
    "vgg_style31.cifar10": ("vgg_style31", {}, (32, 32, 3)),
    "smallnet_bn.cifar10": ("smallnet_bn", {}, (32, 32, 3)),
    "mlp12.fashion_mnist": ("mlp12", {"units": 16}, (28, 28, 1)),
}


@pytest.fixture
def other_builders(weights_dir):
    """Tags of the architectures in OTHERS (random weights) beside the two resnet20 ones."""
    from kzoo.serving.manifest import write_manifest

    records = pretrained.read_manifest(weights_dir)
    for tag, (architecture, options, shape) in OTHERS.items():
        model = kzoo.create_model(architecture, input_shape=shape, **options)
        path = os.path.join(weights_dir, f"{tag}.weights.h5")
        model.save_weights(path)
        records[tag] = dataclasses.replace(
            _record(tag, options, path),
            architecture=architecture,
            dataset=tag.split(".")[1],
            input_shape=shape,
            classes=model.output_shape[-1],
        )
    write_manifest(weights_dir, records)
    pretrained.reload()
    return weights_dir


@pytest.mark.parametrize("tag", sorted(OTHERS))
def test_other_builders_check_their_input_alike(other_builders, tag):
    architecture, options, shape = OTHERS[tag]
    other = (shape[0] + 8, shape[1] + 8, shape[2])
    build = functools.partial(kzoo.create_model, architecture, weights=tag.split(".")[1], **options)
    full = build()
    assert full.input_shape == (None, *shape)
    for given in ({"input_shape": other}, {"input_tensor": keras.Input(other)}):
        with pytest.raises(ValueError, match=r"does not fit the weights of " + tag):
            build(**given)
    channels = (*shape[:2], 4 - shape[2] if shape[2] != 4 else 1)
    for given in ({"input_shape": channels}, {"input_tensor": keras.Input(channels)}):
        with pytest.raises(ValueError, match=r"channels; the weights of " + tag):
            build(include_top=False, **given)
    backbone = build(include_top=False)
    fixed_size = architecture == "mlp12"  # its first layer's weights are sized by the image
    assert backbone.input_shape == ((None, *shape) if fixed_size else (None, None, None, shape[2]))
    for layer in backbone.layers:
        for a, b in zip(layer.get_weights(), full.get_layer(layer.name).get_weights()):
            assert np.array_equal(a, b)
    for given in ({"input_shape": other}, {"input_tensor": keras.Input(other)}):
        if fixed_size:
            with pytest.raises(ValueError, match=r"weights depend on the image size: pass input_shape"):
                build(include_top=False, **given)
        else:
            assert build(include_top=False, **given).input_shape == (None, *other)


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda text, records: text[: len(text) // 2], r"cannot be read \(JSONDecodeError"),
        (lambda text, records: "", r"cannot be read \(JSONDecodeError"),
        (lambda text, records: json.dumps(records[0]), r"must hold a JSON list of records, got a dict"),
        (lambda text, records: json.dumps([1]), r"a record must be a JSON object, got 1"),
        (
            lambda text, records: json.dumps([{k: v for k, v in records[0].items() if k != "sha256"}]),
            r"the record of 'resnet20.fashion_mnist' has no sha256",
        ),
        (
            lambda text, records: json.dumps([{**records[0], "sha256": 5}]),
            r"the record of 'resnet20.fashion_mnist' is damaged: `sha256` must be a non-empty string",
        ),
        (
            lambda text, records: json.dumps([{**records[0], "sha256": "c0ffee"}]),
            r"`sha256` must be 64 lower-case hex digits",
        ),
        (
            lambda text, records: json.dumps([{**records[0], "input_shape": "28x28"}]),
            r"`input_shape` must be",
        ),
        (lambda text, records: json.dumps([{**records[0], "classes": 0}]), r"`classes` must be an integer"),
        (lambda text, records: json.dumps([{**records[0], "top1": "high"}]), r"`top1` must be a finite"),
        (
            lambda text, records: json.dumps([{**records[0], "options": []}]),
            r"`options` must be a JSON object",
        ),
        (
            lambda text, records: json.dumps([{**records[0], "file": "../x.weights.h5"}]),
            r"`file` must be a plain",
        ),
        (
            lambda text, records: json.dumps([{**records[0], "architecture": "resnet56"}]),
            r"`architecture` must",
        ),
        (
            lambda text, records: json.dumps([records[0], records[0]]),
            r"two records of 'resnet20.fashion_mnist'",
        ),
    ],
)
def test_a_damaged_manifest_names_the_file_and_the_tag(weights_dir, damage, match):
    path = os.path.join(weights_dir, pretrained.MANIFEST)
    text = open(path).read()
    open(path, "w").write(damage(text, json.loads(text)))
    for call in (
        lambda: pretrained.reload(),
        lambda: kzoo.list_models(pretrained=True),
        lambda: kzoo.create_model("resnet20.fashion_mnist", pretrained=True),
    ):
        pretrained._TAGS = None
        with pytest.raises(ValueError, match=re.escape(path) + r".*" + match + r".*publish again"):
            call()


@pytest.mark.parametrize(
    "variable, value, match",
    [
        ("KZOO_HOME", "a-file", r"\$KZOO_HOME=.*a-file' is a file, not a directory"),
        ("KZOO_HOME", "a-file/below", r"\$KZOO_HOME=.*a-file' is a file, not a directory"),
        (
            "KZOO_WEIGHTS_URL",
            "localhost:8000/weights",
            r"\$KZOO_WEIGHTS_URL='localhost:8000/weights' .* no scheme",
        ),
        ("KZOO_WEIGHTS_URL", "/srv/weights", r"\$KZOO_WEIGHTS_URL='/srv/weights' is not a URL .* no scheme"),
        ("KZOO_WEIGHTS_URL", "gopher://host/w/", r"its scheme 'gopher' is none of https, http, ftp, file"),
        ("KZOO_WEIGHTS_URL", "https:///w/", r"it names no host"),
    ],
)
def test_environment_variables_are_checked_naming_them(
    weights_dir, tmp_path, monkeypatch, variable, value, match
):
    (tmp_path / "a-file").write_text("not a folder")
    if variable == "KZOO_HOME":
        value = str(tmp_path / value)
    monkeypatch.setenv(variable, value)
    os.remove(os.path.join(weights_dir, "resnet20.fashion_mnist.weights.h5"))  # a download is needed
    with pytest.raises(ValueError, match=match):
        kzoo.create_model("resnet20.fashion_mnist", pretrained=True)


def test_weights_download_from_a_file_url(served, tmp_path, monkeypatch, shipped):
    _, folder = served
    monkeypatch.setenv("KZOO_WEIGHTS_URL", folder.as_uri() + "/")
    model = kzoo.create_model("resnet20.fashion_mnist", pretrained=True)
    assert _same_weights(model, _reference(shipped, "resnet20.fashion_mnist"))
    assert (tmp_path / "home" / "weights" / "resnet20.fashion_mnist.weights.h5").exists()
