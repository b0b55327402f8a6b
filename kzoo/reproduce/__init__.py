"""Re-running a paper's table or figure: every row (a ``Variant``: a model and its
placement options) on every dataset with several seeds, each one ``kzoo.train`` run, then
aggregated as mean ± std next to the published numbers, with the per-epoch test curves
the papers plot.

A ``Study`` is the recipe of one table or figure (``applications/<name>.py``, run as
``python applications/<name>.py`` or ``kzoo reproduce <name>``). The package, one
concept per module:

- ``study``: ``Variant``, ``Study``, ``Job`` and the jobs a study asks for at a scale;
- ``outputs``: the output folder's default place, layout and each job's records in it;
- ``runner``: ``run``, training the jobs not yet done;
- ``scores``, ``report``, ``plots``: the numbers, ``runs.csv`` / ``results.md``, the figures;
- ``recipes``: finding and loading the recipes in ``applications/``;
- ``cli``: the command line shared by the recipes (``main``) and ``kzoo reproduce``.

Re-running continues: finished jobs are not touched, an interrupted one resumes from its
last epoch (its record as an uninterrupted run would have written it, the temporaries of
killed writes cleared), and the report is rewritten after every job, so it always shows
what has been run. Every argument, and every record already in the output folder, is
checked before anything is created or written.
"""

from kzoo.reproduce.cli import add_parser, add_study_arguments, execute, list_studies, main, run_command
from kzoo.reproduce.outputs import (
    DIVERGED,
    RESULTS,
    RUNS_CSV,
    WALL,
    clear_temporaries,
    default_out,
    existing_out,
    finished_epochs,
    is_diverged,
    is_done,
    job_dir,
    read_config,
    read_job,
    read_metrics,
    read_wall,
    write_job_record,
    writing,
)
from kzoo.reproduce.plots import curve_series, plot_curves, plot_study, plot_sweep
from kzoo.reproduce.recipes import defines_study, find_recipes, load_study, recipe_dirs, resolve_study
from kzoo.reproduce.report import csv_columns, render, results_table, summarize, write_report
from kzoo.reproduce.runner import check_jobs, check_records, run, run_job
from kzoo.reproduce.scores import check_metric, mean_std, score, unit
from kzoo.reproduce.study import (
    CPU_DATASET,
    CPU_PROTOCOL,
    METRICS,
    SCALES,
    Job,
    Study,
    Variant,
    check_job_list,
    check_only,
    check_scale,
    check_seeds,
    check_study,
    job_protocol,
    jobs,
    protocol_name,
    select_variants,
)

__all__ = [
    # study
    "CPU_DATASET",
    "CPU_PROTOCOL",
    "METRICS",
    "SCALES",
    "Job",
    "Study",
    "Variant",
    "check_job_list",
    "check_only",
    "check_scale",
    "check_seeds",
    "check_study",
    "job_protocol",
    "jobs",
    "protocol_name",
    "select_variants",
    # outputs
    "DIVERGED",
    "RESULTS",
    "RUNS_CSV",
    "WALL",
    "clear_temporaries",
    "default_out",
    "existing_out",
    "finished_epochs",
    "is_diverged",
    "is_done",
    "job_dir",
    "read_config",
    "read_job",
    "read_metrics",
    "read_wall",
    "write_job_record",
    "writing",
    # runner
    "check_jobs",
    "check_records",
    "run",
    "run_job",
    # scores, report, plots
    "check_metric",
    "mean_std",
    "score",
    "unit",
    "csv_columns",
    "render",
    "results_table",
    "summarize",
    "write_report",
    "curve_series",
    "plot_curves",
    "plot_study",
    "plot_sweep",
    # recipes, cli
    "defines_study",
    "find_recipes",
    "load_study",
    "recipe_dirs",
    "resolve_study",
    "add_parser",
    "add_study_arguments",
    "execute",
    "list_studies",
    "main",
    "run_command",
]
