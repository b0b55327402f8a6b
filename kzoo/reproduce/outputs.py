"""A study's output folder: where it goes by default, what it holds, and each job's
records in it, read and written in one place so the runner and the report agree.

Layout of ``out``::

    runs/<dataset>/<variant>/seed<k>/   one kzoo run directory per job (test curve on),
                                        with wall.json (its wall time) and, for a run whose
                                        loss became NaN, diverged.json
    runs.csv                            one row per finished job
    results.md                          mean ± std per row and dataset, the paper's numbers
    curves-<dataset>-<group>.png        mean test error and loss per epoch (± std band)

A job's record is its run directory's metrics and epoch log (``kzoo.training.run_dir``);
the weights may be dropped (``results/`` in the repository keeps only the records)
without the job being run again.
"""

import json
import os

from kzoo.training.callbacks import EpochLog, atomic_write_text
from kzoo.training.run_dir import RunDir

DIVERGED = "diverged.json"
WALL = "wall.json"
RUNS_CSV = "runs.csv"
RESULTS = "results.md"


def default_out(study, scale, epochs=None):
    """``runs/reproduce/<study>-<scale>``, with ``-<N>epochs`` appended when the epochs
    are overridden, so a quick look never fills the recipe's folder."""
    suffix = f"-{epochs}epochs" if epochs is not None else ""
    return os.path.join("runs", "reproduce", f"{study.name}-{scale}{suffix}")


def job_dir(out, job):
    """The job's kzoo run directory under ``out``."""
    return RunDir(os.path.join(out, job.folder))


def is_diverged(out, job):
    return os.path.exists(os.path.join(out, job.folder, DIVERGED))


def is_done(out, job):
    """Finished (its metrics written) or diverged (``diverged.json``): not run again."""
    return job_dir(out, job).is_finished() or is_diverged(out, job)


def write_job_record(out, job, name, record):
    """A small record in the job's folder (``wall.json``: data, build, training and test
    curve time of the call that finished the job; ``diverged.json``), written atomically."""
    os.makedirs(os.path.join(out, job.folder), exist_ok=True)
    atomic_write_text(os.path.join(out, job.folder, name), json.dumps(record, indent=2))


def finished_epochs(out, job):
    """The epochs a finished job was trained for, or None when it has not finished."""
    run = job_dir(out, job)
    if not run.is_finished():
        return None
    with open(run.metrics) as f:
        return json.load(f)["epochs"]


def read_job(out, job):
    """A finished job's record: final metrics, epoch rows and wall time, or None."""
    run = job_dir(out, job)
    if not run.is_finished():
        return None
    with open(run.metrics) as f:
        metrics = json.load(f)
    rows = EpochLog(run.epochs).read()
    wall = None
    wall_file = os.path.join(run.path, WALL)
    if os.path.exists(wall_file):
        with open(wall_file) as f:
            wall = json.load(f)["wall_seconds"]
    return {"metrics": metrics, "epochs": rows, "wall_seconds": wall}
