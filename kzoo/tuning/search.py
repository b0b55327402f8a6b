"""A whole placement search: checks every argument before any data, drives a keras-tuner
tuner (alone, or as the chief or a worker of a distributed search), records what was
searched, writes the results and publishes the best trial, the only one tested."""

import dataclasses
import glob
import json
import os
import shutil
import tempfile

import keras_tuner

from kzoo import checks
from kzoo.training.run_dir import BACKUP, RunDir
from kzoo.tuning.hypermodel import OBJECTIVE, PlacementHyperModel
from kzoo.tuning.results import HP_COLUMNS, RESULTS_MD, results_table, write_results

TUNERS = ("random", "grid", "bayesian", "hyperband")
TUNER_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")
HYPERBAND_FACTOR = 3  # keras-tuner's default reduction factor, which kzoo uses


class SearchFailedError(RuntimeError):
    """The search ended without a trial that finished."""


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
    """This process's role, "single", "chief" or "worker", from keras-tuner's environment
    variables (checked)."""
    if "KERASTUNER_ORACLE_IP" not in os.environ:
        return "single"
    missing = [v for v in TUNER_ENV if not os.environ.get(v)]
    if missing:
        raise ValueError(
            f"distributed tuning: KERASTUNER_ORACLE_IP is set but {', '.join(missing)} "
            "is not; every process needs all three of " + ", ".join(TUNER_ENV)
        )
    port = os.environ["KERASTUNER_ORACLE_PORT"]
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"KERASTUNER_ORACLE_PORT must be a port number, got {port!r}")
    return "chief" if "chief" in os.environ["KERASTUNER_TUNER_ID"] else "worker"


def tune(
    model,
    dataset=None,
    protocol="fashion_mnist_demo",
    space=None,
    *,
    tuner="random",
    max_trials=None,
    out=None,
    seed=0,
    data_dir=None,
    mixed_precision="auto",
    xla=False,
    model_kwargs=None,
    max_consecutive_failed_trials=3,
    verbose="auto",
    command=None,
    **protocol_overrides,
):
    """Search ``space`` (a ``SearchSpace``; default: erase "last" at 25/50/75/100%) for
    ``model`` on ``dataset`` with keras-tuner's ``tuner`` ("random", "grid", "bayesian" or
    "hyperband"), each trial trained under ``protocol``, and write ``out`` (see the
    ``kzoo.tuning`` docstring). ``max_trials`` defaults to the size of the space (10 for a
    continuous one); Hyperband's budget is the protocol's epochs instead (at least 3, its
    reduction factor). Selection uses the validation split only; the best trial's last
    model is then evaluated on the test set once. Returns a ``TuneResult``.

    ``model``: a registered name, ``keras:NAME``, a ``.keras`` file, or a ``keras.Model`` (a
    base model, a pretrained one, placed trial by trial by ``kzoo.place`` and given the
    data's head and input by ``kzoo.adapt``; it is saved as ``out/base.keras`` for the
    trials to build from, and a resumed search must be given the same model).

    Every argument is checked before any data is read or file written (``out`` included;
    a ``keras.Model``'s file aside).
    """
    max_trials, max_failures = _check_budget(tuner, max_trials, max_consecutive_failed_trials)
    role = distributed_role()
    proto = _tuner_protocol(tuner, protocol, protocol_overrides)
    hypermodel = PlacementHyperModel(
        model,
        dataset,
        proto,
        space,
        out=out,
        seed=seed,
        data_dir=data_dir,
        mixed_precision=mixed_precision,
        xla=xla,
        model_kwargs=model_kwargs,
        verbose=verbose,
        command=command,
    )
    out = hypermodel.out  # absolute; the default runs/tune-MODEL-DATASET
    seed, verbose = hypermodel.run_config.seed, hypermodel.run_config.verbose  # checked
    size = hypermodel.space.size()
    if max_trials is None and tuner != "hyperband":
        max_trials = size or 10
    record = _check_search(out, _search_record(hypermodel, tuner, seed, max_trials))
    _check_tuner_files(out)
    _load_data_once(hypermodel, seed)
    _write_search(out, record)
    searcher = _make_tuner(tuner, hypermodel, out, max_trials, seed, max_failures)
    failure = _search(searcher, verbose)
    if role == "worker":
        return TuneResult(out, role, tuner=searcher)
    trial, rows = _record_results(searcher, hypermodel, failure, max_failures)
    values = {k: v for k, v in trial.hyperparameters.values.items() if k in HP_COLUMNS}
    best_dir, metrics = _publish_best(out, hypermodel, trial, values)
    return TuneResult(out, role, rows, values, best_dir, metrics, searcher)


# --------------------------------------------------------------------------- tune's steps


def _check_budget(tuner, max_trials, max_consecutive_failed_trials):
    """The checked (``max_trials``, ``max_consecutive_failed_trials``) for ``tuner``."""
    checks.choice(tuner, "tuner", TUNERS)
    max_trials = checks.integer(max_trials, "max_trials", minimum=1, optional=True)
    if max_trials is not None and tuner == "hyperband":
        raise ValueError(
            "`max_trials` does not apply to the hyperband tuner: its budget is the "
            "protocol's epochs (the most one trial trains), set with `epochs`"
        )
    max_failures = checks.integer(max_consecutive_failed_trials, "max_consecutive_failed_trials", minimum=1)
    return max_trials, max_failures


def _tuner_protocol(tuner, protocol, overrides):
    """The protocol with ``overrides``; Hyperband needs it counted in enough epochs."""
    from kzoo.training.protocols import get_protocol

    proto = get_protocol(protocol, **overrides)
    if tuner == "hyperband":
        if proto.epochs is None:
            raise ValueError(
                f"the hyperband tuner needs the protocol's length in epochs (protocol "
                f"{proto.name!r} counts iterations); give `epochs`"
            )
        if proto.epochs < HYPERBAND_FACTOR:
            # Fewer epochs than its reduction factor leave Hyperband one bracket of trials
            # that all train the whole budget: nothing to halve (and 0 epochs, no bracket).
            raise ValueError(
                f"the hyperband tuner needs `epochs` (the most one trial trains) of at "
                f"least {HYPERBAND_FACTOR}, its reduction factor, got {proto.epochs}; "
                "with fewer there is nothing to halve: use the random or grid tuner"
            )
    return proto


def _search_record(hypermodel, tuner, seed, max_trials):
    """What defines this search, as ``search.json`` stores it."""
    return {
        "model": hypermodel.info.name,
        "dataset": hypermodel.dataset,
        "protocol": hypermodel.protocol.to_dict(),
        "model_kwargs": hypermodel.model_kwargs,
        "space": hypermodel.space.to_dict(),
        "tuner": tuner,
        "seed": seed,
        "max_trials": max_trials,
    }


def _check_search(out, record):
    """Refuse to continue a different search in ``out`` (reads ``search.json``, writes
    nothing); returns the record as it is stored."""
    path = os.path.join(out, "search.json")
    record = json.loads(json.dumps(record))  # compared as it is stored: tuples become lists
    if os.path.exists(path):
        old = checks.read_json(
            path,
            "the search's record",
            "delete it (or the whole `out`) to start the search over, or choose another `out`",
        )
        changed = [k for k in record if k != "max_trials" and old.get(k) != record[k]]
        if changed:
            raise ValueError(
                f"{out!r} holds a different search (it differs in {', '.join(changed)}); re-run the "
                "same command to continue it (only --max-trials may grow), or choose another `out`"
            )
    return record


def _check_tuner_files(out):
    """keras-tuner's own records in ``out/tuner``, which it reloads to continue a search,
    must be JSON objects: a damaged one is named, with the fix, before any data is read."""
    project = os.path.join(out, "tuner")
    fix = (
        f"delete {project!r} and re-run: the search starts its bookkeeping again, and the "
        "trials already finished in trials/ are reused, not trained again"
    )
    records = [
        os.path.join(project, "oracle.json"),
        *sorted(glob.glob(os.path.join(project, "trial_*", "trial.json"))),
    ]
    for path in records:
        if os.path.exists(path):
            checks.read_json(path, "keras-tuner's record", fix)


def _load_data_once(hypermodel, seed):
    """The data once, before any trial: a missing dataset is one clear error, not a failed
    trial each, and a TFDS dataset is downloaded and prepared here, not in every trial."""
    from kzoo import data

    data.load(
        hypermodel.dataset,
        "train",
        data_dir=hypermodel.run_config.data_dir,
        validation_size=hypermodel.protocol.validation_size,
        seed=seed,
    )


def _write_search(out, record):
    """Remember this search in ``out/search.json``."""
    from kzoo import atomic

    os.makedirs(out, exist_ok=True)
    atomic.write_text(os.path.join(out, "search.json"), json.dumps(record, indent=2))


def _make_tuner(kind, hypermodel, out, max_trials, seed, max_failures):
    common = {
        "objective": keras_tuner.Objective(OBJECTIVE, "max"),
        "seed": seed,
        "overwrite": False,
        "directory": out,
        "project_name": "tuner",
        "max_consecutive_failed_trials": max_failures,
    }
    if kind == "hyperband":
        return keras_tuner.Hyperband(
            hypermodel, max_epochs=hypermodel.protocol.epochs, factor=HYPERBAND_FACTOR, **common
        )
    cls = {
        "random": keras_tuner.RandomSearch,
        "grid": keras_tuner.GridSearch,
        "bayesian": keras_tuner.BayesianOptimization,
    }[kind]
    return cls(hypermodel, max_trials=max_trials, **common)


def _search(searcher, verbose):
    """Run the search; returns keras-tuner's "too many failures in a row" error, or None."""
    try:
        searcher.search(verbose=1 if verbose else 0)
    except RuntimeError as err:  # keras-tuner's "consecutive failures exceeded the limit"
        if "consecutive failures" not in str(err):
            raise
        return err
    return None


def _record_results(searcher, hypermodel, failure, max_failures):
    """Write the results table, then (the best trial, the rows), or a ``SearchFailedError``
    when the search stopped on failures or no trial finished."""
    out = hypermodel.out
    rows = results_table(searcher, hypermodel)
    trial = select_best(searcher.oracle.trials.values())
    write_results(out, rows, trial and trial.trial_id)
    if failure is not None:
        raise SearchFailedError(
            f"the search stopped after {max_failures} failed trials in a row (see "
            f"{os.path.join(out, RESULTS_MD)}); raise `max_consecutive_failed_trials` to go on "
            f"past them. Last failure: {str(failure).splitlines()[-1] if str(failure) else ''}"
        )
    if trial is None:
        raise SearchFailedError(f"no trial finished; see {os.path.join(out, RESULTS_MD)}")
    return trial, rows


# --------------------------------------------------------------------------- the best trial


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
    best_dir = os.path.join(out, "best")
    source = hypermodel.run_dir(values)
    published = _published_metrics(best_dir, source)
    if published is not None:
        return best_dir, published
    fix = f"delete the trial's folder {source!r} and re-run the search to train it again"
    source_metrics = RunDir(source).read_metrics(fix, "the selected trial's metrics")
    checks.require_file(RunDir(source).last, "the selected trial's last model")
    for stale in os.listdir(out):  # left by a search killed while publishing
        if stale.startswith(".best-"):
            shutil.rmtree(os.path.join(out, stale), ignore_errors=True)
    tmp = tempfile.mkdtemp(prefix=".best-", dir=out)
    staged = os.path.join(tmp, "best")
    shutil.copytree(source, staged, ignore=shutil.ignore_patterns(BACKUP))
    metrics = _tested_metrics(staged, source_metrics, hypermodel, trial, values, os.path.basename(source))
    old = os.path.join(tmp, "old")
    if os.path.exists(best_dir):
        os.rename(best_dir, old)
    os.rename(staged, best_dir)
    shutil.rmtree(tmp, ignore_errors=True)
    return best_dir, metrics


def _published_metrics(best_dir, source):
    """``best``'s metrics when it already holds the run ``source`` with its test scores, else None."""
    best = RunDir(best_dir)
    if not os.path.exists(best.metrics):
        return None
    fix = f"delete {best_dir!r} and re-run: the best trial is published and tested again"
    metrics = best.read_metrics(fix, "the best run's metrics")
    selected = metrics.get("selected")
    if (
        isinstance(selected, dict)
        and selected.get("run") == os.path.basename(source)
        and metrics.get("test_top1") is not None
    ):
        return metrics
    return None


def _tested_metrics(staged, source_metrics, hypermodel, trial, values, run):
    """The staged copy's metrics with its test scores and why it was selected, written there."""
    from kzoo import atomic
    from kzoo.training.evaluation import evaluate

    staged_run = RunDir(staged)
    metrics = dict(source_metrics)
    scores = evaluate(staged_run.last, hypermodel.dataset, data_dir=hypermodel.run_config.data_dir)
    metrics.update({k: scores[k] for k in ("test_top1", "test_top5", "test_loss")})
    metrics["selected"] = {
        "trial": trial.trial_id,
        "run": run,
        "hyperparameters": values,
        "val_top1": trial.score,
        "by": f"{OBJECTIVE} of the last epoch on the validation split",
    }
    atomic.write_text(staged_run.metrics, json.dumps(metrics, indent=2))
    return metrics
