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
import hashlib
import io
import json
import os
import shutil
import tempfile

import keras_tuner

from kzoo.placement import ACTIVATION_NAMES

OBJECTIVE = "val_accuracy"
TUNERS = ("random", "grid", "bayesian", "hyperband")
TUNER_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
NO_ERASE = "none"  # the location value that keeps every activation: the original network


class SearchFailedError(RuntimeError):
    """The search ended without a trial that finished."""


@dataclasses.dataclass(frozen=True)
class Range:
    """A continuous hyperparameter range, sampled on a log scale unless ``log=False``."""

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
        props = _numbers(self.proportions, "proportions")
        bad = [p for p in props if not 0.0 < p <= 1.0]
        if bad:
            raise ValueError(f"`proportions` must each be in (0, 1], got {bad[0]!r}")
        set_("proportions", props)
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


def _numbers(values, arg):
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = (values,)
    if not isinstance(values, (list, tuple)) or not values:
        raise TypeError(f"`{arg}` must be a non-empty list of numbers, got {values!r}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"`{arg}` must hold numbers, got {v!r}")
    numbers = tuple(float(v) for v in values)
    if len(set(numbers)) != len(numbers):
        raise ValueError(f"`{arg}` must not repeat, got {list(values)}")
    return numbers


def _rate_space(spec, arg, positive):
    if spec is None:
        return None
    if isinstance(spec, Range):
        low, high = spec.low, spec.high
        for v in (low, high):
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"`{arg}` range bounds must be numbers, got {spec!r}")
        if not low < high or low < 0 or (spec.log and low <= 0):
            raise ValueError(f"`{arg}` range needs 0 {'<' if spec.log else '<='} low < high, got {spec!r}")
        return Range(float(low), float(high), bool(spec.log))
    values = _numbers(spec, arg)
    bad = [v for v in values if (v <= 0 if positive else v < 0)]
    if bad:
        raise ValueError(f"`{arg}` must be {'positive' if positive else 'non-negative'}, got {bad[0]!r}")
    return values


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
    out-of-memory error into keras-tuner's ``FailedTrialError``. Everything is checked
    here, before any training: the protocol must hold out a validation split, and every
    location of ``space`` must be a slot of the architecture.
    """

    def __init__(self, model, dataset=None, protocol="fashion_mnist_demo", space=None, *, out=None,
                 seed=0, data_dir=None, mixed_precision="auto", xla=False, model_kwargs=None,
                 verbose="auto", command=None, **protocol_overrides):
        from kzoo import data
        from kzoo.models import common
        from kzoo.models.registry import model_info
        from kzoo.training.protocols import get_protocol

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
        self.model_kwargs = {**self.protocol.model_kwargs, **(model_kwargs or {})}
        searched = sorted({"erase", "proportion", "activation"} & set(model_kwargs or {}))
        if searched:
            raise ValueError(f"`model_kwargs` must not set {', '.join(searched)}: the search space sets them")
        common.check_int(seed, "seed")
        self.seed, self.data_dir, self.mixed_precision, self.xla = seed, data_dir, mixed_precision, xla
        self.verbose, self.command = verbose, command
        self.out = os.path.abspath(out or os.path.join("runs", f"tune-{self.info.name}-{self.dataset}"))
        self._check_locations()
        super().__init__(name=f"{self.info.name}_placement", tunable=True)

    def _builder_kwargs(self, extra):
        kwargs = {"input_shape": self.data_info.image_shape, "classes": self.data_info.classes}
        return {**kwargs, **self.model_kwargs, **extra}

    def _check_locations(self):
        """Build the architecture once per location: a slot it lacks is refused now."""
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
            overrides["epochs"] = int(epochs)
        checkpoints = [c for c in callbacks or [] if _is_best_epoch_saver(c)]
        others = [c for c in callbacks or [] if not _is_best_epoch_saver(c)]
        try:
            result = train(
                self.info.name, self.dataset, self.protocol, out=self.run_dir(hp.values),
                model_kwargs={**self.model_kwargs, **model_kwargs}, seed=self.seed,
                data_dir=self.data_dir, mixed_precision=self.mixed_precision, xla=self.xla,
                verbose=self.verbose, command=self.command, callbacks=others, test=False,
                **overrides,
            )
        except NonFiniteLossError as err:
            raise keras_tuner.errors.FailedTrialError(f"diverged: {err}") from err
        except (tf.errors.ResourceExhaustedError, MemoryError) as err:
            raise keras_tuner.errors.FailedTrialError(f"out of memory: {err}") from err
        # keras-tuner's checkpoint of the trial (get_best_models, Hyperband) is the model
        # the trial is scored on: the last epoch's.
        for saver in checkpoints:
            result.model.save_weights(saver.filepath)
        last = result.history[-1]
        return {OBJECTIVE: float(last["val_accuracy"]), "val_loss": float(last["val_cross_entropy"]),
                "val_top5": float(last["val_top5"]), "train_seconds": float(result.metrics["train_seconds"])}


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
        return keras_tuner.Hyperband(hypermodel, max_epochs=hypermodel.protocol.epochs, factor=3, **common)
    cls = {"random": keras_tuner.RandomSearch, "grid": keras_tuner.GridSearch,
           "bayesian": keras_tuner.BayesianOptimization}[kind]
    return cls(hypermodel, max_trials=max_trials, **common)


def _check_search(out, record):
    """Refuse to continue a different search in ``out``; remember this one."""
    from kzoo.training.callbacks import atomic_write_text

    path = os.path.join(out, "search.json")
    record = json.loads(json.dumps(record))  # compared as it is stored: tuples become lists
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        changed = [k for k in record if k != "max_trials" and old.get(k) != record[k]]
        if changed:
            raise ValueError(
                f"{out!r} holds a different search (it differs in {', '.join(changed)}); re-run the "
                "same command to continue it (only --max-trials may grow), or choose another `out`"
            )
    os.makedirs(out, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=2))


def tune(model, dataset=None, protocol="fashion_mnist_demo", space=None, *, tuner="random",
         max_trials=None, out=None, seed=0, data_dir=None, mixed_precision="auto", xla=False,
         model_kwargs=None, max_consecutive_failed_trials=3, verbose="auto", command=None,
         **protocol_overrides):
    """Search ``space`` (a ``SearchSpace``; default: erase "last" at 25/50/75/100%) for
    ``model`` on ``dataset`` with keras-tuner's ``tuner`` ("random", "grid", "bayesian" or
    "hyperband"), each trial trained under ``protocol``, and write ``out`` (see the module
    docstring). ``max_trials`` defaults to the size of the space (10 for a continuous
    one); Hyperband's budget is the protocol's epochs instead. Selection uses the
    validation split only; the best trial's last model is then evaluated on the test set
    once. Returns a ``TuneResult``.
    """
    from kzoo.models import common

    if tuner not in TUNERS:
        raise ValueError(f"`tuner` must be one of {', '.join(TUNERS)}, got {tuner!r}")
    if max_trials is not None:
        common.check_int(max_trials, "max_trials")
        if max_trials < 1:
            raise ValueError(f"`max_trials` must be at least 1, got {max_trials}")
        if tuner == "hyperband":
            raise ValueError("`max_trials` does not apply to the hyperband tuner: its budget is the "
                             "protocol's epochs (the most one trial trains), set with `epochs`")
    common.check_int(max_consecutive_failed_trials, "max_consecutive_failed_trials")
    if max_consecutive_failed_trials < 1:
        raise ValueError(f"`max_consecutive_failed_trials` must be at least 1, got {max_consecutive_failed_trials}")
    role = distributed_role()
    hypermodel = PlacementHyperModel(
        model, dataset, protocol, space, out=out, seed=seed, data_dir=data_dir,
        mixed_precision=mixed_precision, xla=xla, model_kwargs=model_kwargs, verbose=verbose,
        command=command, **protocol_overrides)
    out = hypermodel.out  # absolute; the default runs/tune-MODEL-DATASET
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"`out`={out!r} exists and is not a directory")
    if tuner == "hyperband" and hypermodel.protocol.epochs is None:
        raise ValueError(f"the hyperband tuner needs the protocol's length in epochs (protocol "
                         f"{hypermodel.protocol.name!r} counts iterations); give `epochs`")
    # The data once, before any trial: a missing dataset is one clear error, not a failed
    # trial each, and a TFDS dataset is downloaded and prepared here, not in every trial.
    from kzoo import data

    data.load(hypermodel.dataset, "train", data_dir=data_dir,
              validation_size=hypermodel.protocol.validation_size, seed=seed)
    size = hypermodel.space.size()
    if max_trials is None and tuner != "hyperband":
        max_trials = size or 10
    _check_search(out, {
        "model": hypermodel.info.name, "dataset": hypermodel.dataset, "protocol": hypermodel.protocol.to_dict(),
        "model_kwargs": hypermodel.model_kwargs, "space": hypermodel.space.to_dict(), "tuner": tuner,
        "seed": seed, "max_trials": max_trials,
    })
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
        with open(metrics_path) as f:
            metrics = json.load(f)
        if metrics.get("selected", {}).get("run") == os.path.basename(source) and metrics.get("test_top1") is not None:
            return best_dir, metrics
    for stale in os.listdir(out):  # left by a search killed while publishing
        if stale.startswith(".best-"):
            shutil.rmtree(os.path.join(out, stale), ignore_errors=True)
    tmp = tempfile.mkdtemp(prefix=".best-", dir=out)
    staged = os.path.join(tmp, "best")
    shutil.copytree(source, staged, ignore=shutil.ignore_patterns("backup"))
    with open(os.path.join(staged, "metrics.json")) as f:
        metrics = json.load(f)
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
