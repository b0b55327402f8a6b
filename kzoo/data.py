"""The data layer: each benchmark loaded, split and pre-processed as its paper did.

``load`` gives unbatched ``(uint8 image [H, W, C], int32 label)`` pairs in a fixed
order; ``pipeline`` batches, augments and normalises them; ``make_datasets`` does both
for a trainer. CIFAR, SVHN and ImageNet come from TFDS; MNIST and Fashion-MNIST from
IDX files found locally (Debian's ``dataset-fashion-mnist``, the Keras cache, ...),
since TFDS and ``keras.datasets`` cannot download everywhere kzoo runs.

A location the user names is authoritative: it is the only place read, and when it is
not right the error says so instead of another copy being used.

* IDX datasets: ``data_dir`` -- or, when it is None, a non-empty ``$KZOO_DATA_DIR`` (a
  judgement call: an environment variable is a location the user named too) -- is
  searched alone, its dataset subfolder first (``fashion-mnist``/``fashion_mnist`` or
  ``mnist``: the two datasets' files have the same names), then the folder itself. The
  first of these folders holding any of the four IDX files must hold all four. A
  missing folder is a FileNotFoundError, a file a ValueError, missing files a
  FileNotFoundError naming them and the folder. Only when no location is given are the
  system folders (``SYSTEM_DIRS``), the Keras cache and finally a ``keras.datasets``
  download tried, in that order.
* TFDS datasets: a given ``data_dir`` must be an existing directory (a judgement call:
  TFDS would create a misspelt one and download a fresh copy into it, so kzoo asks the
  user to create it first); a given ``manual_dir`` must exist too.

Every number is checked (finite, in range) before anything is read; ``steps_per_epoch``
tells a trainer, from the datasets' sizes alone, whether a batch size leaves any step,
and ``make_datasets`` refuses loaded splits that would train or evaluate on nothing.

The validation split is always carved from the training data, never the test set:

* TFDS datasets: a seeded *contiguous window* of TFDS's training split, by TFDS split
  slicing (``train[:o]+train[o+v:]`` / ``train[o:o+v]``). TFDS stores examples in a
  fixed hash-shuffled order, so a window is a random subset, and slicing reads only the
  files it needs (ImageNet's 10,000 never cost a pass over 1.28M images).
* IDX datasets (in memory): a seeded random subset of the indices; both parts keep the
  file order.

Training augmentation runs on whole batches (one gather per batch for crop + flip):
about an order of magnitude faster on CPU than a per-example ``map``
(``benchmarks/input_pipeline.py``), and seeded: the same ``seed`` gives the same batches.
"""

import dataclasses
import functools
import gzip
import math
import os
import zlib

import numpy as np
import tensorflow as tf

from kzoo import checks

AUTOTUNE = tf.data.AUTOTUNE
SPLITS = ("train", "validation", "test", "train_full")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a trainer needs to know about a dataset. ``mean``/``std`` are per channel on
    the 0-255 scale; None means the protocol divides by 255 instead (SVHN)."""
    name: str
    classes: int
    image_shape: tuple  # (H, W, C) the model sees
    train_size: int  # the whole training set (``train_full``)
    test_size: int
    validation_size: int  # the default carve-out from the training set
    mean: tuple
    std: tuple
    source: str  # "tfds" or "idx"


IMAGENET_MEAN = (123.675, 116.28, 103.53)  # (0.485, 0.456, 0.406) * 255
IMAGENET_STD = (58.395, 57.12, 57.375)  # (0.229, 0.224, 0.225) * 255

DATASETS = {
    # fb.resnet.torch's constants, as the papers' code used; 45k/5k as He et al.
    "cifar10": DatasetInfo("cifar10", 10, (32, 32, 3), 50000, 10000, 5000,
                           (125.3, 123.0, 113.9), (63.0, 62.1, 66.7), "tfds"),
    "cifar100": DatasetInfo("cifar100", 100, (32, 32, 3), 50000, 10000, 5000,
                            (129.3, 124.1, 112.4), (68.2, 65.4, 70.4), "tfds"),
    # SVHN: pixels / 255, no augmentation (WRN). 5000 of the 73,257 as for CIFAR.
    "svhn": DatasetInfo("svhn", 10, (32, 32, 3), 73257, 26032, 5000, None, None, "tfds"),
    # train + extra (WRN's protocol); 6000 held out as Sermanet & LeCun / Goodfellow et
    # al. did, 4000 from train and 2000 from extra (by count, not per class).
    "svhn_extra": DatasetInfo("svhn_extra", 10, (32, 32, 3), 604388, 26032, 6000,
                              None, None, "tfds"),
    # TFDS's "validation" (the official 50k val set) is kzoo's test split; 10,000
    # training images are held out for validation.
    "imagenet2012": DatasetInfo("imagenet2012", 1000, (224, 224, 3), 1281167, 50000, 10000,
                                IMAGENET_MEAN, IMAGENET_STD, "tfds"),
    # Computed once over all pixels of the 60,000 training images (float64 mean and
    # population std) of Debian's dataset-fashion-mnist files.
    "fashion_mnist": DatasetInfo("fashion_mnist", 10, (28, 28, 1), 60000, 10000, 5000,
                                 (72.9404,), (90.0212,), "idx"),
    # The same statistic for MNIST's 60,000 training images: the widely quoted
    # 0.13066 / 0.30811 of the [0, 1] scale, times 255 (MNIST is not on the dev machine).
    "mnist": DatasetInfo("mnist", 10, (28, 28, 1), 60000, 10000, 5000,
                         (33.3184,), (78.5675,), "idx"),
}


@dataclasses.dataclass(frozen=True)
class _Recipe:
    """How a dataset is read and augmented (private: the trainer needs DatasetInfo)."""
    tfds_name: str = None
    # ((TFDS split, size, share of the validation carve-out), ...) that make up "train_full"
    train_parts: tuple = ()
    test_split: str = "test"
    pad: int = 0  # random crop after padding this much on each side; 0 = no crop
    flip: bool = False
    # None: pad with zeros *after* normalising (the mean colour), as fb.resnet.torch
    # does; a number: pad with that pixel value (0 = the black MNIST background).
    pad_pixel: float = None
    cache: bool = True  # keep the decoded uint8 data in memory
    shuffle_buffer: int = 100000


_RECIPES = {
    "cifar10": _Recipe("cifar10", (("train", 50000, 1.0),), pad=4, flip=True),
    "cifar100": _Recipe("cifar100", (("train", 50000, 1.0),), pad=4, flip=True),
    "svhn": _Recipe("svhn_cropped", (("train", 73257, 1.0),)),
    "svhn_extra": _Recipe("svhn_cropped", (("train", 73257, 2 / 3), ("extra", 531131, 1 / 3))),
    "imagenet2012": _Recipe("imagenet2012", (("train", 1281167, 1.0),), test_split="validation",
                            cache=False, shuffle_buffer=4096),
    "fashion_mnist": _Recipe(pad=2, flip=True, pad_pixel=0.0),
    "mnist": _Recipe(pad=2, flip=False, pad_pixel=0.0),
}

IMAGENET_TARS = ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar")


# ----------------------------------------------------------------------------- checks

def dataset_info(name):
    """The DatasetInfo of ``name``; a ValueError listing the known names (the closest
    first, "did you mean ...?") otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a dataset name (a string), got {name!r}")
    if name not in DATASETS:
        try:
            checks.choice(name, "name", DATASETS)
        except ValueError as err:
            raise ValueError(f"Unknown dataset {name!r}: {err}") from None
    return DATASETS[name]


def _check_split(split):
    checks.choice(split, "split", SPLITS)


def _validation_size(info, validation_size):
    """The checked validation size: the dataset's default when None."""
    validation_size = checks.integer(validation_size, "validation_size", minimum=0, optional=True)
    if validation_size is None:
        return info.validation_size
    if validation_size >= info.train_size:
        raise ValueError(
            f"`validation_size` must be smaller than the {info.train_size} training examples "
            f"of {info.name}, got {validation_size}"
        )
    return validation_size


def _check_train_fraction(train_fraction):
    return checks.number(train_fraction, "train_fraction", minimum=0, maximum=1, min_open=True,
                         optional=True)


def num_examples(name, split, validation_size=None):
    """How many examples ``load(name, split, validation_size=...)`` yields on the real
    data (TFDS's mock data has other sizes)."""
    info = dataset_info(name)
    _check_split(split)
    val = _validation_size(info, validation_size)
    if split == "validation" and val == 0:
        raise ValueError(f"{name} has no validation split with validation_size=0")
    return {"train": info.train_size - val, "validation": val, "test": info.test_size,
            "train_full": info.train_size}[split]


# ----------------------------------------------------------------------------- loading

def load(name, split, *, data_dir=None, validation_size=None, seed=0, manual_dir=None):
    """Unbatched ``(uint8 image [H, W, C], int32 label)`` pairs of one split, in a fixed order.

    ``split`` is "train" (the training data minus the validation carve-out),
    "validation" (``validation_size`` training examples chosen by ``seed``, an integer
    in [0, 2**32 - 1]; a ValueError when it is 0), "test", or "train_full" (all
    training data).

    ``data_dir`` is TFDS's data directory, or for MNIST / Fashion-MNIST the folder of
    the IDX files (or its ``fashion-mnist``/``fashion_mnist``/``mnist`` subfolder).
    When given it is the only place read: a missing folder is a FileNotFoundError
    (for TFDS: create it if TFDS should download into it), a file a ValueError, an IDX
    folder lacking some of the four files a FileNotFoundError naming them. For the IDX
    datasets a non-empty ``$KZOO_DATA_DIR`` is authoritative in the same way when
    ``data_dir`` is None; with neither, the system folders (``SYSTEM_DIRS``), the Keras
    cache and a ``keras.datasets`` download are tried in turn. ``manual_dir`` is where
    the ImageNet tars are (TFDS's manual dir, by default ``<data_dir>/downloads/manual``);
    when given it must exist.
    """
    info = dataset_info(name)
    _check_split(split)
    val = _validation_size(info, validation_size)
    seed = checks.seed(seed, "seed")
    if split == "validation" and val == 0:
        raise ValueError(
            f"{name} has no validation split with validation_size=0; use split='test' or "
            "a positive validation_size"
        )
    data_dir, manual_dir = _check_dirs(info, data_dir, manual_dir)
    return _load(info, split, val, seed, data_dir, manual_dir)[0]


def _existing_dir(folder, arg, missing_hint=""):
    """checks.existing_dir, with ``missing_hint`` added when nothing is there."""
    try:
        return checks.existing_dir(folder, arg)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{err}{missing_hint}") from None


def _check_dirs(info, data_dir, manual_dir):
    """The checked (data_dir, manual_dir) as str or None, before anything is read: the
    locations the user gave must be directories (see ``load``)."""
    data_dir = checks.path(data_dir, "data_dir", optional=True)
    manual_dir = checks.path(manual_dir, "manual_dir", optional=True)
    if info.source == "idx":
        _idx_location(info.name, data_dir)
    elif data_dir is not None:
        hint = (f"; create it if TFDS should download and prepare {info.name} there (kzoo does "
                "not, so that a misspelt path does not silently get a fresh copy)")
        if info.name == "imagenet2012" and manual_dir is None:
            hint += (f". ImageNet cannot be downloaded: put {' and '.join(IMAGENET_TARS)} (from "
                     f"image-net.org) into {os.path.join(data_dir, 'downloads', 'manual')!r} or "
                     "pass `manual_dir=`")
        _existing_dir(data_dir, "data_dir", hint)
    if manual_dir is not None:
        hint = ""
        if info.name == "imagenet2012":
            hint = f"; it must hold {' and '.join(IMAGENET_TARS)} (from image-net.org)"
        _existing_dir(manual_dir, "manual_dir", hint)
    return data_dir, manual_dir


def _load(info, split, val, seed, data_dir, manual_dir):
    """(the split's dataset, where it was read from) for checked arguments."""
    if info.source == "idx":
        return _load_idx(info, split, val, seed, data_dir)
    ds = _load_tfds(info, split, val, seed, data_dir, manual_dir)
    return ds, f"the TFDS data_dir {_tfds_data_dir(data_dir)!r}"


def _windows(parts, val, seed):
    """Per TFDS part, the seeded window [start, start + n) held out for validation:
    ``val`` shared out by the parts' shares, a part too small passing on the rest."""
    quotas = [int(round(val * share)) for _, _, share in parts]
    quotas[-1] = val - sum(quotas[:-1])
    quotas = [min(q, size) for q, (_, size, _) in zip(quotas, parts)]
    rest = val - sum(quotas)
    for i, (_, size, _) in enumerate(parts):
        extra = min(rest, size - quotas[i])
        quotas[i] += extra
        rest -= extra
    rng = np.random.default_rng(seed)
    return [(split, size, int(rng.integers(0, size - n + 1)), n)
            for (split, size, _), n in zip(parts, quotas)]


def tfds_split(name, split, validation_size=None, seed=0):
    """The TFDS split string ``load`` reads for ``split`` (public so the carving can be
    inspected: e.g. ``cifar10`` train -> ``'train[:12345]+train[17345:]'``)."""
    info = dataset_info(name)
    if info.source != "tfds":
        raise ValueError(f"{name} is not a TFDS dataset")
    _check_split(split)
    val = _validation_size(info, validation_size)
    seed = checks.seed(seed, "seed")
    recipe = _RECIPES[name]
    if split == "test":
        return recipe.test_split
    if split == "train_full" or (split == "train" and val == 0):
        return "+".join(part for part, _, _ in recipe.train_parts)
    if split == "validation" and val == 0:
        raise ValueError(f"{name} has no validation split with validation_size=0")
    pieces = []
    for part, size, start, n in _windows(recipe.train_parts, val, seed):
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


def _tfds_data_dir(data_dir):
    if data_dir is not None:
        return os.fspath(data_dir)
    return os.environ.get("TFDS_DATA_DIR") or os.path.join(os.path.expanduser("~"), "tensorflow_datasets")


def _prepared(data_dir, tfds_name):
    """Whether TFDS has already built ``tfds_name`` under ``data_dir`` (any version)."""
    root = os.path.join(data_dir, tfds_name)
    if not os.path.isdir(root):
        return False
    return any(os.path.isfile(os.path.join(root, v, "dataset_info.json")) for v in os.listdir(root))


def _check_imagenet_archives(data_dir, manual_dir):
    """ImageNet cannot be downloaded: unless TFDS already prepared it, both tars must
    be in the manual dir. Checked before TFDS runs, so the error is this one."""
    root = _tfds_data_dir(data_dir)
    if _prepared(root, "imagenet2012"):
        return None
    manual = os.fspath(manual_dir) if manual_dir is not None else os.path.join(root, "downloads", "manual")
    missing = [t for t in IMAGENET_TARS if not os.path.isfile(os.path.join(manual, t))]
    if missing:
        raise FileNotFoundError(
            f"ImageNet (imagenet2012) is not prepared under {root!r} and cannot be downloaded: "
            f"put {' and '.join(IMAGENET_TARS)} (from image-net.org) into the manual directory "
            f"{manual!r} (pass `manual_dir=` to use another one); missing: {', '.join(missing)}"
        )
    return manual


def _load_tfds(info, split, val, seed, data_dir, manual_dir):
    recipe = _RECIPES[info.name]
    manual = _check_imagenet_archives(data_dir, manual_dir) if info.name == "imagenet2012" else None
    import tensorflow_datasets as tfds  # only now: IDX users need no TFDS

    kwargs = {}
    if manual is not None:
        kwargs["download_and_prepare_kwargs"] = {
            "download_config": tfds.download.DownloadConfig(manual_dir=manual)}
    ds = tfds.load(recipe.tfds_name, split=tfds_split(info.name, split, val, seed),
                   data_dir=None if data_dir is None else os.fspath(data_dir),
                   as_supervised=True, shuffle_files=False, **kwargs)
    return ds.map(lambda x, y: (x, tf.cast(y, tf.int32)), num_parallel_calls=AUTOTUNE,
                  deterministic=True)


# ----------------------------------------------------------------------------- IDX files

# Monkeypatchable search locations, used only when no location is given (``data_dir``
# or $KZOO_DATA_DIR, which are searched alone).
SYSTEM_DIRS = {"fashion_mnist": ("/usr/share/datasets/fashion-mnist",),
               "mnist": ("/usr/share/datasets/mnist",)}
_SUBDIRS = {"fashion_mnist": ("fashion-mnist", "fashion_mnist"), "mnist": ("mnist",)}
_IDX_FILES = {"train": ("train-images", "train-labels"), "test": ("t10k-images", "t10k-labels")}
_IDX_STEMS = (("train-images", 3), ("train-labels", 1), ("t10k-images", 3), ("t10k-labels", 1))
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# The most data one IDX file may hold: (Fashion-)MNIST's largest is 47 MB, so a header
# asking for more is corrupt (or another kind of file), refused before memory is spent.
MAX_IDX_BYTES = 2**32
_IDX_CACHE = {}
_GIVEN = ("data_dir", "$KZOO_DATA_DIR")


def keras_cache_dir():
    """Where ``keras.datasets`` keeps its downloads (``$KERAS_HOME/datasets``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return os.path.join(home, "datasets")


def _idx_file_name(stem, ndim):
    return f"{stem}-idx{ndim}-ubyte[.gz]"


def _idx_location(name, data_dir):
    """(folder, what named it) of the location the user gave for ``name``'s IDX files --
    ``data_dir``, else a non-empty $KZOO_DATA_DIR -- checked to be a directory; (None,
    None) when neither is set and the default places are searched."""
    sub = _SUBDIRS[name][0]
    if data_dir is not None:
        hint = (f"; it is where {name}'s IDX files were to be read from (it or its {sub}/ "
                "subfolder), so no other copy is used")
        return _existing_dir(data_dir, "data_dir", hint), "data_dir"
    env = os.environ.get("KZOO_DATA_DIR")
    if env:
        hint = (f"; it names where {name}'s IDX files are (it or its {sub}/ subfolder), so no "
                "other copy is used: fix it, or unset it to search the default places")
        return _existing_dir(env, "$KZOO_DATA_DIR", hint), "$KZOO_DATA_DIR"
    return None, None


def _idx_candidates(name, data_dir):
    """The directories searched for the IDX files, in order, as (dir, why) pairs: the
    given location alone (subfolders first) when there is one, else the default places."""
    root, why = _idx_location(name, data_dir)
    if root is not None:
        # The subfolder first: MNIST and Fashion-MNIST files have the same names.
        return [(os.path.join(root, sub), why) for sub in _SUBDIRS[name]] + [(root, why)]
    return ([(d, "system") for d in SYSTEM_DIRS[name]]
            + [(os.path.join(keras_cache_dir(), _SUBDIRS[name][0]), "keras cache")])


def _find_idx(directory, stem, ndim):
    """The path of ``stem``'s IDX file in ``directory``, gzipped or not, or None."""
    for sep in ("-", "."):
        base = f"{stem}{sep}idx{ndim}-ubyte"
        for fname in (base + ".gz", base):
            path = os.path.join(directory, fname)
            if os.path.isfile(path):
                return path
    return None


def _read_idx_stream(fh, path, file_size):
    magic = fh.read(4)
    if len(magic) < 4 or magic[0] != 0 or magic[1] != 0 or magic[2] not in _IDX_DTYPES or magic[3] == 0:
        raise ValueError(
            f"{path!r} is not an IDX file: bad magic number {magic.hex() or '(empty file)'}, "
            "expected 0000 then a type byte and the number of dimensions"
        )
    ndim = magic[3]
    dims = fh.read(4 * ndim)
    if len(dims) < 4 * ndim:
        raise ValueError(f"Corrupt IDX file {path!r}: truncated header")
    header = 4 + 4 * ndim
    # Python ints: dimensions up to 2**32 - 1 each overflow numpy's int64 product.
    shape = tuple(int.from_bytes(dims[4 * i:4 * i + 4], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[magic[2]])
    expected = math.prod(shape) * dtype.itemsize
    if expected > MAX_IDX_BYTES:
        raise ValueError(
            f"Corrupt IDX file {path!r}: header says shape {shape} ({expected} bytes of data), "
            f"more than the {MAX_IDX_BYTES} bytes an IDX file kzoo reads may hold"
        )
    if file_size is not None and file_size - header != expected:  # a plain file: no reading
        raise ValueError(
            f"Corrupt IDX file {path!r}: header says shape {shape} ({expected} bytes of data), "
            f"the file holds {file_size - header}"
        )
    body = fh.read(expected + 1)
    if len(body) != expected:
        held = len(body) if len(body) < expected else "more"
        raise ValueError(
            f"Corrupt IDX file {path!r}: header says shape {shape} ({expected} bytes of data), "
            f"the file holds {held}"
        )
    return np.frombuffer(body, dtype).reshape(shape)


def read_idx(path):
    """An IDX file (gzipped or plain) as a numpy array; a ValueError naming the file when
    it is not a well-formed IDX file (a bad magic number, a truncated or corrupt file, a
    header whose sizes do not match the data or exceed ``MAX_IDX_BYTES``). The header is
    checked before the data is read."""
    path = os.fspath(checks.path(path, "path"))
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if not gz:
        with open(path, "rb") as fh:
            return _read_idx_stream(fh, path, os.fstat(fh.fileno()).st_size)
    try:
        with gzip.open(path, "rb") as fh:
            return _read_idx_stream(fh, path, None)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(f"Corrupt gzip file {path!r}: {err}") from err


def _check_idx_arrays(info, images, labels, images_from, labels_from):
    """The images and labels as (uint8 [N, H, W, 1], int32 [N]) once they are checked to
    be ``info``'s; the ValueErrors name where they came from."""
    h, w, _ = info.image_shape
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_from} must hold uint8 images [N, H, W] ({info.name}: "
                         f"[N, {h}, {w}]), got {images.dtype} with {images.ndim} dimensions "
                         f"{images.shape}")
    if images.shape[1:] != (h, w):
        raise ValueError(f"{images_from} holds {images.shape[1]}x{images.shape[2]} images, but "
                         f"{info.name}'s are {h}x{w}: is it another dataset's file?")
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(f"{labels_from} must hold {images.shape[0]} labels (one per image of "
                         f"{images_from}), got {labels.ndim} dimensions {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{labels_from} must hold integer labels, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= info.classes):
        raise ValueError(f"{labels_from} has labels outside [0, {info.classes}) "
                         f"(from {labels.min()} to {labels.max()})")
    return images[..., None], labels.astype(np.int32)


def _read_pair(images_path, labels_path, info):
    key = (info.name,) + tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size)
                               for p in (images_path, labels_path))
    if key not in _IDX_CACHE:
        arrays = _check_idx_arrays(info, read_idx(images_path), read_idx(labels_path),
                                   repr(images_path), repr(labels_path))
        _IDX_CACHE.clear()  # one dataset at a time is plenty
        _IDX_CACHE[key] = arrays
    return _IDX_CACHE[key]


def _keras_download(name):
    """Last resort: ``keras.datasets`` (needs the internet)."""
    import keras

    module = keras.datasets.fashion_mnist if name == "fashion_mnist" else keras.datasets.mnist
    (x_train, y_train), (x_test, y_test) = module.load_data()
    return (x_train, y_train), (x_test, y_test)


def _locate_idx(info, data_dir):
    """({stem: path} of the four IDX files, their folder, what named it, the folders
    searched); (None, None, None, searched) when the default places hold no complete set. A location the
    user gave is authoritative: the first of its folders holding any of the files must
    hold all four, and a FileNotFoundError says which are missing where."""
    candidates = _idx_candidates(info.name, data_dir)
    given = candidates[0][1] in _GIVEN
    searched = []
    for directory, why in candidates:
        found = {stem: _find_idx(directory, stem, ndim) for stem, ndim in _IDX_STEMS}
        if all(found.values()):
            return found, directory, why, searched
        if given and any(found.values()):
            missing = [_idx_file_name(stem, ndim) for stem, ndim in _IDX_STEMS if not found[stem]]
            raise FileNotFoundError(
                f"{info.name}: the folder {directory!r} (from `{why}`) holds only some of the IDX "
                f"files; missing there: {', '.join(missing)}. Put them there (no other copy is "
                f"used when `{why}` is set)"
            )
        searched.append(directory)
    if given:
        root = candidates[-1][0]
        names = ", ".join(_idx_file_name(stem, ndim) for stem, ndim in _IDX_STEMS)
        raise FileNotFoundError(
            f"{info.name} not found under `{why}`={root!r}: none of {names} in "
            + ", ".join(repr(d) for d in searched)
            + f". Put the four files in {os.path.join(root, _SUBDIRS[info.name][0])!r} or point "
            f"`{why}` at the folder holding them; no other copy is searched or downloaded when "
            f"`{why}` is set"
        )
    return None, None, None, [f"{d} ({why})" for d, why in candidates]


def _idx_data(info, data_dir):
    """(((train images, labels), (test images, labels)), where they came from) from the
    given location, else the first default place holding all four files, else the Keras
    cache / a download; a FileNotFoundError listing every place searched otherwise."""
    found, directory, why, searched = _locate_idx(info, data_dir)
    if found is not None:
        arrays = tuple(_read_pair(*(found[stem] for stem in _IDX_FILES[s]), info)
                       for s in ("train", "test"))
        return arrays, f"the folder {directory!r}" + (f" (from `{why}`)" if why in _GIVEN else "")
    if info.name == "mnist":
        npz = os.path.join(keras_cache_dir(), "mnist.npz")
        if os.path.isfile(npz):
            with np.load(npz) as f:
                arrays = (_check_idx_arrays(info, f["x_train"], f["y_train"], f"{npz!r} x_train",
                                            f"{npz!r} y_train"),
                          _check_idx_arrays(info, f["x_test"], f["y_test"], f"{npz!r} x_test",
                                            f"{npz!r} y_test"))
            return arrays, f"the Keras cache file {npz!r}"
        searched.append(f"{npz} (keras cache)")
    try:
        (x_train, y_train), (x_test, y_test) = _keras_download(info.name)
    except Exception as err:  # no internet, a proxy, a bad cache: all end here
        raise FileNotFoundError(
            f"{info.name} not found. Looked for train-images-idx3-ubyte[.gz], "
            "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and "
            "t10k-labels-idx1-ubyte[.gz] in:\n  " + "\n  ".join(searched)
            + f"\nthen tried to download with keras.datasets, which failed: {err}\n"
            "Put the four files in one of those places or in a folder passed as `data_dir` "
            f"(or $KZOO_DATA_DIR), e.g. $KZOO_DATA_DIR/{_SUBDIRS[info.name][0]}/ "
            "(Debian/Ubuntu: apt install dataset-fashion-mnist for Fashion-MNIST)."
        ) from err
    where = f"keras.datasets.{info.name}"
    arrays = (_check_idx_arrays(info, np.asarray(x_train), np.asarray(y_train), f"{where} x_train",
                                f"{where} y_train"),
              _check_idx_arrays(info, np.asarray(x_test), np.asarray(y_test), f"{where} x_test",
                                f"{where} y_test"))
    return arrays, f"the {where} download"


def _idx_arrays(info, data_dir):
    """((train images, labels), (test images, labels)) as ``load`` finds them."""
    return _idx_data(info, data_dir)[0]


def _load_idx(info, split, val, seed, data_dir):
    """(the split's dataset, where the files were read from)."""
    ((x_train, y_train), (x_test, y_test)), source = _idx_data(info, data_dir)
    if split == "test":
        x, y = x_test, y_test
    elif split == "train_full" or (split == "train" and val == 0):
        x, y = x_train, y_train
    else:
        if val >= len(x_train):
            raise ValueError(f"`validation_size` must be smaller than the {len(x_train)} "
                             f"{info.name} training examples in {source}, got {val}")
        held = np.zeros(len(x_train), bool)
        held[np.random.default_rng(seed).permutation(len(x_train))[:val]] = True
        keep = held if split == "validation" else ~held
        x, y = x_train[keep], y_train[keep]
    return tf.data.Dataset.from_tensor_slices((x, y)), source


# ----------------------------------------------------------------------------- pipelines

def _normaliser(info):
    """(fn mapping a float32 batch on the 0-255 scale to the model's input, and the
    normalised value of a zero pixel)."""
    if info.mean is None:
        return (lambda x: x / 255.0), 0.0
    mean = tf.constant(info.mean, tf.float32)
    std = tf.constant(info.std, tf.float32)
    return (lambda x: (x - mean) / std), None


def _fill(info, recipe):
    """The value padded pixels get after normalisation."""
    if recipe.pad_pixel is None:
        return tf.zeros([info.image_shape[-1]], tf.float32)
    normalise, _ = _normaliser(info)
    return normalise(tf.fill([info.image_shape[-1]], tf.constant(recipe.pad_pixel, tf.float32)))


def _draw_crop_flip(batch, seed, pad, flip):
    """Per image: (row, column) offsets uniform in [-pad, pad], flip with probability 1/2."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    offsets = tf.random.stateless_uniform([batch, 2], seeds[0], minval=-pad, maxval=pad + 1,
                                          dtype=tf.int32)
    flipped = (tf.random.stateless_uniform([batch], seeds[1]) < 0.5) if flip \
        else tf.zeros([batch], tf.bool)
    return offsets, flipped


def _place(images, offsets, flipped, normalise, fill):
    """The normalised crops of a uint8 batch, shifted by ``offsets`` ([B, 2]: output
    pixel (i, j) is input pixel (i + dy, j + dx), ``fill`` outside the image) and then
    mirrored where ``flipped``. One gather picks every output pixel; the padding is a
    mask, so no padded copy is ever made."""
    h, w, c = images.shape[1:]
    b = tf.shape(images)[0]
    rows = offsets[:, :1] + tf.range(h)[None, :]  # [B, H] source rows
    cols = tf.broadcast_to(tf.range(w)[None, :], [b, w])
    cols = tf.where(flipped[:, None], w - 1 - cols, cols) + offsets[:, 1:]  # [B, W]
    valid = (((rows >= 0) & (rows < h))[:, :, None, None]
             & ((cols >= 0) & (cols < w))[:, None, :, None])
    index = (tf.clip_by_value(rows, 0, h - 1)[:, :, None] * w
             + tf.clip_by_value(cols, 0, w - 1)[:, None, :])
    x = tf.gather(tf.reshape(images, [b, h * w, c]), tf.reshape(index, [b, h * w]), batch_dims=1)
    x = normalise(tf.cast(tf.reshape(x, [b, h, w, c]), tf.float32))
    return tf.where(valid, x, fill)


@functools.lru_cache(maxsize=None)
def _xla_works():
    """Whether XLA can compile inside a tf.data map here: it runs ``_place`` ~8x faster
    on CPU (one fused loop instead of a dozen broadcasting ops). Probed once per process
    the way the pipeline uses it; without it (or with KZOO_DATA_XLA=0) plain TF runs."""
    if os.environ.get("KZOO_DATA_XLA", "1") == "0":
        return False
    try:
        place = tf.function(lambda x, o, f: _place(x, o, f, lambda v: v, 0.0), jit_compile=True)
        probe = tf.data.Dataset.from_tensors(tf.zeros([1, 2, 2, 1], tf.uint8)).map(
            lambda x: place(x, tf.zeros([1, 2], tf.int32), tf.zeros([1], tf.bool)))
        return bool(next(iter(probe)).shape == (1, 2, 2, 1))
    except Exception:  # no XLA in this build / on this platform
        return False


def _crop_flip_fn(pad, flip, normalise, fill):
    """``fn(uint8 batch, seed) -> normalised float32 batch``: the random draws in plain
    TF (bit-identical everywhere), the pixel work XLA-compiled when XLA is available."""
    def place(images, offsets, flipped):
        return _place(images, offsets, flipped, normalise, fill)
    if _xla_works():
        place = tf.function(place, jit_compile=True)

    def fn(images, seed):
        offsets, flipped = _draw_crop_flip(tf.shape(images)[0], seed, pad, flip)
        return place(images, offsets, flipped)
    return fn


def reference_augment(image, name):
    """The training augmentation of one uint8 image, written per example with
    ``tf.image``'s stateful random ops: what a plain ``ds.map`` would do. kzoo's
    pipeline does the same on whole batches; tests and the benchmark compare the two."""
    info, recipe = dataset_info(name), _RECIPES[name]
    normalise, _ = _normaliser(info)
    x = normalise(tf.cast(image, tf.float32))
    if recipe.pad:
        p = recipe.pad
        x = tf.pad(x - _fill(info, recipe), [[p, p], [p, p], [0, 0]]) + _fill(info, recipe)
        x = tf.image.random_crop(x, info.image_shape)
    if recipe.flip:
        x = tf.image.random_flip_left_right(x)
    return x


def _imagenet_train(image, seed):
    """Random-resized crop (scale 0.08-1, ratio 3/4-4/3) to 224 and a random flip."""
    seeds = tf.random.experimental.stateless_split(seed, 2)
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.shape(image), bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seeds[0],
        min_object_covered=0.0, aspect_ratio_range=(3 / 4, 4 / 3), area_range=(0.08, 1.0),
        max_attempts=10, use_image_if_no_bounding_boxes=True)
    x = tf.image.resize(tf.slice(image, begin, size), (224, 224), method="bilinear")
    return tf.image.stateless_random_flip_left_right(x, seeds[1])


def _imagenet_eval(image):
    """Shorter side resized to 256 (antialiased), then the central 224x224."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = 256.0 / tf.reduce_min(shape)
    size = tf.maximum(tf.cast(tf.round(shape * scale), tf.int32), 256)
    x = tf.image.resize(image, size, method="bilinear", antialias=True)
    top = (size[0] - 224) // 2
    left = (size[1] - 224) // 2
    return x[top:top + 224, left:left + 224, :]


def resize_for_model(image, name, size):
    """One float32 image (0-255 scale) of any size brought to the model's ``size`` as
    the evaluation pipeline would: ImageNet's resize-256 + centre crop when the image is
    not already 224x224, a bilinear resize for the small datasets when it differs."""
    height, width = size
    shape = tf.shape(image)
    same = tf.logical_and(tf.equal(shape[0], height), tf.equal(shape[1], width))
    if name == "imagenet2012":
        resize = lambda: tf.image.resize(_imagenet_eval(image), (height, width))  # noqa: E731
    else:
        resize = lambda: tf.image.resize(image, (height, width), method="bilinear")  # noqa: E731
    x = tf.cond(same, lambda: image, resize)
    return tf.ensure_shape(x, [height, width, image.shape[-1]])


def prepare_for_model(images, name, size):
    """A float32 batch on the 0-255 scale, any size, to the input the model was trained
    and evaluated on for dataset ``name`` (what kzoo's exports compute in their graph)."""
    info = dataset_info(name)
    height, width = size
    shape = tf.shape(images)
    same = tf.logical_and(tf.equal(shape[1], height), tf.equal(shape[2], width))
    channels = info.image_shape[-1]
    resized = tf.cond(
        same, lambda: images,
        lambda: tf.map_fn(lambda image: resize_for_model(image, name, size), images,
                          fn_output_signature=tf.TensorSpec([height, width, channels], tf.float32)))
    normalise, _ = _normaliser(info)
    return normalise(tf.ensure_shape(resized, [None, height, width, channels]))


def _seeds(seed):
    """An endless dataset of stateless seeds ([2] int64), new each epoch, reproducible
    from ``seed`` (random when None)."""
    return tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)


def pipeline(ds, name, *, training, batch_size, seed=None, augment=True, drop_remainder=None):
    """Batches of (float32 normalised images, int32 labels) from ``load``'s output, prefetched.

    Training: shuffled (the whole dataset when it fits the buffer), augmented as the
    dataset's paper did when ``augment`` (CIFAR and Fashion-MNIST: pad-crop-flip; MNIST:
    pad-crop; ImageNet: random-resized crop + flip; SVHN: none). ``seed`` fixes the
    shuffle and the augmentation (the same seed gives the same batches, epoch after
    epoch); None makes them random and lets tf.data reorder work for speed.
    ``drop_remainder`` defaults to ``training``: equal training batches, every
    evaluation example counted. Small datasets are cached in memory as uint8.
    """
    info, recipe = dataset_info(name), _RECIPES[name]
    if not isinstance(ds, tf.data.Dataset):
        raise TypeError(f"`ds` must be a tf.data.Dataset (from kzoo.data.load), got {type(ds).__name__}")
    checks.boolean(training, "training")
    checks.boolean(augment, "augment")
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    seed = checks.seed(seed, "seed", optional=True)
    if drop_remainder is None:
        drop_remainder = training
    elif not isinstance(drop_remainder, bool):
        raise TypeError(f"`drop_remainder` must be None, True or False, got {drop_remainder!r}")
    deterministic = seed is not None or not training
    normalise, _ = _normaliser(info)
    imagenet = name == "imagenet2012"

    if recipe.cache:
        ds = ds.cache()
    if training:
        size = int(ds.cardinality())
        buffer = recipe.shuffle_buffer if size < 0 else max(1, min(size, recipe.shuffle_buffer))
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)

    if imagenet:
        if training and augment:
            ds = tf.data.Dataset.zip((ds, _seeds(seed))).map(
                lambda xy, s: (_imagenet_train(xy[0], s), xy[1]),
                num_parallel_calls=AUTOTUNE, deterministic=deterministic)
        else:
            ds = ds.map(lambda x, y: (_imagenet_eval(x), y), num_parallel_calls=AUTOTUNE,
                        deterministic=deterministic)
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(lambda x, y: (normalise(x), y), num_parallel_calls=AUTOTUNE,
                    deterministic=deterministic)
    elif training and augment and recipe.pad:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        augment_batch = _crop_flip_fn(recipe.pad, recipe.flip, normalise, _fill(info, recipe))
        ds = tf.data.Dataset.zip((ds, _seeds(seed))).map(
            lambda xy, s: (augment_batch(xy[0], s), xy[1]),
            num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    else:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        ds = ds.map(lambda x, y: (normalise(tf.cast(x, tf.float32)), y),
                    num_parallel_calls=AUTOTUNE, deterministic=deterministic)
    return ds.prefetch(AUTOTUNE)


def train_examples(name, validation_size=None, train_fraction=None):
    """How many training examples a run sees: the training split after the validation
    carve-out, cut to ``train_fraction`` (in (0, 1], rounded up) when one is given."""
    n = num_examples(name, "train", validation_size)
    train_fraction = _check_train_fraction(train_fraction)
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
        val = _validation_size(dataset_info(name), validation_size)
        cut = "" if train_fraction is None else f" and train_fraction={train_fraction}"
        raise ValueError(
            f"`batch_size` {batch_size} is larger than the {n} training examples of {name} "
            f"(validation_size={val}{cut}): 0 steps per epoch, as the last partial batch is "
            "dropped; use a smaller batch_size"
        )
    return steps


def _cardinality(ds):
    """The dataset's size, or None when tf.data does not know it."""
    n = int(ds.cardinality())
    return n if n >= 0 else None


def make_datasets(name, *, batch_size, data_dir=None, validation_size=None, seed=0,
                  augment=True, split_seed=0, manual_dir=None, train_fraction=None):
    """(train, validation or None, test, DatasetInfo), batched for ``model.fit``.

    ``seed`` drives the training shuffle and augmentation; ``split_seed`` picks the
    validation carve-out, kept apart so that runs with different seeds share one
    validation set (both integers in [0, 2**32 - 1]; ``seed`` may be None: random).
    ``validation_size=0`` trains on the whole training set and gives no validation
    dataset. ``train_fraction`` trains on the first fraction of the training split in
    its stored order (TFDS's is hash-shuffled, the IDX files' is mixed), the EraseReLU
    paper's ImageNet-10/20/30%: the same examples for every seed, and a smaller
    fraction is a subset of a larger one. Validation and test stay whole.
    ``data_dir`` and ``manual_dir`` are as for ``load``.

    Every argument is checked before any file is read (``steps_per_epoch`` included);
    after loading, a ValueError naming the split, its size and the place read when the
    training split gives no full batch or the validation or test split is empty.
    """
    info = dataset_info(name)
    batch_size = checks.integer(batch_size, "batch_size", minimum=1)
    seed = checks.seed(seed, "seed", optional=True)
    split_seed = checks.seed(split_seed, "split_seed")
    checks.boolean(augment, "augment")
    val = _validation_size(info, validation_size)
    train_fraction = _check_train_fraction(train_fraction)
    n_train = train_examples(name, val, train_fraction)
    steps_per_epoch(name, batch_size, val, train_fraction)
    data_dir, manual_dir = _check_dirs(info, data_dir, manual_dir)

    def read(split):
        return _load(info, split, val, split_seed, data_dir, manual_dir)

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
            f"{name}: the training split read from {source} has {n} examples ({how}), fewer than "
            f"batch_size={batch_size}: 0 steps per epoch; use a smaller batch_size or more data"
        )
    valid_ds = None
    if val:
        valid_ds, _ = read("validation")
        if _cardinality(valid_ds) == 0:
            raise ValueError(f"{name}: the validation split read from {source} is empty "
                             f"(validation_size={val})")
    test_ds, _ = read("test")
    if _cardinality(test_ds) == 0:
        raise ValueError(f"{name}: the test split read from {source} is empty (0 examples)")
    train = pipeline(train_ds, name, training=True, batch_size=batch_size, seed=seed, augment=augment)
    valid = None if valid_ds is None else pipeline(valid_ds, name, training=False,
                                                   batch_size=batch_size)
    test = pipeline(test_ds, name, training=False, batch_size=batch_size)
    return train, valid, test, info
