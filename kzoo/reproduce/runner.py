"""Running a study: every job not yet done trained with ``kzoo.train`` (test curve on),
the report rewritten after each, so the report always shows what has been run.

Re-running continues: finished jobs are not touched, an interrupted one resumes from its
last epoch, and a job whose loss became NaN is recorded as diverged (a result too: FReLU
Table 1's "exploding") rather than retried.
"""

import os
import shlex
import sys
import time

from kzoo.reproduce.outputs import DIVERGED, WALL, default_out, finished_epochs, is_done, write_job_record
from kzoo.reproduce.report import write_report
from kzoo.reproduce.study import jobs, protocol_name


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
    report's rows (see ``summarize``)."""
    todo = jobs(study, scale, seeds, only)
    everything = jobs(study, scale, seeds)  # the report covers the whole study, not just `only`
    if epochs is not None and (isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1):
        raise ValueError(f"`epochs` must be a positive integer, got {epochs!r}")
    out = out or default_out(study, scale, epochs)
    check_finished_epochs(out, todo, epochs)
    os.makedirs(out, exist_ok=True)
    command = command or " ".join(shlex.quote(a) for a in sys.argv)
    pending = [j for j in todo if not is_done(out, j)]
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
        wall = time.perf_counter() - start
        write_job_record(out, job, WALL, {"wall_seconds": wall})
        write_report(study, scale, out, everything)
        print(f"  {outcome} in {wall:.0f}s", flush=True)
    return write_report(study, scale, out, everything)


def run_job(out, job, *, epochs, data_dir, verbose, command):
    """Train one job into its run directory; "done", or "diverged" (recorded in
    ``diverged.json``) when its loss became NaN."""
    from kzoo.training import NonFiniteLossError, train

    overrides = dict(job.overrides)
    if epochs is not None:
        overrides["epochs"] = epochs
    try:
        train(
            job.model,
            job.dataset,
            job.protocol,
            model_kwargs=job.model_kwargs,
            seed=job.seed,
            out=os.path.join(out, job.folder),
            data_dir=data_dir,
            verbose=verbose,
            command=command,
            test_curve=True,
            **overrides,
        )
    except NonFiniteLossError as e:
        write_job_record(out, job, DIVERGED, {"reason": str(e), "command": command})
        return "diverged"
    return "done"


def check_finished_epochs(out, todo, epochs):
    """Refuse an ``out`` whose finished runs were trained for other epochs than asked:
    they would otherwise count as this call's results."""
    from kzoo.training import get_protocol

    for job in todo:
        done = finished_epochs(out, job)
        if done is None:
            continue
        expected = epochs if epochs is not None else job.overrides.get("epochs")
        if expected is None:
            expected = get_protocol(job.protocol).epochs  # None: counted in steps, not checked
        if expected is not None and done != expected:
            raise ValueError(
                f"`out`={out!r} holds {job.folder} trained for {done} epochs, but this call "
                f"asks for {expected}; give another `out` (--out)"
            )
