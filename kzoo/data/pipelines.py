"""The tf.data pipelines: ``pipeline`` batches, augments and normalises ``load``'s
output; ``make_datasets`` does both for a trainer, refusing loaded splits that would
train or evaluate on nothing."""

import math

import tensorflow as tf

from kzoo import checks
from kzoo.data.augment import (
    centre_crop,
    check_images,
    crop_flip_fn,
    normaliser,
    random_erasing_fn,
    random_resized_crop,
)
from kzoo.data.loading import check_dirs, read_split
from kzoo.data.registry import dataset_info
from kzoo.data.splits import check_train_fraction, checked_validation_size, steps_per_epoch, train_examples

AUTOTUNE = tf.data.AUTOTUNE


def _seeds(seed):
    """An endless dataset of stateless seeds ([2] int64), new each epoch, reproducible
    from ``seed`` (random when None)."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def _check_random_erasing(random_erasing, augment):
    """The erasing probability (``augment`` checked already), refused without ``augment``:
    it is a training augmentation, and ``augment=False`` asks for none."""
    random_erasing = checks.number(random_erasing, "random_erasing", minimum=0, maximum=1)
    if random_erasing and not augment:
        raise ValueError(
            f"`random_erasing`={random_erasing!r} is a training augmentation: it needs `augment=True`"
        )
    return random_erasing


def _erasing_seed(seed):
    """The erasing seed of a batch, split off the batch's seed: the seeds the other
    augmentations draw with stay as they were."""
    return tf.random.experimental.stateless_fold_in(seed, tf.constant(1, seed.dtype))


def _check_elements(ds, spec):
    """``ds`` gives what ``load`` gives for dataset ``spec``: (uint8 image [H, W, C] of its
    shape, integer label) pairs. Float images would be normalised as if on the 0-255
    scale, other shapes broadcast: both refused, from the element spec (no data read)."""
    elements = ds.element_spec
    if not isinstance(elements, tuple) or len(elements) != 2:
        raise ValueError(
            f"`ds` must give (image, label) pairs as kzoo.data.load does, its elements are {elements}"
        )
    image, label = elements
    if not isinstance(image, tf.TensorSpec) or not isinstance(label, tf.TensorSpec):
        raise TypeError(f"`ds` must give (image, label) tensors, its elements are {elements}")
    check_images(image.shape, spec, "ds", batched=False)
    if image.dtype != tf.uint8:
        raise TypeError(
            f"`ds` must give uint8 images (0-255) as kzoo.data.load does, got {image.dtype.name}; "
            "a float image would be normalised as if on the 0-255 scale"
        )
    if not label.dtype.is_integer or label.shape.rank not in (None, 0):
        raise TypeError(f"`ds` must give one integer class label per image, got {label}")


def check_alternating_flip(alternating_flip, augment, spec):
    """``alternating_flip`` checked against what it needs: the batched pad-crop-flip
    augmentation (``augment`` on, a dataset whose paper flips and pads)."""
    checks.boolean(alternating_flip, "alternating_flip")
    if alternating_flip and not augment:
        raise ValueError("`alternating_flip` is a training augmentation: it needs `augment=True`")
    aug = spec.augmentation
    if alternating_flip and not (aug.pad and aug.flip and spec.eval_resize is None):
        raise ValueError(
            f"`alternating_flip` alternates the flip of the pad-crop-flip augmentation; "
            f"{spec.name} is not augmented that way (CIFAR and Fashion-MNIST are)"
        )
    return alternating_flip


def _epochs_begun():
    """(an endless dataset of the index of the iteration it is read in, the int64
    variable counting them). The count goes up when an iteration reads its first
    element, so epochs are numbered in the order they run; ``from_epoch`` sets it."""
    begun = tf.Variable(-1, dtype=tf.int64, trainable=False, name="epochs_begun")
    epochs = tf.data.Dataset.from_tensors(tf.constant(0, tf.int64)).map(lambda _: begun.assign_add(1))
    return epochs.flat_map(lambda e: tf.data.Dataset.from_tensors(e).repeat()), begun


def _first_flips(ds, seed):
    """Each image's flip in even epochs ([N] bool, drawn from ``seed``; odd epochs
    flip the others), for the N images of ``ds`` in their stored order."""
    n = int(ds.cardinality())
    if n < 0:
        raise ValueError("`alternating_flip` needs a dataset of known size (tf.data cannot count this one)")
    key = seed if seed is not None else int(tf.random.uniform([], maxval=2**31 - 1, dtype=tf.int64))
    return tf.random.stateless_uniform([n], tf.constant([key, 2], tf.int64)) < 0.5


def _check_pipeline_args(ds, training, augment, batch_size, seed, drop_remainder, random_erasing):
    if not isinstance(ds, tf.data.Dataset):
        raise TypeError(f"`ds` must be a tf.data.Dataset (from kzoo.data.load), got {type(ds).__name__}")
    checks.boolean(training, "training")
    checks.boolean(augment, "augment")
    random_erasing = _check_random_erasing(random_erasing, augment)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    seed = checks.seed(seed, "seed", optional=True)
    if drop_remainder is None:
        drop_remainder = training
    elif not isinstance(drop_remainder, bool):
        raise TypeError(f"`drop_remainder` must be None, True or False, got {drop_remainder!r}")
    return batch_size, seed, drop_remainder, random_erasing


def pipeline(
    ds,
    name,
    *,
    training,
    batch_size,
    seed=None,
    augment=True,
    drop_remainder=None,
    random_erasing=0.0,
    alternating_flip=False,
):
    """Batches of (float32 normalised images, int32 labels) from ``load``'s output, prefetched.

    Training: shuffled (the whole dataset when it fits the buffer), augmented as the
    dataset's paper did when ``augment`` (CIFAR and Fashion-MNIST: pad-crop-flip; MNIST:
    pad-crop; ImageNet: random-resized crop + flip; SVHN: none). ``seed`` fixes the
    shuffle and the augmentation (the same seed gives the same batches, epoch after
    epoch); None makes them random and lets tf.data reorder work for speed.
    ``drop_remainder`` defaults to ``training``: equal training batches, every
    evaluation example counted. Small datasets are cached in memory as uint8.

    ``random_erasing`` (0 to 1, off by default) is the probability that a training image
    has one random rectangle set to 0 after normalisation (``augment.random_erasing_fn``),
    after the dataset's own augmentation, SVHN's none included; it needs ``augment`` and
    leaves evaluation alone. At 0 the batches are bit for bit those without it.

    ``alternating_flip`` (off by default; airbench's): each training image is flipped in
    every other epoch instead of at random, starting from a random half (drawn from
    ``seed``), so any two epochs in a row show it both ways; the crops stay random.
    Epochs are counted as the pipeline is iterated (``from_epoch`` resumes the count).
    It needs the pad-crop-flip augmentation and a dataset of known size.
    """
    spec = dataset_info(name)
    batch_size, seed, drop_remainder, random_erasing = _check_pipeline_args(
        ds, training, augment, batch_size, seed, drop_remainder, random_erasing
    )
    _check_elements(ds, spec)
    alternating = check_alternating_flip(alternating_flip, augment, spec) and training
    if alternating:
        first_flips = _first_flips(ds, seed)
        ds = ds.enumerate()  # (index, (image, label)): the index picks the image's flip
    deterministic = seed is not None or not training
    normalise, _ = normaliser(spec)
    erase = random_erasing_fn(spec, random_erasing) if training and augment and random_erasing else None

    def map_(ds, fn):
        return ds.map(fn, num_parallel_calls=AUTOTUNE, deterministic=deterministic)

    def normalise_batches(ds, fn):
        """``fn`` (to the normalised batch) mapped over ``ds``, then erasing when asked."""
        if erase is None:
            return map_(ds, lambda x, y: (fn(x), y))
        return map_(
            tf.data.Dataset.zip((ds, _seeds(seed))), lambda xy, s: (erase(fn(xy[0]), _erasing_seed(s)), xy[1])
        )

    if spec.cache:
        ds = ds.cache()
    if training:
        size = int(ds.cardinality())
        buffer = spec.shuffle_buffer if size < 0 else max(1, min(size, spec.shuffle_buffer))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)

    if spec.eval_resize is not None:  # images of any size: one at a time, then batched
        if training and augment and spec.augmentation.random_resized_crop is not None:
            ds = map_(
                tf.data.Dataset.zip((ds, _seeds(seed))),
                lambda xy, s: (random_resized_crop(xy[0], s, spec), xy[1]),
            )
        else:
            ds = map_(ds, lambda x, y: (centre_crop(x, spec), y))
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = normalise_batches(ds, normalise)
    elif training and augment and spec.augmentation.pad:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        crop_flip = crop_flip_fn(spec)

        def augment_batch(x, s, flipped=None):
            x = crop_flip(x, s, flipped)
            return x if erase is None else erase(x, _erasing_seed(s))

        if alternating:
            batches = ds.cardinality()  # the zip below hides it: fit would count epochs wrong
            epochs, begun = _epochs_begun()
            ds = map_(
                tf.data.Dataset.zip((ds, _seeds(seed), epochs)),
                lambda ixy, s, e: (
                    augment_batch(ixy[1][0], s, tf.not_equal(tf.gather(first_flips, ixy[0]), e % 2 == 1)),
                    ixy[1][1],
                ),
            )
            ds = ds.apply(tf.data.experimental.assert_cardinality(batches)).prefetch(AUTOTUNE)
            ds._kzoo_epochs_begun = begun  # for from_epoch
            return ds
        ds = map_(tf.data.Dataset.zip((ds, _seeds(seed))), lambda xy, s: (augment_batch(xy[0], s), xy[1]))
    else:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = normalise_batches(ds, lambda x: normalise(tf.cast(x, tf.float32)))
    return ds.prefetch(AUTOTUNE)


def from_epoch(ds, epoch):
    """A training ``pipeline`` as the endless run of epochs an uninterrupted run sees from
    ``epoch`` on (for ``fit(..., steps_per_epoch=...)``, which then iterates it once).

    Each iteration of a pipeline is one epoch, shuffled and augmented from seeds drawn in
    turn from its ``seed``; a run resumed at epoch ``k`` with a fresh pipeline would see
    epoch 0's order again. Here the first ``k`` iterations are begun and dropped (that
    draws their seeds; no data is read), and the epochs then follow one another in one
    iterator, as ``repeat`` begins each."""
    epoch = checks.integer(epoch, "epoch", minimum=0)
    for _ in range(epoch):
        iter(ds)
    begun = getattr(ds, "_kzoo_epochs_begun", None)  # alternating_flip's epoch count
    if begun is not None:
        begun.assign(epoch - 1)
    return ds.repeat()


def _cardinality(ds):
    """The dataset's size, or None when tf.data does not know it."""
    n = int(ds.cardinality())
    return n if n >= 0 else None


def _train_split(spec, read, val, batch_size, train_fraction, n_train):
    """The training split as read, cut to ``train_fraction``; a ValueError naming the
    place read when it gives no full batch."""
    train_ds, source = read("train")
    found = _cardinality(train_ds)
    if train_fraction is not None:  # of the examples really there (a test's small files)
        train_ds = train_ds.take(max(1, math.ceil(train_fraction * found)) if found else n_train)
    n = _cardinality(train_ds)
    if n is not None and n // batch_size == 0:
        how = f"{found} after holding out validation_size={val}"
        if train_fraction is not None:
            how += f", then train_fraction={train_fraction}"
        raise ValueError(
            f"{spec.name}: the training split read from {source} has {n} examples ({how}), fewer "
            f"than batch_size={batch_size}: 0 steps per epoch; use a smaller batch_size or more data"
        )
    return train_ds, source


def make_datasets(
    name,
    *,
    batch_size,
    data_dir=None,
    validation_size=None,
    seed=0,
    augment=True,
    split_seed=0,
    manual_dir=None,
    train_fraction=None,
    random_erasing=0.0,
    alternating_flip=False,
):
    """(train, validation or None, test, DatasetSpec), batched for ``model.fit``.

    ``seed`` drives the training shuffle and augmentation; ``split_seed`` picks the
    validation carve-out, kept apart so that runs with different seeds share one
    validation set (both integers in [0, 2**32 - 1]; ``seed`` may be None: random).
    ``validation_size=0`` trains on the whole training set and gives no validation
    dataset. ``train_fraction`` trains on the first fraction of the training split in
    its stored order (TFDS's is hash-shuffled, the IDX files' is mixed), the EraseReLU
    paper's ImageNet-10/20/30%: the same examples for every seed, and a smaller
    fraction is a subset of a larger one. Validation and test stay whole.
    ``random_erasing`` and ``alternating_flip`` are ``pipeline``'s, for the training
    split only (off by default).
    ``data_dir`` and ``manual_dir`` are as for ``load``.

    Every argument is checked before any file is read (``steps_per_epoch`` included);
    after loading, a ValueError naming the split, its size and the place read when the
    training split gives no full batch or the validation or test split is empty.
    """
    spec = dataset_info(name)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    seed = checks.seed(seed, "seed", optional=True)
    split_seed = checks.seed(split_seed, "split_seed")
    checks.boolean(augment, "augment")
    random_erasing = _check_random_erasing(random_erasing, augment)
    check_alternating_flip(alternating_flip, augment, spec)
    val = checked_validation_size(spec, validation_size)
    train_fraction = check_train_fraction(train_fraction)
    n_train = train_examples(name, val, train_fraction)
    steps_per_epoch(name, batch_size, val, train_fraction)
    data_dir, manual_dir = check_dirs(spec, data_dir, manual_dir)

    def read(split):
        return read_split(spec, split, val, split_seed, data_dir, manual_dir)

    train_ds, source = _train_split(spec, read, val, batch_size, train_fraction, n_train)
    valid_ds = None
    if val:
        valid_ds, _ = read("validation")
        if _cardinality(valid_ds) == 0:
            raise ValueError(
                f"{name}: the validation split read from {source} is empty (validation_size={val})"
            )
    test_ds, _ = read("test")
    if _cardinality(test_ds) == 0:
        raise ValueError(f"{name}: the test split read from {source} is empty (0 examples)")
    train = pipeline(
        train_ds,
        name,
        training=True,
        batch_size=batch_size,
        seed=seed,
        augment=augment,
        random_erasing=random_erasing,
        alternating_flip=alternating_flip,
    )
    valid = None if valid_ds is None else pipeline(valid_ds, name, training=False, batch_size=batch_size)
    test = pipeline(test_ds, name, training=False, batch_size=batch_size)
    return train, valid, test, spec
