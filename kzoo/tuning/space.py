"""The placement search space: what a search varies, checked once, and what one trial's
hyperparameter values mean (builder kwargs, protocol overrides, its run folder's name)."""

import contextlib
import dataclasses
import hashlib
import json
import numbers

from kzoo import checks
from kzoo.placement import ACTIVATION_NAMES

NO_ERASE = "none"  # the location value that keeps every activation: the original network


@dataclasses.dataclass(frozen=True)
class Range:
    """A continuous hyperparameter range, sampled on a log scale unless ``log=False``.

    A plain record: ``SearchSpace`` checks it (finite bounds, ``low < high``, ``log`` a
    bool, ``low > 0`` on a log scale), so that the error names the argument it was given
    as (``learning_rates`` or ``weight_decays``).
    """

    low: float
    high: float
    log: bool = True


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """What a placement search varies.

    ``locations``: erase locations (slots of the architecture's block, e.g. ``"last"``;
    ``"none"`` adds the original network); ``proportions``: fractions of blocks erased,
    each in (0, 1]; ``activations``: among relu, frelu, prelu, leaky_relu, elu;
    ``learning_rates`` / ``weight_decays``: None (the protocol's), a list of values, or a
    ``Range``. Lists become keras-tuner ``Choice`` hyperparameters, single values
    ``Fixed`` ones.
    """

    locations: tuple = ("last",)
    proportions: tuple = (0.25, 0.5, 0.75, 1.0)
    activations: tuple = ("relu",)
    learning_rates: object = None
    weight_decays: object = None

    def __post_init__(self):
        def set_(name, value):  # the dataclass is frozen; normalise once, here
            object.__setattr__(self, name, value)

        set_("locations", _strings(self.locations, "locations"))
        if len(set(self.locations)) != len(self.locations):
            raise ValueError(f"`locations` must not repeat, got {list(self.locations)}")
        set_(
            "proportions",
            _numbers(self.proportions, "proportions", lambda p: 0.0 < p <= 1.0, "must each be in (0, 1]"),
        )
        acts = _strings(self.activations, "activations")
        unknown = [a for a in acts if a not in ACTIVATION_NAMES]
        if unknown:
            raise ValueError(f"`activations` must be among {', '.join(ACTIVATION_NAMES)}, got {unknown[0]!r}")
        set_("activations", acts)
        set_("learning_rates", _rate_space(self.learning_rates, "learning_rates", positive=True))
        set_("weight_decays", _rate_space(self.weight_decays, "weight_decays", positive=False))

    def size(self):
        """How many distinct trials the space holds (None when a ``Range`` makes it continuous)."""
        rates = [self.learning_rates, self.weight_decays]
        if any(isinstance(r, Range) for r in rates):
            return None
        erasing = sum(len(self.proportions) if loc != NO_ERASE else 1 for loc in self.locations)
        count = erasing * len(self.activations)
        for r in rates:
            count *= len(r) if r else 1
        return count

    def declare(self, hp):
        """Declare the hyperparameters on ``hp`` (keras-tuner's ``HyperParameters``)."""
        _choice(hp, "erase", self.locations)
        erasing = [loc for loc in self.locations if loc != NO_ERASE]
        scope = (
            hp.conditional_scope("erase", erasing)
            if NO_ERASE in self.locations and erasing
            else contextlib.nullcontext()
        )
        with scope:
            if erasing:
                _choice(hp, "proportion", self.proportions)
        _choice(hp, "activation", self.activations)
        for name, spec in (("learning_rate", self.learning_rates), ("weight_decay", self.weight_decays)):
            if isinstance(spec, Range):
                hp.Float(name, spec.low, spec.high, sampling="log" if spec.log else "linear")
            elif spec:
                _choice(hp, name, spec)

    def to_dict(self):
        return {
            "locations": list(self.locations),
            "proportions": list(self.proportions),
            "activations": list(self.activations),
            "learning_rates": _jsonable(self.learning_rates),
            "weight_decays": _jsonable(self.weight_decays),
        }


def _jsonable(spec):
    if isinstance(spec, Range):
        return {"low": spec.low, "high": spec.high, "log": spec.log}
    return list(spec) if spec else None


# --------------------------------------------------------------------------- checking the space


def _strings(values, arg):
    if isinstance(values, str):
        values = (values,)
    if not isinstance(values, (list, tuple)) or not values:
        raise TypeError(f"`{arg}` must be a non-empty list of strings, got {values!r}")
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise TypeError(f"`{arg}` must hold non-empty strings, got {list(values)!r}")
    return tuple(v.strip().lower().replace("-", "_") for v in values)


def _numbers(values, arg, allowed=None, expected=""):
    """A non-empty tuple of distinct finite floats (numpy numbers too), each ``allowed``."""
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, (list, tuple)) or not values:
        raise TypeError(f"`{arg}` must be a non-empty list of numbers, got {values!r}")
    result = []
    for v in values:
        try:
            x = checks.number(v, arg)
        except TypeError:
            raise TypeError(f"`{arg}` must hold numbers, got {v!r}") from None
        except ValueError:  # nan or inf: every comparison below would let it through
            raise ValueError(f"`{arg}` must hold finite numbers, got {v!r}") from None
        if allowed is not None and not allowed(x):
            raise ValueError(f"`{arg}` {expected}, got {x!r}")
        result.append(x)
    if len(set(result)) != len(result):
        raise ValueError(f"`{arg}` must not repeat, got {list(values)}")
    return tuple(result)


def _rate_space(spec, arg, positive):
    """None, a checked ``Range`` or a tuple of values; learning rates must be > 0,
    weight decays >= 0, a log scale needs ``low > 0``."""
    if spec is None:
        return None
    if isinstance(spec, Range):
        try:
            low = checks.number(spec.low, "low")
            high = checks.number(spec.high, "high")
            log = checks.boolean(spec.log, "log")
        except (TypeError, ValueError) as err:
            raise type(err)(f"`{arg}` range: {err} ({spec!r})") from None
        strict = positive or log
        if not low < high or (low <= 0 if strict else low < 0):
            raise ValueError(f"`{arg}` range needs 0 {'<' if strict else '<='} low < high, got {spec!r}")
        return Range(low, high, log)
    if positive:
        return _numbers(spec, arg, lambda v: v > 0, "must be positive")
    return _numbers(spec, arg, lambda v: v >= 0, "must be non-negative")


def _choice(hp, name, values):
    if len(values) == 1:
        return hp.Fixed(name, values[0])
    return hp.Choice(name, list(values))


# --------------------------------------------------------------------------- one trial's values


def trial_settings(values):
    """(builder kwargs, protocol overrides) a trial's hyperparameter ``values`` stand for."""
    model_kwargs = {"activation": values["activation"]}
    if values["erase"] != NO_ERASE:
        model_kwargs["erase"] = values["erase"]
        model_kwargs["proportion"] = values["proportion"]
    overrides = {}
    if "learning_rate" in values:
        overrides["lr"] = float(values["learning_rate"])
    if "weight_decay" in values:
        overrides["weight_decay"] = float(values["weight_decay"])
    if "tuner/epochs" in values:  # Hyperband's budget for this trial
        overrides["epochs"] = int(values["tuner/epochs"])
    return model_kwargs, overrides


def trial_slug(values):
    """A readable, unique folder name for a trial configuration, e.g. ``last-p0.5-relu-3f2a9c``."""
    model_kwargs, overrides = trial_settings(values)
    parts = [values["erase"]]
    if "proportion" in model_kwargs:
        parts.append(f"p{model_kwargs['proportion']:g}")
    parts.append(model_kwargs["activation"])
    parts += [f"{k}{v:.3g}" for k, v in sorted(overrides.items())]
    key = json.dumps({"model_kwargs": model_kwargs, "overrides": overrides}, sort_keys=True)
    return "-".join(parts) + "-" + hashlib.sha1(key.encode()).hexdigest()[:6]
