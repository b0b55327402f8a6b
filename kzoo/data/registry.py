"""The dataset registry: one ``DatasetSpec`` per dataset holds everything kzoo knows
about it (sizes, statistics, where it is read from, how it is split and augmented), so
that the loaders and pipelines read fields instead of testing dataset names, and a new
dataset is one ``register_dataset`` call. The built-in specs are in ``builtin.py``."""

import contextlib
import dataclasses
import re
import types

from kzoo import checks


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What kzoo needs to know about a dataset. The first nine fields are what a trainer
    needs (``DatasetInfo``'s, in its order); the rest say how it is read, split and
    augmented. ``mean``/``std`` are per channel on the 0-255 scale; None means the
    protocol divides by 255 instead (SVHN)."""

    name: str
    classes: int
    image_shape: tuple  # (H, W, C) the model sees
    train_size: int  # the whole training set (``train_full``)
    test_size: int
    validation_size: int  # the default carve-out from the training set
    mean: tuple = None
    std: tuple = None
    source: str = "tfds"  # "tfds" or "idx"
    # ---- TFDS
    tfds_name: str = None
    # The TFDS version read ("3.0.2"); None: whichever TFDS's builder defaults to.
    tfds_version: str = None
    # ((TFDS split, size, share of the validation carve-out), ...) that make up "train_full"
    train_parts: tuple = ()
    test_split: str = "test"
    # Files TFDS needs in its manual directory because the dataset cannot be downloaded
    # (ImageNet's tars): checked for before TFDS runs, unless it is already prepared.
    manual_archives: tuple = ()
    manual_source: str = None  # where those files come from, for the messages ("image-net.org")
    title: str = None  # the dataset's usual name in messages ("ImageNet"); None: ``name``
    # ---- IDX files
    # The dataset's subfolder names in a given location, searched first (the first is the
    # one messages suggest): MNIST and Fashion-MNIST files have the same names.
    idx_subdirs: tuple = ()
    system_dirs: tuple = ()  # the system folders searched when no location is given
    keras_module: str = None  # keras.datasets.<this>.load_data(): the last-resort download
    # A .npz in the Keras cache read before downloading (where keras.datasets keeps MNIST).
    keras_npz: str = None
    # ---- augmentation and evaluation
    pad: int = 0  # random crop after padding this much on each side; 0 = no crop
    flip: bool = False  # mirror half the training images (with the pad-crop)
    # None: pad with zeros *after* normalising (the mean colour), as fb.resnet.torch
    # does; a number: pad with that pixel value (0 = the black MNIST background).
    pad_pixel: float = None
    # Images of any size: ``eval_resize`` resizes the shorter side to this, then takes the
    # central ``image_shape`` crop (evaluation and exports); ``random_resized_crop`` is
    # the training crop's area range (aspect ratio 3/4-4/3, then a random flip), None for
    # no training augmentation. Both None: the images already have ``image_shape``.
    eval_resize: int = None
    random_resized_crop: tuple = None
    cache: bool = True  # keep the decoded uint8 data in memory
    shuffle_buffer: int = 100000


DatasetInfo = DatasetSpec  # the name callers used before the registry

SOURCES = ("tfds", "idx")
_REGISTRY = {}
DATASETS = types.MappingProxyType(_REGISTRY)  # read-only: register_dataset adds


def dataset_info(name):
    """The DatasetSpec of ``name``; a ValueError listing the known names (the closest
    first, "did you mean ...?") otherwise."""
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a dataset name (a string), got {name!r}")
    if name not in _REGISTRY:
        try:
            checks.choice(name, "name", _REGISTRY)
        except ValueError as err:
            raise ValueError(f"Unknown dataset {name!r}: {err}") from None
    return _REGISTRY[name]


def list_datasets():
    """The registered datasets' names, in registration order."""
    return tuple(_REGISTRY)


def register_dataset(spec, *, replace=False):
    """Add ``spec`` under ``spec.name`` once its fields are checked (an error naming the
    field otherwise); a ValueError when the name is taken, unless ``replace``."""
    check_spec(spec)
    checks.boolean(replace, "replace")
    if spec.name in _REGISTRY and not replace:
        raise ValueError(
            f"A dataset named {spec.name!r} is already registered; pass `replace=True` to replace it"
        )
    _REGISTRY[spec.name] = spec
    return spec


@contextlib.contextmanager
def registered(spec, *, replace=False):
    """``register_dataset(spec, replace=replace)`` for the ``with`` block only: afterwards
    the name is gone again, or back to the spec it replaced (tests, experiments)."""
    check_spec(spec)
    previous = _REGISTRY.get(spec.name)
    register_dataset(spec, replace=replace)
    try:
        yield spec
    finally:
        if previous is None:
            _REGISTRY.pop(spec.name, None)
        else:
            _REGISTRY[spec.name] = previous


# ----------------------------------------------------------------------------- checks


def check_spec(spec):
    """``spec`` if every field is well-formed and the fields agree with each other;
    otherwise a TypeError / ValueError naming the dataset and the field."""
    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"`spec` must be a kzoo.data.DatasetSpec, got {type(spec).__name__}")
    if not isinstance(spec.name, str):
        raise TypeError(f"`name` must be a dataset name (a string), got {spec.name!r}")
    if not spec.name.strip():
        raise ValueError(f"`name` must be a non-empty string, got {spec.name!r}")
    try:
        _check_sizes(spec)
        _check_statistics(spec)
        checks.choice(spec.source, "source", SOURCES)
        (_check_tfds if spec.source == "tfds" else _check_idx)(spec)
        _check_augmentation(spec)
    except (TypeError, ValueError) as err:
        raise type(err)(f"Dataset {spec.name!r}: {err}") from None
    return spec


def _strings(value, arg, *, non_empty=False):
    """``value`` if it is a tuple of non-empty strings (and not empty, if ``non_empty``)."""
    if not isinstance(value, tuple) or not all(isinstance(v, str) and v for v in value):
        raise TypeError(f"`{arg}` must be a tuple of non-empty strings, got {value!r}")
    if non_empty and not value:
        raise ValueError(f"`{arg}` must name at least one, got ()")
    return value


def _optional_string(value, arg):
    if value is not None and (not isinstance(value, str) or not value):
        raise TypeError(f"`{arg}` must be a non-empty string or None, got {value!r}")
    return value


def _check_sizes(spec):
    checks.integer(spec.classes, "classes", minimum=1)
    shape = spec.image_shape
    if not isinstance(shape, tuple) or len(shape) != 3:
        raise TypeError(f"`image_shape` must be a tuple (H, W, C), got {shape!r}")
    for dim in shape:
        checks.integer(dim, "image_shape", minimum=1)
    train = checks.integer(spec.train_size, "train_size", minimum=1)
    checks.integer(spec.test_size, "test_size", minimum=1)
    checks.integer(spec.validation_size, "validation_size", minimum=0, maximum=train - 1)


def _check_statistics(spec):
    if (spec.mean is None) != (spec.std is None):
        raise ValueError(
            f"`mean` and `std` must both be given or both be None, got mean={spec.mean!r}, std={spec.std!r}"
        )
    if spec.mean is None:
        return
    channels = spec.image_shape[-1]
    for arg, values, low in (("mean", spec.mean, None), ("std", spec.std, 0)):
        if not isinstance(values, tuple) or len(values) != channels:
            raise ValueError(
                f"`{arg}` must be a tuple of {channels} numbers (one per channel), got {values!r}"
            )
        for v in values:
            checks.number(v, arg, minimum=low, min_open=low is not None)


def _check_tfds(spec):
    if not isinstance(spec.tfds_name, str) or not spec.tfds_name:
        raise TypeError(f"`tfds_name` must be the TFDS builder's name, got {spec.tfds_name!r}")
    version = _optional_string(spec.tfds_version, "tfds_version")
    if version is not None and not re.fullmatch(r"\d+\.\d+\.\d+", version):
        raise ValueError(f"`tfds_version` must be a version like '3.0.2' or None, got {version!r}")
    parts = spec.train_parts
    if (
        not isinstance(parts, tuple)
        or not parts
        or not all(isinstance(p, tuple) and len(p) == 3 for p in parts)
    ):
        raise TypeError(
            f"`train_parts` must be a non-empty tuple of (TFDS split, size, share), got {parts!r}"
        )
    for split, size, share in parts:
        _optional_string(split, "train_parts")
        checks.integer(size, "train_parts", minimum=1)
        checks.number(share, "train_parts", minimum=0, maximum=1)
    if sum(size for _, size, _ in parts) != spec.train_size:
        raise ValueError(
            f"`train_parts` must add up to train_size={spec.train_size}, got "
            f"{sum(size for _, size, _ in parts)}"
        )
    if abs(sum(share for _, _, share in parts) - 1) > 1e-9:
        raise ValueError(f"`train_parts`' shares must add up to 1, got {parts!r}")
    if not isinstance(spec.test_split, str) or not spec.test_split:
        raise TypeError(f"`test_split` must be a TFDS split name, got {spec.test_split!r}")
    _strings(spec.manual_archives, "manual_archives")
    _optional_string(spec.manual_source, "manual_source")
    _optional_string(spec.title, "title")


def _check_idx(spec):
    if spec.image_shape[-1] != 1:
        raise ValueError(f"`image_shape` of an IDX dataset must have 1 channel, got {spec.image_shape!r}")
    _strings(spec.idx_subdirs, "idx_subdirs", non_empty=True)
    _strings(spec.system_dirs, "system_dirs")
    _optional_string(spec.keras_module, "keras_module")
    _optional_string(spec.keras_npz, "keras_npz")


def _check_augmentation(spec):
    checks.integer(spec.pad, "pad", minimum=0)
    checks.boolean(spec.flip, "flip")
    checks.number(spec.pad_pixel, "pad_pixel", minimum=0, maximum=255, optional=True)
    checks.boolean(spec.cache, "cache")
    checks.integer(spec.shuffle_buffer, "shuffle_buffer", minimum=1)
    resize = checks.integer(spec.eval_resize, "eval_resize", minimum=max(spec.image_shape[:2]), optional=True)
    crop = spec.random_resized_crop
    if crop is not None:
        if not isinstance(crop, tuple) or len(crop) != 2:
            raise TypeError(f"`random_resized_crop` must be an area range (low, high) or None, got {crop!r}")
        low = checks.number(crop[0], "random_resized_crop", minimum=0, maximum=1, min_open=True)
        checks.number(crop[1], "random_resized_crop", minimum=low, maximum=1)
        if resize is None:
            raise ValueError(
                "`eval_resize` must be set with `random_resized_crop` (images of any "
                "size need an evaluation resize)"
            )
    if resize is not None and (spec.pad or spec.flip):
        raise ValueError(
            f"`pad` and `flip` are the augmentation of fixed-size images; with "
            f"eval_resize={resize} use `random_resized_crop`, got pad={spec.pad}, "
            f"flip={spec.flip}"
        )


# What makes two datasets' images reach a model alike: its input and classes, and the
# normalisation and evaluation resize they go through.
_PREPROCESSING = (
    ("image_shape", "image shape"),
    ("classes", "classes"),
    ("mean", "mean"),
    ("std", "std"),
    ("eval_resize", "evaluation resize"),
)


def preprocessing_differences(name, trained):
    """How dataset ``name``'s evaluation images differ from those of dataset ``trained``
    for a model trained on the latter: ["mean (...) (not (...))", ...], empty when alike.
    A model scored or exported under another dataset's preprocessing sees inputs it was
    never trained on."""
    given, trained = dataset_info(name), dataset_info(trained)

    def plain(value):
        return tuple(value) if isinstance(value, list) else value

    return [
        f"{label} {plain(getattr(given, field))} (not {plain(getattr(trained, field))})"
        for field, label in _PREPROCESSING
        if plain(getattr(given, field)) != plain(getattr(trained, field))
    ]
