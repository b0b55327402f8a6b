"""The IDX datasets (MNIST, Fashion-MNIST): where the four files are, reading and
checking them, the keras.datasets fallback, and the in-memory split. They are read from
local files (Debian's ``dataset-fashion-mnist``, the Keras cache, ...) since TFDS and
``keras.datasets`` cannot download everywhere kzoo runs.

``data_dir`` -- or, when it is None, a non-empty ``$KZOO_DATA_DIR`` (a judgement call:
an environment variable is a location the user named too) -- is searched alone, its
dataset subfolders first (the spec's ``source.subdirs``: the two datasets' files have the
same names), then the folder itself. The first of these folders holding any of the four
IDX files must hold all four. A missing folder is a FileNotFoundError, a file a
ValueError, missing files a FileNotFoundError naming them and the folder. Only when no
location is given are the spec's ``source.system_dirs``, the Keras cache and finally a
``keras.datasets`` download tried, in that order.

The validation split is a seeded random subset of the training indices; both parts
keep the file order. Reading needs numpy only (TensorFlow is imported by ``load_split``
alone, for its ``tf.data.Dataset``), so benchmarks/gpu_jax.py reads the files with this
module on a machine with JAX and no TensorFlow.
"""

import gzip
import math
import os
import zlib

import numpy as np

from kzoo import checks
from kzoo.data import locations
from kzoo.data.locations import existing_dir

_IDX_FILES = {"train": ("train-images", "train-labels"), "test": ("t10k-images", "t10k-labels")}
_IDX_STEMS = (("train-images", 3), ("train-labels", 1), ("t10k-images", 3), ("t10k-labels", 1))
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# The most data one IDX file may hold: (Fashion-)MNIST's largest is 47 MB, so a header
# asking for more is corrupt (or another kind of file), refused before memory is spent.
MAX_IDX_BYTES = 2**32
_IDX_CACHE = {}
_GIVEN = ("data_dir", "$KZOO_DATA_DIR")


# ----------------------------------------------------------------------------- reading


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
    shape = tuple(int.from_bytes(dims[4 * i : 4 * i + 4], "big") for i in range(ndim))
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


def _check_arrays(spec, images, labels, images_from, labels_from):
    """The images and labels as (uint8 [N, H, W, 1], int32 [N]) once they are checked to
    be ``spec``'s; the ValueErrors name where they came from."""
    h, w, _ = spec.image_shape
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"{images_from} must hold uint8 images [N, H, W] ({spec.name}: "
            f"[N, {h}, {w}]), got {images.dtype} with {images.ndim} dimensions "
            f"{images.shape}"
        )
    if images.shape[1:] != (h, w):
        raise ValueError(
            f"{images_from} holds {images.shape[1]}x{images.shape[2]} images, but "
            f"{spec.name}'s are {h}x{w}: is it another dataset's file?"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"{labels_from} must hold {images.shape[0]} labels (one per image of "
            f"{images_from}), got {labels.ndim} dimensions {labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{labels_from} must hold integer labels, got {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= spec.classes):
        raise ValueError(
            f"{labels_from} has labels outside [0, {spec.classes}) (from {labels.min()} to {labels.max()})"
        )
    return images[..., None], labels.astype(np.int32)


def _read_pair(images_path, labels_path, spec):
    key = (spec,) + tuple((p, os.stat(p).st_mtime_ns, os.stat(p).st_size) for p in (images_path, labels_path))
    if key not in _IDX_CACHE:
        arrays = _check_arrays(
            spec, read_idx(images_path), read_idx(labels_path), repr(images_path), repr(labels_path)
        )
        _IDX_CACHE.clear()  # one dataset at a time is plenty
        _IDX_CACHE[key] = arrays
    return _IDX_CACHE[key]


def _named_arrays(spec, arrays, where):
    """((train images, labels), (test images, labels)) from ``{x_train: ..., ...}``."""
    return tuple(
        _check_arrays(
            spec,
            np.asarray(arrays[f"x_{s}"]),
            np.asarray(arrays[f"y_{s}"]),
            f"{where} x_{s}",
            f"{where} y_{s}",
        )
        for s in ("train", "test")
    )


# ----------------------------------------------------------------------------- locations


def _idx_file_name(stem, ndim):
    return f"{stem}-idx{ndim}-ubyte[.gz]"


def check_location(spec, data_dir):
    """(folder, what named it) of the location the user gave for ``spec``'s IDX files --
    ``data_dir``, else a non-empty $KZOO_DATA_DIR -- checked to be a directory; (None,
    None) when neither is set and the default places are searched."""
    sub = spec.source.subdirs[0]
    if data_dir is not None:
        hint = (
            f"; it is where {spec.name}'s IDX files were to be read from (it or its {sub}/ "
            "subfolder), so no other copy is used"
        )
        return existing_dir(data_dir, "data_dir", hint), "data_dir"
    env = os.environ.get("KZOO_DATA_DIR")
    if env:
        hint = (
            f"; it names where {spec.name}'s IDX files are (it or its {sub}/ subfolder), so no "
            "other copy is used: fix it, or unset it to search the default places"
        )
        return existing_dir(env, "$KZOO_DATA_DIR", hint), "$KZOO_DATA_DIR"
    return None, None


def _candidates(spec, data_dir):
    """The directories searched for the IDX files, in order, as (dir, why) pairs: the
    given location alone (subfolders first) when there is one, else the default places."""
    root, why = check_location(spec, data_dir)
    if root is not None:
        # The subfolder first: MNIST and Fashion-MNIST files have the same names.
        return [(os.path.join(root, sub), why) for sub in spec.source.subdirs] + [(root, why)]
    return [(d, "system") for d in spec.source.system_dirs] + [
        (os.path.join(locations.keras_cache_dir(), spec.source.subdirs[0]), "keras cache")
    ]


def _find_idx(directory, stem, ndim):
    """The path of ``stem``'s IDX file in ``directory``, gzipped or not, or None."""
    for sep in ("-", "."):
        base = f"{stem}{sep}idx{ndim}-ubyte"
        for fname in (base + ".gz", base):
            path = os.path.join(directory, fname)
            if os.path.isfile(path):
                return path
    return None


def _locate(spec, data_dir):
    """({stem: path} of the four IDX files, their folder, what named it, the folders
    searched); (None, None, None, searched) when the default places hold no complete set.
    A location the user gave is authoritative: the first of its folders holding any of
    the files must hold all four, and a FileNotFoundError says which are missing where."""
    candidates = _candidates(spec, data_dir)
    given = candidates[0][1] in _GIVEN
    searched = []
    for directory, why in candidates:
        found = {stem: _find_idx(directory, stem, ndim) for stem, ndim in _IDX_STEMS}
        if all(found.values()):
            return found, directory, why, searched
        if given and any(found.values()):
            missing = [_idx_file_name(stem, ndim) for stem, ndim in _IDX_STEMS if not found[stem]]
            raise FileNotFoundError(
                f"{spec.name}: the folder {directory!r} (from `{why}`) holds only some of the IDX "
                f"files; missing there: {', '.join(missing)}. Put them there (no other copy is "
                f"used when `{why}` is set)"
            )
        searched.append(directory)
    if given:
        root = candidates[-1][0]
        names = ", ".join(_idx_file_name(stem, ndim) for stem, ndim in _IDX_STEMS)
        raise FileNotFoundError(
            f"{spec.name} not found under `{why}`={root!r}: none of {names} in "
            + ", ".join(repr(d) for d in searched)
            + f". Put the four files in {os.path.join(root, spec.source.subdirs[0])!r} or point "
            f"`{why}` at the folder holding them; no other copy is searched or downloaded when "
            f"`{why}` is set"
        )
    return None, None, None, [f"{d} ({why})" for d, why in candidates]


# ----------------------------------------------------------------------------- fallbacks


def _keras_download(spec):
    """Last resort: ``keras.datasets.<spec.source.keras_module>`` (needs the internet)."""
    import keras

    if spec.source.keras_module is None:
        raise OSError(f"{spec.name} has no keras.datasets module")
    (x_train, y_train), (x_test, y_test) = getattr(keras.datasets, spec.source.keras_module).load_data()
    return (x_train, y_train), (x_test, y_test)


def keras_cache_npz(spec):
    """The Keras cache's .npz of ``spec`` when it is there, else None (and None for a
    dataset keras.datasets keeps no .npz of)."""
    if not spec.source.keras_npz:
        return None
    npz = os.path.join(locations.keras_cache_dir(), spec.source.keras_npz)
    return npz if os.path.isfile(npz) else None


def _fallback(spec, searched):
    """(arrays, where from) from the Keras cache's .npz or a keras.datasets download, when
    no folder searched held the files; a FileNotFoundError listing every place otherwise."""
    npz = keras_cache_npz(spec)
    if npz is not None:
        with np.load(npz) as f:
            arrays = _named_arrays(spec, f, repr(npz))
        return arrays, f"the Keras cache file {npz!r}"
    if spec.source.keras_npz:
        searched.append(f"{os.path.join(locations.keras_cache_dir(), spec.source.keras_npz)} (keras cache)")
    try:
        (x_train, y_train), (x_test, y_test) = _keras_download(spec)
    except Exception as err:  # no internet, a proxy, a bad cache: all end here
        raise FileNotFoundError(
            f"{spec.name} not found. Looked for train-images-idx3-ubyte[.gz], "
            "train-labels-idx1-ubyte[.gz], t10k-images-idx3-ubyte[.gz] and "
            "t10k-labels-idx1-ubyte[.gz] in:\n  "
            + "\n  ".join(searched)
            + f"\nthen tried to download with keras.datasets, which failed: {err}\n"
            "Put the four files in one of those places or in a folder passed as `data_dir` "
            f"(or $KZOO_DATA_DIR), e.g. $KZOO_DATA_DIR/{spec.source.subdirs[0]}/ "
            "(Debian/Ubuntu: apt install dataset-fashion-mnist for Fashion-MNIST)."
        ) from err
    where = f"keras.datasets.{spec.source.keras_module}"
    arrays = _named_arrays(
        spec, {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}, where
    )
    return arrays, f"the {where} download"


def _read(spec, data_dir):
    """(((train images, labels), (test images, labels)), where they came from) from the
    given location, else the first default place holding all four files, else the Keras
    cache / a download; a FileNotFoundError listing every place searched otherwise."""
    found, directory, why, searched = _locate(spec, data_dir)
    if found is None:
        return _fallback(spec, searched)
    arrays = tuple(_read_pair(*(found[stem] for stem in _IDX_FILES[s]), spec) for s in ("train", "test"))
    return arrays, f"the folder {directory!r}" + (f" (from `{why}`)" if why in _GIVEN else "")


def read_arrays(spec, data_dir=None):
    """((train images, labels), (test images, labels)) of ``spec``'s IDX dataset as
    ``load`` finds them: uint8 [N, H, W, 1] and int32 [N]."""
    return _read(spec, data_dir)[0]


def load_split(spec, split, val, seed, data_dir):
    """(the split's dataset, where the files were read from) for checked arguments. The
    only use of TensorFlow here: the rest reads numpy arrays where it is not installed."""
    import tensorflow as tf

    ((x_train, y_train), (x_test, y_test)), source = _read(spec, data_dir)
    if split == "test":
        x, y = x_test, y_test
    elif split == "train_full" or (split == "train" and val == 0):
        x, y = x_train, y_train
    else:
        if val >= len(x_train):
            raise ValueError(
                f"`validation_size` must be smaller than the {len(x_train)} "
                f"{spec.name} training examples in {source}, got {val}"
            )
        held = np.zeros(len(x_train), bool)
        held[np.random.default_rng(seed).permutation(len(x_train))[:val]] = True
        keep = held if split == "validation" else ~held
        x, y = x_train[keep], y_train[keep]
    return tf.data.Dataset.from_tensor_slices((x, y)), source
