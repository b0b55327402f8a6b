"""Random erasing (``augment.random_erasing_fn``, ``pipeline(random_erasing=...)``): one
rectangle of the stated area and aspect per erased image, the stated share of images
erased, seeded, off by default without changing a bit of the pipeline's batches, and
refused (before any data is read) when it is not a probability or has no ``augment``."""

import math

import numpy as np
import pytest
import tensorflow as tf

from kzoo import data
from kzoo.data import augment, pipelines

AREA, ASPECT = (0.02, 0.4), 0.3


def _seed(a, b=0):
    return tf.constant([a, b], tf.int64)


def _dataset(name, n, value=None, seed=0):
    """n uint8 images of ``name``'s shape (32x32 for ImageNet's any-size images), all
    pixels ``value``, or random when None; labels 0..n-1."""
    h, w, c = (32, 32, 3) if name == "imagenet2012" else data.dataset_info(name).image_shape
    rng = np.random.default_rng(seed)
    if value is None:
        x = rng.integers(0, 256, (n, h, w, c), dtype=np.uint8)
    else:
        x = np.full((n, h, w, c), value, np.uint8)
    return tf.data.Dataset.from_tensor_slices((x, np.arange(n, dtype=np.int32)))


def _run(name, n, *, value=None, batch_size=None, **kwargs):
    args = {"training": True, "batch_size": batch_size or n, "seed": 0, **kwargs}
    return [(x.numpy(), y.numpy()) for x, y in data.pipeline(_dataset(name, n, value), name, **args)]


def _rectangle(mask):
    """(height, width) of ``mask``'s True pixels ([H, W]) when they are one filled
    rectangle, (0, 0) when there are none; an AssertionError otherwise."""
    if not mask.any():
        return 0, 0
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    box = mask[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    assert box.all() and mask.sum() == box.size, "the erased pixels are not one rectangle"
    return box.shape


def _check_rectangles(masks, area=AREA, aspect=ASPECT):
    """Every [H, W] mask one rectangle whose sides, before rounding to whole pixels (at
    most half a pixel each way) and clipping to the image, give an area fraction in
    ``area`` and a height / width in [aspect, 1 / aspect]. The (height, width)s."""
    h, w = masks.shape[1:3]
    sides = np.array([_rectangle(m) for m in masks], float)
    eh, ew = sides.T
    assert (eh >= 1).all() and (ew >= 1).all(), "an image was not erased"
    clipped = (eh == h) | (ew == w)
    assert ((eh + 0.5) * (ew + 0.5) >= area[0] * h * w).all(), "a rectangle smaller than area[0]"
    assert (clipped | ((eh - 0.5) * (ew - 0.5) <= area[1] * h * w)).all(), "a rectangle larger than area[1]"
    assert (eh * ew <= area[1] * h * w + 0.5 * (h + w)).all()  # clipping only makes them smaller
    assert (clipped | ((eh + 0.5) / (ew - 0.5) >= aspect)).all(), "too wide"
    assert (clipped | ((eh - 0.5) / (ew + 0.5) <= 1 / aspect)).all(), "too tall"
    return sides


# ----------------------------------------------------------------------------- the function alone


def test_one_rectangle_of_the_stated_area_and_aspect():
    spec = data.dataset_info("cifar10")  # 32x32x3
    n = 1000
    out = augment.random_erasing_fn(spec, 1.0)(tf.ones([n, 32, 32, 3]), _seed(3)).numpy()
    assert out.dtype == np.float32 and out.shape == (n, 32, 32, 3)
    assert set(np.unique(out)) == {0.0, 1.0}
    zero = out == 0
    assert (zero.all(-1) == zero.any(-1)).all()  # every channel of a pixel erased
    eh, ew = _check_rectangles(zero[..., 0]).T
    fraction = eh * ew / (32 * 32)
    # The draws cover their ranges: area uniform in [0.02, 0.4] (mean 0.21, a little less
    # after clipping), log aspect uniform in [log 0.3, -log 0.3] (symmetric about 0).
    assert fraction.min() < 0.04 and fraction.max() > 0.35
    assert 0.19 < fraction.mean() < 0.22
    log_aspect = np.log(eh / ew)
    assert abs(log_aspect.mean()) < 0.1 and log_aspect.min() < -0.9 and log_aspect.max() > 0.9
    # Placed uniformly where it fits: the corners reach both edges, and every pixel is hit.
    tops = zero[..., 0].any(2).argmax(1)
    assert tops.min() == 0 and (tops + eh).max() == 32
    assert zero[..., 0].any(0).all()


def test_other_area_and_aspect_and_unknown_batch_size():
    spec = data.dataset_info("fashion_mnist")  # 28x28x1
    fn = augment.random_erasing_fn(spec, 1.0, area=(0.1, 0.2), aspect=0.5)
    graph = tf.function(fn, input_signature=[tf.TensorSpec([None, 28, 28, 1]), tf.TensorSpec([2], tf.int64)])
    out = graph(tf.ones([300, 28, 28, 1]), _seed(1)).numpy()
    np.testing.assert_array_equal(out, fn(tf.ones([300, 28, 28, 1]), _seed(1)).numpy())
    eh, ew = _check_rectangles(out[..., 0] == 0, area=(0.1, 0.2), aspect=0.5).T
    assert (eh * ew < 0.3 * 784).all()  # not the default range
    with pytest.raises((ValueError, tf.errors.InvalidArgumentError), match="28, ?28, ?1"):
        fn(tf.ones([2, 32, 32, 1]), _seed(1))  # the spec's image shape only


def test_the_share_erased():
    spec = data.dataset_info("fashion_mnist")
    n = 2000
    for p in (0.0, 0.25, 0.5, 1.0):
        out = augment.random_erasing_fn(spec, p)(tf.ones([n, 28, 28, 1]), _seed(7)).numpy()
        erased = (out == 0).any(axis=(1, 2, 3))
        assert abs(erased.mean() - p) <= 4 * math.sqrt(p * (1 - p) / n), (p, erased.mean())
        if 0 < p < 1:
            _check_rectangles(out[erased][..., 0] == 0)
            assert (out[~erased] == 1).all()


def test_the_seed_decides():
    spec = data.dataset_info("cifar10")
    fn = augment.random_erasing_fn(spec, 0.5)
    x = tf.random.stateless_normal([64, 32, 32, 3], _seed(0))
    a, b = fn(x, _seed(1, 2)).numpy(), fn(x, _seed(1, 2)).numpy()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a == 0, fn(x, _seed(1, 3)).numpy() == 0)
    np.testing.assert_array_equal(a[a != 0], x.numpy()[a != 0])  # the rest untouched
    with pytest.raises(tf.errors.InvalidArgumentError):
        fn(x, tf.constant([1, 2, 3], tf.int64))


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        ({"probability": -0.1}, ValueError, "`probability`"),
        ({"probability": 1.5}, ValueError, "`probability`"),
        ({"probability": float("nan")}, ValueError, "`probability`"),
        ({"probability": "x"}, TypeError, "`probability`"),
        ({"area": (0.4, 0.02)}, ValueError, r"`area\[1\]`"),
        ({"area": (0.0, 0.4)}, ValueError, r"`area\[0\]`"),
        ({"area": 0.4}, TypeError, "`area`"),
        ({"aspect": 0}, ValueError, "`aspect`"),
        ({"aspect": 2}, ValueError, "`aspect`"),
    ],
)
def test_the_function_checks_its_arguments(kwargs, err, match):
    args = {"probability": 0.5, **kwargs}
    with pytest.raises(err, match=match):
        augment.random_erasing_fn(data.dataset_info("cifar10"), **args)


# ----------------------------------------------------------------------------- in the pipeline


@pytest.mark.parametrize("name", ["fashion_mnist", "cifar10", "svhn", "imagenet2012"])
def test_off_by_default_and_bit_identical_at_zero(name):
    n = 16 if name == "imagenet2012" else 96
    kwargs = {"batch_size": 8 if name == "imagenet2012" else 32}
    before = _run(name, n, **kwargs)
    for off in (0, 0.0):
        for (xa, ya), (xb, yb) in zip(before, _run(name, n, random_erasing=off, **kwargs), strict=True):
            np.testing.assert_array_equal(xa, xb)
            np.testing.assert_array_equal(ya, yb)
    # On: erasing on top of the same shuffle, crops and flips; nothing else changes.
    on = _run(name, n, random_erasing=1.0, **kwargs)
    for (xa, ya), (xb, yb) in zip(before, on, strict=True):
        np.testing.assert_array_equal(ya, yb)
        changed = xa != xb
        assert changed.any(axis=(1, 2, 3)).mean() > 0.9  # (an erased pixel may have been 0 already)
        assert (xb[changed] == 0).all()


@pytest.mark.parametrize("name", ["fashion_mnist", "mnist", "svhn", "imagenet2012"])
def test_every_training_image_erased_once_at_one(name):
    """Constant pixels of 200 never normalise to 0, nor do these datasets' paddings: the
    zeros are the erased rectangle (after the pad-crop-flip, the random-resized crop,
    or, for SVHN, on its own)."""
    n = 16 if name == "imagenet2012" else 200
    batches = _run(name, n, value=200, batch_size=8 if name == "imagenet2012" else 50, random_erasing=1.0)
    x = np.concatenate([b for b, _ in batches])
    assert x.shape == (n,) + data.dataset_info(name).image_shape
    zero = x == 0
    assert (zero.all(-1) == zero.any(-1)).all()
    _check_rectangles(zero[..., 0])


def test_pipeline_erases_the_stated_share_each_epoch_anew():
    n = 2000
    ds = _dataset("fashion_mnist", n, value=200)
    p = data.pipeline(ds, "fashion_mnist", training=True, batch_size=500, seed=1, random_erasing=0.5)
    epochs = []
    for _ in range(2):
        x = np.concatenate([b.numpy() for b, _ in p])
        erased = (x == 0).any(axis=(1, 2, 3))
        assert abs(erased.mean() - 0.5) <= 4 * math.sqrt(0.25 / n)
        epochs.append(x == 0)
    assert not np.array_equal(epochs[0], epochs[1])


def test_pipeline_seed_decides_the_rectangles():
    def zeros(seed, **kwargs):
        b = _run("svhn", 64, value=200, seed=seed, random_erasing=0.5, **kwargs)
        return np.concatenate([x for x, _ in b]) == 0

    np.testing.assert_array_equal(zeros(3), zeros(3))
    assert not np.array_equal(zeros(3), zeros(4))
    # Unseeded, and a last batch of another size (drop_remainder=False), work too.
    z = zeros(None, batch_size=24, drop_remainder=False)
    assert z.shape[0] == 64 and 0 < z.any(axis=(1, 2, 3)).mean() < 1


def test_evaluation_is_never_erased():
    plain = _run("cifar10", 64, training=False, batch_size=32)
    asked = _run("cifar10", 64, training=False, batch_size=32, random_erasing=1.0)
    for (xa, _), (xb, _) in zip(plain, asked, strict=True):
        np.testing.assert_array_equal(xa, xb)


# ----------------------------------------------------------------------------- bad values


@pytest.fixture
def unreadable(monkeypatch, tmp_path):
    """A data_dir that is not there, and no split may be read: the argument checks must
    fail first."""

    def no(*args, **kwargs):
        raise AssertionError("looked at the data before checking `random_erasing`")

    monkeypatch.setattr(pipelines, "check_dirs", no)
    monkeypatch.setattr(pipelines, "read_split", no)
    return str(tmp_path / "not-there")


BAD = [
    (-0.1, ValueError, r"`random_erasing` must be a finite number in \[0, 1\], got -0.1"),
    (1.5, ValueError, r"`random_erasing` must be a finite number in \[0, 1\], got 1.5"),
    (float("nan"), ValueError, r"`random_erasing` must be a finite number in \[0, 1\], got nan"),
    (float("inf"), ValueError, r"`random_erasing` must be a finite number"),
    ("x", TypeError, r"`random_erasing` must be a finite number in \[0, 1\], got 'x'"),
    (True, TypeError, r"`random_erasing` must be a finite number"),
    (None, TypeError, r"`random_erasing` must be a finite number"),
]


@pytest.mark.parametrize("value, err, match", BAD)
def test_bad_values_are_refused_before_reading(unreadable, value, err, match):
    with pytest.raises(err, match=match):
        data.make_datasets("fashion_mnist", batch_size=32, data_dir=unreadable, random_erasing=value)
    with pytest.raises(err, match=match):
        data.pipeline(
            _dataset("fashion_mnist", 4), "fashion_mnist", training=True, batch_size=2, random_erasing=value
        )


def test_a_nonexistent_data_dir_is_named_when_random_erasing_is_fine(tmp_path):
    # The fixture above is not vacuous: with a good value, the folder is what fails.
    with pytest.raises(FileNotFoundError, match="not-there"):
        data.make_datasets(
            "fashion_mnist", batch_size=32, data_dir=str(tmp_path / "not-there"), random_erasing=0.5
        )


@pytest.mark.parametrize("training", [True, False])
def test_erasing_needs_augment(unreadable, training):
    match = r"`random_erasing`=0.5 is a training augmentation: it needs `augment=True`"
    with pytest.raises(ValueError, match=match):
        data.make_datasets(
            "fashion_mnist", batch_size=32, augment=False, random_erasing=0.5, data_dir=unreadable
        )
    with pytest.raises(ValueError, match=match):
        data.pipeline(
            _dataset("fashion_mnist", 4),
            "fashion_mnist",
            training=training,
            batch_size=2,
            augment=False,
            random_erasing=0.5,
        )
    # Off, augment=False is fine.
    ((x, _),) = _run("fashion_mnist", 4, augment=False, random_erasing=0.0)
    assert x.shape == (4, 28, 28, 1)
