"""The TFDS datasets (CIFAR, SVHN, ImageNet): split windows, the manual archives, loading.

The validation split is a seeded *contiguous window* of TFDS's training split, by TFDS
split slicing (``train[:o]+train[o+v:]`` / ``train[o:o+v]``). TFDS stores examples in a
fixed hash-shuffled order, so a window is a random subset, and slicing reads only the
files it needs (ImageNet's 10,000 never cost a pass over 1.28M images). A given
``data_dir`` must be an existing directory (a judgement call: TFDS would create a
misspelt one and download a fresh copy into it, so kzoo asks the user to create it first).
"""

import os

import numpy as np
import tensorflow as tf

from kzoo import checks
from kzoo.data.locations import existing_dir, tfds_data_dir
from kzoo.data.registry import dataset_info
from kzoo.data.sources import TFDSSource
from kzoo.data.splits import check_split, checked_validation_size


def _windows(parts, val, seed):
    """Per TFDS part (a TrainPart), the seeded window [start, start + n) held out for
    validation, as (split, size, start, n): ``val`` shared out by the parts' validation
    shares, a part too small passing on the rest."""
    quotas = [int(round(val * part.validation_share)) for part in parts]
    quotas[-1] = val - sum(quotas[:-1])
    quotas = [min(q, part.size) for q, part in zip(quotas, parts)]
    rest = val - sum(quotas)
    for i, part in enumerate(parts):
        extra = min(rest, part.size - quotas[i])
        quotas[i] += extra
        rest -= extra
    rng = np.random.default_rng(seed)
    return [
        (part.split, part.size, int(rng.integers(0, part.size - n + 1)), n) for part, n in zip(parts, quotas)
    ]


def tfds_split(name, split, validation_size=None, seed=0):
    """The TFDS split string ``load`` reads for ``split`` (public so the carving can be
    inspected: e.g. ``cifar10`` train -> ``'train[:12345]+train[17345:]'``)."""
    spec = dataset_info(name)
    if not isinstance(spec.source, TFDSSource):
        raise ValueError(f"{name} is not a TFDS dataset")
    check_split(split)
    val = checked_validation_size(spec, validation_size)
    seed = checks.seed(seed, "seed")
    if split == "test":
        return spec.source.test_split
    if split == "train_full" or (split == "train" and val == 0):
        return "+".join(part.split for part in spec.source.train_parts)
    if split == "validation" and val == 0:
        raise ValueError(f"{name} has no validation split with validation_size=0")
    pieces = []
    for part, size, start, n in _windows(spec.source.train_parts, val, seed):
        if split == "validation":
            if n:
                pieces.append(f"{part}[{start}:{start + n}]")
        elif n == 0:
            pieces.append(part)
        else:
            if start > 0:
                pieces.append(f"{part}[:{start}]")
            if start + n < size:
                pieces.append(f"{part}[{start + n}:]")
    return "+".join(pieces)


def _archives_text(spec):
    source = f" (from {spec.source.manual_source})" if spec.source.manual_source else ""
    return f"{' and '.join(spec.source.manual_archives)}{source}"


def check_dirs(spec, data_dir, manual_dir):
    """A given ``data_dir`` / ``manual_dir`` must be directories: what to do when they
    are not says where the manual archives go for a dataset that cannot be downloaded."""
    if data_dir is not None:
        hint = (
            f"; create it if TFDS should download and prepare {spec.name} there (kzoo does "
            "not, so that a misspelt path does not silently get a fresh copy)"
        )
        if spec.source.manual_archives and manual_dir is None:
            hint += (
                f". {spec.title or spec.name} cannot be downloaded: put {_archives_text(spec)} "
                f"into {os.path.join(data_dir, 'downloads', 'manual')!r} or pass `manual_dir=`"
            )
        existing_dir(data_dir, "data_dir", hint)
    if manual_dir is not None:
        hint = f"; it must hold {_archives_text(spec)}" if spec.source.manual_archives else ""
        existing_dir(manual_dir, "manual_dir", hint)


def _prepared(data_dir, spec):
    """Whether TFDS has already built ``spec``'s dataset under ``data_dir`` (its pinned
    version, any version when it has none)."""
    root = os.path.join(data_dir, spec.source.builder)
    if not os.path.isdir(root):
        return False
    versions = [spec.source.version] if spec.source.version else os.listdir(root)
    return any(os.path.isfile(os.path.join(root, v, "dataset_info.json")) for v in versions)


def _check_manual_archives(spec, data_dir, manual_dir):
    """A dataset that cannot be downloaded: unless TFDS already prepared it, its
    archives must be in the manual dir. Checked before TFDS runs, so the error is this
    one. The manual dir, or None when the dataset is prepared."""
    root = tfds_data_dir(data_dir)
    if _prepared(root, spec):
        return None
    manual = os.fspath(manual_dir) if manual_dir is not None else os.path.join(root, "downloads", "manual")
    missing = [t for t in spec.source.manual_archives if not os.path.isfile(os.path.join(manual, t))]
    if missing:
        raise FileNotFoundError(
            f"{spec.title or spec.name} ({spec.name}) is not prepared under {root!r} and cannot be "
            f"downloaded: put {_archives_text(spec)} into the manual directory "
            f"{manual!r} (pass `manual_dir=` to use another one); missing: {', '.join(missing)}"
        )
    return manual


def load_split(spec, split, val, seed, data_dir, manual_dir):
    """(the split's dataset of (uint8 image, int32 label), where it was read from) for
    checked arguments."""
    manual = _check_manual_archives(spec, data_dir, manual_dir) if spec.source.manual_archives else None
    import tensorflow_datasets as tfds  # only now: IDX users need no TFDS

    kwargs = {}
    if manual is not None:
        kwargs["download_and_prepare_kwargs"] = {
            "download_config": tfds.download.DownloadConfig(manual_dir=manual)
        }
    source = spec.source
    builder = source.builder + (f":{source.version}" if source.version else "")
    ds = tfds.load(
        builder,
        split=tfds_split(spec.name, split, val, seed),
        data_dir=None if data_dir is None else os.fspath(data_dir),
        as_supervised=True,
        shuffle_files=False,
        **kwargs,
    )
    ds = ds.map(
        lambda x, y: (x, tf.cast(y, tf.int32)), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
    return ds, f"the TFDS data_dir {tfds_data_dir(data_dir)!r}"
