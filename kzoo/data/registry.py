"""The dataset registry: every dataset kzoo can load is one ``DatasetSpec`` (``spec.py``)
registered under its name, so that the loaders and pipelines look a name up here
instead of testing dataset names, and a new dataset is one ``register_dataset`` call.
The built-in specs are in ``builtin.py``."""

import contextlib
import types

from kzoo import checks
from kzoo.data.spec import DatasetSpec

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


def _check_spec(spec):
    """``spec`` if it is a DatasetSpec (which checked its fields when it was made)."""
    if not isinstance(spec, DatasetSpec):
        raise TypeError(f"`spec` must be a kzoo.data.DatasetSpec, got {type(spec).__name__}")
    return spec


def register_dataset(spec, *, replace=False):
    """Add ``spec`` (a DatasetSpec, whose fields were checked when it was made) under
    ``spec.name``; a ValueError when the name is taken, unless ``replace``."""
    _check_spec(spec)
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
    _check_spec(spec)
    previous = _REGISTRY.get(spec.name)
    register_dataset(spec, replace=replace)
    try:
        yield spec
    finally:
        if previous is None:
            _REGISTRY.pop(spec.name, None)
        else:
            _REGISTRY[spec.name] = previous


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
