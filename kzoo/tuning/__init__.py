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

from kzoo.tuning.hypermodel import OBJECTIVE, PlacementHyperModel
from kzoo.tuning.results import HP_COLUMNS, RESULTS_CSV, RESULTS_MD, results_table, write_results
from kzoo.tuning.search import (
    HYPERBAND_FACTOR,
    TUNER_ENV,
    TUNERS,
    SearchFailedError,
    TuneResult,
    distributed_role,
    select_best,
    tune,
)
from kzoo.tuning.space import NO_ERASE, Range, SearchSpace, trial_settings, trial_slug

__all__ = [
    "HP_COLUMNS",
    "HYPERBAND_FACTOR",
    "NO_ERASE",
    "OBJECTIVE",
    "RESULTS_CSV",
    "RESULTS_MD",
    "TUNERS",
    "TUNER_ENV",
    "PlacementHyperModel",
    "Range",
    "SearchFailedError",
    "SearchSpace",
    "TuneResult",
    "distributed_role",
    "results_table",
    "select_best",
    "trial_settings",
    "trial_slug",
    "tune",
    "write_results",
]
