"""The dataset records (kzoo.data.spec, kzoo.data.sources) and the registry: keyword-only
records that check their fields when made, and register_dataset / registered."""

import dataclasses
import re

import pytest
from helpers import changed_spec

from kzoo import data

TFDS_NAMES = ("cifar10", "cifar100", "svhn", "imagenet2012")


def test_builtin_specs_are_registered_read_only():
    assert not hasattr(data, "DatasetInfo") and "DatasetInfo" not in data.__all__
    assert data.list_datasets() == (
        "cifar10",
        "cifar100",
        "svhn",
        "svhn_extra",
        "imagenet2012",
        "fashion_mnist",
        "mnist",
    )
    assert all(data.DATASETS[name] is data.dataset_info(name) for name in data.list_datasets())
    with pytest.raises(TypeError):
        data.DATASETS["mine"] = data.dataset_info("cifar10")
    imagenet = data.dataset_info("imagenet2012")
    assert (imagenet.eval_resize, imagenet.augmentation.random_resized_crop) == (256, (0.08, 1.0))
    assert imagenet.source.manual_archives == data.IMAGENET_TARS
    assert [data.dataset_info(n).source.version for n in TFDS_NAMES] == ["3.0.2", "3.0.2", "3.1.0", "5.1.0"]
    assert data.dataset_info("svhn").augmentation == data.Augmentation()  # none
    fashion = data.dataset_info("fashion_mnist")
    assert isinstance(fashion.source, data.IDXSource) and fashion.source.subdirs[0] == "fashion-mnist"


def test_records_take_keyword_arguments_only():
    """No record is built from positional values: a bare number cannot land in the wrong field."""
    with pytest.raises(TypeError, match="positional"):
        data.DatasetSpec("cifar10", 10, (32, 32, 3), 50000, 10000, 5000)
    with pytest.raises(TypeError, match="positional"):
        data.TrainPart("train", 50000)
    with pytest.raises(TypeError, match="positional"):
        data.TFDSSource("cifar10", ())
    with pytest.raises(TypeError, match="positional"):
        data.IDXSource(("mnist",))
    with pytest.raises(TypeError, match="positional"):
        data.Augmentation(4, True)
    with pytest.raises(TypeError, match="required keyword-only argument: 'source'"):
        data.DatasetSpec(
            name="x", classes=2, image_shape=(8, 8, 1), train_size=4, test_size=2, validation_size=1
        )


def test_records_are_frozen_values():
    """Equal fields, equal (and equally hashed) specs: the IDX reader caches by spec."""
    spec = data.dataset_info("cifar10")
    again = changed_spec(spec, augmentation={"pad": 4}, source={"version": "3.0.2"})
    assert again == spec and hash(again) == hash(spec) and again is not spec
    assert changed_spec(spec, augmentation={"pad": 2}) != spec
    for record, field in ((spec, "classes"), (spec.source, "builder"), (spec.augmentation, "pad")):
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(record, field, 3)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.source.train_parts[0].size = 3


def test_registered_tfds_dataset_splits():
    spec = changed_spec(
        data.dataset_info("svhn_extra"),
        name="svhn_small",
        train_size=300,
        validation_size=30,
        source={
            "train_parts": (
                data.TrainPart(split="train", size=100, validation_share=0.5),
                data.TrainPart(split="extra", size=200, validation_share=0.5),
            )
        },
    )
    with data.registered(spec):
        assert data.num_examples("svhn_small", "train") == 270
        val = data.tfds_split("svhn_small", "validation")
        sizes = [int(b) - int(a) for a, b in re.findall(r"\[(\d+):(\d+)\]", val)]
        assert sizes == [15, 15]
    assert "svhn_small" not in data.DATASETS


def test_register_dataset_refuses_a_taken_name():
    before = dict(data.DATASETS)
    with pytest.raises(
        ValueError, match="A dataset named 'cifar10' is already registered; pass `replace=True`"
    ):
        data.register_dataset(changed_spec(data.dataset_info("cifar10"), classes=11))
    with pytest.raises(ValueError, match="already registered"):
        with data.registered(changed_spec(data.dataset_info("mnist"), augmentation={"pad": 0})):
            pass
    assert dict(data.DATASETS) == before
    with data.registered(changed_spec(data.dataset_info("cifar10"), classes=11), replace=True):
        assert data.dataset_info("cifar10").classes == 11
    assert dict(data.DATASETS) == before  # the replaced spec is back
    with pytest.raises(TypeError, match="`replace` must be True or False"):
        data.register_dataset(changed_spec(data.dataset_info("mnist"), name="mine"), replace="yes")
    assert "mine" not in data.DATASETS


def _parts(*parts):
    return {"train_parts": tuple(data.TrainPart(split=s, size=n, validation_share=v) for s, n, v in parts)}


# (base dataset, changed_spec's changes, error, message, what the message starts with)
MALFORMED = [
    ("cifar10", {"name": ""}, ValueError, r"`name` must be a non-empty string", "`name`"),
    ("cifar10", {"name": 3}, TypeError, r"`name` must be a dataset name", "`name`"),
    ("cifar10", {"classes": 0}, ValueError, r"`classes` must be an integer at least 1, got 0", "Dataset"),
    ("cifar10", {"classes": 10.0}, TypeError, r"`classes` must be an integer", "Dataset"),
    (
        "cifar10",
        {"image_shape": (32, 32)},
        TypeError,
        r"`image_shape` must be a tuple \(H, W, C\)",
        "Dataset",
    ),
    ("cifar10", {"image_shape": [32, 32, 3]}, TypeError, r"`image_shape` must be a tuple", "Dataset"),
    (
        "cifar10",
        {"image_shape": (32, 0, 3)},
        ValueError,
        r"`image_shape` must be an integer at least 1",
        "Dataset",
    ),
    ("cifar10", {"train_size": -1}, ValueError, r"`train_size` must be an integer at least 1", "Dataset"),
    ("cifar10", {"test_size": 0}, ValueError, r"`test_size` must be an integer at least 1", "Dataset"),
    (
        "cifar10",
        {"validation_size": 50000},
        ValueError,
        r"`validation_size` must be an integer in \[0, 49999\]",
        "Dataset",
    ),
    (
        "cifar10",
        {"mean": None},
        ValueError,
        r"`mean` and `std` must both be given or both be None",
        "Dataset",
    ),
    ("cifar10", {"mean": (1.0, 2.0)}, ValueError, r"`mean` must be a tuple of 3 numbers", "Dataset"),
    (
        "cifar10",
        {"std": (1.0, 0.0, 1.0)},
        ValueError,
        r"`std` must be a finite number greater than 0",
        "Dataset",
    ),
    ("cifar10", {"mean": (1.0, float("nan"), 1.0)}, ValueError, r"`mean` must be a finite number", "Dataset"),
    ("cifar10", {"title": ""}, TypeError, r"`title` must be a non-empty string or None", "Dataset"),
    ("cifar10", {"cache": None}, TypeError, r"`cache` must be True or False", "Dataset"),
    (
        "cifar10",
        {"shuffle_buffer": 0},
        ValueError,
        r"`shuffle_buffer` must be an integer at least 1",
        "Dataset",
    ),
    # where it is read from
    (
        "cifar10",
        {"source": {"builder": None}},
        TypeError,
        r"`builder` must be the TFDS builder's name",
        "TFDSSource",
    ),
    (
        "cifar10",
        {"source": {"version": "latest"}},
        ValueError,
        r"`version` must be a version like",
        "TFDSSource",
    ),
    (
        "cifar10",
        {"source": {"train_parts": ()}},
        TypeError,
        r"`train_parts` must be a non-empty tuple",
        "TFDSSource",
    ),
    (
        "cifar10",
        {"source": {"train_parts": (("train", 50000, 1.0),)}},
        TypeError,
        r"`train_parts` must be a non-empty tuple of kzoo.data.TrainPart",
        "TFDSSource",
    ),
    (
        "cifar10",
        {"source": _parts(("train", 40000, 1.0))},
        ValueError,
        r"`source.train_parts` must add up to train_size=50000, got 40000",
        "Dataset",
    ),
    (
        "svhn_extra",
        {"source": _parts(("train", 73257, 0.5), ("extra", 531131, 0.4))},
        ValueError,
        r"`train_parts`' validation shares must add up to 1",
        "TFDSSource",
    ),
    (
        "cifar10",
        {"source": {"test_split": ""}},
        TypeError,
        r"`test_split` must be a TFDS split name",
        "TFDSSource",
    ),
    (
        "imagenet2012",
        {"source": {"manual_archives": "ILSVRC2012_img_train.tar"}},
        TypeError,
        r"`manual_archives` must be a tuple of non-empty strings",
        "TFDSSource",
    ),
    (
        "mnist",
        {"image_shape": (28, 28, 3), "mean": (1.0,) * 3, "std": (1.0,) * 3},
        ValueError,
        r"`image_shape` of an IDX dataset must have 1 channel",
        "Dataset",
    ),
    ("mnist", {"source": {"subdirs": ()}}, ValueError, r"`subdirs` must name at least one", "IDXSource"),
    (
        "mnist",
        {"source": {"system_dirs": "/usr/share/datasets/mnist"}},
        TypeError,
        r"`system_dirs` must be a tuple",
        "IDXSource",
    ),
    (
        "mnist",
        {"source": {"keras_module": ""}},
        TypeError,
        r"`keras_module` must be a non-empty string or None",
        "IDXSource",
    ),
    # how it is augmented
    (
        "cifar10",
        {"augmentation": {"pad": -1}},
        ValueError,
        r"`pad` must be an integer at least 0",
        "Augmentation",
    ),
    (
        "cifar10",
        {"augmentation": {"flip": 1}},
        TypeError,
        r"`flip` must be True or False, got 1",
        "Augmentation",
    ),
    (
        "mnist",
        {"augmentation": {"pad_pixel": 300.0}},
        ValueError,
        r"`pad_pixel` must be a finite number in \[0, 255\]",
        "Augmentation",
    ),
    (
        "imagenet2012",
        {"eval_resize": 200},
        ValueError,
        r"`eval_resize` must be an integer at least 224",
        "Dataset",
    ),
    (
        "imagenet2012",
        {"eval_resize": None},
        ValueError,
        r"`eval_resize` must be set with `augmentation.random_resized_crop`",
        "Dataset",
    ),
    (
        "imagenet2012",
        {"augmentation": {"random_resized_crop": (0.0, 1.0)}},
        ValueError,
        r"`random_resized_crop` must be",
        "Augmentation",
    ),
    (
        "imagenet2012",
        {"augmentation": {"random_resized_crop": 0.08}},
        TypeError,
        r"`random_resized_crop` must be an area range",
        "Augmentation",
    ),
    (
        "imagenet2012",
        {"augmentation": {"pad": 4}},
        ValueError,
        r"`augmentation.pad` and `augmentation.flip` are the augmentation of fixed-size images",
        "Dataset",
    ),
]


@pytest.mark.parametrize("base, changes, err, match, starts", MALFORMED)
def test_malformed_specs_are_refused_when_made(base, changes, err, match, starts):
    """Each bad field is refused as the record holding it is made, with an error naming
    the record (the dataset, for the spec's own fields and those that must agree with
    them) and the field; nothing can be registered."""
    with pytest.raises(err, match=match) as caught:
        changed_spec(data.dataset_info(base), **{"name": "mine", **changes})
    expected = "Dataset 'mine': " if starts == "Dataset" else starts
    assert str(caught.value).startswith(expected), str(caught.value)
    assert "mine" not in data.DATASETS


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"split": "", "size": 1}, TypeError, r"^TrainPart: `split` must be a TFDS split name, got ''"),
        ({"split": "train", "size": 0}, ValueError, r"^TrainPart: `size` must be an integer at least 1"),
        (
            {"split": "train", "size": 9, "validation_share": 1.5},
            ValueError,
            r"^TrainPart: `validation_share`",
        ),
    ],
)
def test_train_parts_check_their_fields(kwargs, err, match):
    with pytest.raises(err, match=match):
        data.TrainPart(**kwargs)


def test_spec_refuses_records_of_the_wrong_kind():
    spec = data.dataset_info("cifar10")
    with pytest.raises(
        TypeError,
        match=r"^Dataset 'cifar10': `source` must be a kzoo.data.TFDSSource or kzoo.data.IDXSource, got str",
    ):
        dataclasses.replace(spec, source="tfds")
    with pytest.raises(
        TypeError, match=r"^Dataset 'cifar10': `augmentation` must be a kzoo.data.Augmentation, got dict"
    ):
        dataclasses.replace(spec, augmentation={"pad": 4})


def test_register_dataset_refuses_a_non_spec():
    with pytest.raises(TypeError, match=r"`spec` must be a kzoo.data.DatasetSpec, got dict"):
        data.register_dataset({"name": "mine"})
    with pytest.raises(TypeError, match=r"`spec` must be a kzoo.data.DatasetSpec, got TFDSSource"):
        with data.registered(data.dataset_info("cifar10").source):
            pass
