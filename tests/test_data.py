import contextlib
import dataclasses
import gzip
import hashlib
import os
import re

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from helpers import changed_spec

from kzoo import data
from kzoo.data import augment, locations
from kzoo.data import idx as idx_files
from kzoo.data.tfds import _windows

TFDS_NAMES = ("cifar10", "cifar100", "svhn", "imagenet2012")


@pytest.fixture
def imagenet_manual_dir(tmp_path):
    """Empty stand-ins for the ImageNet tars, so the archive check passes under mock_data."""
    for tar in data.IMAGENET_TARS:
        (tmp_path / tar).write_bytes(b"")
    return str(tmp_path)


@pytest.fixture
def replaced():
    """``replace(name, **changes)``: the dataset re-registered with those fields changed
    (``changed_spec``'s), for this test only (the registry is restored afterwards)."""
    with contextlib.ExitStack() as stack:

        def replace(name, **changes):
            spec = changed_spec(data.dataset_info(name), **changes)
            return stack.enter_context(data.registered(spec, replace=True))

        yield replace


def _batches(ds):
    return [(x.numpy(), y.numpy()) for x, y in ds]


# ----------------------------------------------------------------------------- API, bad input


def test_dataset_info_and_sizes():
    assert set(data.DATASETS) == {
        "cifar10",
        "cifar100",
        "svhn",
        "svhn_extra",
        "imagenet2012",
        "fashion_mnist",
        "mnist",
    }
    info = data.dataset_info("cifar100")
    assert (info.classes, info.image_shape, info.source.builder) == (100, (32, 32, 3), "cifar100")
    assert isinstance(info.source, data.TFDSSource)
    assert info.mean == (129.3, 124.1, 112.4) and info.std == (68.2, 65.4, 70.4)
    assert data.dataset_info("svhn").mean is None
    assert data.num_examples("cifar10", "train") == 45000
    assert data.num_examples("cifar10", "validation") == 5000
    assert data.num_examples("cifar10", "train_full") == 50000
    assert data.num_examples("imagenet2012", "test") == 50000
    assert data.num_examples("svhn_extra", "train", validation_size=0) == 604388
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.classes = 3


@pytest.mark.parametrize(
    "call, err, match",
    [
        (
            lambda: data.dataset_info("cifar11"),
            ValueError,
            "Unknown dataset 'cifar11'.*'cifar10', 'cifar100'",
        ),
        (lambda: data.load("cifar11", "train"), ValueError, "Unknown dataset 'cifar11'"),
        (lambda: data.load("cifar10", "valid"), ValueError, "`split` must be one of"),
        (
            lambda: data.load("cifar10", "train", validation_size=-1),
            ValueError,
            "`validation_size` must be an integer at least 0 or None, got -1",
        ),
        (lambda: data.load("cifar10", "train", validation_size=2.5), TypeError, "`validation_size`"),
        (lambda: data.load("cifar10", "train", validation_size=50000), ValueError, "smaller than the 50000"),
        (lambda: data.load("cifar10", "validation", validation_size=0), ValueError, "no validation split"),
        (lambda: data.num_examples("mnist", "validation", validation_size=0), ValueError, "no validation"),
        (lambda: data.load("cifar10", "train", seed="0"), TypeError, "`seed`"),
    ],
)
def test_bad_arguments(call, err, match):
    with pytest.raises(err, match=match):
        call()


@pytest.mark.parametrize(
    "batch_size, err",
    [(0, ValueError), (-1, ValueError), (2.0, TypeError), ("8", TypeError), (True, TypeError)],
)
def test_bad_batch_size(batch_size, err):
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 32, 32, 3), np.uint8), np.zeros(4, np.int32)))
    with pytest.raises(err, match="`batch_size` must be an integer at least 1"):
        data.pipeline(ds, "cifar10", training=True, batch_size=batch_size)
    with pytest.raises(err, match="`batch_size` must be an integer at least 1"):
        data.make_datasets("cifar10", batch_size=batch_size)
    with pytest.raises(err, match="`batch_size` must be an integer at least 1"):
        data.steps_per_epoch("cifar10", batch_size)


def test_pipeline_rejects_non_dataset():
    with pytest.raises(TypeError, match="`ds` must be a tf.data.Dataset"):
        data.pipeline(np.zeros((4, 32, 32, 3)), "cifar10", training=False, batch_size=2)


def _images(shape, dtype=tf.uint8, label_shape=()):
    return tf.data.Dataset.from_tensor_slices(
        (tf.zeros((4, *shape), dtype), tf.zeros((4, *label_shape), tf.int32))
    )


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    "name, ds, err, match",
    [
        # another dataset's images: broadcast or reshaped before, refused now
        ("cifar10", lambda: _images((28, 28, 1)), ValueError, "'cifar10' has images of shape \\(32, 32, 3\\)"),
        ("cifar10", lambda: _images((32, 32, 1)), ValueError, "got \\(32, 32, 1\\)"),
        ("fashion_mnist", lambda: _images((32, 32, 3)), ValueError, "'fashion_mnist' has images of shape"),
        ("mnist", lambda: _images((32, 32, 1)), ValueError, "\\(28, 28, 1\\)"),
        ("imagenet2012", lambda: _images((64, 48, 1)), ValueError, "images with 3 channel"),
        ("cifar10", lambda: _images((2, 32, 32, 3)), ValueError, "images \\[height, width, channels\\]"),
        # float images (would be normalised as if on 0-255), labels that are not classes
        ("cifar10", lambda: _images((32, 32, 3), tf.float32), TypeError, "uint8 images"),
        ("cifar10", lambda: _images((32, 32, 3), label_shape=(10,)), TypeError, "one integer class label"),
        ("cifar10", lambda: tf.data.Dataset.from_tensor_slices(tf.zeros((4, 32, 32, 3), tf.uint8)),
         ValueError, "\\(image, label\\) pairs"),
    ],
)  # fmt: skip
def test_pipeline_refuses_images_of_another_dataset(name, ds, err, match, training):
    with pytest.raises(err, match=match):
        data.pipeline(ds(), name, training=training, batch_size=2)


def test_pipeline_takes_images_of_any_size_where_the_dataset_has_them():
    out = data.pipeline(_images((64, 48, 3)), "imagenet2012", training=False, batch_size=2)
    assert out.element_spec[0].shape.as_list() == [None, 224, 224, 3]


@pytest.mark.parametrize(
    "call, err, match",
    [
        (lambda: data.prepare_for_model(tf.zeros((2, 28, 28, 1)), "cifar10", (32, 32)), ValueError,
         "the 3 channel\\(s\\)|3 channel"),
        (lambda: data.prepare_for_model(tf.zeros((2, 32, 32, 3)), "mnist", (28, 28)), ValueError,
         "1 channel"),
        (lambda: data.prepare_for_model(tf.zeros((32, 32, 3)), "cifar10", (32, 32)), ValueError,
         "\\[batch, height, width, channels\\]"),
        (lambda: data.resize_for_model(tf.zeros((28, 28, 1)), "cifar10", (32, 32)), ValueError, "3 channel"),
        (lambda: data.prepare_for_model(tf.zeros((2, 32, 32, 3)), "cifar10", 32), TypeError, "`size`"),
        (lambda: data.prepare_for_model(tf.zeros((2, 32, 32, 3)), "cifar10", (0, 32)), ValueError, "`size`"),
    ],
)  # fmt: skip
def test_model_inputs_of_another_dataset_are_refused(call, err, match):
    with pytest.raises(err, match=match):
        call()


def test_model_inputs_of_any_size_are_resized():
    x = data.prepare_for_model(tf.fill((2, 64, 40, 3), 128.0), "cifar10", (32, 32))
    assert x.shape == (2, 32, 32, 3)


@pytest.mark.parametrize("name", ["fashion_mnist", "svhn"])  # augmented, and not
def test_from_epoch_gives_the_epochs_an_uninterrupted_run_sees(name):
    shape = data.dataset_info(name).image_shape
    images = tf.data.Dataset.from_tensor_slices(
        (np.random.default_rng(0).integers(0, 256, (96, *shape), dtype=np.uint8), np.arange(96) % 10)
    )

    def fresh():
        return data.pipeline(images, name, training=True, batch_size=32, seed=5, random_erasing=0.5)

    def batches(ds, n):
        it = iter(ds)
        return [tuple(t.numpy() for t in next(it)) for _ in range(n)]

    run = batches(data.from_epoch(fresh(), 0), 4 * 3)  # 4 epochs of 3 batches, in one iterator
    resumed = batches(data.from_epoch(fresh(), 2), 2 * 3)
    assert len({b[1].tobytes() for b in run[:3]} | {b[1].tobytes() for b in run[3:6]}) == 6  # epochs differ
    for want, got in zip(run[6:], resumed):
        np.testing.assert_array_equal(want[0], got[0])
        np.testing.assert_array_equal(want[1], got[1])
    with pytest.raises(ValueError, match="`epoch` must be an integer at least 0"):
        data.from_epoch(fresh(), -1)


# ----------------------------------------------------------------------------- registry


def _tiny_idx_spec():
    """A small IDX dataset of 28x28 images in a ``tiny/`` subfolder (see _write_idx_set)."""
    return data.DatasetSpec(
        name="tiny_idx",
        classes=10,
        image_shape=(28, 28, 1),
        train_size=40,
        test_size=12,
        validation_size=10,
        mean=(100.0,),
        std=(50.0,),
        source=data.IDXSource(subdirs=("tiny",)),
        augmentation=data.Augmentation(pad=2, flip=True, pad_pixel=0.0),
    )


def test_registered_dataset_is_usable(no_system_data):
    """A new spec is known to every size function and read like the built-in ones; it
    is gone again after the ``with`` block."""
    arrays = _write_idx_set(no_system_data / "mine" / "tiny")
    with data.registered(_tiny_idx_spec()) as spec:
        assert data.dataset_info("tiny_idx") is spec and "tiny_idx" in data.list_datasets()
        assert data.DATASETS["tiny_idx"] is spec
        assert data.num_examples("tiny_idx", "train") == 30
        assert data.num_examples("tiny_idx", "validation", validation_size=4) == 4
        assert data.train_examples("tiny_idx", train_fraction=0.5) == 15
        assert data.steps_per_epoch("tiny_idx", 8) == 3
        with pytest.raises(ValueError, match="larger than the 30 training examples of tiny_idx"):
            data.steps_per_epoch("tiny_idx", 31)
        test = list(data.load("tiny_idx", "test", data_dir=str(no_system_data / "mine")))
        np.testing.assert_array_equal(test[0][0].numpy()[..., 0], arrays["t10k-images-idx3-ubyte"][0])
        train, val, test_ds, got = data.make_datasets(
            "tiny_idx", batch_size=8, seed=0, data_dir=str(no_system_data / "mine")
        )
        assert got is spec
        assert [len(y) for _, y in _batches(train)] == [8, 8, 8]
        assert [len(y) for _, y in _batches(val)] == [8, 2]
        assert [len(y) for _, y in _batches(test_ds)] == [8, 4]
    with pytest.raises(ValueError, match="Unknown dataset 'tiny_idx'"):
        data.dataset_info("tiny_idx")


@pytest.mark.parametrize(
    "name, size, expected",
    [
        (
            "cifar10",
            (32, 32),
            "inside the graph: bilinear resize to 32x32 when the size differs, then "
            "(pixels - [125.3, 123.0, 113.9]) / [63.0, 62.1, 66.7] per channel, "
            "on the 0-255 scale",
        ),
        (
            "svhn",
            (40, 48),
            "inside the graph: bilinear resize to 40x48 when the size differs, then pixels / 255",
        ),
        (
            "mnist",
            (28, 28),
            "inside the graph: bilinear resize to 28x28 when the size differs, then "
            "(pixels - [33.3184]) / [78.5675] per channel, on the 0-255 scale",
        ),
        (
            "imagenet2012",
            (224, 224),
            "inside the graph: shorter side to 256, centre crop 224 when the size "
            "differs, then (pixels - [123.675, 116.28, 103.53]) / "
            "[58.395, 57.12, 57.375] per channel, on the 0-255 scale",
        ),
    ],
)
def test_preprocessing_text(name, size, expected):
    """The words for what prepare_for_model does (the model card's "Preprocessing")."""
    assert data.preprocessing_text(name, size) == expected


# ----------------------------------------------------------------------------- TFDS, mocked


@pytest.mark.parametrize("name", TFDS_NAMES)
def test_tfds_pipelines_on_mock_data(name, imagenet_manual_dir):
    info = data.dataset_info(name)
    with tfds.testing.mock_data(num_examples=10):
        raw = data.load(name, "train", manual_dir=imagenet_manual_dir)
        image, label = next(iter(raw))
        assert image.dtype == tf.uint8 and label.dtype == tf.int32 and label.shape == ()
        assert image.shape[-1] == 3
        train, val, test, got = data.make_datasets(name, batch_size=4, seed=1, manual_dir=imagenet_manual_dir)
        assert got is info
        for ds, training in ((train, True), (val, False), (test, False)):
            batches = _batches(ds)
            sizes = [len(y) for _, y in batches]
            assert sizes == ([4, 4] if training else [4, 4, 2])  # drop_remainder only in training
            for x, y in batches:
                assert x.dtype == np.float32 and x.shape[1:] == info.image_shape
                assert y.dtype == np.int32 and y.min() >= 0 and y.max() < info.classes
                assert np.isfinite(x).all()
        if name == "svhn":  # pixels / 255, no augmentation
            x, _ = batches[0]
            assert x.min() >= 0 and x.max() <= 1


def test_svhn_extra_reads_train_and_extra():
    assert data.tfds_split("svhn_extra", "train_full") == "train+extra"
    val = data.tfds_split("svhn_extra", "validation")
    (n_train,), (n_extra,) = (
        [int(b) - int(a) for a, b in re.findall(rf"{part}\[(\d+):(\d+)\]", val)]
        for part in ("train", "extra")
    )
    assert (n_train, n_extra) == (4000, 2000)
    assert data.tfds_split("imagenet2012", "test") == "validation"  # the official val set


def _fake_split_data(sizes):
    """A mock_data ``as_dataset_fn`` honouring TFDS split slicing: example i of split s
    has pixel (0, 0) = (split code, i // 256, i % 256), so its content names it."""
    codes = {name: k + 1 for k, name in enumerate(sizes)}

    def as_dataset(self, split, decoders=None, read_config=None, shuffle_files=False, **kwargs):
        parts = []
        for piece in split.split("+"):
            m = re.fullmatch(r"(\w+)(?:\[(-?\d*):(-?\d*)\])?", piece)
            name, lo, hi = m.group(1), m.group(2), m.group(3)
            idx = np.arange(sizes[name])[slice(int(lo) if lo else None, int(hi) if hi else None)]
            images = np.full((len(idx), 32, 32, 3), 7, np.uint8)
            images[:, 0, 0] = np.stack([np.full_like(idx, codes[name]), idx // 256, idx % 256], -1)
            parts.append(
                tf.data.Dataset.from_tensor_slices({"image": images, "label": (idx % 10).astype(np.int64)})
            )
        ds = parts[0]
        for part in parts[1:]:
            ds = ds.concatenate(part)
        return ds

    return as_dataset


def _hashes(ds):
    return [hashlib.sha1(x.numpy().tobytes()).hexdigest() for x, _ in ds]


def test_validation_carved_from_train_by_content(replaced):
    replaced(
        "cifar10",
        train_size=600,
        test_size=50,
        validation_size=100,
        source={"train_parts": (data.TrainPart(split="train", size=600),)},
    )
    fake = _fake_split_data({"train": 600, "test": 50})
    with tfds.testing.mock_data(as_dataset_fn=fake):
        full = _hashes(data.load("cifar10", "train_full"))
        test = _hashes(data.load("cifar10", "test"))
        for seed in (0, 1):
            train = _hashes(data.load("cifar10", "train", validation_size=100, seed=seed))
            val = _hashes(data.load("cifar10", "validation", validation_size=100, seed=seed))
            assert (len(train), len(val)) == (500, 100)
            assert not set(train) & set(val)
            assert sorted(train + val) == sorted(full)  # exactly the training set...
            assert not set(val) & set(test)  # ...never the test set
            # Fixed order: the same call gives the same sequence.
            assert _hashes(data.load("cifar10", "validation", validation_size=100, seed=seed)) == val
        other = _hashes(data.load("cifar10", "validation", validation_size=100, seed=1))
        first = _hashes(data.load("cifar10", "validation", validation_size=100, seed=0))
        assert other != first  # the seed picks the subset
        assert len(_hashes(data.load("cifar10", "train", validation_size=0))) == 600
        # make_datasets: no validation dataset when validation_size=0
        _, val_ds, _, _ = data.make_datasets("cifar10", batch_size=32, validation_size=0)
        assert val_ds is None


def test_imagenet_missing_archives_error_before_tfds(tmp_path, monkeypatch):
    def no_tfds(*args, **kwargs):
        raise AssertionError("tfds.load must not run")

    monkeypatch.setattr(tfds, "load", no_tfds)
    with pytest.raises(FileNotFoundError) as err:
        data.load("imagenet2012", "train", data_dir=str(tmp_path))
    msg = str(err.value)
    assert os.path.join(str(tmp_path), "downloads", "manual") in msg
    assert "ILSVRC2012_img_train.tar" in msg and "ILSVRC2012_img_val.tar" in msg
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "ILSVRC2012_img_train.tar").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="missing: ILSVRC2012_img_val.tar$"):
        data.load("imagenet2012", "test", data_dir=str(tmp_path), manual_dir=str(tmp_path / "manual"))
    # Another version prepared is not the pinned one: TFDS would prepare 5.1.0 from the tars.
    (tmp_path / "imagenet2012" / "5.0.0").mkdir(parents=True)
    (tmp_path / "imagenet2012" / "5.0.0" / "dataset_info.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match=r"is not prepared under .*missing: ILSVRC2012_img_train.tar"):
        data.load("imagenet2012", "test", data_dir=str(tmp_path))
    # Once TFDS has prepared the dataset, the tars are not needed.
    prepared = tmp_path / "imagenet2012" / "5.1.0"
    prepared.mkdir(parents=True)
    (prepared / "dataset_info.json").write_text("{}")
    with pytest.raises(AssertionError, match="tfds.load must not run"):
        data.load("imagenet2012", "test", data_dir=str(tmp_path))


# ----------------------------------------------------------------------------- normalisation


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "fashion_mnist", "imagenet2012"])
def test_eval_normalisation_exact(name):
    info = data.dataset_info(name)
    shape = (16, 32, 32, 3) if name == "imagenet2012" else (16,) + info.image_shape
    x = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    if name == "imagenet2012":  # normalisation of an already 224-sized image: check the formula
        normalise, _ = augment.normaliser(info)
        got = normalise(tf.constant(x, tf.float32)).numpy()
    else:
        ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(16, np.int32)))
        got = np.concatenate([b for b, _ in _batches(data.pipeline(ds, name, training=False, batch_size=5))])
    expected = (x.astype(np.float32) - np.float32(info.mean)) / np.float32(info.std)
    np.testing.assert_array_equal(got, expected)


def test_svhn_divides_by_255_without_augmentation():
    x = np.random.default_rng(1).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(8, dtype=np.int32)))
    ((got, labels),) = _batches(data.pipeline(ds, "svhn", training=True, batch_size=8, seed=0))
    order = np.argsort(labels)  # shuffled, but otherwise untouched
    np.testing.assert_array_equal(got[order], x.astype(np.float32) / np.float32(255))


# ----------------------------------------------------------------------------- augmentation


def _marker_images(name, n):
    """Constant images with two side-by-side markers, so position and mirroring show."""
    h, w, c = data.dataset_info(name).image_shape
    x = np.full((n, h, w, c), 200, np.uint8)
    x[:, h // 2, w // 2 - 6] = 10  # marker A
    x[:, h // 2, w // 2 - 5] = 250  # marker B, right of A unless flipped
    return x


def _decode(batch, name):
    """Per image: (row offset, column offset, flipped, padded rows, padded columns, fill ok)."""
    info = data.dataset_info(name)
    h, w, c = info.image_shape
    fill = augment._fill(info).numpy()
    a = (np.float32(10) - np.float32(info.mean)) / np.float32(info.std)
    b = (np.float32(250) - np.float32(info.mean)) / np.float32(info.std)
    out = []
    for img in batch:
        ra, ca = np.argwhere(np.all(np.isclose(img, a), -1))[0]
        rb, cb = np.argwhere(np.all(np.isclose(img, b), -1))[0]
        assert ra == rb and abs(ca - cb) == 1
        flipped = cb < ca
        dy = h // 2 - ra
        dx = (w // 2 - 6 - ca) if not flipped else (ca - (w - 1 - (w // 2 - 6)))
        pad = np.all(np.isclose(img, fill), -1)
        out.append((dy, dx, flipped, int(pad.all(1).sum()), int(pad.all(0).sum())))
    return np.array(out)


def _draws(name, fast, n=1200, seed=0):
    ds = tf.data.Dataset.from_tensor_slices((_marker_images(name, n), np.zeros(n, np.int32)))
    if fast:
        out = data.pipeline(ds, name, training=True, batch_size=200, seed=seed)
    else:
        tf.random.set_seed(seed)
        out = ds.map(lambda x, y: (data.reference_augment(x, name), y)).batch(200)
    return np.concatenate([_decode(x, name) for x, _ in _batches(out)])


@pytest.mark.parametrize("name", ["cifar10", "fashion_mnist", "mnist"])
def test_augmentation_statistics_match_reference(name):
    spec = data.dataset_info(name)
    p = spec.augmentation.pad
    for fast in (True, False):
        d = _draws(name, fast)
        n = len(d)
        dy, dx, flipped, pad_rows, pad_cols = d.T
        for off, pad in ((dy, pad_rows), (dx, pad_cols)):
            assert off.min() == -p and off.max() == p
            counts = np.bincount(off + p, minlength=2 * p + 1)
            expected = n / (2 * p + 1)
            chi2 = ((counts - expected) ** 2 / expected).sum()
            assert chi2 < 30, (fast, counts)  # df <= 8: p < 1e-3
            # Padding: exactly |offset| rows / columns of fill value appear.
            np.testing.assert_array_equal(pad, np.abs(off))
        if spec.augmentation.flip:
            assert abs(flipped.mean() - 0.5) < 4 * np.sqrt(0.25 / n)
        else:
            assert not flipped.any()


def test_cifar_padding_is_zero_after_normalisation():
    # fb.resnet.torch pads the normalised image with zeros (the mean colour).
    x = np.full((64, 32, 32, 3), 255, np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((x, np.zeros(64, np.int32)))
    batch, _ = _batches(data.pipeline(ds, "cifar10", training=True, batch_size=64, seed=0))[0]
    values = np.unique(batch.reshape(-1, 3), axis=0)
    expected = (np.float32(255) - np.float32(data.DATASETS["cifar10"].mean)) / np.float32(
        data.DATASETS["cifar10"].std
    )
    assert len(values) == 2
    assert any((v == 0).all() for v in values)
    assert any(np.allclose(v, expected) for v in values)


def test_seeded_pipeline_is_deterministic():
    x = np.random.default_rng(2).integers(0, 256, (300, 32, 32, 3), dtype=np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(300, dtype=np.int32)))

    def epochs(seed, n=2):
        p = data.pipeline(ds, "cifar10", training=True, batch_size=64, seed=seed)
        return [_batches(p) for _ in range(n)]

    a, b, c = epochs(7), epochs(7), epochs(8)
    for ea, eb in zip(a, b):
        assert len(ea) == 4  # 300 // 64, remainder dropped
        for (xa, ya), (xb, yb) in zip(ea, eb):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    assert not np.array_equal(a[0][0][1], a[1][0][1])  # reshuffled each epoch
    assert not np.array_equal(a[0][0][0], c[0][0][0])  # another seed, other batches
    eval_batches = _batches(data.pipeline(ds, "cifar10", training=False, batch_size=64))
    assert [len(y) for _, y in eval_batches] == [64, 64, 64, 64, 44]
    np.testing.assert_array_equal(np.concatenate([y for _, y in eval_batches]), np.arange(300))


def test_xla_and_plain_tf_augment_alike(monkeypatch):
    x = np.random.default_rng(4).integers(0, 256, (100, 32, 32, 3), dtype=np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(100, dtype=np.int32)))
    fast = _batches(data.pipeline(ds, "cifar10", training=True, batch_size=50, seed=5))
    monkeypatch.setattr(augment, "_xla_works", lambda: False)
    plain = _batches(data.pipeline(ds, "cifar10", training=True, batch_size=50, seed=5))
    for (xa, ya), (xb, yb) in zip(fast, plain):
        np.testing.assert_array_equal(ya, yb)
        np.testing.assert_allclose(xa, xb, rtol=1e-6, atol=1e-6)


def test_augment_false_is_normalisation_only():
    x = np.random.default_rng(3).integers(0, 256, (32, 32, 32, 3), dtype=np.uint8)
    ds = tf.data.Dataset.from_tensor_slices((x, np.arange(32, dtype=np.int32)))
    ((got, labels),) = _batches(
        data.pipeline(ds, "cifar10", training=True, batch_size=32, seed=0, augment=False)
    )
    info = data.DATASETS["cifar10"]
    expected = (x.astype(np.float32) - np.float32(info.mean)) / np.float32(info.std)
    np.testing.assert_array_equal(got, expected[labels])


# ----------------------------------------------------------------------------- IDX files


def _idx_bytes(array):
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.tobytes()


def _write_idx_set(directory, n_train=40, n_test=12, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test),
    }
    for fname, array in arrays.items():
        raw = _idx_bytes(array)
        if gz:
            (directory / (fname + ".gz")).write_bytes(gzip.compress(raw))
        else:
            (directory / fname).write_bytes(raw)
    return arrays


@pytest.fixture
def no_system_data(tmp_path, monkeypatch, replaced):
    """Search nowhere on this machine: no Debian dir, an empty Keras cache, no download."""
    replaced("fashion_mnist", source={"system_dirs": (str(tmp_path / "debian"),)})
    replaced("mnist", source={"system_dirs": (str(tmp_path / "debian-mnist"),)})
    monkeypatch.setattr(locations, "keras_cache_dir", lambda: str(tmp_path / "keras" / "datasets"))

    def offline(spec):
        raise OSError("no internet")

    monkeypatch.setattr(idx_files, "_keras_download", offline)
    monkeypatch.delenv("KZOO_DATA_DIR", raising=False)
    return tmp_path


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_mnist_from_data_dir(no_system_data, gz):
    arrays = _write_idx_set(no_system_data / "mine", gz=gz)
    test = list(data.load("fashion_mnist", "test", data_dir=str(no_system_data / "mine")))
    assert len(test) == 12
    image, label = test[3]
    assert image.dtype == tf.uint8 and image.shape == (28, 28, 1) and label.dtype == tf.int32
    np.testing.assert_array_equal(image.numpy()[..., 0], arrays["t10k-images-idx3-ubyte"][3])
    assert int(label) == arrays["t10k-labels-idx1-ubyte"][3]


def _first_test_image(**kwargs):
    return next(iter(data.load("fashion_mnist", "test", **kwargs)))[0].numpy()[..., 0]


def test_idx_carving_from_kzoo_data_dir(no_system_data, monkeypatch):
    """$KZOO_DATA_DIR/fashion-mnist is read (not the MNIST decoy beside it) and carved."""
    root = no_system_data / "kzoo"
    fashion = _write_idx_set(root / "fashion-mnist", seed=1)
    _write_idx_set(root / "mnist", seed=2, gz=False)
    monkeypatch.setenv("KZOO_DATA_DIR", str(root))
    full = np.stack([x.numpy() for x, _ in data.load("fashion_mnist", "train_full")])
    np.testing.assert_array_equal(full[..., 0], fashion["train-images-idx3-ubyte"])
    train = [x.numpy().tobytes() for x, _ in data.load("fashion_mnist", "train", validation_size=10)]
    val = [x.numpy().tobytes() for x, _ in data.load("fashion_mnist", "validation", validation_size=10)]
    assert (len(train), len(val)) == (30, 10)
    assert sorted(train + val) == sorted(x.tobytes() for x in full)
    assert not set(val) & {x.numpy().tobytes() for x, _ in data.load("fashion_mnist", "test")}


def test_idx_precedence(no_system_data, monkeypatch, replaced):
    """data_dir over $KZOO_DATA_DIR over the system folder over the Keras cache."""
    sets = {
        where: _write_idx_set(no_system_data / where / "fashion-mnist", seed=k)
        for k, where in enumerate(("arg", "env", "debian-root", "keras/datasets"))
    }
    replaced(
        "fashion_mnist", source={"system_dirs": (str(no_system_data / "debian-root" / "fashion-mnist"),)}
    )
    replaced("mnist", source={"system_dirs": ()})
    monkeypatch.setenv("KZOO_DATA_DIR", str(no_system_data / "env"))

    def expect(where, **kwargs):
        np.testing.assert_array_equal(_first_test_image(**kwargs), sets[where]["t10k-images-idx3-ubyte"][0])

    expect("arg", data_dir=str(no_system_data / "arg"))
    expect("env")
    monkeypatch.setenv("KZOO_DATA_DIR", "")  # empty: as if unset
    expect("debian-root")
    replaced("fashion_mnist", source={"system_dirs": (str(no_system_data / "nowhere"),)})
    expect("keras/datasets")


def test_mnist_from_keras_cache_npz(no_system_data):
    """With no location given, MNIST's mnist.npz in the Keras cache is used."""
    cache = no_system_data / "keras" / "datasets"
    cache.mkdir(parents=True)
    np.savez(
        cache / "mnist.npz",
        x_train=np.ones((20, 28, 28), np.uint8),
        y_train=np.arange(20) % 10,
        x_test=np.zeros((5, 28, 28), np.uint8),
        y_test=np.arange(5),
    )
    assert len(list(data.load("mnist", "test"))) == 5


def _idx_location(tmp, layout):
    """A location laid out as ``layout`` for Fashion-MNIST (see the test below)."""
    where = tmp / "given"
    if layout == "file":
        where.write_bytes(b"not a folder")
    elif layout == "empty":
        where.mkdir()
    elif layout == "no_t10k":  # the train pair only, in the folder itself
        _write_idx_set(where)
        for f in where.glob("t10k-*"):
            f.unlink()
    elif layout == "sub_no_train_labels":  # the subfolder lacks one file; the root is complete
        _write_idx_set(where / "fashion-mnist")
        (where / "fashion-mnist" / "train-labels-idx1-ubyte.gz").unlink()
        _write_idx_set(where, seed=5)
    return where


@pytest.mark.parametrize("how", ["data_dir", "env"])
@pytest.mark.parametrize(
    "layout, err, match",
    [
        ("missing", FileNotFoundError, r"`{arg}`='{where}' does not exist"),
        ("file", ValueError, r"`{arg}`='{where}' is a file, not a directory"),
        (
            "empty",
            FileNotFoundError,
            r"fashion_mnist not found under `{arg}`='{where}': none of "
            r"train-images-idx3-ubyte\[\.gz\].*no other copy",
        ),
        (
            "no_t10k",
            FileNotFoundError,
            r"the folder '{where}' \(from `{arg}`\) holds only some of the IDX files; "
            r"missing there: t10k-images-idx3-ubyte\[\.gz\], "
            r"t10k-labels-idx1-ubyte\[\.gz\]\.",
        ),
        (
            "sub_no_train_labels",
            FileNotFoundError,
            r"the folder '{where}/fashion-mnist' \(from `{arg}`\) .*"
            r"missing there: train-labels-idx1-ubyte\[\.gz\]\.",
        ),
    ],
)
def test_given_idx_location_is_authoritative(no_system_data, monkeypatch, how, layout, err, match):
    """A location the user named is the only one read: a complete copy in the system
    folder (which the old search fell through to) must not hide a wrong location."""
    _write_idx_set(no_system_data / "debian")  # what a fall-through would silently use
    where = _idx_location(no_system_data, layout)
    kwargs = {}
    if how == "env":
        monkeypatch.setenv("KZOO_DATA_DIR", str(where))
    else:
        monkeypatch.setenv("KZOO_DATA_DIR", str(no_system_data / "debian"))  # data_dir wins
        kwargs["data_dir"] = str(where)
    arg = re.escape("$KZOO_DATA_DIR" if how == "env" else "data_dir")
    with pytest.raises(err, match=match.format(arg=arg, where=re.escape(str(where)))):
        data.load("fashion_mnist", "test", **kwargs)
    with pytest.raises(err, match=match.format(arg=arg, where=re.escape(str(where)))):
        data.make_datasets("fashion_mnist", batch_size=4, validation_size=10, **kwargs)


def test_missing_idx_lists_every_default_place(no_system_data):
    """With no location given, every default place and the failed download are listed."""
    with pytest.raises(FileNotFoundError) as err:
        data.load("mnist", "train")
    msg = str(err.value)
    for place in (
        "debian-mnist",
        os.path.join("keras", "datasets", "mnist"),
        os.path.join("keras", "datasets", "mnist.npz"),
    ):
        assert str(no_system_data / place) in msg
    assert "keras.datasets" in msg and "no internet" in msg


@pytest.mark.parametrize("name", ["cifar10", "svhn", "imagenet2012"])
@pytest.mark.parametrize(
    "case, err, match",
    [
        (
            "data_dir_missing",
            FileNotFoundError,
            r"`data_dir`='.*tfds' does not exist; create it if TFDS should download and prepare",
        ),
        ("data_dir_file", ValueError, r"`data_dir`='.*tfds' is a file, not a directory"),
        ("manual_missing", FileNotFoundError, r"`manual_dir`='.*manual' does not exist"),
        ("manual_file", ValueError, r"`manual_dir`='.*manual' is a file, not a directory"),
    ],
)
def test_given_tfds_dirs_must_exist(tmp_path, monkeypatch, name, case, err, match):
    """A misspelt TFDS data_dir / manual_dir must not make TFDS download a fresh copy."""

    def no_tfds(*args, **kwargs):
        raise AssertionError("tfds.load must not run")

    monkeypatch.setattr(tfds, "load", no_tfds)
    data_dir, manual = tmp_path / "tfds", tmp_path / "manual"
    if case == "data_dir_file":
        data_dir.write_bytes(b"")
    elif case != "data_dir_missing":
        data_dir.mkdir()
    if case == "manual_file":
        manual.write_bytes(b"")
    kwargs = {"data_dir": str(data_dir)}
    if case.startswith("manual"):
        kwargs["manual_dir"] = str(manual)
    with pytest.raises(err, match=match):
        data.load(name, "train", **kwargs)
    with pytest.raises(err, match=match):
        data.make_datasets(name, batch_size=8, **kwargs)


def test_imagenet_missing_data_dir_says_where_the_tars_go(tmp_path):
    """ImageNet cannot be downloaded, so a missing data_dir also says where the tars go."""
    with pytest.raises(
        FileNotFoundError,
        match=r"does not exist.*ILSVRC2012_img_train\.tar and "
        r"ILSVRC2012_img_val\.tar .*downloads/manual",
    ):
        data.load("imagenet2012", "test", data_dir=str(tmp_path / "nope"))


# ----------------------------------------------------------------------------- IDX contents


def _raw_idx(type_byte, shape, body=b""):
    return bytes([0, 0, type_byte, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape) + body


@pytest.mark.parametrize(
    "raw",
    [
        _raw_idx(0x08, (2**31, 2**31, 4)),  # 2**64 bytes: wraps to 0 in int64
        _raw_idx(0x0E, (2**30, 2**30, 2**4)),  # float64: 2**67 bytes
        _raw_idx(0x08, (2**16, 2**16, 2**16), b"\0" * 16),
        _raw_idx(0x08, (2**32 - 1, 2**32 - 1)),
    ],
    ids=["int64-wrap", "float64", "2**48", "2d-max"],
)
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_refuses_absurd_sizes(tmp_path, raw, gz):
    """A header asking for more than MAX_IDX_BYTES is refused, naming the file, before
    numpy sizes overflow or memory is spent."""
    path = tmp_path / ("huge-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(
        ValueError,
        match=rf"Corrupt IDX file '{re.escape(str(path))}': header says "
        r"shape .* bytes of data\), more than the 4294967296 bytes",
    ):
        data.read_idx(path)


def test_read_idx_of_absurd_training_file_names_it(no_system_data):
    """The same through load: the training images' file is named."""
    d = no_system_data / "huge"
    _write_idx_set(d, gz=False)
    (d / "train-images-idx3-ubyte").write_bytes(_raw_idx(0x08, (2**31, 2**31, 4)))
    with pytest.raises(ValueError, match=r"Corrupt IDX file .*huge/train-images-idx3-ubyte'.*more than"):
        data.load("fashion_mnist", "train_full", data_dir=str(d))


@pytest.mark.parametrize(
    "fname, raw, match",
    [
        (
            "train-images-idx3-ubyte",
            _idx_bytes(np.zeros((40, 32, 32))),
            r"'.*/train-images-idx3-ubyte' holds 32x32 images, but fashion_mnist's are 28x28",
        ),
        (
            "t10k-images-idx3-ubyte",
            _idx_bytes(np.zeros((12, 32, 32))),
            r"'.*/t10k-images-idx3-ubyte' holds 32x32 images, but fashion_mnist's are 28x28",
        ),
        (
            "t10k-images-idx3-ubyte",
            _idx_bytes(np.zeros((12, 28, 28, 3))),
            r"'.*/t10k-images-idx3-ubyte' must hold uint8 images \[N, H, W\].* 4 dimensions",
        ),
        (
            "train-images-idx3-ubyte",
            _idx_bytes(np.zeros((40, 784))),
            r"'.*/train-images-idx3-ubyte' must hold uint8 images \[N, H, W\].* 2 dimensions",
        ),
        (
            "train-labels-idx1-ubyte",
            _idx_bytes(np.zeros((40, 1))),
            r"'.*/train-labels-idx1-ubyte' must hold 40 labels .* 2 dimensions",
        ),
        (
            "t10k-labels-idx1-ubyte",
            _idx_bytes(np.full(12, 10)),
            r"'.*/t10k-labels-idx1-ubyte' has labels outside \[0, 10\)",
        ),
        (
            "t10k-labels-idx1-ubyte",
            _raw_idx(0x0D, (12,), np.full(12, 1.5, ">f4").tobytes()),
            r"'.*/t10k-labels-idx1-ubyte' must hold integer labels, got >f4",
        ),
    ],
    ids=["train-32x32", "test-32x32", "images-4d", "images-2d", "labels-2d", "labels-range", "labels-float"],
)
def test_wrong_idx_contents_name_the_file(no_system_data, fname, raw, match):
    """Files of the wrong shape or kind are refused naming the file, not the split."""
    d = no_system_data / "wrong"
    _write_idx_set(d, gz=False)
    (d / fname).write_bytes(raw)
    with pytest.raises(ValueError, match=match):
        data.load("fashion_mnist", "test", data_dir=str(d))


def test_corrupt_idx_file(no_system_data):
    d = no_system_data / "bad"
    _write_idx_set(d, gz=False)
    raw = (d / "train-images-idx3-ubyte").read_bytes()
    (d / "train-images-idx3-ubyte").write_bytes(raw[:-100])  # truncated
    with pytest.raises(ValueError, match="Corrupt IDX file .*train-images-idx3-ubyte"):
        data.load("fashion_mnist", "train_full", data_dir=str(d))
    (d / "train-images-idx3-ubyte").write_bytes(b"\x12\x34" + raw[2:])
    with pytest.raises(ValueError, match="not an IDX file: bad magic number 1234"):
        data.load("fashion_mnist", "train_full", data_dir=str(d))
    (d / "train-images-idx3-ubyte").unlink()
    (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw)[:50])
    with pytest.raises(ValueError, match="Corrupt gzip file .*train-images-idx3-ubyte.gz"):
        data.load("fashion_mnist", "train_full", data_dir=str(d))
    (d / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(raw + b"extra"))
    with pytest.raises(ValueError, match="Corrupt IDX file .*train-images-idx3-ubyte.gz.*holds more"):
        data.load("fashion_mnist", "train_full", data_dir=str(d))


@pytest.mark.skipif(
    not os.path.isdir("/usr/share/datasets/fashion-mnist"),
    reason="Debian's dataset-fashion-mnist is not installed",
)
def test_real_fashion_mnist(monkeypatch):
    monkeypatch.delenv("KZOO_DATA_DIR", raising=False)
    monkeypatch.setattr(locations, "keras_cache_dir", lambda: "/nonexistent")
    train = data.load("fashion_mnist", "train_full")
    test = data.load("fashion_mnist", "test")
    assert int(train.cardinality()) == 60000 and int(test.cardinality()) == 10000
    assert int(data.load("fashion_mnist", "train").cardinality()) == 55000
    assert train.element_spec[0].shape == (28, 28, 1) and train.element_spec[0].dtype == tf.uint8
    images = np.concatenate([x.numpy() for x, _ in train.batch(20000)])
    # The DatasetSpec constants are these files' statistics.
    info = data.DATASETS["fashion_mnist"]
    assert images.mean() == pytest.approx(info.mean[0], abs=1e-3)
    assert images.std(dtype=np.float64) == pytest.approx(info.std[0], abs=1e-3)


# ----------------------------------------------------------------------------- numbers, names


@pytest.fixture
def unread_idx_dir(no_system_data, monkeypatch):
    """A complete IDX folder that must not be read: argument checks come first."""
    d = no_system_data / "unread"
    _write_idx_set(d)

    def no_read(path):
        raise AssertionError(f"read {path} before checking the arguments")

    monkeypatch.setattr(idx_files, "read_idx", no_read)
    monkeypatch.setattr(idx_files, "_IDX_CACHE", {})
    return str(d)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (
            {"train_fraction": float("nan")},
            ValueError,
            r"`train_fraction` must be a finite number greater than 0 "
            r"and at most 1 or None, got nan",
        ),
        ({"train_fraction": float("inf")}, ValueError, r"`train_fraction` must be a finite number.*got inf"),
        (
            {"train_fraction": 0},
            ValueError,
            r"`train_fraction` must be a finite number greater than 0.*got 0.0",
        ),
        (
            {"train_fraction": 1.5},
            ValueError,
            r"`train_fraction` must be a finite number.*at most 1.*got 1.5",
        ),
        ({"train_fraction": True}, TypeError, r"`train_fraction` must be a finite number.*got True"),
        ({"train_fraction": "0.5"}, TypeError, r"`train_fraction` must be a finite number.*got '0.5'"),
        ({"validation_size": float("nan")}, TypeError, r"`validation_size` must be an integer at least 0"),
        (
            {"validation_size": -5},
            ValueError,
            r"`validation_size` must be an integer at least 0 or None, got -5",
        ),
        ({"batch_size": 2.0}, TypeError, r"`batch_size` must be an integer at least 1, got 2.0"),
        ({"batch_size": np.int64(0)}, ValueError, r"`batch_size` must be an integer at least 1, got 0"),
        ({"seed": -1}, ValueError, r"`seed` must be an integer in \[0, 4294967295\] or None, got -1"),
        (
            {"seed": 2**40},
            ValueError,
            r"`seed` must be an integer in \[0, 4294967295\] or None, got 1099511627776",
        ),
        ({"seed": 1.0}, TypeError, r"`seed` must be an integer in \[0, 4294967295\] or None, got 1.0"),
        ({"split_seed": -1}, ValueError, r"`split_seed` must be an integer in \[0, 4294967295\], got -1"),
        (
            {"split_seed": 2**32},
            ValueError,
            r"`split_seed` must be an integer in \[0, 4294967295\], got 4294967296",
        ),
        ({"split_seed": None}, TypeError, r"`split_seed` must be an integer in \[0, 4294967295\], got None"),
        ({"augment": "yes"}, TypeError, r"`augment` must be True or False, got 'yes'"),
        ({"augment": 1}, TypeError, r"`augment` must be True or False, got 1"),
        ({"data_dir": 3}, TypeError, r"`data_dir` must be a path or None, got 3"),
        ({"manual_dir": b"/tmp"}, TypeError, r"`manual_dir` must be a path or None"),
    ],
)
def test_make_datasets_checks_everything_before_reading(unread_idx_dir, kwargs, err, match):
    """Each bad value fails with its own message before a file is read."""
    args = {"batch_size": 8, "data_dir": unread_idx_dir, "validation_size": 10, **kwargs}
    with pytest.raises(err, match=match):
        data.make_datasets("fashion_mnist", **args)


@pytest.mark.parametrize(
    "call, err, match",
    [
        (
            lambda: data.load("cifar10", "train", seed=-1),
            ValueError,
            r"`seed` must be an integer in \[0, 4294967295\], got -1",
        ),
        (
            lambda: data.load("mnist", "train", seed=2**40),
            ValueError,
            r"`seed` must be an integer in \[0, 4294967295\]",
        ),
        (
            lambda: data.tfds_split("cifar10", "train", seed=-3),
            ValueError,
            r"`seed` must be an integer in \[0, 4294967295\]",
        ),
        (
            lambda: data.tfds_split("cifar10", "train", seed=2**33),
            ValueError,
            r"`seed` must be an integer in \[0, 4294967295\]",
        ),
        (
            lambda: data.train_examples("cifar10", train_fraction=float("nan")),
            ValueError,
            r"`train_fraction` must be a finite",
        ),
        (
            lambda: data.train_examples("cifar10", train_fraction=-0.5),
            ValueError,
            r"`train_fraction` must be a finite",
        ),
        (
            lambda: data.num_examples("cifar10", "train", validation_size=True),
            TypeError,
            r"`validation_size` must be an integer at least 0 or None, got True",
        ),
    ],
)
def test_numbers_checked_everywhere(call, err, match):
    with pytest.raises(err, match=match):
        call()


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"seed": -1}, ValueError, r"`seed` must be an integer in \[0, 4294967295\] or None, got -1"),
        ({"seed": 2**40}, ValueError, r"`seed` must be an integer in \[0, 4294967295\] or None"),
        ({"training": 1}, TypeError, r"`training` must be True or False, got 1"),
        ({"augment": None}, TypeError, r"`augment` must be True or False, got None"),
        ({"drop_remainder": "no"}, TypeError, r"`drop_remainder` must be None, True or False, got 'no'"),
        ({"batch_size": float("inf")}, TypeError, r"`batch_size` must be an integer at least 1, got inf"),
    ],
)
def test_pipeline_checks_its_arguments(kwargs, err, match):
    ds = tf.data.Dataset.from_tensor_slices((np.zeros((4, 32, 32, 3), np.uint8), np.zeros(4, np.int32)))
    args = {"training": True, "batch_size": 2, **kwargs}
    with pytest.raises(err, match=match):
        data.pipeline(ds, "cifar10", **args)


@pytest.mark.parametrize(
    "args, expected",
    [
        (("cifar10", 128), 45000 // 128),
        (("cifar10", 128, 0), 50000 // 128),
        (("imagenet2012", 256, None, 0.1), 127117 // 256),  # ceil(0.1 * 1,271,167)
        (("fashion_mnist", 55000), 1),
    ],
)
def test_steps_per_epoch(args, expected):
    assert data.steps_per_epoch(*args) == expected


@pytest.mark.parametrize(
    "args, match",
    [
        (
            ("fashion_mnist", 55001),
            r"`batch_size` 55001 is larger than the 55000 training examples of fashion_mnist "
            r"\(validation_size=5000\): 0 steps per epoch",
        ),
        (
            ("cifar10", 512, 49700),
            r"`batch_size` 512 is larger than the 300 training examples of cifar10 "
            r"\(validation_size=49700\): 0 steps per epoch",
        ),
        (
            ("cifar10", 64, None, 0.001),
            r"`batch_size` 64 is larger than the 45 training examples of cifar10 "
            r"\(validation_size=5000 and train_fraction=0.001\): 0 steps",
        ),
        (("svhn_extra", 10**6), r"larger than the 598388 training examples of svhn_extra"),
    ],
)
def test_steps_per_epoch_refuses_zero_steps(args, match):
    """A batch larger than the training split would train on nothing: refused up front."""
    with pytest.raises(ValueError, match=match):
        data.steps_per_epoch(*args)


def test_make_datasets_refuses_zero_steps_before_reading(unread_idx_dir):
    with pytest.raises(ValueError, match=r"`batch_size` 60000 is larger than the 55000 training examples"):
        data.make_datasets("fashion_mnist", batch_size=60000, data_dir=unread_idx_dir)


@pytest.mark.parametrize(
    "kwargs, n_train, n_test, match",
    [
        (
            {"batch_size": 64, "validation_size": 0},
            40,
            12,
            r"fashion_mnist: the training split read from the folder '.*small' \(from `data_dir`\) has 40 examples "
            r"\(40 after holding out validation_size=0\), fewer than batch_size=64: 0 steps per epoch",
        ),
        (
            {"batch_size": 32, "validation_size": 10},
            40,
            12,
            r"the training split .* has 30 examples \(30 after holding out validation_size=10\), "
            r"fewer than batch_size=32",
        ),
        (
            {"batch_size": 25, "validation_size": 0, "train_fraction": 0.5},
            40,
            12,
            r"has 20 examples \(40 after holding out validation_size=0, then train_fraction=0.5\), "
            r"fewer than batch_size=25",
        ),
        ({"batch_size": 4, "validation_size": 0}, 0, 12, r"the training split .*small.* has 0 examples"),
        (
            {"batch_size": 4, "validation_size": 10},
            40,
            0,
            r"fashion_mnist: the test split read from the folder '.*small' \(from `data_dir`\) is empty",
        ),
    ],
)
def test_make_datasets_refuses_empty_loaded_splits(no_system_data, kwargs, n_train, n_test, match):
    """Small files that pass the size constants but give no full batch or no test data."""
    _write_idx_set(no_system_data / "small", n_train=n_train, n_test=n_test)
    with pytest.raises(ValueError, match=match):
        data.make_datasets("fashion_mnist", data_dir=str(no_system_data / "small"), **kwargs)


def test_make_datasets_refuses_empty_validation_split(replaced):
    """TFDS data smaller than its constants: the validation window lands past its end."""
    part = data.TrainPart(split="train", size=600)
    replaced("cifar10", train_size=600, validation_size=100, source={"train_parts": (part,)})
    start = _windows((part,), 100, 0)[0][2]
    assert start >= 50  # the fake train split below has 50 examples
    with tfds.testing.mock_data(as_dataset_fn=_fake_split_data({"train": 50, "test": 20})):
        with pytest.raises(
            ValueError,
            match=r"cifar10: the validation split read from the TFDS data_dir "
            r"'.*' is empty \(validation_size=100\)",
        ):
            data.make_datasets("cifar10", batch_size=8, validation_size=100)


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda: data.dataset_info("cifar11"),
            r"Unknown dataset 'cifar11'.*Did you mean 'cifar10' or 'cifar100'\?",
        ),
        (
            lambda: data.dataset_info("fashion-mnist"),
            r"Unknown dataset 'fashion-mnist'.*Did you mean 'fashion_mnist'",
        ),
        (lambda: data.load("imagenet", "test"), r"Unknown dataset 'imagenet'.*Did you mean 'imagenet2012'"),
        (lambda: data.steps_per_epoch("svhn-extra", 8), r"Did you mean 'svhn_extra'"),
        (
            lambda: data.load("cifar10", "valid"),
            r"`split` must be one of .*got 'valid'\. Did you mean 'validation'\?",
        ),
        (lambda: data.num_examples("mnist", "training"), r"`split` must be one of .*Did you mean 'train'"),
        (lambda: data.tfds_split("cifar10", "tets"), r"`split` must be one of .*Did you mean 'test'\?"),
    ],
)
def test_unknown_names_suggest_the_closest(call, match):
    with pytest.raises(ValueError, match=match):
        call()
