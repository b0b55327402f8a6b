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
without the job being run again. Every record is read back through one checked reader
here, so a damaged one is reported by its file's name with what to do.

One process writes a study's folder at a time (``writing``: a second one is refused
while the first runs), and it first clears what writes killed in the middle left behind
(``.tmp-*``, see ``kzoo.atomic``), so a resumed study's folder is what an uninterrupted
one would hold.
"""

import contextlib
import json
import math
import numbers
import os

from kzoo import atomic, checks
from kzoo.reproduce.study import Job, check_scale, check_study
from kzoo.training.callbacks import EpochLog
from kzoo.training.run_dir import RunDir

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer per folder is then the user's care
    fcntl = None

DIVERGED = "diverged.json"
WALL = "wall.json"
RUNS_CSV = "runs.csv"
RESULTS = "results.md"
FIGURE_TEMPORARY_SUFFIX = ".tmp.png"  # an older kzoo's figure temporary (now kzoo.atomic's)


def default_out(study, scale, epochs=None):
    """``runs/reproduce/<study>-<scale>``, with ``-<N>epochs`` appended when the epochs
    are overridden, so a quick look never fills the recipe's folder."""
    check_study(study)
    check_scale(scale)
    epochs = checks.integer(epochs, "epochs", minimum=1, optional=True)
    suffix = f"-{epochs}epochs" if epochs is not None else ""
    return os.path.join("runs", "reproduce", f"{study.name}-{scale}{suffix}")


def _check(out, job):
    out = checks.path(out, "out")
    if not isinstance(job, Job):
        raise TypeError(f"`job` must be a kzoo.reproduce.Job (from kzoo.reproduce.jobs), got {job!r}")
    return out


def job_dir(out, job):
    """The job's kzoo run directory under ``out``."""
    out = _check(out, job)
    return RunDir(os.path.join(out, job.folder))


def is_diverged(out, job):
    """Whether the job's loss became NaN (``diverged.json``): a result, not run again."""
    return os.path.isfile(os.path.join(job_dir(out, job).path, DIVERGED))


def is_done(out, job):
    """Finished (its metrics written) or diverged (``diverged.json``): not run again."""
    return job_dir(out, job).is_finished() or is_diverged(out, job)


def write_job_record(out, job, name, record):
    """A small record in the job's folder (``wall.json``: the wall time an uninterrupted
    call would have taken to finish the job; ``diverged.json``), written atomically."""
    folder = job_dir(out, job).path
    if not isinstance(name, str) or not name or os.path.basename(name) != name:
        raise ValueError(f"`name` must be a file name (e.g. {WALL!r}), got {name!r}")
    if not isinstance(record, dict):
        raise TypeError(f"`record` must be a dict, got {record!r}")
    os.makedirs(folder, exist_ok=True)
    atomic.write_text(os.path.join(folder, name), json.dumps(record, indent=2))


def _redo(run):
    return f"delete the job's folder {run.path!r} to run it again"


def read_metrics(out, job):
    """A finished job's ``metrics.json``, checked to hold the numbers the report reads;
    None when the job has not finished. A damaged one is a ValueError naming the file."""
    run = job_dir(out, job)
    if not run.is_finished():
        return None
    metrics = run.read_metrics(_redo(run), "the finished job's metrics")

    def damaged(why):
        return ValueError(f"the finished job's metrics {run.metrics!r} is damaged ({why}); {_redo(run)}")

    for key in ("model", "dataset", "protocol"):
        if not isinstance(metrics.get(key), str):
            raise damaged(f"`{key}` is {metrics.get(key)!r}, not a name")
    for key, least in (("epochs", 1), ("params", 0)):
        value = metrics.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise damaged(f"`{key}` is {value!r}, not a count")
    for key, required in (
        ("test_top1", True),
        ("train_seconds", True),
        ("test_top5", False),
        ("test_loss", False),
        ("best_val_top1", False),
    ):
        value = metrics.get(key)
        if value is None and not required:
            continue
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise damaged(f"`{key}` is {value!r}, not a number")
    if not 0 <= metrics["test_top1"] <= 1:
        raise damaged(f"`test_top1` is {metrics['test_top1']!r}, not in [0, 1]")
    if not isinstance(metrics.get("model_kwargs", {}), dict):
        raise damaged(f"`model_kwargs` is {metrics.get('model_kwargs')!r}, not a dict")
    if metrics.get("command") is not None and not isinstance(metrics["command"], str):
        raise damaged(f"`command` is {metrics['command']!r}, not a string")
    return metrics


def read_config(out, job):
    """A started job's ``config.json`` (what kzoo.train resolved), or None when it has none."""
    run = job_dir(out, job)
    return run.read_config(_redo(run))


def read_wall(out, job):
    """The job's wall time in seconds from ``wall.json``, or None when there is none (a
    run from before kzoo recorded it). A damaged one is a ValueError naming the file."""
    path = os.path.join(job_dir(out, job).path, WALL)
    if not os.path.exists(path):
        return None
    fix = "delete it (the job's wall time is then reported as unknown)"
    wall = checks.read_json(path, "the job's wall time", fix).get("wall_seconds")
    if isinstance(wall, bool) or not isinstance(wall, numbers.Real) or not math.isfinite(wall) or wall < 0:
        raise ValueError(f"the job's wall time {path!r} is damaged (`wall_seconds` is {wall!r}); {fix}")
    return float(wall)


def finished_epochs(out, job):
    """The epochs a finished job was trained for, or None when it has not finished."""
    metrics = read_metrics(out, job)
    return None if metrics is None else metrics["epochs"]


def read_job(out, job):
    """A finished job's record: final metrics, epoch rows and wall time, or None. Every
    file is checked: a damaged or missing one is an error naming it and what to do."""
    metrics = read_metrics(out, job)
    if metrics is None:
        return None
    run = job_dir(out, job)
    if not os.path.isfile(run.epochs):
        raise FileNotFoundError(f"the finished job's epoch log {run.epochs!r} is missing; {_redo(run)}")
    rows = EpochLog(run.epochs).read()
    if len(rows) != metrics["epochs"]:
        raise ValueError(
            f"the finished job's epoch log {run.epochs!r} has {len(rows)} epochs, but its metrics "
            f"{run.metrics!r} say {metrics['epochs']}: one of them is damaged; {_redo(run)}"
        )
    return {"metrics": metrics, "epochs": rows, "wall_seconds": read_wall(out, job)}


def existing_out(out):
    """``out`` for a report: a folder that exists (FileNotFoundError naming `out`: there
    is nothing to report) and is not a file."""
    out = checks.path(out, "out")
    if not os.path.exists(out):
        raise FileNotFoundError(
            f"`out`={out!r} does not exist, so it holds no runs to report; give the folder a run of "
            "the study wrote (--out), or run the study first"
        )
    return checks.existing_dir(out, "out")


@contextlib.contextmanager
def writing(out):
    """Hold ``out`` (created here, its parents too) for this process while it writes the
    study's records: a second process that asks for it meanwhile is refused (a
    ValueError naming `out`), and the temporaries of writes killed in the middle are
    cleared first."""
    out = checks.path(out, "out")
    checks.writable_dir(out, "out")
    os.makedirs(out, exist_ok=True)
    fd = os.open(out, os.O_RDONLY) if fcntl is not None else None
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ValueError(
                    f"`out`={out!r} is being written by another kzoo reproduce that is still running; "
                    "wait for it to end, or give another `out` (--out)"
                ) from None
            except OSError:  # a file system without locks: one writer is then the user's care
                pass
        clear_temporaries(out)
        yield out
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def clear_temporaries(out):
    """Remove what writes killed before their rename left under ``out``, in every folder
    of it (the study's, each job's, each job's backup): kzoo's ``.tmp-*`` temporaries
    whose writer is gone (``kzoo.atomic.remove_stale``: a live writer's are never
    touched) and the ``*.tmp.png`` an older kzoo's figure writes used (``writing`` holds
    the folder, so no figure of this study is being written)."""
    out = checks.existing_dir(out, "out")
    for folder, dirs, files in os.walk(out):
        atomic.remove_stale(folder)
        dirs[:] = [d for d in dirs if not d.startswith(atomic.PREFIX)]
        for name in files:
            if name.endswith(FIGURE_TEMPORARY_SUFFIX):
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(folder, name))
