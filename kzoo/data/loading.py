"""``load``: one split of a dataset as unbatched (uint8 image, int32 label) pairs, from
the dataset's source (TFDS or IDX files). Every argument and every location the user
named is checked before anything is read."""

from kzoo import checks
from kzoo.data import idx, tfds
from kzoo.data.locations import existing_dir
from kzoo.data.registry import dataset_info
from kzoo.data.sources import IDXSource
from kzoo.data.splits import check_split, checked_validation_size


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
    ``data_dir`` is None; with neither, the system folders (the spec's ``system_dirs``),
    the Keras cache and a ``keras.datasets`` download are tried in turn. ``manual_dir``
    is where the ImageNet tars are (TFDS's manual dir, by default
    ``<data_dir>/downloads/manual``); when given it must exist.
    """
    spec = dataset_info(name)
    check_split(split)
    val = checked_validation_size(spec, validation_size)
    seed = checks.seed(seed, "seed")
    if split == "validation" and val == 0:
        raise ValueError(
            f"{name} has no validation split with validation_size=0; use split='test' or "
            "a positive validation_size"
        )
    data_dir, manual_dir = check_dirs(spec, data_dir, manual_dir)
    return read_split(spec, split, val, seed, data_dir, manual_dir)[0]


def check_dirs(spec, data_dir, manual_dir):
    """The checked (data_dir, manual_dir) as str or None, before anything is read: the
    locations the user gave must be directories (see ``load``)."""
    data_dir = checks.path(data_dir, "data_dir", optional=True)
    manual_dir = checks.path(manual_dir, "manual_dir", optional=True)
    if isinstance(spec.source, IDXSource):
        idx.check_location(spec, data_dir)
        if manual_dir is not None:  # unused, but a location named must be right
            existing_dir(manual_dir, "manual_dir")
    else:
        tfds.check_dirs(spec, data_dir, manual_dir)
    return data_dir, manual_dir


def read_split(spec, split, val, seed, data_dir, manual_dir):
    """(the split's dataset, where it was read from) for checked arguments."""
    if isinstance(spec.source, IDXSource):
        return idx.load_split(spec, split, val, seed, data_dir)
    return tfds.load_split(spec, split, val, seed, data_dir, manual_dir)
