"""The data layer: each benchmark loaded, split and pre-processed as its paper did.

``load`` gives unbatched ``(uint8 image [H, W, C], int32 label)`` pairs in a fixed
order; ``pipeline`` batches, augments and normalises them; ``make_datasets`` does both
for a trainer. CIFAR, SVHN and ImageNet come from TFDS; MNIST and Fashion-MNIST from
IDX files found locally (``idx``). Each dataset is one ``DatasetSpec`` in the registry
(``register_dataset``, ``dataset_info``, ``list_datasets``; the built-in ones in
``builtin``), whose fields say how it is read, split and augmented.

A location the user names is authoritative: it is the only place read, and when it is
not right the error says so instead of another copy being used (``idx``, ``tfds``).
Every number is checked (finite, in range) before anything is read; ``steps_per_epoch``
tells a trainer, from the datasets' sizes alone, whether a batch size leaves any step,
and ``make_datasets`` refuses loaded splits that would train or evaluate on nothing.
The validation split is always carved from the training data, never the test set.

    registry.py   DatasetSpec, register_dataset, dataset_info, list_datasets, preprocessing_differences
    builtin.py    the built-in datasets' specs and constants
    splits.py     split names and sizes, steps_per_epoch
    locations.py  the default caches; a named location must exist
    tfds.py       TFDS: split windows, manual archives, loading
    idx.py        IDX files: search, reading, checks, the keras.datasets fallback
    augment.py    normalisation, augmentation, resizing for a model, prepare_for_model
    loading.py    load
    at_hand.py    a split as numpy arrays when it is on this machine (never downloaded)
    pipelines.py  pipeline, from_epoch, make_datasets
"""

from kzoo.data import builtin  # noqa: F401  (registers the built-in datasets)
from kzoo.data.at_hand import at_hand
from kzoo.data.augment import prepare_for_model, preprocessing_text, reference_augment, resize_for_model
from kzoo.data.builtin import IMAGENET_MEAN, IMAGENET_STD, IMAGENET_TARS
from kzoo.data.idx import MAX_IDX_BYTES, read_idx
from kzoo.data.loading import load
from kzoo.data.locations import keras_cache_dir
from kzoo.data.pipelines import AUTOTUNE, from_epoch, make_datasets, pipeline
from kzoo.data.registry import (
    DATASETS,
    DatasetInfo,
    DatasetSpec,
    dataset_info,
    list_datasets,
    preprocessing_differences,
    register_dataset,
    registered,
)
from kzoo.data.splits import SPLITS, num_examples, steps_per_epoch, train_examples
from kzoo.data.tfds import tfds_split

__all__ = [
    "at_hand",
    "AUTOTUNE",
    "DATASETS",
    "DatasetInfo",
    "DatasetSpec",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGENET_TARS",
    "MAX_IDX_BYTES",
    "SPLITS",
    "dataset_info",
    "from_epoch",
    "keras_cache_dir",
    "list_datasets",
    "load",
    "make_datasets",
    "num_examples",
    "pipeline",
    "prepare_for_model",
    "preprocessing_differences",
    "preprocessing_text",
    "read_idx",
    "reference_augment",
    "register_dataset",
    "registered",
    "resize_for_model",
    "steps_per_epoch",
    "tfds_split",
    "train_examples",
]
