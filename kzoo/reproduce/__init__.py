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
last epoch, and the report is rewritten after every job, so it always shows what has
been run.
"""

from kzoo.reproduce.cli import add_parser, add_study_arguments, execute, list_studies, main, run_command
from kzoo.reproduce.outputs import (
    DIVERGED,
    RESULTS,
    RUNS_CSV,
    WALL,
    default_out,
    finished_epochs,
    is_diverged,
    is_done,
    job_dir,
    read_job,
    write_job_record,
)
from kzoo.reproduce.plots import curve_series, plot_curves, plot_study, plot_sweep
from kzoo.reproduce.recipes import defines_study, find_recipes, load_study, recipe_dirs, resolve_study
from kzoo.reproduce.report import csv_columns, render, results_table, summarize, write_report
from kzoo.reproduce.runner import check_finished_epochs, run, run_job
from kzoo.reproduce.scores import mean_std, score, unit
from kzoo.reproduce.study import (
    CPU_DATASET,
    CPU_PROTOCOL,
    METRICS,
    SCALES,
    Job,
    Study,
    Variant,
    check_scale,
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
    "check_scale",
    "job_protocol",
    "jobs",
    "protocol_name",
    "select_variants",
    # outputs
    "DIVERGED",
    "RESULTS",
    "RUNS_CSV",
    "WALL",
    "default_out",
    "finished_epochs",
    "is_diverged",
    "is_done",
    "job_dir",
    "read_job",
    "write_job_record",
    # runner
    "check_finished_epochs",
    "run",
    "run_job",
    # scores, report, plots
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
