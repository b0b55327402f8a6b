"""Re-running a paper's table or figure: every row (a ``Variant``: a model and its
placement options) on every dataset with several seeds, each one ``kzoo.train`` run, then
aggregated as mean ± std next to the published numbers, with the per-epoch test curves
the papers plot.

A ``Study`` is the recipe of one table or figure (``kzoo.reproduce.recipes.<name>``, run as
``kzoo reproduce <name>`` or ``python applications/<name>.py``). The package, one
concept per module:

- ``study``: ``Variant``, ``Study``, ``Job`` and the jobs a study asks for at a scale;
- ``outputs``: the output folder's default place, layout and each job's records in it;
- ``runner``: ``run``, training the jobs not yet done;
- ``scores``, ``report``, ``plots``: the numbers, ``runs.csv`` / ``results.md``, the figures;
- ``recipes``: the papers' recipes, one module each;
- ``finding``: finding the recipes (the package's and a user's) and loading one;
- ``cli``: the command line shared by the recipes' scripts (``main``) and ``kzoo reproduce``.

Re-running continues: finished jobs are not touched, an interrupted one resumes from its
last epoch (its record as an uninterrupted run would have written it, the temporaries of
killed writes cleared), and the report is rewritten after every job, so it always shows
what has been run. Every argument, and every record already in the output folder, is
checked before anything is created or written.
"""

from kzoo.reproduce.cli import main
from kzoo.reproduce.finding import find_recipes, load_study
from kzoo.reproduce.outputs import default_out
from kzoo.reproduce.report import write_report
from kzoo.reproduce.runner import run
from kzoo.reproduce.study import Job, Study, Variant, jobs

__all__ = [
    "default_out",
    "find_recipes",
    "Job",
    "jobs",
    "load_study",
    "main",
    "run",
    "Study",
    "Variant",
    "write_report",
]
