"""A study's command line, its arguments defined once for both ways in:
``python applications/<recipe>.py`` (``main(study, argv)``) and the ``kzoo reproduce``
sub-command (``add_parser`` adds it to kzoo's parser, ``run_command`` runs it)."""

import argparse
import json
import os
import shlex
import sys

from kzoo.reproduce.outputs import RESULTS, default_out, is_done
from kzoo.reproduce.recipes import find_recipes, load_study, resolve_study
from kzoo.reproduce.report import write_report
from kzoo.reproduce.runner import run
from kzoo.reproduce.study import SCALES, jobs, protocol_name

DESCRIPTION = (
    "Re-run a paper's table or figure from its recipe in applications/: every row on every "
    "dataset with several seeds, reported as mean ± std next to the published numbers. "
    "Re-running continues where it stopped."
)


def add_study_arguments(parser):
    """The options of a study's run, on ``parser`` (a recipe's or ``kzoo reproduce``'s)."""
    parser.add_argument(
        "--scale",
        choices=SCALES,
        default="cpu",
        help="paper: the published protocol and datasets (GPU), 5 seeds; "
        "cpu: Fashion-MNIST, short protocol, 3 seeds (default)",
    )
    parser.add_argument("--seeds", type=int, help="number of seeds (0..N-1)")
    parser.add_argument("--only", help="comma-separated variant keys or patterns (e.g. 'resnet20-*')")
    parser.add_argument(
        "--out",
        help="output folder (default runs/reproduce/STUDY-SCALE, with -Nepochs appended under --epochs)",
    )
    parser.add_argument(
        "--epochs", type=int, help="override the protocol's epochs (a quick look, not the recipe)"
    )
    parser.add_argument("--data-dir", help="TFDS data_dir / folder with the IDX files")
    parser.add_argument("--list", action="store_true", help="print the jobs and exit")
    parser.add_argument("--report", action="store_true", help="only rewrite the report from finished jobs")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return parser


def execute(study, args, command):
    """Do what the parsed ``args`` ask of ``study``: list its jobs, rewrite its report or
    run it (recording ``command`` in each run). Returns 0; bad input raises."""
    only = [p.strip() for p in args.only.split(",") if p.strip()] if args.only else None
    out = args.out or default_out(study, args.scale, args.epochs)
    todo = jobs(study, args.scale, args.seeds, only)
    if args.list:
        for j in todo:
            state = "done" if is_done(out, j) else "todo"
            print(f"{state}  {j.folder}  {j.model} {json.dumps(j.model_kwargs)} {protocol_name(j.protocol)}")
        return 0
    if args.report:
        rows = write_report(study, args.scale, out, jobs(study, args.scale, args.seeds))
    else:
        rows = run(
            study,
            args.scale,
            out,
            seeds=args.seeds,
            only=only,
            data_dir=args.data_dir,
            epochs=args.epochs,
            verbose=0 if args.quiet else 2,
            command=command,
        )
    done = sum(r["n"] for r in rows)
    print(f"{done} runs finished; report: {os.path.join(out, RESULTS)}")
    return 0


def main(study, argv=None):
    """The command line of a recipe in ``applications/``: run (or only report) a study.
    Exit 0, or 2 with ``error: ...`` for a bad argument (argparse's own exit 2 for usage)."""
    parser = argparse.ArgumentParser(description=f"{study.title} ({study.source}). " + (study.notes or ""))
    args = add_study_arguments(parser).parse_args(argv)
    try:
        return execute(study, args, command="python " + shlex.join(sys.argv))
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def add_parser(subparsers):
    """Add the ``reproduce`` sub-command to kzoo's sub-parsers; returns its parser."""
    parser = subparsers.add_parser(
        "reproduce",
        description=DESCRIPTION,
        help="re-run a paper's table or figure from its recipe in applications/ (resumes when re-run)",
    )
    parser.add_argument(
        "study",
        nargs="?",
        help="a recipe name (eraserelu_table1: applications/eraserelu_table1.py under the "
        "current directory or kzoo's checkout) or a recipe file; none: list the recipes",
    )
    parser.add_argument("--list-studies", action="store_true", help="list the recipes and exit")
    return add_study_arguments(parser)


def run_command(args):
    """Run ``kzoo reproduce`` from its parsed ``args``. Returns the exit status (1 when no
    recipe is found to list); a bad input raises, for kzoo's main to report as
    ``kzoo: error: ...`` with exit 2 (a failed run: exit 1)."""
    if args.list_studies or args.study is None:
        return list_studies()
    study = resolve_study(args.study)
    return execute(
        study, args, command=getattr(args, "command_line", None) or "kzoo " + shlex.join(sys.argv[1:])
    )


def list_studies():
    """Print every recipe's name and title; 1 when there is none."""
    recipes = find_recipes()
    if not recipes:
        print(
            "no recipes found: no applications/ folder with a recipe under the current directory "
            "or next to the kzoo package"
        )
        return 1
    for name, path in recipes.items():
        print(f"{name:<24} {load_study(path).title}")
    return 0
