"""What a study is: its rows (``Variant``), the recipe of one table or figure (``Study``)
and the training runs it asks for at a scale (``Job``, ``jobs``).

A ``Study`` runs at two scales:

- ``"paper"``: the published protocol on the paper's datasets (a GPU's work), 5 seeds;
- ``"cpu"``: Fashion-MNIST under a short CPU protocol, 3 seeds, with each row's
  ``cpu_model`` (a shallower network where the paper's is out of reach on a CPU).
"""

import dataclasses
import fnmatch
import os

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
        if self.metric not in METRICS:
            raise ValueError(f"Study {self.name!r}: `metric` must be one of {METRICS}, got {self.metric!r}")
        if not self.variants:
            raise ValueError(f"Study {self.name!r}: `variants` is empty")
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
    if scale not in SCALES:
        raise ValueError(f"`scale` must be one of {SCALES}, got {scale!r}")


def jobs(study, scale="cpu", seeds=None, only=None):
    """The study's jobs at ``scale``: every variant (or those matching the ``only``
    patterns, e.g. ``["resnet20-*"]``) on each of its datasets for seeds 0..seeds-1,
    seed-major, so an interrupted study has every row at its first seeds."""
    check_scale(scale)
    if seeds is None:
        seeds = study.seeds if scale == "paper" else study.cpu_seeds
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"`seeds` must be a positive integer, got {seeds!r}")
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
    if only is None:
        return list(study.variants)
    if isinstance(only, str):
        only = [only]
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
