"""The splits and their sizes, from the specs alone: a trainer learns how many examples
and steps a run has, and is refused one that would train on nothing, before any data is
read. The validation split is always carved from the training data, never the test set."""

import math

from kzoo import checks
from kzoo.data.registry import dataset_info

SPLITS = ("train", "validation", "test", "train_full")


def check_split(split):
    checks.choice(split, "split", SPLITS)


def checked_validation_size(spec, size):
    """The checked validation size: the dataset's default when None."""
    size = checks.integer(size, "validation_size", minimum=0, optional=True)
    if size is None:
        return spec.validation_size
    if size >= spec.train_size:
        raise ValueError(
            f"`validation_size` must be smaller than the {spec.train_size} training examples "
            f"of {spec.name}, got {size}"
        )
    return size


def check_train_fraction(train_fraction):
    return checks.number(train_fraction, "train_fraction", minimum=0, maximum=1, min_open=True, optional=True)


def num_examples(name, split, validation_size=None):
    """How many examples ``load(name, split, validation_size=...)`` yields on the real
    data (TFDS's mock data has other sizes)."""
    spec = dataset_info(name)
    check_split(split)
    val = checked_validation_size(spec, validation_size)
    if split == "validation" and val == 0:
        raise ValueError(f"{name} has no validation split with validation_size=0")
    return {
        "train": spec.train_size - val,
        "validation": val,
        "test": spec.test_size,
        "train_full": spec.train_size,
    }[split]


def train_examples(name, validation_size=None, train_fraction=None):
    """How many training examples a run sees: the training split after the validation
    carve-out, cut to ``train_fraction`` (in (0, 1], rounded up) when one is given."""
    n = num_examples(name, "train", validation_size)
    train_fraction = check_train_fraction(train_fraction)
    if train_fraction is None:
        return n
    return max(1, math.ceil(train_fraction * n))


def steps_per_epoch(name, batch_size, validation_size=None, train_fraction=None):
    """Full training batches per epoch, ``train_examples(...) // batch_size``, from the
    dataset's sizes alone (no data is read), so that a trainer can refuse a run that
    would train on nothing before it starts: a ValueError when it is 0."""
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    n = train_examples(name, validation_size, train_fraction)
    steps = n // batch_size
    if steps == 0:
        val = checked_validation_size(dataset_info(name), validation_size)
        cut = "" if train_fraction is None else f" and train_fraction={train_fraction}"
        raise ValueError(
            f"`batch_size` {batch_size} is larger than the {n} training examples of {name} "
            f"(validation_size={val}{cut}): 0 steps per epoch, as the last partial batch is "
            "dropped; use a smaller batch_size"
        )
    return steps
