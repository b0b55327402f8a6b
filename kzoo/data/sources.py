"""Where a dataset is read from: a ``TFDSSource`` (tensorflow-datasets, its training set
made of ``TrainPart``s) or an ``IDXSource`` (the four IDX files, found locally). Each
holds only its own kind's fields, so a spec cannot carry a TFDS version it never reads,
and each checks its fields when it is made (``checked``): an error names the field."""

import dataclasses
import re

from kzoo import checks


def checked(record, check):
    """Run ``check(record)``, prefixing its TypeError / ValueError with the record's
    class, so that a nested record's error says which record the field belongs to."""
    try:
        check(record)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{type(record).__name__}: {err}") from None


def strings(value, arg, *, non_empty=False):
    """``value`` if it is a tuple of non-empty strings (and not empty, if ``non_empty``)."""
    if not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value):
        raise TypeError(f"`{arg}` must be a tuple of non-empty strings, got {value!r}")
    if non_empty and not value:
        raise ValueError(f"`{arg}` must name at least one, got ()")
    return value


def optional_string(value, arg):
    """``value`` if it is None or a non-empty string."""
    if value is not None and (not isinstance(value, str) or not value):
        raise TypeError(f"`{arg}` must be a non-empty string or None, got {value!r}")
    return value


def _required_string(value, arg, what):
    if not isinstance(value, str) or not value:
        raise TypeError(f"`{arg}` must be {what}, got {value!r}")
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainPart:
    """One TFDS split of a dataset's training set (``train_full`` is their union):
    ``size`` examples, and the ``validation_share`` of the validation carve-out taken
    from it (the parts' shares add up to 1)."""

    split: str  # the TFDS split's name ("train", "extra")
    size: int
    validation_share: float = 1.0

    def __post_init__(self):
        checked(self, _check_train_part)


def _check_train_part(part):
    _required_string(part.split, "split", "a TFDS split name")
    checks.integer(part.size, "size", minimum=1)
    checks.number(part.validation_share, "validation_share", minimum=0, maximum=1)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TFDSSource:
    """A dataset read with tensorflow-datasets."""

    builder: str  # the TFDS builder's name ("svhn_cropped")
    # The TFDS splits that make up "train_full", in order (a tuple of TrainPart).
    train_parts: tuple
    # The TFDS version read ("3.0.2"); None: whichever TFDS's builder defaults to.
    version: str = None
    test_split: str = "test"  # the TFDS split kzoo tests on
    # Files TFDS needs in its manual directory because the dataset cannot be downloaded
    # (ImageNet's tars): checked for before TFDS runs, unless it is already prepared.
    manual_archives: tuple = ()
    manual_source: str = None  # where those files come from, for the messages ("image-net.org")

    def __post_init__(self):
        checked(self, _check_tfds)

    @property
    def train_size(self):
        """The examples of all training parts together (``train_full``)."""
        return sum(part.size for part in self.train_parts)


def _check_tfds(source):
    _required_string(source.builder, "builder", "the TFDS builder's name")
    version = optional_string(source.version, "version")
    if version is not None and not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise ValueError(f"`version` must be a version like '3.0.2' or None, got {version!r}")
    parts = source.train_parts
    if not isinstance(parts, tuple) or not parts or not all(isinstance(p, TrainPart) for p in parts):
        raise TypeError(f"`train_parts` must be a non-empty tuple of kzoo.data.TrainPart, got {parts!r}")
    shares = sum(part.validation_share for part in parts)
    if abs(shares - 1) > 1e-9:
        raise ValueError(f"`train_parts`' validation shares must add up to 1, got {shares!r}: {parts!r}")
    _required_string(source.test_split, "test_split", "a TFDS split name")
    strings(source.manual_archives, "manual_archives")
    optional_string(source.manual_source, "manual_source")


@dataclasses.dataclass(frozen=True, kw_only=True)
class IDXSource:
    """A dataset read from the four IDX files (train/t10k images/labels) found locally,
    with ``keras.datasets`` as the last resort."""

    # The dataset's subfolder names in a given location, searched first (the first is the
    # one messages suggest): MNIST and Fashion-MNIST files have the same names.
    subdirs: tuple
    system_dirs: tuple = ()  # the system folders searched when no location is given
    keras_module: str = None  # keras.datasets.<this>.load_data(): the last-resort download
    # A .npz in the Keras cache read before downloading (where keras.datasets keeps MNIST).
    keras_npz: str = None

    def __post_init__(self):
        checked(self, _check_idx)


def _check_idx(source):
    strings(source.subdirs, "subdirs", non_empty=True)
    strings(source.system_dirs, "system_dirs")
    optional_string(source.keras_module, "keras_module")
    optional_string(source.keras_npz, "keras_npz")


SOURCES = (TFDSSource, IDXSource)
