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

    spec.py       DatasetSpec (what a dataset is), Augmentation (how it is augmented)
    sources.py    TFDSSource + TrainPart, IDXSource (where it is read from)
    registry.py   register_dataset, dataset_info, list_datasets, preprocessing_differences
    builtin.py    the built-in datasets' specs and constants
    splits.py     split names and sizes, steps_per_epoch
    locations.py  the default caches; a named location must exist
    tfds.py       TFDS: split windows, manual archives, loading
    idx.py        IDX files: search, reading, checks, the keras.datasets fallback
    augment.py    normalisation, augmentation, resizing for a model, prepare_for_model
    loading.py    load
    local_arrays.py  at_hand: a split as numpy arrays when it is on this machine
                  (never downloaded)
    pipelines.py  pipeline, from_epoch, make_datasets

The registry, the splits' sizes and the IDX reader need numpy only, so they import where
TensorFlow is not installed (benchmarks/gpu_jax.py reads Fashion-MNIST with ``idx`` on a
JAX machine); the rest (``load``, ``pipeline``, ``at_hand``, ...) builds ``tf.data``
pipelines and is imported on first use (PEP 562 ``__getattr__``, as ``kzoo`` does for the
pipeline), refused with kzoo's ``pip install`` hint when TensorFlow is missing.
"""

from kzoo.data import builtin  # noqa: F401  (registers the built-in datasets)
from kzoo.data.builtin import IMAGENET_MEAN, IMAGENET_STD, IMAGENET_TARS
from kzoo.data.idx import MAX_IDX_BYTES, read_idx
from kzoo.data.locations import keras_cache_dir
from kzoo.data.registry import (
    DATASETS,
    dataset_info,
    list_datasets,
    preprocessing_differences,
    register_dataset,
    registered,
)
from kzoo.data.sources import IDXSource, TFDSSource, TrainPart
from kzoo.data.spec import Augmentation, DatasetSpec
from kzoo.data.splits import SPLITS, num_examples, steps_per_epoch, train_examples

# The names that need TensorFlow, and the module each comes from.
_TF_NAMES = {
    "at_hand": "local_arrays",
    "prepare_for_model": "augment",
    "preprocessing_text": "augment",
    "reference_augment": "augment",
    "resize_for_model": "augment",
    "load": "loading",
    "AUTOTUNE": "pipelines",
    "from_epoch": "pipelines",
    "make_datasets": "pipelines",
    "pipeline": "pipelines",
    "tfds_split": "tfds",
}


def _bind_tf_names():
    """Import the TensorFlow parts (TensorFlow first: kzoo's ``pip install`` hint when it
    is missing) and bind all their names at once."""
    from kzoo import _import_tf_part

    modules = {m: _import_tf_part("data", f"kzoo.data.{m}") for m in sorted(set(_TF_NAMES.values()))}
    for name, module in _TF_NAMES.items():
        globals()[name] = getattr(modules[module], name)


def __getattr__(name):
    if name not in _TF_NAMES:
        raise AttributeError(f"module 'kzoo.data' has no attribute {name!r}")
    _bind_tf_names()
    return globals()[name]


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "at_hand",
    "AUTOTUNE",
    "Augmentation",
    "DATASETS",
    "DatasetSpec",
    "IDXSource",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMAGENET_TARS",
    "MAX_IDX_BYTES",
    "SPLITS",
    "TFDSSource",
    "TrainPart",
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
