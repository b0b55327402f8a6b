"""The model registry: every builder by name, with the facts its paper publishes.

Modelled on timm: ``@register_model(...)`` above a builder registers it under its
function's name, ``list_models`` filters with fnmatch wildcards (and ``exclude``),
``create_model`` builds by name, and per-model metadata (``model_info``) is what tests
and docs read instead of copying.
"""

import dataclasses
import difflib
import fnmatch
import inspect
import re

from kzoo import checks
from kzoo.models import pretrained as _pretrained

_REGISTRY = {}
# Functions name -> ModelInfo (or None) for names outside the registry (kzoo.models.external).
_RESOLVERS = []


@dataclasses.dataclass(frozen=True)
class ModelInfo:
    """What kzoo knows about a registered model.

    ``published_params`` is the figure the paper prints (None when it prints none),
    ``expected_params`` the exact trainable count kzoo's build has, checked by hand
    (tests pin it), and ``params_note`` explains any gap between the two. The info of a
    pretrained tag (``model_info("resnet20.fashion_mnist")``) has its weights' record in
    ``pretrained`` and builds with their options, input shape and classes.
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
    pretrained: _pretrained.Pretrained | None = None

    def build(self, **kwargs):
        """The builder's model; a ``weights`` that names published weights (a dataset or
        a tag) loads them, as the named builders do."""
        arguments = self.arguments(kwargs)
        if _pretrained.names_weights(arguments.get("weights")):
            return _pretrained.build(model_info(self.architecture), self.signature(), self.builder, arguments)
        return self.builder(**arguments)

    @property
    def architecture(self):
        """The registered architecture's name (a tag's info is named by its tag)."""
        return self.pretrained.architecture if self.pretrained else self.name

    def signature(self):
        return inspect.signature(self.builder)

    def arguments(self, kwargs):
        """``kwargs`` over the registered ones, checked against the builder's signature (an
        argument it does not take is refused naming the model and what it takes). An
        ``input_tensor`` given replaces a tag's ``input_shape``, as an ``input_shape`` does."""
        registered = dict(self.kwargs)
        if kwargs.get("input_tensor") is not None and "input_shape" not in kwargs:
            registered.pop("input_shape", None)
        arguments = {**registered, **kwargs}
        checks.bind(self.signature(), self.architecture, **arguments)
        return arguments

    @property
    def slug(self):
        """The name as it goes into run directories (a model file's path does not)."""
        return self.name


def add_resolver(fn):
    """Let ``model_info`` answer names outside the registry: ``fn(name)`` returns their
    ``ModelInfo``, or None for a name it does not know."""
    _RESOLVERS.append(fn)
    return fn


def register_model(name=None, builder=None, **meta):
    """Register a builder with the facts ``meta`` (the ``ModelInfo`` fields).

    As a decorator, ``@register_model(family=..., paper=..., ...)`` above ``def ResNet164``
    registers "resnet164" (the function's name, lower-cased); ``name=`` chooses another,
    and stacked decorators register one builder under several names (with different
    ``kwargs``, which ``create_model`` passes first). ``register_model(name, builder,
    **meta)`` registers at once and returns ``builder``.
    """
    if callable(name) and builder is None:
        raise TypeError(
            "register_model needs the model's facts: use @register_model(family=..., paper=..., ...), "
            f"not a bare @register_model above {getattr(name, '__name__', name)!r}"
        )
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise TypeError(f"`name` must be None or a non-empty string, got {name!r}")

    def decorator(fn):
        if not callable(fn):
            raise TypeError(f"`builder` must be callable, got {fn!r}")
        _add(name if name is not None else fn.__name__, fn, meta)
        return fn

    return decorator if builder is None else decorator(builder)


def _add(name, builder, meta):
    key = name.lower()
    if key in _REGISTRY:
        raise ValueError(f"A model named {name!r} is already registered")
    _REGISTRY[key] = ModelInfo(name=key, builder=builder, **meta)


def natural_key(name):
    """Sort key that orders the numbers inside names by value: resnet20 < resnet56 <
    resnet101 < resnet1001 (plain string order puts resnet1001 before resnet101)."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _patterns(value, arg):
    """``value`` (a string or a list of strings) as a list of lower-case patterns."""
    if isinstance(value, str):
        return [value.lower()]
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(p, str) for p in value):
        return [p.lower() for p in value]
    raise TypeError(f"`{arg}` must be a string or a list of strings, got {value!r}")


def _matches(name, patterns):
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def list_models(pattern="*", family=None, exclude=None, pretrained=False):
    """Names of the registered models matching ``pattern`` and none of ``exclude``
    (fnmatch wildcards, case-insensitive; each a string or a list of patterns) and, if
    given, of ``family``; in natural order (resnet20, resnet56, resnet101, resnet1001).

    ``pretrained=True`` lists the pretrained tags instead (``resnet20.fashion_mnist``),
    as timm does: those whose tag or architecture matches ``pattern``, and no ``exclude``.
    """
    patterns = _patterns(pattern, "pattern")
    excluded = [] if exclude is None else _patterns(exclude, "exclude")
    if family is not None and not isinstance(family, str):
        raise TypeError(f"`family` must be None or a string, got {family!r}")
    checks.boolean(pretrained, "pretrained")
    names = [
        n
        for n in _REGISTRY
        if (pretrained or _matches(n, patterns))
        and not _matches(n, excluded)
        and (family is None or _REGISTRY[n].family == family)
    ]
    if pretrained:
        tags = _pretrained.list_tags(patterns, architectures=set(names))
        return sorted((t for t in tags if not _matches(t, excluded)), key=natural_key)
    return sorted(names, key=natural_key)


def model_info(name):
    """The ``ModelInfo`` of a registered model or of a pretrained tag, or a ValueError
    naming close matches."""
    if not isinstance(name, str):
        raise TypeError(f"`name` must be a string, got {name!r}")
    for resolve in _RESOLVERS:
        info = resolve(name)
        if info is not None:
            return info
    key = name.lower()
    if _pretrained.is_tag(key):
        record = _pretrained.get(key)
        info = model_info(record.architecture)
        return dataclasses.replace(
            info,
            name=record.tag,
            input_shape=record.input_shape,
            classes=record.classes,
            dataset=record.dataset,
            kwargs={
                **info.kwargs,
                **record.options,
                "input_shape": record.input_shape,
                "classes": record.classes,
            },
            pretrained=record,
        )
    if key not in _REGISTRY:
        close = difflib.get_close_matches(key, list(_REGISTRY), n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(
            f"Unknown model {name!r}.{hint} See kzoo.list_models(); a keras.applications "
            "architecture is named keras:NAME (keras:MobileNetV2), a saved model by its .keras file."
        )
    return _REGISTRY[key]


def create_model(name, pretrained=False, **kwargs):
    """Build a registered model, or a pretrained tag's architecture with its options,
    input shape and classes, by name; ``kwargs`` go to its builder.

    ``pretrained=True`` loads published weights: the tag's, or for an architecture's name
    those of its tag whose options match ``kwargs`` (``create_model("resnet20",
    pretrained=True, erase="last")``)."""
    checks.boolean(pretrained, "pretrained")
    info = model_info(name)
    if not pretrained:
        return info.build(**kwargs)
    arguments = info.arguments(kwargs)  # the same refusal of a wrong argument as without pretrained
    if kwargs.get("weights") is not None:
        raise ValueError(
            f"pass `pretrained=True` or `weights`={kwargs['weights']!r} to create_model, not both"
        )
    if info.pretrained is not None:
        arguments["weights"] = info.pretrained.tag
    else:
        arguments.pop("weights", None)
    return _pretrained.build(model_info(info.architecture), info.signature(), info.builder, arguments)
