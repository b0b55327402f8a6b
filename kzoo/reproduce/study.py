"""What a study is: its rows (``Variant``), the recipe of one table or figure (``Study``)
and the training runs it asks for at a scale (``Job``, ``jobs``).

A ``Study`` runs at two scales:

- ``"paper"``: the published protocol on the paper's datasets (a GPU's work), 5 seeds;
- ``"cpu"``: Fashion-MNIST under a short CPU protocol, 3 seeds, with each row's
  ``cpu_model`` (a shallower network where the paper's is out of reach on a CPU).
"""

import dataclasses
import fnmatch
import math
import numbers
import os

from kzoo import checks

SCALES = ("paper", "cpu")
METRICS = ("error", "accuracy")
CPU_DATASET = "fashion_mnist"
CPU_PROTOCOL = "fashion_mnist_demo"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of a table: ``model`` with ``model_kwargs`` at paper scale.

    ``paper`` maps a dataset to the published number in the study's metric, a mean, a
    ``(mean, std)`` pair or a phrase ("not converge"); a dataset absent from it (but in
    ``datasets``) has no published number (the paper shows only a curve). When
    ``datasets`` is given, ``paper``'s keys are free column labels (e.g. one per source
    paper, when two papers report the same network). ``datasets`` are
    the paper-scale datasets (default: those in ``paper``). ``protocol`` is the
    paper-scale protocol (default: the study's), or a dict dataset -> protocol;
    ``overrides`` are protocol fields set at both scales (e.g. ``{"lr": 0.01}``).
    ``cpu_model`` is the network run at CPU scale ("" = ``model``; None = the row is not
    run on the CPU), with ``cpu_kwargs`` (default: ``model_kwargs``). ``baseline`` is the
    key of the row this one is compared with (the difference is shown for both kzoo and
    the paper).
    """

    key: str
    label: str
    model: str
    model_kwargs: dict = dataclasses.field(default_factory=dict)
    paper: dict = dataclasses.field(default_factory=dict)
    datasets: tuple = ()
    protocol: object = None
    overrides: dict = dataclasses.field(default_factory=dict)
    cpu_model: object = ""
    cpu_kwargs: object = None
    baseline: object = None

    def __post_init__(self):
        _check_folder_name(self.key, "key", "Variant")
        where = f"Variant {self.key!r}"
        _check_str(self.label, f"{where}: `label`")
        _check_str(self.model, f"{where}: `model`", empty=False)
        _check_dict(self.model_kwargs, f"{where}: `model_kwargs`")
        _check_dict(self.paper, f"{where}: `paper`")
        for column, value in self.paper.items():
            _check_str(column, f"{where}: `paper` key {column!r}", empty=False)
            _check_paper_value(value, f"{where}: `paper`[{column!r}]")
        _check_names(self.datasets, f"{where}: `datasets`")
        _check_protocol(self.protocol, f"{where}: `protocol`", optional=True)
        _check_dict(self.overrides, f"{where}: `overrides`")
        if self.cpu_model is not None:
            _check_str(self.cpu_model, f"{where}: `cpu_model` (or None: not run on a CPU)")
        if self.cpu_kwargs is not None:
            _check_dict(self.cpu_kwargs, f"{where}: `cpu_kwargs`")
        if self.baseline is not None:
            _check_str(self.baseline, f"{where}: `baseline`", empty=False)

    def paper_datasets(self):
        return tuple(self.datasets) or tuple(self.paper)


@dataclasses.dataclass(frozen=True)
class Study:
    """The recipe of one table or figure (see the module docstring).

    ``metric`` is what the paper reports ("error" or "accuracy", in %). ``curves`` maps
    a figure name to the variant keys drawn together per epoch (original vs erased);
    ``sweeps`` maps a figure name to ``(x label, {variant key: x})`` for a final-score
    against-a-setting plot (EraseReLU's proportion sweeps).
    """

    name: str
    title: str
    source: str
    metric: str
    variants: tuple
    protocol: object = None
    seeds: int = 5
    cpu_protocol: object = CPU_PROTOCOL
    cpu_seeds: int = 3
    cpu_overrides: dict = dataclasses.field(default_factory=dict)
    curves: dict = dataclasses.field(default_factory=dict)
    sweeps: dict = dataclasses.field(default_factory=dict)
    notes: str = ""

    def __post_init__(self):
        _check_folder_name(self.name, "name", "Study")
        where = f"Study {self.name!r}"
        _check_str(self.title, f"{where}: `title`")
        _check_str(self.source, f"{where}: `source`")
        _check_str(self.notes, f"{where}: `notes`")
        if self.metric not in METRICS:
            raise ValueError(f"Study {self.name!r}: `metric` must be one of {METRICS}, got {self.metric!r}")
        if not isinstance(self.variants, (tuple, list)):
            raise TypeError(f"{where}: `variants` must be a tuple of Variant, got {self.variants!r}")
        if not self.variants:
            raise ValueError(f"Study {self.name!r}: `variants` is empty")
        wrong = [v for v in self.variants if not isinstance(v, Variant)]
        if wrong:
            raise TypeError(f"{where}: `variants` must hold kzoo.reproduce.Variant rows, got {wrong[0]!r}")
        _check_protocol(self.protocol, f"{where}: `protocol`", optional=True)
        _check_protocol(self.cpu_protocol, f"{where}: `cpu_protocol`")
        for field in ("seeds", "cpu_seeds"):
            _check_seeds(getattr(self, field), f"{where}: `{field}`")
        _check_dict(self.cpu_overrides, f"{where}: `cpu_overrides`")
        _check_dict(self.curves, f"{where}: `curves`")
        for group, members in self.curves.items():
            _check_names(members, f"{where}: `curves`[{group!r}]")
        _check_dict(self.sweeps, f"{where}: `sweeps`")
        for group, sweep in self.sweeps.items():
            ok = isinstance(sweep, (tuple, list)) and len(sweep) == 2 and isinstance(sweep[1], dict)
            if not ok or not isinstance(sweep[0], str):
                raise TypeError(
                    f"{where}: `sweeps`[{group!r}] must be (x label, {{variant key: x}}), got {sweep!r}"
                )
            for key, x in sweep[1].items():
                _check_number(x, f"{where}: `sweeps`[{group!r}][{key!r}]")
        keys = [v.key for v in self.variants]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise ValueError(f"Study {self.name!r}: variant keys {repeated} are repeated")
        for v in self.variants:
            self._check_variant(v, keys)
        groups = [*self.curves.items(), *((g, tuple(xs)) for g, (_, xs) in self.sweeps.items())]
        for group, members in groups:
            unknown = [k for k in members if k not in keys]
            if unknown:
                raise ValueError(
                    f"Study {self.name!r}: curve group {group!r} names unknown variants {unknown}"
                )

    def _check_variant(self, v, keys):
        if v.baseline is not None and v.baseline not in keys:
            raise ValueError(
                f"Study {self.name!r}: variant {v.key!r} has `baseline`={v.baseline!r}, "
                f"which is not a variant key"
            )
        if not v.paper_datasets():
            raise ValueError(f"Study {self.name!r}: variant {v.key!r} names no paper dataset")
        if v.protocol is None and self.protocol is None:
            raise ValueError(
                f"Study {self.name!r}: variant {v.key!r} has no protocol and the study sets none"
            )
        protocol = v.protocol if v.protocol is not None else self.protocol
        if isinstance(protocol, dict):
            missing = [d for d in v.paper_datasets() if d not in protocol]
            if missing:
                raise ValueError(
                    f"Study {self.name!r}: variant {v.key!r}'s protocol (one per dataset) names none "
                    f"for {', '.join(map(repr, missing))}"
                )

    def variant(self, key):
        return next(v for v in self.variants if v.key == key)


@dataclasses.dataclass(frozen=True)
class Job:
    """One training run of a study: a variant on a dataset with a seed."""

    variant: Variant
    dataset: str
    seed: int
    model: str
    model_kwargs: dict
    protocol: object
    overrides: dict

    @property
    def folder(self):
        """The job's run directory, relative to the study's output folder."""
        return os.path.join("runs", self.dataset, self.variant.key, f"seed{self.seed}")


def check_scale(scale):
    """``scale`` if it is "paper" or "cpu"; a ValueError naming `scale` otherwise."""
    return checks.choice(scale, "scale", SCALES)


def check_study(study, arg="study"):
    """``study`` if it is a ``Study``; a TypeError naming ``arg`` otherwise."""
    if not isinstance(study, Study):
        raise TypeError(f"`{arg}` must be a kzoo.reproduce.Study (a recipe's STUDY), got {study!r}")
    return study


def check_job_list(todo, arg="todo"):
    """``todo`` as a list of ``Job`` (from ``jobs``); a TypeError naming ``arg`` otherwise."""
    if isinstance(todo, Job) or not isinstance(todo, (list, tuple)):
        raise TypeError(f"`{arg}` must be a list of kzoo.reproduce.Job (kzoo.reproduce.jobs), got {todo!r}")
    for job in todo:
        if not isinstance(job, Job):
            raise TypeError(f"`{arg}` must hold kzoo.reproduce.Job items, got {job!r}")
    return list(todo)


def check_seeds(seeds):
    """The number of seeds asked for: a positive integer, or None (the study's own)."""
    return checks.integer(seeds, "seeds", minimum=1, optional=True)


def check_only(only):
    """``only`` as a list of variant keys or fnmatch patterns, or None (every row): a
    pattern (str) or a list/tuple of them, none empty."""
    if only is None:
        return None
    if isinstance(only, str):
        only = [only]
    if not isinstance(only, (list, tuple)):
        raise TypeError(f"`only` must be a variant key or pattern, a list of them or None, got {only!r}")
    if not only:
        raise ValueError(
            "`only` names no variant; give a key or pattern (e.g. 'resnet20-*'), or None for all"
        )
    for pattern in only:
        if not isinstance(pattern, str):
            raise TypeError(f"`only` must hold variant keys or patterns (strings), got {pattern!r}")
        if not pattern.strip():
            raise ValueError(f"`only` holds an empty pattern: {list(only)!r}")
    return list(only)


def jobs(study, scale="cpu", seeds=None, only=None):
    """The study's jobs at ``scale``: every variant (or those matching the ``only``
    patterns, e.g. ``["resnet20-*"]``) on each of its datasets for seeds 0..seeds-1,
    seed-major, so an interrupted study has every row at its first seeds."""
    check_study(study)
    check_scale(scale)
    seeds = check_seeds(seeds)
    only = check_only(only)
    if seeds is None:
        seeds = study.seeds if scale == "paper" else study.cpu_seeds
    out = []
    for v in select_variants(study, only):
        if scale == "paper":
            model, kwargs = v.model, v.model_kwargs
            datasets, overrides = v.paper_datasets(), dict(v.overrides)
        else:
            if v.cpu_model is None:
                continue
            model = v.cpu_model or v.model
            kwargs = v.model_kwargs if v.cpu_kwargs is None else v.cpu_kwargs
            datasets, overrides = (CPU_DATASET,), {**study.cpu_overrides, **v.overrides}
        for dataset in datasets:
            protocol = job_protocol(study, v, dataset, scale)
            for seed in range(seeds):
                out.append(Job(v, dataset, seed, model, dict(kwargs), protocol, overrides))
    return sorted(out, key=lambda j: j.seed)  # stable: variant and dataset order kept


def select_variants(study, only):
    """The variants whose keys match one of the ``only`` fnmatch patterns (all when None);
    a pattern that matches none is a ValueError listing the keys."""
    check_study(study)
    only = check_only(only)
    if only is None:
        return list(study.variants)
    keys = [v.key for v in study.variants]
    for pattern in only:
        if not any(fnmatch.fnmatchcase(k, pattern) for k in keys):
            raise ValueError(
                f"`only`: {pattern!r} matches no variant of {study.name}; variants are {', '.join(keys)}"
            )
    return [v for v in study.variants if any(fnmatch.fnmatchcase(v.key, p) for p in only)]


def job_protocol(study, variant, dataset, scale):
    """The protocol ``variant`` trains under on ``dataset`` at ``scale``."""
    if scale == "cpu":
        return study.cpu_protocol
    protocol = variant.protocol if variant.protocol is not None else study.protocol
    if isinstance(protocol, dict):
        return protocol[dataset]
    return protocol


def protocol_name(protocol):
    """A protocol's name for a log line, whether given by name or as a Protocol."""
    return protocol if isinstance(protocol, str) else getattr(protocol, "name", str(protocol))


# ----------------------------------------------------------------------------- checks of a recipe's fields


def _check_str(value, what, empty=True):
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string, got {value!r}")
    if not empty and not value.strip():
        raise ValueError(f"{what} must not be empty")


def _check_folder_name(value, field, kind):
    """A study's name or a row's key: a folder's name in the output (no separators)."""
    if not isinstance(value, str):
        raise TypeError(f"{kind} `{field}` must be a string, got {value!r}")
    separators = [s for s in (os.sep, os.altsep, "/") if s]
    if not value.strip() or value in (".", "..") or any(s in value for s in separators):
        raise ValueError(
            f"{kind} `{field}` names a folder of the output: a non-empty name without '/', got {value!r}"
        )


def _check_dict(value, what):
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict, got {value!r}")


def _check_names(value, what):
    if isinstance(value, str) or not isinstance(value, (tuple, list)):
        raise TypeError(f"{what} must be a tuple of names, got {value!r}")
    for name in value:
        _check_str(name, f"{what}: {name!r}", empty=False)


def _check_seeds(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{what} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")


def _check_protocol(value, what, optional=False):
    """A protocol name, a Protocol (any object with a ``name``), or a dict dataset -> one."""
    if value is None and optional:
        return
    if isinstance(value, dict):
        for dataset, protocol in value.items():
            _check_str(dataset, f"{what}: dataset {dataset!r}", empty=False)
            _check_protocol(protocol, f"{what}[{dataset!r}]")
        return
    if isinstance(value, str):
        _check_str(value, what, empty=False)
        return
    if not isinstance(getattr(value, "name", None), str):
        raise TypeError(
            f"{what} must be a protocol name, a kzoo Protocol or a dict dataset -> one, got {value!r}"
        )


def _check_paper_value(value, what):
    """A published number: a mean, a (mean, std) pair, a phrase ("not converge") or None."""
    if value is None or isinstance(value, str):
        return
    if isinstance(value, (tuple, list)):
        if len(value) not in (1, 2):
            raise ValueError(f"{what} must be a number, (mean, std) or a phrase, got {value!r}")
        _check_number(value[0], f"{what} (its mean)")
        if len(value) == 2 and value[1] is not None:
            _check_number(value[1], f"{what} (its std)", minimum=0)
        return
    _check_number(value, what)


def _check_number(value, what, minimum=None):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{what} must be a number, got {value!r}")
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = f" at least {minimum}" if minimum is not None else ""
        raise ValueError(f"{what} must be a finite number{bound}, got {value!r}")
