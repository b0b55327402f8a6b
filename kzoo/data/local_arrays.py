"""``at_hand``: a split's images as numpy arrays when they are on this machine, never
downloaded: for checks that can use real images but must not start a download (an
export verified on the test set, a quantiser calibrated on the training set).

A location the user named (``data_dir``, or ``$KZOO_DATA_DIR`` for the IDX datasets)
stays authoritative: when it does not hold the dataset the error says so, as ``load``'s
does. Without one, the IDX datasets are looked for where ``load`` looks (system folders,
the Keras cache), TFDS ones in TFDS's data directory, prepared.
"""

import numpy as np

from kzoo import checks
from kzoo.data import idx
from kzoo.data.loading import check_dirs, read_split
from kzoo.data.registry import dataset_info
from kzoo.data.sources import IDXSource


def at_hand(name, split, *, data_dir=None, limit=None):
    """(uint8 images [n, H, W, C], int32 labels [n], where they came from) of the first
    ``limit`` examples of ``split`` ("train_full" or "test"; all when ``limit`` is None),
    or None when the dataset is not on this machine and no location was named."""
    spec = dataset_info(name)
    if split not in ("train_full", "test"):
        raise ValueError(f"`split` must be 'train_full' or 'test', got {split!r}")
    limit = checks.integer(limit, "limit", minimum=1, optional=True)
    data_dir, _ = check_dirs(spec, data_dir, None)
    if isinstance(spec.source, IDXSource):
        if _idx_location(spec, data_dir) is None:
            return None
    elif not _tfds_prepared(spec, data_dir):
        return None
    ds, where = read_split(spec, split, 0, 0, data_dir, None)
    if limit is not None:
        ds = ds.take(limit)
    images, labels = [], []
    for batch_images, batch_labels in ds.batch(1024).as_numpy_iterator():
        images.append(batch_images)
        labels.append(batch_labels)
    return np.concatenate(images).astype(np.uint8), np.concatenate(labels).astype(np.int32), where


def _idx_location(spec, data_dir):
    """The IDX files' folder or the Keras cache file, None when neither is here (no
    download); a location the user named that lacks them raises (``idx._locate``)."""
    found, directory, _, _ = idx._locate(spec, data_dir)
    return directory if found is not None else idx.keras_cache_npz(spec)


def _tfds_prepared(spec, data_dir):
    from kzoo.data.locations import tfds_data_dir
    from kzoo.data.tfds import _prepared

    return _prepared(tfds_data_dir(data_dir), spec)
