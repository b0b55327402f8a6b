"""The model registry: every builder by name, with the facts its paper publishes.

Modelled on timm: ``list_models`` with fnmatch wildcards, ``create_model`` by name,
and per-model metadata (``model_info``) that tests and docs read instead of copying.
"""

import dataclasses
import difflib
import fnmatch

_REGISTRY = {}


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What kzoo knows about a registered model.

    ``published_params`` is the figure the paper prints (None when it prints none),
    ``expected_params`` the exact trainable count kzoo's build has, checked by hand
    (tests pin it), and ``params_note`` explains any gap between the two.
    """

    name: str
    builder: object
    family: str
    paper: str
    published_params: float | None
    input_shape: tuple
    classes: int
    dataset: str
    expected_params: int | None = None
    params_note: str = ""
    kwargs: dict = dataclasses.field(default_factory=dict)

    def build(self, **kwargs):
        return self.builder(**{**self.kwargs, **kwargs})


def register_model(name, builder, **meta):
    """Register ``builder`` (called with ``meta['kwargs']`` first) under ``name``."""
    key = name.lower()
    if key in _REGISTRY:
        raise ValueError(f"A model named {name!r} is already registered")
    _REGISTRY[key] = ModelInfo(name=key, builder=builder, **meta)
    return builder


def list_models(pattern="*", family=None):
    """Sorted names of the registered models matching ``pattern`` (fnmatch wildcards,
    case-insensitive, a list of patterns allowed) and, if given, ``family``."""
    patterns = [pattern] if isinstance(pattern, str) else list(pattern)
    if not all(isinstance(p, str) for p in patterns):
        raise TypeError(f"`pattern` must be a string or a list of strings, got {pattern!r}")
    names = sorted(
        n for n in _REGISTRY
        if any(fnmatch.fnmatchcase(n, p.lower()) for p in patterns)
    )
    if family is not None:
        names = [n for n in names if _REGISTRY[n].family == family]
    return names


def model_info(name):
    """The ``ModelInfo`` of a registered model, or a ValueError naming close matches."""
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string, got {name!r}")
    key = name.lower()
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown model {name!r}.{hint} See kzoo.list_models().")
    return _REGISTRY[key]


def create_model(name, **kwargs):
    """Build a registered model by name; ``kwargs`` go to its builder."""
    return model_info(name).build(**kwargs)
