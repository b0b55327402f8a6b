"""A study's command line, its arguments defined once for both ways in:
``python applications/<recipe>.py`` (``main(study, argv)``) and the ``kzoo reproduce``
sub-command (``add_parser`` adds it to kzoo's parser, ``run_command`` runs it)."""

import argparse
import json
import os
import shlex
import sys

from kzoo import checks
from kzoo.reproduce.finding import find_recipes, load_study, resolve_study
from kzoo.reproduce.outputs import RESULTS, default_out, existing_out, is_diverged, is_done
from kzoo.reproduce.report import write_report
from kzoo.reproduce.runner import check_jobs, check_records, run
from kzoo.reproduce.study import SCALES, check_scale, check_seeds, check_study, jobs, protocol_name

DESCRIPTION = (
    "Re-run a paper's table or figure from its recipe (kzoo.reproduce.recipes): every row on every "
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
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--list", action="store_true", help="print the jobs (done, diverged or todo) and exit")
    mode.add_argument("--report", action="store_true", help="only rewrite the report from finished jobs")
    parser.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return parser


def _only(text):
    """``--only``'s comma-separated keys or patterns as a list; None when not given."""
    if text is None:
        return None
    only = [p.strip() for p in text.split(",") if p.strip()]
    if not only:
        raise ValueError(f"`only` names no variant key or pattern, got {text!r}")
    return only


def _folder_or_nothing(out):
    """Refuse an ``out`` that is a file or lies under one (a --list reads it, if it exists)."""
    probe = os.path.abspath(out)
    while not os.path.exists(probe) and os.path.dirname(probe) != probe:
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        where = "is a file" if probe == os.path.abspath(out) else f"lies under the file {probe!r}"
        raise ValueError(f"`out`={out!r} {where}, not a directory")


def execute(study, args, command):
    """Do what the parsed ``args`` ask of ``study``: list its jobs, rewrite its report or
    run it (recording ``command`` in each run). Returns 0; bad input raises. Every option
    is checked whatever the mode, and the output folder's records before any is written."""
    check_study(study)
    check_scale(args.scale)
    seeds = check_seeds(args.seeds)
    only = _only(args.only)
    epochs = checks.integer(args.epochs, "epochs", minimum=1, optional=True)
    out = default_out(study, args.scale, epochs) if args.out is None else checks.path(args.out, "out")
    if args.report:
        existing_out(out)
    if args.list:  # read only: a folder another user wrote may be listed
        _folder_or_nothing(out)
    else:
        checks.writable_dir(out, "out")
    data_dir = None if args.data_dir is None else checks.existing_dir(args.data_dir, "data_dir")
    todo = jobs(study, args.scale, seeds, only)
    everything = jobs(study, args.scale, seeds)
    if args.list:
        check_jobs([j for j in todo if not is_done(out, j)], epochs)
        check_records(out, everything, epochs)
        for j in todo:
            state = "diverged" if is_diverged(out, j) else "done" if is_done(out, j) else "todo"
            print(
                f"{state:<5} {j.folder}  {j.model} {json.dumps(j.model_kwargs)} {protocol_name(j.protocol)}"
            )
        return 0
    if args.report:
        check_records(out, everything, epochs)
        rows = write_report(study, args.scale, out, everything)
    else:
        rows = run(
            study,
            args.scale,
            out,
            seeds=seeds,
            only=only,
            data_dir=data_dir,
            epochs=epochs,
            verbose=0 if args.quiet else 2,
            command=command,
        )
    done = sum(r["n"] for r in rows)
    print(f"{done} runs finished; report: {os.path.join(out, RESULTS)}")
    return 0


def main(study, argv=None):
    """The command line of a recipe's script (``applications/``): run (or only report) a study.
    Exit 0; 2 with ``PROG: error: ...`` for a bad argument or input (argparse's own exit 2
    for usage); 1 for a run that failed (a disk error, a failed job); 130 for Ctrl-C."""
    check_study(study)
    if argv is not None and (isinstance(argv, str) or not all(isinstance(a, str) for a in argv)):
        raise TypeError(f"`argv` must be a list of strings or None, got {argv!r}")
    parser = argparse.ArgumentParser(description=f"{study.title} ({study.source}). " + (study.notes or ""))
    args = add_study_arguments(parser).parse_args(argv)
    command = "python " + shlex.join(sys.argv if argv is None else [sys.argv[0], *argv])

    def fail(err, code):
        lines = [line.strip() for line in str(err).strip().splitlines() if line.strip()]
        print(f"{parser.prog}: error: " + ("; ".join(lines) or "failed"), file=sys.stderr)
        return code

    try:
        return execute(study, args, command=command)
    except KeyboardInterrupt:
        return fail("interrupted; re-running the same command continues where it stopped", 130)
    except checks.INPUT_ERRORS as e:
        return fail(e, 2)
    except (RuntimeError, OSError) as e:  # a failed job, a disk error
        return fail(e, 1)


def add_parser(subparsers):
    """Add the ``reproduce`` sub-command to kzoo's sub-parsers; returns its parser."""
    parser = subparsers.add_parser(
        "reproduce",
        description=DESCRIPTION,
        help="re-run a paper's table or figure from its recipe (resumes when re-run)",
    )
    parser.add_argument(
        "study",
        nargs="?",
        help="a recipe name (eraserelu_table1: kzoo.reproduce.recipes.eraserelu_table1, or "
        "applications/eraserelu_table1.py under the current directory when that defines a STUDY) "
        "or a recipe file; none: list the recipes",
    )
    parser.add_argument("--list-studies", action="store_true", help="list the recipes and exit")
    return add_study_arguments(parser)


def run_command(args):
    """Run ``kzoo reproduce`` from its parsed ``args``. Returns the exit status (1 when no
    recipe is found to list); a bad input raises, for kzoo's main to report as
    ``kzoo: error: ...`` with exit 2 (a failed run: exit 1)."""
    if args.list_studies or args.study is None:
        if args.study is not None:
            raise ValueError(
                f"`--list-studies` lists the recipes and runs none; give it alone, or give the recipe "
                f"{args.study!r} without it"
            )
        given = _study_options(args)
        if given:
            raise ValueError(
                f"{', '.join(given)} {'needs' if len(given) == 1 else 'need'} a recipe (kzoo reproduce RECIPE "
                f"{given[0]} ...); `kzoo reproduce` alone lists the recipes"
            )
        return list_studies()
    study = resolve_study(args.study)
    return execute(
        study, args, command=getattr(args, "command_line", None) or "kzoo " + shlex.join(sys.argv[1:])
    )


def _study_options(args):
    """The options of a study's run given on the command line (the scale: when not the default)."""
    given = [
        f"--{k.replace('_', '-')}"
        for k in ("seeds", "only", "out", "epochs", "data_dir")
        if getattr(args, k) is not None
    ]
    given += [f"--{k}" for k in ("list", "report", "quiet") if getattr(args, k)]
    return (["--scale"] if args.scale != "cpu" else []) + given


def list_studies():
    """Print every recipe's name and title; 1 when there is none. A recipe that fails to
    load is a ValueError naming its file and line, after the others are listed."""
    recipes = find_recipes()
    if not recipes:
        print(
            "no recipes found: none in the package kzoo.reproduce.recipes nor in an applications/ "
            "folder under the current directory"
        )
        return 1
    broken = []
    for name, path in recipes.items():
        try:
            study = load_study(path, arg=None)
        except (ValueError, FileNotFoundError) as err:
            broken.append(str(err))
            continue
        print(f"{name:<24} {study.title}")
    if broken:
        raise ValueError(f"{len(broken)} recipe(s) cannot be loaded: " + "; ".join(broken))
    return 0
