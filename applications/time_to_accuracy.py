"""Time to accuracy on Fashion-MNIST on this machine's CPU, by the rules airbench and
DAWNBench use (issue 35).

The rules:
- The budget (net, epochs, schedule) is the candidate's ``kzoo train`` command, fixed
  before it runs; the run trains to its end. Nothing reads a curve to choose when to stop.
- The clock is training plus one final evaluation of the test set (with the recipe's
  test-time augmentation): the epochs' seconds, the whitening computed from training
  images (``whitening_seconds``) and the final test pass. Per-epoch test passes
  (``--curve``) are recorded for the curve and taken off the clock (``test_seconds``).
  Reading the data and building the model before the first epoch are not on it.
- The score is the mean test top-1 over seeds (``--seeds``, at least 5 for a record),
  with its standard deviation and the mean minutes.
- Candidates and ablations are compared with ``--select``: trained on 55,000 training
  images and scored (TTA included) on the 5,000 held out, the test set untouched. The
  recipe chosen is then scored on the test set (without ``--select``: all 60,000
  training images) with seeds it was not chosen on.

A candidate is one ``kzoo train`` command given after ``--``; this script adds what every
candidate shares, runs it once per seed into ``--out/NAME/seedS/run`` (a re-run resumes
or skips finished seeds) and writes ``seedS/summary.json``. ``--report`` gathers every
candidate into ``results.md`` (the selection and test tables, per machine kind),
``fastest.json`` (one record per machine kind: the fastest recipe whose mean reaches
the target, or the best reached, beside the ``--baseline`` re-timed on the same kind)
and ``readme.md`` (the README's paragraph; ``--readme README.md`` also rewrites it there,
between its markers).

    python applications/time_to_accuracy.py --select --name NAME --seeds 0,1 -- airbench_net --epochs 12 ...
    python applications/time_to_accuracy.py --name NAME --seeds 10-14 -- airbench_net --epochs 12 ...
    python applications/time_to_accuracy.py --report --readme README.md
"""

import argparse
import glob
import json
import os
import shlex
import statistics
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OUT = os.path.join("results", "time_to_accuracy")
SHARED = ("--dataset", "fashion_mnist", "--protocol", "fashion_mnist_cpu")
SCORE = ("--validation-size", "0")
HELD_OUT = 5000  # the training images a selection run holds out and scores (the protocol's)
# What the script sets; a candidate's own arguments may not.
OWNED = (
    "--dataset",
    "--protocol",
    "--validation-size",
    "--no-test",
    "--test-curve",
    "--seed",
    "--out",
    "--workers",
    "--task-index",
)
TOOLS = (
    "schedule",
    "warmup_steps",
    "label_smoothing",
    "ema_decay",
    "ema_every",
    "random_erasing",
    "alternating_flip",
    "lookahead",
    "tta",
)
MIN_SEEDS = 5  # a record's mean is over at least this many seeds
RULES = (
    "budget fixed before the run; clock = training + whitening + one final test "
    "evaluation with its TTA (per-epoch test passes off the clock); score = mean test "
    f"top-1 over at least {MIN_SEEDS} seeds; candidates chosen on a validation split "
    "(applications/time_to_accuracy.py)"
)


def parse_seeds(text):
    """``0,1,2`` or ``10-14`` (inclusive) as a list of distinct non-negative seeds."""
    seeds = []
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            span = range(int(low), int(high) + 1) if dash else [int(low)]
        except ValueError:
            raise ValueError(f"`--seeds` must be like 0,1,2 or 10-14, got {text!r}") from None
        seeds.extend(span)
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise ValueError(f"`--seeds` must name distinct non-negative seeds, got {text!r}")
    return seeds


def candidate_args(train_args, folder, seed, select, curve, held_out=HELD_OUT):
    """The `kzoo train` argument list of one seed of a candidate (``train_args``: its own
    arguments, model name first) run into ``folder``/run; a selection run (``select``)
    holds out ``held_out`` training images, scores them and leaves the test set alone."""
    if not train_args or train_args[0].startswith("-"):
        raise ValueError("give the candidate's `kzoo train` arguments after `--`, the model name first")
    clash = sorted({a.split("=")[0] for a in train_args} & set(OWNED))
    if clash:
        raise ValueError(f"{', '.join(clash)}: set by this script for every candidate")
    if select and curve:
        raise ValueError("`--curve` scores the test set every epoch; `--select` never reads it")
    if select:
        mode = ("--validation-size", str(held_out), "--no-test")
    else:
        mode = SCORE + (("--test-curve",) if curve else ())
    return [
        "train",
        *train_args,
        *SHARED,
        *mode,
        "--seed",
        str(seed),
        "--quiet",
        "--out",
        os.path.join(folder, "run"),
    ]


def recipe(command):
    """A command without its seed and run folder: the seeds of one recipe compare equal."""
    words = shlex.split(command)
    for flag in ("--out", "--seed"):
        if flag in words:
            at = words.index(flag)
            del words[at : at + 2]
    return shlex.join(words)


def machine_kind(hardware):
    """The kind of machine a timing belongs to: CPU model, the bfloat16 unit oneDNN uses
    (AMX, AVX512_BF16 or none) and cores; figures compare only within a kind."""
    flags = hardware.get("cpu_flags") or []
    unit = "AMX" if "amx_bf16" in flags else "AVX512_BF16" if "avx512_bf16" in flags else "no bf16 unit"
    gpus = hardware.get("gpus") or []
    return f"{hardware.get('cpu_model')}, {unit}, {hardware.get('cpu_count')} cores" + (
        f", {len(gpus)} GPU" if gpus else ""
    )


def clock(metrics, rows):
    """(seconds on the clock, its parts): the epochs without their per-epoch test passes,
    the whitening, and the final test evaluation (the last epoch's test pass when the
    curve was recorded, else the separate pass)."""
    tests = [float(r.get("test_seconds") or 0.0) for r in rows]
    train = sum(float(r["seconds"]) for r in rows) - sum(tests)
    whitening = float(metrics.get("whitening_seconds") or 0.0)
    final = metrics.get("eval_seconds")
    final = float(final) if final is not None else (tests[-1] if tests else 0.0)
    parts = {"train_seconds": train, "whitening_seconds": whitening, "final_eval_seconds": final}
    return train + whitening + final, parts


def summarise(name, seed, select, command, result, protocol):
    """One seed's ``summary.json``."""
    import kzoo

    metrics, rows = result.metrics, result.history
    seconds, parts = clock(metrics, rows)
    curve = []
    for r in rows:
        point = {
            "epoch": int(r["epoch"]) + 1,
            "seconds": float(r["seconds"]) - float(r.get("test_seconds") or 0),
        }
        for key, out in (("test_accuracy", "test_top1"), ("val_accuracy", "val_top1")):
            if r.get(key) not in (None, ""):
                point[out] = float(r[key])
        curve.append(point)
    return {
        "name": name,
        "seed": seed,
        "mode": "select" if select else "score",
        "score": metrics["val_top1"] if select else metrics["test_top1"],
        "scored_on": f"validation ({protocol['validation_size']} held-out training images)"
        if select
        else "test",
        "seconds": seconds,
        **parts,
        "model": metrics["model"],
        "model_kwargs": metrics["model_kwargs"],
        "epochs": protocol["epochs"],
        "batch_size": protocol["batch_size"],
        "lr": protocol["lr"],
        "weight_decay": protocol["weight_decay"],
        "tools": {k: protocol.get(k) for k in TOOLS},
        "precision": metrics["precision"],
        "params": metrics["params"],
        "training_gflops_per_image": round(kzoo.training_flops(result.model) / 1e9, 5),
        "train_images_per_s": metrics["train_images_per_s"],
        "curve": curve,
        "hardware": metrics["hardware"],
        "machine_kind": machine_kind(metrics["hardware"]),
        "command": command,
        "recipe": recipe(command),
    }


def on_record(name, out, folder, command):
    """Whether the seed in ``folder`` is on record with ``command``'s recipe (its
    ``summary.json``); a ValueError when the folder holds a seed of another recipe."""
    done = os.path.join(folder, "summary.json")
    if not os.path.exists(done):
        return False
    with open(done) as f:
        kept = json.load(f).get("recipe")
    if kept != recipe(command):
        raise ValueError(
            f"candidate {name!r} has seeds of another recipe in {out!r} ({kept}); give this one another --name"
        )
    return True


def run(args, train_args):
    from kzoo import atomic, cli

    seeds = parse_seeds(args.seeds)
    for seed in seeds:  # every seed's arguments checked before the first trains
        cli.build_parser().parse_args(
            candidate_args(train_args, args.out, seed, args.select, args.curve, args.held_out)
        )
    for seed in seeds:
        folder = os.path.join(args.out, args.name, f"seed{seed}")
        argv = candidate_args(train_args, folder, seed, args.select, args.curve, args.held_out)
        command = "kzoo " + shlex.join(argv)
        if on_record(args.name, args.out, folder, command):
            print(f"{folder}: done")
            continue
        result = cli.run_train(cli.build_parser().parse_args(argv), command)
        with open(os.path.join(result.run_dir, "config.json")) as f:
            protocol = json.load(f)["protocol_fields"]
        summary = summarise(args.name, seed, args.select, command, result, protocol)
        atomic.write_text(os.path.join(folder, "summary.json"), json.dumps(summary, indent=2) + "\n")
        print(
            f"{args.name} seed {seed}: {summary['mode']} top-1 {100 * summary['score']:.2f}% "
            f"in {summary['seconds'] / 60:.2f} min ({summary['machine_kind']})",
            flush=True,
        )


# ----------------------------------------------------------------------------- the report


def load_summaries(folder):
    """Every seed's ``summary.json`` under ``folder`` (a SystemExit when there is none)."""
    found = []
    for path in sorted(glob.glob(os.path.join(folder, "*", "seed*", "summary.json"))):
        with open(path) as f:
            found.append(json.load(f))
    if not found:
        raise SystemExit(f"no */seed*/summary.json under {folder}: run a candidate first")
    return found


def group(summaries):
    """One entry per (machine kind, candidate name): its seeds' scores and minutes as
    mean and standard deviation. The seeds of a candidate must share one recipe."""
    groups = {}
    for s in summaries:
        groups.setdefault((s["machine_kind"], s["name"]), []).append(s)
    out = []
    for (kind, name), runs in sorted(groups.items()):
        recipes = {r["recipe"] for r in runs}
        if len(recipes) != 1 or len({r["mode"] for r in runs}) != 1:
            raise SystemExit(
                f"candidate {name!r} on {kind} has seeds of different recipes: {sorted(recipes)}"
            )
        runs.sort(key=lambda r: r["seed"])
        scores = [r["score"] for r in runs]
        minutes = [r["seconds"] / 60 for r in runs]
        out.append(
            {
                "name": name,
                "machine_kind": kind,
                "mode": runs[0]["mode"],
                "recipe": runs[0]["recipe"],
                "seeds": [r["seed"] for r in runs],
                "mean_top1": statistics.fmean(scores),
                "std_top1": statistics.stdev(scores) if len(scores) > 1 else None,
                "min_top1": min(scores),
                "mean_minutes": statistics.fmean(minutes),
                "max_minutes": max(minutes),
                "runs": runs,
            }
        )
    return out


def _pm(entry):
    std = entry["std_top1"]
    return (
        f"{100 * entry['mean_top1']:.2f} ± {100 * std:.2f}"
        if std is not None
        else f"{100 * entry['mean_top1']:.2f}"
    )


def _record(entry):
    """A candidate as ``fastest.json`` keeps it."""
    first = entry["runs"][0]
    return {
        "name": entry["name"],
        "command": first["command"],
        "recipe": entry["recipe"],
        "seeds": entry["seeds"],
        "mean_test_top1": round(entry["mean_top1"], 5),
        "std_test_top1": entry["std_top1"] and round(entry["std_top1"], 5),
        "test_top1": [r["score"] for r in entry["runs"]],
        "mean_minutes": round(entry["mean_minutes"], 3),
        "max_minutes": round(entry["max_minutes"], 3),
        "minutes": [round(r["seconds"] / 60, 3) for r in entry["runs"]],
        "clock_parts_seconds": {
            k: round(statistics.fmean(r[k] for r in entry["runs"]), 2)
            for k in ("train_seconds", "whitening_seconds", "final_eval_seconds")
        },
        "precision": first["precision"],
        "tools": first["tools"],
        "training_gflops_per_image": first["training_gflops_per_image"],
        "machine": first["hardware"],
        "curves": [{"seed": r["seed"], "curve": r["curve"]} for r in entry["runs"]],
    }


def fastest(entries, target, budget_minutes, baseline):
    """``fastest.json``'s records, one per machine kind: the fastest test-scored recipe
    with at least MIN_SEEDS seeds whose mean reaches ``target`` (else the best mean
    reached, ``reached: false``), beside ``baseline`` timed on the same kind."""
    kinds = {}
    for kind in sorted({e["machine_kind"] for e in entries}):
        scored = [e for e in entries if e["machine_kind"] == kind and e["mode"] == "score"]
        eligible = [e for e in scored if len(e["seeds"]) >= MIN_SEEDS and e["name"] != baseline]
        if not eligible:
            continue
        reached = [e for e in eligible if e["mean_top1"] >= target]
        best = (
            min(reached, key=lambda e: e["mean_minutes"])
            if reached
            else max(eligible, key=lambda e: e["mean_top1"])
        )
        record = {
            "reached": bool(reached),
            "within_budget": bool(reached) and best["mean_minutes"] <= budget_minutes,
            **_record(best),
        }
        old = next((e for e in scored if e["name"] == baseline), None)
        if old is not None:
            record["baseline"] = _record(old)
            record["baseline_minutes_over_record"] = round(old["mean_minutes"] / best["mean_minutes"], 2)
        kinds[kind] = record
    return {
        "rules": RULES,
        "target": target,
        "budget_minutes": budget_minutes,
        "kinds": kinds,
    }


def readme_paragraph(record):
    """The README's time-to-accuracy paragraph, from ``fastest.json``'s records."""
    lines = [
        f"Time to {100 * record['target']:.0f}% on Fashion-MNIST, 2 CPU cores, by airbench's rules "
        f"(budget fixed before the run, training + one final evaluation on the clock, mean of at "
        f"least {MIN_SEEDS} seeds; `results/time_to_accuracy/`):",
        "",
    ]
    for kind, r in record["kinds"].items():
        verdict = (
            "reaches the target"
            if r["reached"]
            else f"best mean reached, below {100 * record['target']:.0f}%"
        )
        line = (
            f"- {kind}: **{r['mean_minutes']:.2f} min**, test top-1 {100 * r['mean_test_top1']:.2f}% "
            f"± {100 * (r['std_test_top1'] or 0):.2f} over {len(r['seeds'])} seeds ({verdict}), "
            f"`{r['recipe']}`"
        )
        if "baseline" in r:
            b = r["baseline"]
            line += (
                f"; the old ResNet-20 float32 recipe, re-timed by the same rules there: "
                f"{b['mean_minutes']:.2f} min ({r['baseline_minutes_over_record']:.2f}x), "
                f"{100 * b['mean_test_top1']:.2f}% over {len(b['seeds'])} seeds"
            )
        lines.append(line + ".")
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- time to accuracy: written by applications/time_to_accuracy.py --report -->"
README_END = "<!-- end of time to accuracy -->"


def update_readme(path, paragraph):
    """Put ``paragraph`` between the README's markers (a ValueError when they are not
    there, once each and in order): the README's figures are the records'."""
    with open(path) as f:
        text = f.read()
    begin, end = text.find(README_BEGIN), text.find(README_END)
    if begin < 0 or end < begin or text.count(README_BEGIN) != 1 or text.count(README_END) != 1:
        raise ValueError(
            f"{path} needs the lines {README_BEGIN!r} and {README_END!r}, once each, in that order"
        )
    new = text[: begin + len(README_BEGIN)] + "\n" + paragraph + text[end:]
    if new != text:
        from kzoo import atomic

        atomic.write_text(path, new)


def _row(e):
    r0 = e["runs"][0]
    options = {
        **r0["model_kwargs"],
        **{k: v for k, v in (r0["tools"] or {}).items() if v not in (None, 0, 0.0, 1)},
    }
    return [
        e["name"],
        r0["model"],
        ", ".join(f"{k}={v}" for k, v in options.items()) or "-",
        r0["batch_size"],
        r0["lr"],
        r0["weight_decay"],
        r0["epochs"],
        r0["precision"],
        ",".join(map(str, e["seeds"])),
        _pm(e),
        f"{100 * e['min_top1']:.2f}",
        f"{round(e['mean_minutes'], 3):.2f}",
        f"{statistics.fmean(r['train_images_per_s'] for r in e['runs']):.0f}",
    ]


def report(out, target, budget_minutes, baseline, readme=None):
    """``results.md``, ``fastest.json`` and ``readme.md`` from every seed's summary, and
    the paragraph in ``readme`` (a README with the markers) when given."""
    from kzoo import atomic
    from kzoo.training import markdown_table

    entries = group(load_summaries(out))
    header = [
        "candidate",
        "model",
        "options",
        "batch",
        "lr",
        "weight decay",
        "epochs",
        "precision",
        "seeds",
        "mean ± std top-1 %",
        "worst %",
        "mean minutes",
        "train img/s",
    ]
    lines = [
        "# Time to accuracy: Fashion-MNIST on the CPU",
        "",
        f"Target {100 * target:.0f}% mean test top-1 in {budget_minutes:g} minutes. "
        + RULES
        + ". Selection candidates are scored on the validation split, never on the test set, and "
        "their minutes include the per-epoch validation passes.",
        "",
    ]
    for kind in sorted({e["machine_kind"] for e in entries}):
        for mode, title in (
            ("select", "selection (validation top-1)"),
            ("score", "test (the recipes chosen)"),
        ):
            rows = [_row(e) for e in entries if e["machine_kind"] == kind and e["mode"] == mode]
            if rows:
                lines += [f"## {kind}: {title}", "", markdown_table(header, rows), ""]
    lines += ["## Commands", ""]
    lines += sorted({f"- {e['name']}: `{e['recipe']}`" for e in entries})
    lines.append("")
    record = fastest(entries, target, budget_minutes, baseline)
    atomic.write_text(os.path.join(out, "results.md"), "\n".join(lines))
    atomic.write_text(os.path.join(out, "fastest.json"), json.dumps(record, indent=2) + "\n")
    atomic.write_text(os.path.join(out, "readme.md"), readme_paragraph(record))
    if readme is not None:
        update_readme(readme, readme_paragraph(record))
    print("\n".join(lines))
    print(readme_paragraph(record))


def split_argv(argv):
    """(this script's arguments, the `kzoo train` arguments after ``--``)."""
    return (argv[: argv.index("--")], argv[argv.index("--") + 1 :]) if "--" in argv else (argv, [])


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    own, train_args = split_argv(argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", help="candidate name (its folder under --out)")
    parser.add_argument("--seeds", default="0,1,2,3,4", help="e.g. 0,1,2,3,4 or 10-14")
    parser.add_argument(
        "--select", action="store_true", help="score on the validation split, not the test set"
    )
    parser.add_argument("--held-out", type=int, default=HELD_OUT, help="--select: training images held out")
    parser.add_argument(
        "--curve", action="store_true", help="record the test top-1 after every epoch (off the clock)"
    )
    parser.add_argument("--target", type=float, default=0.94)
    parser.add_argument("--budget", type=float, default=5.0, help="minutes")
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--baseline", default="resnet20-f32", help="the old recipe, re-timed on each kind")
    parser.add_argument("--report", action="store_true", help="only gather the candidates")
    parser.add_argument(
        "--readme", help="with --report: the README whose paragraph to rewrite (e.g. README.md)"
    )
    args = parser.parse_args(own)
    if args.report:
        report(args.out, args.target, args.budget, args.baseline, args.readme)
        return 0
    if not args.name:
        parser.error("--name is required to run a candidate")
    if os.path.basename(args.name) != args.name or args.name in (".", ".."):
        parser.error(f"--name must be a folder name (no path), got {args.name!r}")
    try:
        run(args, train_args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
