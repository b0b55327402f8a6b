"""Running a study: every job not yet done trained with ``kzoo.train`` (test curve on),
the report rewritten after each, so the report always shows what has been run.

Re-running continues: finished jobs are not touched, an interrupted one resumes from its
last epoch, and a job whose loss became NaN is recorded as diverged (a result too: FReLU
Table 1's "exploding") rather than retried. What a re-run finishes is recorded as an
uninterrupted run would have recorded it: the temporaries of killed writes are cleared,
and a resumed job's wall time counts the epochs it kept from the killed call.

Every argument, and every record already in the output folder, is checked before
anything is created or written there.
"""

import json
import os
import shlex
import sys
import time

import keras

from kzoo import checks
from kzoo.reproduce.outputs import (
    DIVERGED,
    WALL,
    default_out,
    is_diverged,
    is_done,
    job_dir,
    read_config,
    read_job,
    write_job_record,
    writing,
)
from kzoo.reproduce.report import write_files
from kzoo.reproduce.study import (
    check_job_list,
    check_only,
    check_scale,
    check_seeds,
    check_study,
    jobs,
    protocol_name,
)
from kzoo.training.callbacks import EpochLog
from kzoo.training.run_config import checked_command, checked_data_dir


def run(
    study,
    scale="cpu",
    out=None,
    *,
    seeds=None,
    only=None,
    data_dir=None,
    epochs=None,
    verbose=2,
    command=None,
):
    """Train every job of the study not yet finished in ``out`` (default
    ``runs/reproduce/<study>-<scale>``), rewriting the report after each. Returns the
    report's rows (see ``summarize``).

    ``seeds``: how many (0..seeds-1; default the study's for the scale); ``only``: the
    rows to run (keys or fnmatch patterns; the report still covers every row);
    ``data_dir``: where the datasets are; ``epochs``: override the protocol's (a quick
    look); ``verbose``: kzoo.train's; ``command``: the line recorded in each run."""
    check_study(study)
    check_scale(scale)
    seeds = check_seeds(seeds)
    only = check_only(only)
    epochs = checks.integer(epochs, "epochs", minimum=1, optional=True)
    out = default_out(study, scale, epochs) if out is None else checks.path(out, "out")
    checks.writable_dir(out, "out")
    data_dir = checked_data_dir(data_dir)
    verbose = checks.verbose(verbose)
    checked_command(command)
    todo = jobs(study, scale, seeds, only)
    everything = jobs(study, scale, seeds)  # the report covers the whole study, not just `only`
    pending = [j for j in todo if not is_done(out, j)]
    check_jobs(pending, epochs)
    check_records(out, everything, epochs)
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    with writing(out):
        print(
            f"{study.name} ({scale}): {len(todo)} jobs, {len(todo) - len(pending)} finished, "
            f"{len(pending)} to run; out={out}",
            flush=True,
        )
        for i, job in enumerate(pending, 1):
            print(
                f"[{i}/{len(pending)}] {job.variant.key} on {job.dataset}, seed {job.seed}: "
                f"{job.model} {job.model_kwargs or ''} under {protocol_name(job.protocol)}",
                flush=True,
            )
            start = time.perf_counter()
            outcome = run_job(out, job, epochs=epochs, data_dir=data_dir, verbose=verbose, command=command)
            write_files(study, scale, out, everything)
            print(f"  {outcome} in {time.perf_counter() - start:.0f}s", flush=True)
        return write_files(study, scale, out, everything)


def run_job(out, job, *, epochs=None, data_dir=None, verbose=2, command=None):
    """Train one job into its run directory (resuming it when a call was killed in the
    middle) and record its wall time (``wall.json``); "done", or "diverged" (recorded in
    ``diverged.json``) when its loss became NaN."""
    from kzoo.training import NonFiniteLossError, trainer

    attempt = _Attempt(out, job)
    config = job_config(
        job,
        epochs,
        out=job_dir(out, job).path,
        data_dir=data_dir,
        verbose=verbose,
        command=command,
        callbacks=[attempt],
    )
    try:
        trainer.train_from_config(config)
    except NonFiniteLossError as e:
        write_job_record(out, job, DIVERGED, {"reason": str(e), "command": command})
        outcome = "diverged"
    else:
        outcome = "done"
    write_job_record(out, job, WALL, {"wall_seconds": attempt.wall_seconds()})
    return outcome


def job_config(job, epochs=None, **options):
    """The ``RunConfig`` a job trains (its test curve on; ``epochs``: this call's
    override), with this call's ``options`` (``out``, ``data_dir``, ...)."""
    from kzoo.training.run_config import RunConfig

    return RunConfig.create(
        job.model,
        job.dataset,
        job.protocol,
        model_kwargs=job.model_kwargs,
        seed=job.seed,
        test_curve=True,
        **options,
        **_overrides(job, epochs),
    )


class _Attempt(keras.callbacks.Callback):
    """One call's training of a job: the first epoch it trained (those before it were
    kept from a killed call), and the job's wall time, written to ``wall.json`` when
    training ends too, before kzoo.train writes ``metrics.json``: a call killed between
    the two leaves a finished job that still has its wall time."""

    def __init__(self, out, job):
        super().__init__()
        self.out, self.job = out, job
        self.start = time.perf_counter()
        self.first_epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        if self.first_epoch is None:
            self.first_epoch = epoch

    def on_train_end(self, logs=None):
        write_job_record(self.out, self.job, WALL, {"wall_seconds": self.wall_seconds()})

    def wall_seconds(self):
        """This call's time plus that of the epochs it kept from killed calls (their rows
        in the epoch log): what an uninterrupted call would have taken."""
        rows = EpochLog(job_dir(self.out, self.job).epochs).read()
        kept = [r for r in rows if self.first_epoch is None or r["epoch"] < self.first_epoch]
        return time.perf_counter() - self.start + sum(r.get("seconds") or 0.0 for r in kept)


def check_jobs(todo, epochs=None):
    """Refuse, before anything is trained, a job that ``kzoo.train`` would refuse only
    when its turn comes: an unknown model, dataset or protocol, a protocol field the
    protocol does not have, a builder option at odds with the dataset, a warm-up longer
    than the run (``epochs``)."""
    from kzoo.data import steps_per_epoch
    from kzoo.training.model import check_model_before_data

    todo = check_job_list(todo)
    epochs = checks.integer(epochs, "epochs", minimum=1, optional=True)
    seen = set()
    for job in todo:
        key = json.dumps(
            [job.model, job.model_kwargs, job.dataset, protocol_name(job.protocol), job.overrides],
            sort_keys=True,
            default=str,
        )
        if key in seen:
            continue
        seen.add(key)
        try:
            config = job_config(job, epochs)
            check_model_before_data(config.model, config.model_kwargs, config.dataset_info)
            # a warm-up or an average this length of run leaves without effect (--epochs)
            proto = config.protocol
            proto.check_length(
                steps_per_epoch(job.dataset, proto.batch_size, proto.validation_size, proto.train_fraction)
            )
        except (ValueError, TypeError) as err:
            raise type(err)(f"row {job.variant.key!r} on {job.dataset}: {err}") from None


def _overrides(job, epochs=None):
    """The protocol fields the job sets, with this call's ``epochs``."""
    return {**job.overrides, **({"epochs": epochs} if epochs is not None else {})}


def _trained_protocol(job, epochs=None):
    """The ``Protocol`` the job trains under (``epochs``: this call's override), a bad one
    an error naming the row."""
    from kzoo.training import get_protocol

    try:
        return get_protocol(job.protocol, **_overrides(job, epochs))
    except (ValueError, TypeError) as err:
        raise type(err)(f"row {job.variant.key!r} on {job.dataset}: {err}") from None


def check_records(out, todo, epochs=None):
    """Refuse an ``out`` that holds, for one of ``todo``'s jobs, a run of something else
    than this call asks for: another model, options, dataset, protocol or seed (the
    recipe's row changed since), or another length (``epochs``). Finished runs would
    otherwise count as this call's results, and an unfinished one would be refused only
    when its turn comes. Every record read is checked (a damaged one: an error naming
    its file)."""
    out = checks.path(out, "out")
    todo = check_job_list(todo)
    epochs = checks.integer(epochs, "epochs", minimum=1, optional=True)
    if not os.path.isdir(out):
        return
    for job in todo:
        finished = read_job(out, job)  # metrics, epoch log and wall time, each checked
        if finished is not None:
            metrics = finished["metrics"]
            record, state, done = metrics, "trained", metrics["epochs"]
        else:
            record = read_config(out, job)
            if record is None:
                continue
            state = "diverged" if is_diverged(out, job) else "started (unfinished)"
            done = (record.get("protocol_fields") or {}).get("epochs")
        proto = _trained_protocol(job, epochs)
        asked = {"model": job.model, "dataset": job.dataset, "protocol": proto.name, "seed": job.seed}
        if isinstance(record.get("model_kwargs"), dict):
            asked["model_kwargs"] = job.model_kwargs
            record = {**record, "model_kwargs": _row_kwargs(record["model_kwargs"], job, proto)}
        for field, value in asked.items():
            if field not in record:
                continue  # a record from a kzoo that did not write it
            old, new = _as_read(record[field]), _as_read(value)
            if old != new:
                raise ValueError(
                    f"`out`={out!r} holds {job.folder} {state} with {field} {old!r}, but the study "
                    f"asks for {new!r} there (its row changed since); give another `out` (--out), or "
                    "delete that folder to run the job again"
                )
        if proto.epochs is not None and done is not None and done != proto.epochs:
            raise ValueError(
                f"`out`={out!r} holds {job.folder} {state} for {done} epochs, but this call "
                f"asks for {proto.epochs}; give another `out` (--out)"
            )


def _row_kwargs(recorded, job, proto):
    """The builder options a run recorded, less those its protocol added (which a later
    kzoo's protocol may change) unless the row gives them itself."""
    return {k: v for k, v in recorded.items() if k in job.model_kwargs or k not in proto.model_kwargs}


def _as_read(value):
    """A value as it reads back from a JSON record (tuples as lists, keys as strings)."""
    return json.loads(json.dumps(value, sort_keys=True, default=str))
