"""Alternating flip (``pipeline(alternating_flip=True)``, airbench's): every image is
flipped in every other epoch, starting from a random half; the shuffle and the crops are
the random ones of the pipeline without it; ``from_epoch`` resumes the alternation; and
it is refused where it cannot apply, before any data is read."""

import numpy as np
import pytest
import tensorflow as tf

from kzoo import data

N, BATCH = 64, 16


def _dataset(n=N):
    """n CIFAR-shaped images whose pixels grow from left to right (a flip makes them
    fall), labels 0..n-1 naming each image."""
    row = np.linspace(10, 240, 32).astype(np.uint8)
    x = np.broadcast_to(row[None, None, :, None], (n, 32, 32, 3)).copy()
    return tf.data.Dataset.from_tensor_slices((x, np.arange(n, dtype=np.int32)))


def _epochs(ds, k):
    """k epochs (iterations) of ``ds`` as [(labels in batch order, images by label,
    flipped by label)], the flip read at the image centre (crops shift by at most 4
    pixels; columns 15 and 16 are always the image's)."""
    out = []
    for _ in range(k):
        batches = [(x.numpy(), y.numpy()) for x, y in ds]
        labels = np.concatenate([y for _, y in batches])
        images = np.concatenate([x for x, _ in batches])[np.argsort(labels)]
        out.append((labels, images, images[:, 16, 16, 0] < images[:, 16, 15, 0]))
    return out


def _pipeline(**kwargs):
    return data.pipeline(_dataset(), "cifar10", training=True, batch_size=BATCH, seed=3, **kwargs)


def test_each_image_flips_every_other_epoch():
    epochs = _epochs(_pipeline(alternating_flip=True), 4)
    first = epochs[0][2]
    assert 16 <= first.sum() <= 48  # a random half to start
    for k, (_, _, flips) in enumerate(epochs):
        np.testing.assert_array_equal(flips, first if k % 2 == 0 else ~first)
    # the shuffle is the pipeline's own: the same order as without the option
    plain = _epochs(_pipeline(), 4)
    for a, b in zip(epochs, plain):
        np.testing.assert_array_equal(a[0], b[0])
    assert any(not np.array_equal(p[2], plain[0][2]) for p in plain[2:])  # the random flip does not repeat
    # the crops stay random: epochs 0 and 2 flip alike but shift the images differently
    assert not np.array_equal(epochs[0][1], epochs[2][1])
    # and the same seed gives the same sequence
    again = _epochs(_pipeline(alternating_flip=True), 2)
    np.testing.assert_array_equal(again[1][1], epochs[1][1])


def test_from_epoch_resumes_the_alternation():
    ds = _pipeline(alternating_flip=True)
    whole = [[(x.numpy(), y.numpy()) for x, y in ds] for _ in range(5)]
    resumed = data.from_epoch(_pipeline(alternating_flip=True), 3).take(2 * (N // BATCH))
    got = [(x.numpy(), y.numpy()) for x, y in resumed]
    want = [b for epoch in whole[3:5] for b in epoch]
    assert len(got) == len(want)
    for (gx, gy), (wx, wy) in zip(got, want):
        np.testing.assert_array_equal(gy, wy)
        np.testing.assert_array_equal(gx, wx)


def test_other_seeds_start_from_another_half():
    a = _epochs(_pipeline(alternating_flip=True), 1)[0][2]
    b = _epochs(
        data.pipeline(_dataset(), "cifar10", training=True, batch_size=BATCH, seed=4, alternating_flip=True),
        1,
    )[0][2]
    assert not np.array_equal(a, b)


def test_evaluation_is_left_alone():
    x = [b[0].numpy() for b in data.pipeline(_dataset(), "cifar10", training=False, batch_size=BATCH)]
    y = [
        b[0].numpy()
        for b in data.pipeline(_dataset(), "cifar10", training=False, batch_size=BATCH, alternating_flip=True)
    ]
    for a, b in zip(x, y):
        np.testing.assert_array_equal(a, b)


def test_refused_where_it_cannot_apply(tmp_path):
    with pytest.raises(ValueError, match="`alternating_flip`.*`augment=True`"):
        _pipeline(alternating_flip=True, augment=False)
    with pytest.raises(TypeError, match="alternating_flip"):
        _pipeline(alternating_flip=1)
    mnist = tf.data.Dataset.from_tensor_slices((np.zeros((4, 28, 28, 1), np.uint8), np.zeros(4, np.int32)))
    with pytest.raises(ValueError, match="`alternating_flip`.*mnist"):  # pads, never flips
        data.pipeline(mnist, "mnist", training=True, batch_size=2, alternating_flip=True)
    with pytest.raises(ValueError, match="known size"):
        data.pipeline(
            _dataset().filter(lambda x, y: y < 99),
            "cifar10",
            training=True,
            batch_size=4,
            alternating_flip=True,
        )
    missing = str(tmp_path / "nothing-here")
    with pytest.raises(ValueError, match="`alternating_flip`.*mnist"):  # before any file is looked for
        data.make_datasets("mnist", batch_size=8, data_dir=missing, alternating_flip=True)


@pytest.mark.parametrize("drop_remainder", [True, False])
def test_the_pipeline_says_how_many_batches_an_epoch_has(drop_remainder):
    """The trainer reads an epoch's length from the pipeline's cardinality: hidden by the
    epoch counter's zip, it fell back to the registry's size, so a 2,000-image copy of
    Fashion-MNIST trained 31 passes per 'epoch'."""
    plain = data.pipeline(
        _dataset(N + 5), "cifar10", training=True, batch_size=BATCH, seed=3, drop_remainder=drop_remainder
    )
    alternating = data.pipeline(
        _dataset(N + 5),
        "cifar10",
        training=True,
        batch_size=BATCH,
        seed=3,
        drop_remainder=drop_remainder,
        alternating_flip=True,
    )
    assert int(alternating.cardinality()) == int(plain.cardinality()) == (4 if drop_remainder else 5)
    assert sum(1 for _ in alternating) == int(alternating.cardinality())
