"""Placement tuning with keras-tuner: search where and how much to erase on a validation
split, as the EraseReLU paper picks its proportion from {25, 50, 75, 100}%.

``PlacementHyperModel`` is a keras-tuner ``HyperModel`` over any registered architecture:
its hyperparameters are the placement options (``erase`` location, ``proportion``,
``activation``) and, optionally, the learning rate and weight decay (``SearchSpace``).
Each trial is one ``kzoo.train`` run under a protocol, in its own run directory, with the
test set left untouched; its score is the final epoch's validation top-1. Any keras-tuner
tuner can drive it. ``tune`` runs a whole search: the tuner's directory, a results table
and the best trial's run directory, which alone is evaluated on the test set.

Layout of ``tune``'s ``out``::

    search.json        what was searched (a re-run must ask for the same search)
    tuner/             keras-tuner's project (oracle.json, trial_*/trial.json, checkpoints)
    trials/<slug>/     one kzoo run directory per trial configuration
    results.csv, results.md   one row per trial
    best/              the selected run, with its test scores in metrics.json

Re-running the same search continues it (``overwrite=False``): finished trials are kept,
an interrupted one resumes from its last epoch. A diverging (NaN) or out-of-memory trial
is recorded as failed and the search goes on (keras-tuner stops after
``max_consecutive_failed_trials`` failures in a row). With keras-tuner's environment
variables (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``, ``KERASTUNER_ORACLE_PORT``)
the same call runs as the chief (serving the oracle over gRPC, then writing the results)
or as a worker (running trials); ``out`` must then be a folder every machine shares.
"""

import contextlib
import csv
import dataclasses
import glob
import hashlib
import inspect
import io
import json
import math
import numbers
import os
import shutil
import tempfile

import keras_tuner

from kzoo import checks
from kzoo.placement import ACTIVATION_NAMES

OBJECTIVE = "val_accuracy"
TUNERS = ("random", "grid", "bayesian", "hyperband")
TUNER_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
NO_ERASE = "none"  # the location value that keeps every activation: the original network
HYPERBAND_FACTOR = 3  # keras-tuner's default reduction factor, which kzoo uses


class SearchFailedError(RuntimeError):
    """The search ended without a trial that finished."""


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
        set_("proportions", _numbers(self.proportions, "proportions", lambda p: 0.0 < p <= 1.0,
                                     "must each be in (0, 1]"))
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
        scope = (hp.conditional_scope("erase", erasing) if NO_ERASE in self.locations and erasing
                 else contextlib.nullcontext())
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
        return {"locations": list(self.locations), "proportions": list(self.proportions),
                "activations": list(self.activations), "learning_rates": _jsonable(self.learning_rates),
                "weight_decays": _jsonable(self.weight_decays)}


def _jsonable(spec):
    if isinstance(spec, Range):
        return {"low": spec.low, "high": spec.high, "log": spec.log}
    return list(spec) if spec else None


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


class PlacementHyperModel(keras_tuner.HyperModel):
    """A keras-tuner HyperModel over a registered architecture's placement options.

    ``build(hp)`` returns the architecture with the trial's ``erase``/``proportion``/
    ``activation``; ``fit(hp, model)`` trains that configuration with ``kzoo.train``
    under ``protocol`` (``epochs``, ``batch_size``, ``validation_size`` and other protocol
    fields override it) into ``out/trials/<slug>``, never evaluating the test set, and
    returns the final epoch's validation scores. ``fit`` turns a NaN loss or an
    out-of-memory error, or a run that gives no validation score, into keras-tuner's
    ``FailedTrialError``. Everything is checked here, before any data is read or file
    written: the arguments, ``out`` (writable), the protocol (a validation split, at least
    one epoch of at least one full batch), ``model_kwargs`` (by building the architecture
    with them alone) and then every location of ``space`` (a slot of the architecture).
    """

    def __init__(self, model, dataset=None, protocol="fashion_mnist_demo", space=None, *, out=None,
                 seed=0, data_dir=None, mixed_precision="auto", xla=False, model_kwargs=None,
                 verbose="auto", command=None, **protocol_overrides):
        from kzoo import data
        from kzoo.models.registry import model_info
        from kzoo.training.protocols import get_protocol
        from kzoo.training.trainer import resolve_precision

        # Cheapest first; nothing here reads data or writes a file.
        if not isinstance(model, str):
            raise TypeError(f"`model` must be a registered model name, got {model!r}")
        self.info = model_info(model)
        self.protocol = get_protocol(protocol, **protocol_overrides)
        if self.protocol.validation_size == 0:
            raise ValueError(
                f"tuning selects on a validation split, but protocol {self.protocol.name!r} holds out "
                "none (validation_size=0); give `validation_size` > 0"
            )
        self.dataset = dataset or self.protocol.dataset
        self.data_info = data.dataset_info(self.dataset)
        if space is None:
            space = SearchSpace()
        if not isinstance(space, SearchSpace):
            raise TypeError(f"`space` must be a kzoo.tuning.SearchSpace, got {space!r}")
        self.space = space
        if model_kwargs is not None and not isinstance(model_kwargs, dict):
            raise TypeError(f"`model_kwargs` must be a dict, got {model_kwargs!r}")
        searched = sorted({"erase", "proportion", "activation"} & set(model_kwargs or {}))
        if searched:
            raise ValueError(f"`model_kwargs` must not set {', '.join(searched)}: the search space sets them")
        self.model_kwargs = {**self.protocol.model_kwargs, **(model_kwargs or {})}
        self.seed = checks.seed(seed)
        self.data_dir = checks.path(data_dir, "data_dir", optional=True)
        resolve_precision(mixed_precision)  # checked now; each trial resolves it again
        self.mixed_precision = mixed_precision
        self.xla = checks.boolean(xla, "xla")
        self.verbose = checks.verbose(verbose)
        if command is not None and not isinstance(command, str):
            raise TypeError(f"`command` must be a string or None, got {command!r}")
        self.command = command
        if out is not None:
            checks.path(out, "out")
        self.out = checks.writable_dir(out or os.path.join("runs", f"tune-{self.info.name}-{self.dataset}"), "out")
        self._check_steps()
        self._check_model_kwargs()
        self._check_locations()
        super().__init__(name=f"{self.info.name}_placement", tunable=True)

    def _builder_kwargs(self, extra):
        kwargs = {"input_shape": self.data_info.image_shape, "classes": self.data_info.classes}
        return {**kwargs, **self.model_kwargs, **extra}

    def _check_steps(self):
        """Refuse a protocol whose trials would train on nothing (no full training batch),
        counted by kzoo.data from the dataset's sizes, without reading it. (0 epochs or
        steps the protocol itself refuses.)"""
        from kzoo import data

        p = self.protocol
        data.steps_per_epoch(self.dataset, p.batch_size, p.validation_size, p.train_fraction)

    def _check_model_kwargs(self):
        """Build the architecture once with ``model_kwargs`` alone (the protocol's included):
        a misspelt or bad builder argument is blamed on ``model_kwargs``, before any data."""
        import keras

        given = self.model_kwargs
        origin = (f" (protocol {self.protocol.name!r} sets {self.protocol.model_kwargs!r})"
                  if self.protocol.model_kwargs else "")
        for key in ("classes", "input_shape"):
            if key in given and not self._fits(key, given[key]):
                what = (f"{self.data_info.classes} classes" if key == "classes"
                        else f"images of shape {tuple(self.data_info.image_shape)}")
                raise ValueError(f"`model_kwargs`: {key}={given[key]!r} disagrees with dataset "
                                 f"{self.dataset!r}, which has {what}; leave it out (the dataset sets it)")
        params = inspect.signature(self.info.builder).parameters
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            try:
                checks.unknown_keys(given, list(params), "model_kwargs", f"argument(s) of {self.info.name}")
            except ValueError as err:
                raise ValueError(f"{err}{origin}") from None
        try:
            net = self.info.build(**self._builder_kwargs({}))
            output = tuple(net.output_shape)
        except (ValueError, TypeError) as err:
            if not given:  # nothing of the user's: the architecture does not fit the dataset
                raise type(err)(
                    f"`model` {self.info.name} cannot be built for dataset {self.dataset!r} (images of "
                    f"shape {tuple(self.data_info.image_shape)}, {self.data_info.classes} classes): {err}"
                ) from None
            raise type(err)(f"`model_kwargs`: {self.info.name} cannot be built with {given!r}{origin}: "
                            f"{err}") from None
        finally:
            keras.backend.clear_session()
        if len(output) != 2 or output[-1] != self.data_info.classes:
            raise ValueError(f"`model_kwargs`={given!r} make {self.info.name} output shape {output}, not "
                             f"[batch, {self.data_info.classes}] class scores for {self.dataset!r}")

    def _fits(self, key, value):
        if key == "classes":
            return not isinstance(value, bool) and value == self.data_info.classes
        if not isinstance(value, (list, tuple)) or len(value) != len(self.data_info.image_shape):
            return False
        return all(v is None or (not isinstance(v, bool) and v == d)
                   for v, d in zip(value, self.data_info.image_shape))

    def _check_locations(self):
        """Build the architecture once per location: a slot it lacks is refused now
        (``model_kwargs`` are known good by then, so the error is the location's)."""
        import keras

        for location in self.space.locations:
            if location == NO_ERASE:
                continue
            try:
                self.info.build(**self._builder_kwargs(
                    {"erase": location, "proportion": min(self.space.proportions)}))
            except (ValueError, TypeError) as err:
                raise ValueError(f"`locations`: {self.info.name} cannot erase {location!r}: {err}") from None
            finally:
                keras.backend.clear_session()

    def declare_hyperparameters(self, hp):
        self.space.declare(hp)

    def build(self, hp):
        self.space.declare(hp)
        model_kwargs, _ = trial_settings(hp.values)
        return self.info.build(**self._builder_kwargs(model_kwargs))

    def run_dir(self, values):
        """The kzoo run directory of the trial with hyperparameter ``values``."""
        return os.path.join(self.out, "trials", trial_slug(values))

    def fit(self, hp, model, *args, callbacks=None, epochs=None, **kwargs):
        """Train the trial's configuration with ``kzoo.train``; ``model`` (keras-tuner's
        build) only gives Hyperband's hand-over, which kzoo does not use: every trial
        trains from scratch for its epochs, so its schedule runs to the end."""
        import tensorflow as tf

        from kzoo.training import train
        from kzoo.training.callbacks import NonFiniteLossError

        model_kwargs, overrides = trial_settings(hp.values)
        if epochs is not None:
            if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 1:
                raise keras_tuner.errors.FatalValueError(
                    f"`epochs` must be an integer at least 1, got {epochs!r}: a trial of no epoch "
                    "trains nothing")
            overrides["epochs"] = int(epochs)
        run_dir = self.run_dir(hp.values)
        _check_trial_files(run_dir)
        checkpoints = [c for c in callbacks or [] if _is_best_epoch_saver(c)]
        others = [c for c in callbacks or [] if not _is_best_epoch_saver(c)]
        try:
            result = train(
                self.info.name, self.dataset, self.protocol, out=run_dir,
                model_kwargs={**self.model_kwargs, **model_kwargs}, seed=self.seed,
                data_dir=self.data_dir, mixed_precision=self.mixed_precision, xla=self.xla,
                verbose=self.verbose, command=self.command, callbacks=others, test=False,
                **overrides,
            )
        except NonFiniteLossError as err:
            raise keras_tuner.errors.FailedTrialError(f"diverged: {err}") from err
        except (tf.errors.ResourceExhaustedError, MemoryError) as err:
            raise keras_tuner.errors.FailedTrialError(f"out of memory: {err}") from err
        scores = _last_scores(result, run_dir)
        # keras-tuner's checkpoint of the trial (get_best_models, Hyperband) is the model
        # the trial is scored on: the last epoch's.
        for saver in checkpoints:
            result.model.save_weights(saver.filepath)
        return scores


def _check_trial_files(run_dir):
    """A trial's run directory that kzoo wrote and will read back (to resume it or to
    return it finished) must be readable: a damaged file stops the search with its name
    and the fix, rather than failing this one trial with a JSON error."""
    fix = f"delete the trial's folder {run_dir!r} and re-run the search to train it again"
    for name, what in (("config.json", "the trial's run config"), ("metrics.json", "the trial's metrics")):
        path = os.path.join(run_dir, name)
        if os.path.exists(path):
            try:
                checks.read_json(path, what, fix)
            except ValueError as err:
                raise keras_tuner.errors.FatalValueError(str(err)) from None


def _finite(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _last_scores(result, run_dir):
    """The trial's scores: its last epoch's validation scores. A run with no epoch or no
    finite validation top-1 fails the trial: it is never completed with a made-up score."""
    history = list(getattr(result, "history", None) or [])
    if not history:
        raise keras_tuner.errors.FailedTrialError(f"the trial trained no epoch ({run_dir}); nothing to score")
    last = history[-1]
    if not _finite(last.get("val_accuracy")):
        raise keras_tuner.errors.FailedTrialError(
            f"the trial's last epoch has no validation score (val_accuracy={last.get('val_accuracy')!r}, "
            f"{run_dir}); it cannot be ranked")
    scores = {OBJECTIVE: float(last["val_accuracy"])}
    for key, name in (("val_cross_entropy", "val_loss"), ("val_top5", "val_top5")):
        if _finite(last.get(key)):
            scores[name] = float(last[key])
    seconds = (getattr(result, "metrics", None) or {}).get("train_seconds")
    if _finite(seconds):
        scores["train_seconds"] = float(seconds)
    return scores


def _is_best_epoch_saver(callback):
    return type(callback).__name__ == "SaveBestEpoch" and hasattr(callback, "filepath")


# --------------------------------------------------------------------------- the search

@dataclasses.dataclass
class TuneResult:
    """What ``tune`` returns. ``role`` is "single", "chief" or "worker"; a worker has no
    table or best run (the chief writes them)."""

    out: str
    role: str
    rows: list = dataclasses.field(default_factory=list)
    best_hyperparameters: dict | None = None
    best_run_dir: str | None = None
    metrics: dict | None = None
    tuner: object = None


def distributed_role():
    """"single", "chief" or "worker", from keras-tuner's environment variables (checked)."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    missing = [v for v in TUNER_ENV if not os.environ.get(v)]
    if missing:
        raise ValueError(f"distributed tuning: KERASTUNER_ORACLE_IP is set but {', '.join(missing)} "
                         "is not; every process needs all three of " + ", ".join(TUNER_ENV))
    port = os.environ["KERASTUNER_ORACLE_PORT"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"KERASTUNER_ORACLE_PORT must be a port number, got {port!r}")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def _make_tuner(kind, hypermodel, out, max_trials, seed, max_failures):
    common = {"objective": keras_tuner.Objective(OBJECTIVE, "max"), "seed": seed, "overwrite": False,
              "directory": out, "project_name": "tuner", "max_consecutive_failed_trials": max_failures}
    if kind == "hyperband":
        return keras_tuner.Hyperband(hypermodel, max_epochs=hypermodel.protocol.epochs,
                                     factor=HYPERBAND_FACTOR, **common)
    cls = {"random": keras_tuner.RandomSearch, "grid": keras_tuner.GridSearch,
           "bayesian": keras_tuner.BayesianOptimization}[kind]
    return cls(hypermodel, max_trials=max_trials, **common)


def _check_search(out, record):
    """Refuse to continue a different search in ``out`` (reads ``search.json``, writes
    nothing); returns the record as it is stored."""
    path = os.path.join(out, "search.json")
    record = json.loads(json.dumps(record))  # compared as it is stored: tuples become lists
    if os.path.exists(path):
        old = checks.read_json(path, "the search's record", "delete it (or the whole `out`) to start "
                               "the search over, or choose another `out`")
        changed = [k for k in record if k != "max_trials" and old.get(k) != record[k]]
        if changed:
            raise ValueError(
                f"{out!r} holds a different search (it differs in {', '.join(changed)}); re-run the "
                "same command to continue it (only --max-trials may grow), or choose another `out`"
            )
    return record


def _write_search(out, record):
    """Remember this search in ``out/search.json``."""
    from kzoo.training.callbacks import atomic_write_text

    os.makedirs(out, exist_ok=True)
    atomic_write_text(os.path.join(out, "search.json"), json.dumps(record, indent=2))


def _check_tuner_files(out):
    """keras-tuner's own records in ``out/tuner``, which it reloads to continue a search,
    must be JSON objects: a damaged one is named, with the fix, before any data is read."""
    project = os.path.join(out, "tuner")
    fix = (f"delete {project!r} and re-run: the search starts its bookkeeping again, and the "
           "trials already finished in trials/ are reused, not trained again")
    for path in [os.path.join(project, "oracle.json"), *sorted(glob.glob(os.path.join(project, "trial_*", "trial.json")))]:
        if os.path.exists(path):
            checks.read_json(path, "keras-tuner's record", fix)


def tune(model, dataset=None, protocol="fashion_mnist_demo", space=None, *, tuner="random",
         max_trials=None, out=None, seed=0, data_dir=None, mixed_precision="auto", xla=False,
         model_kwargs=None, max_consecutive_failed_trials=3, verbose="auto", command=None,
         **protocol_overrides):
    """Search ``space`` (a ``SearchSpace``; default: erase "last" at 25/50/75/100%) for
    ``model`` on ``dataset`` with keras-tuner's ``tuner`` ("random", "grid", "bayesian" or
    "hyperband"), each trial trained under ``protocol``, and write ``out`` (see the module
    docstring). ``max_trials`` defaults to the size of the space (10 for a continuous
    one); Hyperband's budget is the protocol's epochs instead (at least 3, its reduction
    factor). Selection uses the validation split only; the best trial's last model is then
    evaluated on the test set once. Returns a ``TuneResult``.

    Every argument is checked before any data is read or file written (``out`` included).
    """
    from kzoo.training.protocols import get_protocol

    checks.choice(tuner, "tuner", TUNERS)
    max_trials = checks.integer(max_trials, "max_trials", minimum=1, optional=True)
    if max_trials is not None and tuner == "hyperband":
        raise ValueError("`max_trials` does not apply to the hyperband tuner: its budget is the "
                         "protocol's epochs (the most one trial trains), set with `epochs`")
    max_consecutive_failed_trials = checks.integer(
        max_consecutive_failed_trials, "max_consecutive_failed_trials", minimum=1)
    seed = checks.seed(seed)
    verbose = checks.verbose(verbose)
    role = distributed_role()
    proto = get_protocol(protocol, **protocol_overrides)
    if tuner == "hyperband":
        if proto.epochs is None:
            raise ValueError(f"the hyperband tuner needs the protocol's length in epochs (protocol "
                             f"{proto.name!r} counts iterations); give `epochs`")
        if proto.epochs < HYPERBAND_FACTOR:
            # Fewer epochs than its reduction factor leave Hyperband one bracket of trials
            # that all train the whole budget: nothing to halve (and 0 epochs, no bracket).
            raise ValueError(f"the hyperband tuner needs `epochs` (the most one trial trains) of at "
                             f"least {HYPERBAND_FACTOR}, its reduction factor, got {proto.epochs}; "
                             "with fewer there is nothing to halve: use the random or grid tuner")
    hypermodel = PlacementHyperModel(
        model, dataset, proto, space, out=out, seed=seed, data_dir=data_dir,
        mixed_precision=mixed_precision, xla=xla, model_kwargs=model_kwargs, verbose=verbose,
        command=command)
    out = hypermodel.out  # absolute; the default runs/tune-MODEL-DATASET
    size = hypermodel.space.size()
    if max_trials is None and tuner != "hyperband":
        max_trials = size or 10
    record = _check_search(out, {
        "model": hypermodel.info.name, "dataset": hypermodel.dataset, "protocol": hypermodel.protocol.to_dict(),
        "model_kwargs": hypermodel.model_kwargs, "space": hypermodel.space.to_dict(), "tuner": tuner,
        "seed": seed, "max_trials": max_trials,
    })
    _check_tuner_files(out)
    # The data once, before any trial: a missing dataset is one clear error, not a failed
    # trial each, and a TFDS dataset is downloaded and prepared here, not in every trial.
    from kzoo import data

    data.load(hypermodel.dataset, "train", data_dir=hypermodel.data_dir,
              validation_size=hypermodel.protocol.validation_size, seed=seed)
    _write_search(out, record)
    searcher = _make_tuner(tuner, hypermodel, out, max_trials, seed, max_consecutive_failed_trials)
    failure = None
    try:
        searcher.search(verbose=1 if verbose else 0)
    except RuntimeError as err:  # keras-tuner's "consecutive failures exceeded the limit"
        if "consecutive failures" not in str(err):
            raise
        failure = err
    if role == "worker":
        return TuneResult(out, role, tuner=searcher)
    rows = results_table(searcher, hypermodel)
    trial = select_best(searcher.oracle.trials.values())
    write_results(out, rows, trial and trial.trial_id)
    if failure is not None:
        raise SearchFailedError(
            f"the search stopped after {max_consecutive_failed_trials} failed trials in a row (see "
            f"{os.path.join(out, 'results.md')}); raise `max_consecutive_failed_trials` to go on "
            f"past them. Last failure: {str(failure).splitlines()[-1] if str(failure) else ''}"
        )
    if trial is None:
        raise SearchFailedError(f"no trial finished; see {os.path.join(out, 'results.md')}")
    values = {k: v for k, v in trial.hyperparameters.values.items() if k in HP_COLUMNS}
    best_dir, metrics = _publish_best(out, hypermodel, trial, values)
    return TuneResult(out, role, rows, values, best_dir, metrics, searcher)


def select_best(trials):
    """The completed trial with the highest validation top-1; ties (common on a small
    validation split) go to the lower validation loss, then to the earlier trial, so a
    re-run selects the same trial whatever order keras-tuner reloads them in."""
    done = [t for t in trials if t.status == "COMPLETED" and t.score is not None]

    def key(trial):
        loss = trial.metrics.get_last_value("val_loss") if trial.metrics.exists("val_loss") else None
        return (-trial.score, float("inf") if loss is None else loss, trial.trial_id)

    return min(done, key=key) if done else None


def _publish_best(out, hypermodel, trial, values):
    """Copy the selected trial's run to ``out/best`` and evaluate it on the test set:
    the only time a search reads the test set. Skipped when ``best`` already holds
    this trial's scores."""
    from kzoo.training.callbacks import atomic_write_text
    from kzoo.training.evaluate import evaluate

    best_dir = os.path.join(out, "best")
    metrics_path = os.path.join(best_dir, "metrics.json")
    source = hypermodel.run_dir(values)
    if os.path.exists(metrics_path):
        metrics = checks.read_json(metrics_path, "the best run's metrics",
                                   f"delete {best_dir!r} and re-run: the best trial is published and tested again")
        selected = metrics.get("selected")
        if (isinstance(selected, dict) and selected.get("run") == os.path.basename(source)
                and metrics.get("test_top1") is not None):
            return best_dir, metrics
    fix = f"delete the trial's folder {source!r} and re-run the search to train it again"
    source_metrics = checks.read_json(os.path.join(source, "metrics.json"), "the selected trial's metrics", fix)
    checks.require_file(os.path.join(source, "last.keras"), "the selected trial's last model")
    for stale in os.listdir(out):  # left by a search killed while publishing
        if stale.startswith(".best-"):
            shutil.rmtree(os.path.join(out, stale), ignore_errors=True)
    tmp = tempfile.mkdtemp(prefix=".best-", dir=out)
    staged = os.path.join(tmp, "best")
    shutil.copytree(source, staged, ignore=shutil.ignore_patterns("backup"))
    metrics = dict(source_metrics)
    scores = evaluate(os.path.join(staged, "last.keras"), hypermodel.dataset, data_dir=hypermodel.data_dir)
    metrics.update({k: scores[k] for k in ("test_top1", "test_top5", "test_loss")})
    metrics["selected"] = {"trial": trial.trial_id, "run": os.path.basename(source), "hyperparameters": values,
                           "val_top1": trial.score,
                           "by": f"{OBJECTIVE} of the last epoch on the validation split"}
    atomic_write_text(os.path.join(staged, "metrics.json"), json.dumps(metrics, indent=2))
    old = os.path.join(tmp, "old")
    if os.path.exists(best_dir):
        os.rename(best_dir, old)
    os.rename(staged, best_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    return best_dir, metrics


# --------------------------------------------------------------------------- the table

HP_COLUMNS = ("erase", "proportion", "activation", "learning_rate", "weight_decay", "tuner/epochs")


def results_table(searcher, hypermodel):
    """One dict per trial, in trial order: its hyperparameters, status, final validation
    top-1 and loss, training seconds, run folder and, for a failed trial, why."""
    rows = []
    for trial_id in sorted(searcher.oracle.trials):
        trial = searcher.oracle.trials[trial_id]
        values = trial.hyperparameters.values
        row = {"trial": trial_id, "status": trial.status}
        for key in HP_COLUMNS:
            if key in values:
                row[key] = values[key]
        for key in (OBJECTIVE, "val_loss", "train_seconds"):
            row[key] = trial.metrics.get_last_value(key) if trial.metrics.exists(key) else None
        row["run"] = os.path.relpath(hypermodel.run_dir(values), hypermodel.out) if "erase" in values else None
        row["message"] = _reason(trial.message) if trial.status == "FAILED" else ""
        rows.append(row)
    return rows


def _reason(message):
    """The last line of a failed trial's traceback: the error itself."""
    lines = [line for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1].strip() if lines else "failed"


def write_results(out, rows, best=None):
    """``results.csv`` (every column) and ``results.md`` (a readable table, the selected
    trial ``best`` marked), atomically."""
    from kzoo.training.callbacks import atomic_write_text
    from kzoo.training.report import markdown_table

    columns = ["trial", "status", *[c for c in HP_COLUMNS if any(c in r for r in rows)],
               OBJECTIVE, "val_loss", "train_seconds", "run", "message"]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(os.path.join(out, "results.csv"), buf.getvalue())

    def cell(row, column):
        value = row.get(column)
        if value is None:
            return "-"
        if column == OBJECTIVE:
            return f"{100 * value:.2f}"
        if column == "val_loss":
            return f"{value:.4f}"
        if column == "train_seconds":
            return f"{value:.0f}"
        return str(value)

    shown = [c for c in columns if c != "run"]
    names = {OBJECTIVE: "val top-1 %", "val_loss": "val loss", "train_seconds": "train s",
             "tuner/epochs": "epochs"}
    table = []
    for row in rows:
        cells = [cell(row, c) for c in shown]
        if row["trial"] == best:
            cells[0] += " (best)"
        table.append(cells)
    text = markdown_table([names.get(c, c) for c in shown], table)
    atomic_write_text(os.path.join(out, "results.md"), text + "\n")
