"""What a ``Protocol``'s fields must be: each checked alone (numbers finite, in range),
and together: a field that only acts through another (``warmup_lr`` through a warm-up,
``ema_every`` through ``ema_decay``) is refused while that one is off, since every option
either takes effect or is refused; an override that turns a setting off turns off the
protocol's own settings that only act through it."""

import dataclasses

from kzoo import checks
from kzoo.training.tta import TTA_CHOICES

SCHEDULES = ("step", "cosine", "onecycle")
MILESTONE_UNITS = ("epoch", "step", "fraction")


def validate(p):
    """Every field of protocol ``p`` checked, numbers finite: a run that would train on
    nothing (0 epochs or steps) or on NaN rates is refused before any data is read, and
    so is a field that would do nothing."""
    for arg in ("name", "description", "source", "dataset"):
        if not isinstance(getattr(p, arg), str):
            raise TypeError(f"`{arg}` must be a string, got {getattr(p, arg)!r}")
    if (p.epochs is None) == (p.steps is None):
        raise ValueError(f"protocol {p.name!r}: give exactly one of `epochs` and `steps`")
    checks.integer(p.epochs, "epochs", minimum=1, optional=True)
    checks.integer(p.steps, "steps", minimum=1, optional=True)
    checks.integer(p.batch_size, "batch_size", minimum=1)
    checks.number(p.lr, "lr", minimum=0, min_open=True)
    checks.number(p.momentum, "momentum", minimum=0, maximum=1, max_open=True)
    checks.number(p.weight_decay, "weight_decay", minimum=0)
    checks.number(p.gamma, "gamma", minimum=0, min_open=True)
    checks.integer(p.warmup_steps, "warmup_steps", minimum=0)
    checks.number(p.warmup_lr, "warmup_lr", minimum=0, min_open=True, optional=True)
    checks.integer(p.validation_size, "validation_size", minimum=0, optional=True)
    checks.number(p.train_fraction, "train_fraction", minimum=0, maximum=1, min_open=True, optional=True)
    for arg in ("nesterov", "decay_all", "augment", "alternating_flip", "lookahead"):
        checks.boolean(getattr(p, arg), arg)
    checks.choice(p.schedule, "schedule", SCHEDULES)
    checks.choice(p.milestone_unit, "milestone_unit", MILESTONE_UNITS)
    if not isinstance(p.milestones, (tuple, list)):
        raise TypeError(f"`milestones` must be an increasing sequence of numbers, got {p.milestones!r}")
    for m in p.milestones:
        checks.number(m, "milestones", minimum=0)
    if list(p.milestones) != sorted(p.milestones):
        raise ValueError(f"`milestones` must be an increasing sequence, got {p.milestones!r}")
    if p.milestone_unit == "fraction" and not all(0 < m < 1 for m in p.milestones):
        raise ValueError(f"fractional `milestones` must lie in (0, 1), got {p.milestones!r}")
    if p.warmup_steps and p.schedule == "step" and p.warmup_lr is None:
        raise ValueError("`warmup_steps` with a step schedule needs `warmup_lr`")
    if not isinstance(p.model_kwargs, dict):
        raise TypeError(f"`model_kwargs` must be a dict, got {p.model_kwargs!r}")
    checks.number(p.label_smoothing, "label_smoothing", minimum=0, maximum=1, max_open=True)
    checks.number(p.ema_decay, "ema_decay", minimum=0, maximum=1, min_open=True, max_open=True, optional=True)
    checks.integer(p.ema_every, "ema_every", minimum=1)
    checks.number(p.random_erasing, "random_erasing", minimum=0, maximum=1)
    if p.random_erasing and not p.augment:
        raise ValueError("`random_erasing` is a training augmentation: it needs `augment`=True")
    if p.alternating_flip and not p.augment:
        raise ValueError("`alternating_flip` is a training augmentation: it needs `augment`=True")
    if p.tta is not None:
        checks.choice(p.tta, "tta", TTA_CHOICES)
    _check_dependents(p)
    if p.schedule == "onecycle" and p.warmup_lr is not None and p.warmup_lr > p.lr:
        raise ValueError(
            f"`warmup_lr` (the one-cycle's starting rate) must not exceed `lr`, got {p.warmup_lr} > {p.lr}"
        )


# A field that only acts through another one (its owner), with the owner's "off" test and
# what it needs: a dependent set while its owner is off would do nothing, and is refused.
_DEPENDENTS = (
    ("warmup_lr", lambda p: p.warmup_lr is not None, lambda p: p.warmup_steps > 0, "`warmup_steps` > 0"),
    (
        "warmup_lr",
        lambda p: p.warmup_lr is not None,
        lambda p: p.schedule in ("step", "onecycle"),
        "a schedule that starts from it (`schedule`='step' or 'onecycle'; 'cosine' warms up from 0)",
    ),
    ("ema_every", lambda p: p.ema_every != 1, lambda p: p.ema_decay is not None, "`ema_decay`"),
    ("milestones", lambda p: bool(p.milestones), lambda p: p.schedule == "step", "`schedule`='step'"),
    ("nesterov", lambda p: p.nesterov, lambda p: p.momentum > 0, "`momentum` > 0"),
)
# Fields that shape an owner's effect and have a default: given explicitly while the owner is
# off, they would do nothing either (kept apart because their defaults are not "off").
_EXPLICIT_DEPENDENTS = {
    "gamma": (lambda p: p.schedule == "step" and bool(p.milestones), "`milestones` with `schedule`='step'"),
    "milestone_unit": (lambda p: p.schedule == "step" and bool(p.milestones), "`milestones`"),
    "decay_all": (lambda p: p.weight_decay > 0, "`weight_decay` > 0"),
}
# Turning an owner off by an override also turns off the protocol's own dependents that the
# caller did not name (``ema_decay=None`` on a protocol with ``ema_every=5``).
_RESETS = {
    "ema_decay": (lambda p: p.ema_decay is None, {"ema_every": 1}),
    "warmup_steps": (lambda p: p.warmup_steps == 0, {"warmup_lr": None}),
    "schedule": (lambda p: p.schedule != "step", {"milestones": ()}),
    "momentum": (lambda p: p.momentum == 0, {"nesterov": False}),
}


def _check_dependents(p):
    """Refuse a field that is set but cannot act: every option takes effect or is refused."""
    for field, is_set, owner_on, needs in _DEPENDENTS:
        if is_set(p) and not owner_on(p):
            raise ValueError(
                f"`{field}`={getattr(p, field)!r} does nothing here: it needs {needs} "
                f"(protocol {p.name!r}); drop it or set what it needs"
            )


def check_explicit(p, given):
    """The fields the caller named (``given``) that would do nothing in ``p``."""
    for field in sorted(set(given) & set(_EXPLICIT_DEPENDENTS)):
        owner_on, needs = _EXPLICIT_DEPENDENTS[field]
        if not owner_on(p):
            raise ValueError(
                f"`{field}`={getattr(p, field)!r} does nothing here: it needs {needs} "
                f"(protocol {p.name!r}); drop it or set what it needs"
            )


def with_resets(base, overrides):
    """``overrides`` plus the defaults of the dependents of an owner they turn off, unless
    they name those dependents too (``base``: the protocol overridden)."""
    fields = _Fields({**dataclasses.asdict(base), **overrides})
    for owner, (is_off, dependents) in _RESETS.items():
        if owner in overrides and is_off(fields):
            overrides = {**dependents, **overrides}
    return overrides


class _Fields:
    """A protocol's fields as attributes, before they make a Protocol (not yet validated)."""

    def __init__(self, fields):
        self.__dict__.update(fields)
