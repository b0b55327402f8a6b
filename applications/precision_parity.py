"""Does mixed_bfloat16 train as accurately as float32 on this CPU, and how much faster?
The evidence behind ``precision="auto"``: one `kzoo train` command (given after ``--``,
as for time_to_accuracy.py) run under both precisions for several seeds, the precisions
alternating so the machine's drift falls on both. Each run is a time_to_accuracy
seed of a time_to_accuracy candidate (``--out``/MODEL-PRECISION/seedN/summary.json); a
run already there with the same command is kept, so an interrupted study resumes. ``summary.json`` and
``results.md`` in ``--out`` give each precision's final test top-1 (mean and standard
deviation over seeds), the paired per-seed differences and the median epoch time.

    python applications/precision_parity.py --seeds 0,1,2 -- resnet20 --epochs 4
    python applications/precision_parity.py --report
"""

import argparse
import json
import os
import shlex
import statistics
import sys
from types import SimpleNamespace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import time_to_accuracy  # noqa: E402

OUT = os.path.join("results", "precision_parity")
PRECISIONS = {"float32": "float32", "bfloat16": "mixed_bfloat16"}
OWN_FLAGS = ("--seed", "--mixed-precision")


def seeds_arg(text):
    """``--seeds``: time_to_accuracy's form (``0,1,2`` or ``10-14``), at least two."""
    try:
        seeds = time_to_accuracy.parse_seeds(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if len(seeds) < 2:
        raise argparse.ArgumentTypeError(f"--seeds needs at least two different seeds, got {text!r}")
    return seeds


def plan(train_args, seeds):
    """(candidate name, seed, arguments) of every run, precisions alternating, the first
    precision alternating from seed to seed; a candidate is one precision's runs."""
    if not train_args or train_args[0].startswith("-"):
        raise ValueError("give the `kzoo train` arguments after `--`, the model name first")
    clash = sorted({a.split("=")[0] for a in train_args} & set(OWN_FLAGS))
    if clash:
        raise ValueError(f"{', '.join(clash)}: the study sets the seed and the precision of each run")
    runs = []
    for i, seed in enumerate(seeds):
        order = list(PRECISIONS) if i % 2 == 0 else list(PRECISIONS)[::-1]
        for label in order:
            runs.append((f"{train_args[0]}-{label}", seed, [*train_args, "--mixed-precision", label]))
    return runs


def _done(out, name, seed, args):
    """Whether the run is on record with these arguments (time_to_accuracy's check: a
    ValueError when its folder holds another recipe)."""
    folder = os.path.join(out, name, f"seed{seed}")
    argv = time_to_accuracy.candidate_args(args, folder, seed, select=False, curve=False)
    return time_to_accuracy.on_record(name, out, folder, "kzoo " + shlex.join(argv))


def aggregate(summaries):
    """Per precision: seeds, final top-1s, their mean and std, the median epoch time;
    the paired differences (bfloat16 - float32, same seed) and the speed ratio."""
    by = {}
    for s in summaries:
        label = next(k for k, v in PRECISIONS.items() if v == s["precision"])
        by.setdefault(label, {})[s["seed"]] = s
    out = {"precisions": {}}
    for label, runs in by.items():
        top1 = [runs[k]["score"] for k in sorted(runs)]
        epochs = [p["seconds"] for k in sorted(runs) for p in runs[k]["curve"]]
        out["precisions"][label] = {
            "seeds": sorted(runs),
            "final_top1": top1,
            "mean_top1": statistics.mean(top1),
            "std_top1": statistics.stdev(top1) if len(top1) > 1 else None,
            "median_epoch_seconds": statistics.median(epochs),
        }
    if set(by) == set(PRECISIONS):
        paired = sorted(set(by["float32"]) & set(by["bfloat16"]))
        diffs = [by["bfloat16"][k]["score"] - by["float32"][k]["score"] for k in paired]
        p = out["precisions"]
        noise = max(p["float32"]["std_top1"] or 0, p["bfloat16"]["std_top1"] or 0)
        mean = statistics.mean(diffs) if diffs else None
        out.update(
            {
                "paired_seeds": paired,
                "bfloat16_minus_float32": diffs,
                "mean_difference": mean,
                "seed_noise": noise,
                # "no accuracy loss": bfloat16's mean is not below float32's by more than a seed's spread
                "within_noise": mean is not None and mean >= -noise,
                "speedup": p["float32"]["median_epoch_seconds"] / p["bfloat16"]["median_epoch_seconds"],
            }
        )
    return out


def report(folder):
    from kzoo import atomic

    summaries = time_to_accuracy.load_summaries(folder)
    result = {**aggregate(summaries), "commands": sorted(s["command"] for s in summaries)}
    result["machine"] = summaries[0]["hardware"]
    atomic.write_text(os.path.join(folder, "summary.json"), json.dumps(result, indent=2) + "\n")
    lines = [
        "# bfloat16 vs float32: accuracy and speed on this CPU",
        "",
        f"Generated by `python applications/precision_parity.py --report` from the runs in `{folder}`; "
        f"machine: {result['machine'].get('cpu_model', '?')}, flags {result['machine'].get('cpu_flags', [])}.",
        "",
        "| precision | seeds | final test top-1 % per seed | mean % | std | median epoch, s |",
        "|---|---|---|---|---|---|",
    ]
    for label, p in result["precisions"].items():
        std = f"{100 * p['std_top1']:.2f}" if p["std_top1"] is not None else "-"
        lines.append(
            f"| {label} | {', '.join(map(str, p['seeds']))} | "
            f"{', '.join(f'{100 * t:.2f}' for t in p['final_top1'])} | {100 * p['mean_top1']:.2f} | {std} "
            f"| {p['median_epoch_seconds']:.1f} |"
        )
    if "mean_difference" in result and result["mean_difference"] is not None:
        lines += [
            "",
            "bfloat16 - float32, paired by seed: "
            f"{', '.join(f'{100 * d:+.2f}' for d in result['bfloat16_minus_float32'])} "
            f"points (mean {100 * result['mean_difference']:+.2f}; the larger seed spread is "
            f"{100 * result['seed_noise']:.2f}): {'within' if result['within_noise'] else 'outside'} "
            f"the seeds' noise. Epochs are {result['speedup']:.2f}x faster in bfloat16.",
        ]
    lines += ["", "Commands:", "", *[f"    {c}" for c in result["commands"]], ""]
    atomic.write_text(os.path.join(folder, "results.md"), "\n".join(lines))
    print("\n".join(lines))
    return result


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    own, train_args = time_to_accuracy.split_argv(argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=seeds_arg, default=[0, 1, 2], help="comma-separated, at least two")
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--report", action="store_true", help="only gather the runs into results.md")
    args = parser.parse_args(own)
    if args.report:
        report(args.out)
        return 0
    try:
        runs = plan(train_args, args.seeds)
        for name, seed, run_args in runs:
            if _done(args.out, name, seed, run_args):
                print(f"{name} seed {seed}: done already, kept", file=sys.stderr)
                continue
            options = SimpleNamespace(
                name=name,
                out=args.out,
                seeds=str(seed),
                select=False,
                curve=False,
                held_out=time_to_accuracy.HELD_OUT,
            )
            time_to_accuracy.run(options, run_args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    report(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
