"""Time to accuracy on Fashion-MNIST on this machine's CPU: how long a kzoo recipe takes
to reach a test top-1 target (94% by default), and how far it gets in a time budget
(15 minutes by default).

A candidate is one `kzoo train` command, given after ``--``; the script adds what every
candidate shares (``--dataset fashion_mnist --protocol fashion_mnist_cpu
--validation-size 0 --test-curve``, the run folder) and records the whole command, so
the recipe is that one line. It trains on all 60,000 training images and scores the
10,000 test images after every epoch. The clock is the sum of the epochs' wall times,
test evaluations included (so the figure is conservative); the rest of the call (data
loading and model building before the first epoch, the final save after the last) is
reported apart as ``setup_seconds``. Each candidate writes its run directory and a
``summary.json`` under ``--out``, with a roofline line: the recipe's operations per
training image, the GFLOP/s it achieved and the share of the dense-matmul rate this CPU
reaches at the run's precision (measured right after the run). ``--report`` gathers every
candidate there into ``results.md``, ``curves.png`` (test top-1 against minutes) and
``fastest.json``.

    python applications/time_to_accuracy.py --name resnet20-b128-e16 -- resnet20 --epochs 16
    python applications/time_to_accuracy.py --name NAME -- resnet20 --epochs 8 \\
        --mixed-precision bfloat16 --label-smoothing 0.1 --tta flip
    python applications/time_to_accuracy.py --report
"""

import argparse
import glob
import json
import os
import shlex
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

OUT = os.path.join("results", "time_to_accuracy")


def time_to(rows, target):
    """Cumulative epoch seconds when the test top-1 first reaches ``target`` (None if never)."""
    clock = 0.0
    for row in rows:
        clock += float(row["seconds"])
        if float(row["test_accuracy"]) >= target:
            return clock
    return None


def epochs_to(rows, target):
    """How many epochs it takes the test top-1 to reach ``target`` (None if never): the
    part of time to accuracy that does not depend on the machine's speed that day."""
    for count, row in enumerate(rows, 1):
        if float(row["test_accuracy"]) >= target:
            return count
    return None


def best_within(rows, budget):
    """The last test top-1 recorded within ``budget`` seconds of epoch time (None if no
    epoch finished in it)."""
    clock, score = 0.0, None
    for row in rows:
        clock += float(row["seconds"])
        if clock > budget:
            break
        score = float(row["test_accuracy"])
    return score


# What every candidate shares; a candidate's own arguments may not set these.
FIXED = (
    "--dataset",
    "fashion_mnist",
    "--protocol",
    "fashion_mnist_cpu",
    "--validation-size",
    "0",
    "--test-curve",
)
FIXED_FLAGS = (
    "--dataset",
    "--protocol",
    "--validation-size",
    "--test-curve",
    "--out",
    "--workers",
    "--task-index",
)
TOOLS = ("schedule", "warmup_steps", "label_smoothing", "ema_decay", "ema_every", "random_erasing", "tta")


def candidate_args(train_args, folder):
    """The `kzoo train` argument list of a candidate whose own arguments are
    ``train_args`` (model name first), run into ``folder``/run."""
    if not train_args or train_args[0].startswith("-"):
        raise ValueError("give the candidate's `kzoo train` arguments after `--`, the model name first")
    clash = sorted({a.split("=")[0] for a in train_args} & set(FIXED_FLAGS))
    if clash:
        raise ValueError(f"{', '.join(clash)}: every candidate uses {' '.join(FIXED)} and its own run folder")
    return ["train", *train_args, *FIXED, "--quiet", "--out", os.path.join(folder, "run")]


def candidate_command(train_args, folder):
    """The `kzoo train` command line a candidate runs (and records) into ``folder``."""
    return "kzoo " + shlex.join(candidate_args(train_args, folder))


def split_argv(argv):
    """(this script's own arguments, the `kzoo train` arguments after ``--``)."""
    if "--" not in argv:
        return argv, []
    at = argv.index("--")
    return argv[:at], argv[at + 1 :]


def matmul_peak(precision, seconds=3.0, size=2048):
    """GFLOP/s of a large dense matmul (oneDNN) at ``precision``: the rate this CPU
    reaches on the most favourable kernel, the roofline's ceiling."""
    import tensorflow as tf

    dtype = tf.bfloat16 if "bfloat16" in precision else tf.float32
    a = tf.random.uniform([size, size], dtype=tf.float32)
    a = tf.cast(a, dtype)
    step = tf.function(lambda x: tf.linalg.matmul(x, x))
    step(a).numpy()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(a).numpy()
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - start) / 1e9


def roofline(model, protocol, rows, metrics, test_images):
    """Operations per training image, achieved GFLOP/s over the epochs (the images
    trained and the ``test_images`` scored each epoch, test-time views included) and
    the share of the matmul peak."""
    from kzoo.models.flops import forward_flops
    from kzoo.training.tta import view_count

    forward = forward_flops(model)
    trained = metrics["train_images_per_s"] * metrics["train_seconds"]  # every epoch's batches
    scored = test_images * view_count(protocol.get("tta")) * len(rows)
    seconds = sum(float(r["seconds"]) for r in rows)
    achieved = (trained * 3 * forward + scored * forward) / seconds / 1e9
    peak = matmul_peak(metrics["precision"])
    return {
        "training_gflops_per_image": round(3 * forward / 1e9, 5),
        "achieved_gflops_per_s": round(achieved, 1),
        "matmul_peak_gflops_per_s": round(peak, 1),
        "share_of_peak": round(achieved / peak, 3),
    }


def _test_images(data_dir):
    """How many test images each epoch scored (read where the run read them)."""
    from kzoo import data

    count = int(data.load("fashion_mnist", "test", data_dir=data_dir).cardinality())
    return count if count >= 0 else data.num_examples("fashion_mnist", "test")


def run(args, train_args):
    from kzoo import atomic, cli
    from kzoo.cli_parser import model_kwargs

    folder = os.path.join(args.out, args.name)
    parsed = cli.build_parser().parse_args(candidate_args(train_args, folder))
    command = candidate_command(train_args, folder)
    start = time.perf_counter()
    result = cli.run_train(parsed, command)
    wall = time.perf_counter() - start
    rows = result.history
    with open(os.path.join(result.run_dir, "config.json")) as f:
        protocol = json.load(f)["protocol_fields"]
    epoch_seconds = sum(float(r["seconds"]) for r in rows)
    summary = {
        "name": args.name,
        "model": parsed.name,
        "model_kwargs": model_kwargs(parsed),
        "epochs": protocol["epochs"],
        "batch_size": protocol["batch_size"],
        "lr": protocol["lr"],
        "weight_decay": protocol["weight_decay"],
        "tools": {k: protocol.get(k) for k in TOOLS},
        "precision": result.metrics["precision"],
        "seed": parsed.seed,
        "target": args.target,
        "budget_seconds": args.budget,
        "params": result.metrics["params"],
        "seconds_to_target": time_to(rows, args.target),
        "top1_within_budget": best_within(rows, args.budget),
        "final_test_top1": result.metrics["test_top1"],
        "epoch_seconds": epoch_seconds,
        "setup_seconds": wall - epoch_seconds if len(rows) == protocol["epochs"] else None,
        "curve": [
            {
                "epoch": int(r["epoch"]) + 1,
                "seconds": float(r["seconds"]),
                "test_top1": float(r["test_accuracy"]),
            }
            for r in rows
        ],
        "roofline": roofline(result.model, protocol, rows, result.metrics, _test_images(parsed.data_dir)),
        "hardware": result.metrics["hardware"],
        "command": command,
    }
    atomic.write_text(os.path.join(folder, "summary.json"), json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("curve", "hardware")}, indent=2))


def _epoch_rows(s):
    """A summary's curve as the epoch rows time_to and epochs_to read."""
    return [{"seconds": p["seconds"], "test_accuracy": p["test_top1"]} for p in s["curve"]]


def _clock(s, target):
    """Seconds of epochs a summary took to reach ``target`` (None if it never did)."""
    return time_to(_epoch_rows(s), target)


def _median_pace(s, target):
    """(epochs to ``target``, median epoch seconds, minutes to it at that pace)."""
    count = epochs_to(_epoch_rows(s), target)
    median = statistics.median(p["seconds"] for p in s["curve"])
    return count, median, (count * median / 60 if count is not None else None)


def recipe(command):
    """A candidate's command without its run folder: two runs of one recipe compare equal."""
    words = shlex.split(command)
    if "--out" in words:
        at = words.index("--out")
        del words[at : at + 2]
    return shlex.join(words)


def repeats_of(best, summaries, target):
    """The other runs of ``best``'s recipe: what re-running its command gave."""
    out = []
    for s in summaries:
        if s is best or recipe(s["command"]) != recipe(best["command"]):
            continue
        count, _, at_median = _median_pace(s, target)
        reached = _clock(s, target)
        out.append(
            {
                "name": s["name"],
                "minutes_to_target": reached and round(reached / 60, 2),
                "minutes_at_median_pace": at_median and round(at_median, 2),
                "epochs_to_target": count,
                "final_top1": s["final_test_top1"],
                "same_curve_of_test_top1": [p["test_top1"] for p in s["curve"]]
                == [p["test_top1"] for p in best["curve"]],
            }
        )
    return out


def fastest_record(summaries, target, baseline):
    """``fastest.json``: the fastest candidate to ``target`` and its curve beside the
    ``baseline`` candidate's (the old best), or None when none reached it."""

    def clock(s):
        return _clock(s, target)

    reached = [s for s in summaries if clock(s) is not None]
    if not reached:
        return None
    best = min(reached, key=clock)
    count, _, at_median = _median_pace(best, target)
    record = {
        "name": best["name"],
        "command": best["command"],
        "target": target,
        "minutes_to_target": round(clock(best) / 60, 2),
        "minutes_at_median_pace": round(at_median, 2),
        "epochs_to_target": count,
        "final_top1": best["final_test_top1"],
        "precision": best["precision"],
        "tools": best.get("tools"),
        "roofline": best.get("roofline"),
        "machine": best["hardware"],
        "curve": best["curve"],
        "repeats": repeats_of(best, summaries, target),
    }
    old = next((s for s in summaries if s["name"] == baseline), None)
    if old is not None:
        record["baseline"] = {
            "name": old["name"],
            "command": old["command"],
            "minutes_to_target": clock(old) and round(clock(old) / 60, 2),
            "machine": old["hardware"],
            "curve": old["curve"],
        }
    return record


def candidates(folder):
    """Every candidate's ``summary.json`` under ``folder`` (a SystemExit when there is none)."""
    summaries = []
    for path in sorted(glob.glob(os.path.join(folder, "*", "summary.json"))):
        with open(path) as f:
            summaries.append(json.load(f))
    if not summaries:
        raise SystemExit(f"no summary.json under {folder}: run a candidate first")
    return summaries


def report(out, target, budget, baseline="resnet20-b128-e16"):
    """``results.md``, ``curves.png`` and ``fastest.json`` from every ``summary.json``
    under ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kzoo import atomic
    from kzoo.training.report import markdown_table, save_figure

    summaries = candidates(out)
    summaries.sort(
        key=lambda s: (
            s["seconds_to_target"] is None,
            s["seconds_to_target"] or 0,
            -(s["top1_within_budget"] or 0),
        )
    )
    rows = []
    for s in summaries:
        reached = s["seconds_to_target"]
        within = s["top1_within_budget"]
        count, median, _ = _median_pace(s, target)
        tools = {k: v for k, v in (s.get("tools") or {}).items() if v not in (None, 0, 0.0, 1, "cosine")}
        options = {**s["model_kwargs"], **tools}
        rows.append(
            [
                s["name"],
                s["model"],
                ", ".join(f"{k}={v}" for k, v in options.items()) or "-",
                s["batch_size"],
                s["lr"],
                s["epochs"],
                s["precision"],
                f"{reached / 60:.1f}" if reached is not None else "not reached",
                count if count is not None else "-",
                f"{median:.0f}",
                f"{count * median / 60:.1f}" if count is not None else "-",
                f"{100 * within:.2f}" if within is not None else "-",
                f"{100 * s['final_test_top1']:.2f}",
                f"{s['epoch_seconds'] / 60:.1f}",
            ]
        )
    header = [
        "candidate",
        "model",
        "options",
        "batch",
        "lr",
        "epochs",
        "precision",
        f"min to {100 * target:.0f}%",
        f"epochs to {100 * target:.0f}%",
        "median epoch, s",
        f"min to {100 * target:.0f}% at median pace",
        f"test top-1 % within {budget / 60:.0f} min",
        "final test top-1 %",
        "epoch time, min",
    ]
    fig, ax = plt.subplots(figsize=(8, 5))
    for s in summaries:
        clock, xs, ys = 0.0, [], []
        for point in s["curve"]:
            clock += point["seconds"]
            xs.append(clock / 60)
            ys.append(100 * point["test_top1"])
        ax.plot(xs, ys, marker=".", label=s["name"])
    ax.axhline(100 * target, color="grey", linestyle="--", linewidth=1)
    ax.axvline(budget / 60, color="grey", linestyle=":", linewidth=1)
    ax.set(
        xlabel="minutes of training (test evaluations included)",
        ylabel="test top-1 %",
        title="Fashion-MNIST: test top-1 against time, 2 CPU cores",
        ylim=(85, 96),
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, os.path.join(out, "curves.png"))
    best = summaries[0]
    fastest = fastest_record(summaries, target, baseline)
    if fastest is not None:
        atomic.write_text(os.path.join(out, "fastest.json"), json.dumps(fastest, indent=2) + "\n")
    roof = [
        f"| {s['name']} | {r['training_gflops_per_image']:.3f} | {r['achieved_gflops_per_s']:.0f} "
        f"| {r['matmul_peak_gflops_per_s']:.0f} | {100 * r['share_of_peak']:.0f}% |"
        for s in summaries
        if (r := s.get("roofline"))
    ]
    if roof:
        roof = [
            "Roofline: operations per training image (forward + backward, convolutions and dense "
            "layers), the rate the run achieved over its epochs, and the dense-matmul rate this "
            "CPU reached at the run's precision right after it.",
            "",
            "| candidate | training GFLOP per image | achieved GFLOP/s | matmul GFLOP/s | share |",
            "|---|---|---|---|---|",
            *roof,
            "",
        ]
    again = []
    if fastest is not None and fastest["repeats"]:
        again = [
            f"Re-running the fastest's command ({fastest['name']}: {fastest['epochs_to_target']} epochs, "
            f"{fastest['minutes_to_target']:.1f} min, final {100 * fastest['final_top1']:.2f}%):",
            "",
            *[
                f"- {r['name']}: {r['epochs_to_target'] or '-'} epochs to the target, "
                f"{r['minutes_to_target'] or '-'} min, final {100 * r['final_top1']:.2f}%; "
                + (
                    "the same test top-1 after every epoch"
                    if r["same_curve_of_test_top1"]
                    else "a different curve"
                )
                for r in fastest["repeats"]
            ],
            "",
        ]
    lines = [
        "# Time to accuracy: Fashion-MNIST on the CPU",
        "",
        f"Target {100 * target:.0f}% test top-1, budget {budget / 60:.0f} minutes; the clock is the "
        "sum of epoch times (test evaluation after each epoch included). A shared machine's "
        "speed drifts, so the epochs needed and the time they take at the run's median "
        "epoch pace are shown beside the clock.",
        "",
        markdown_table(header, rows),
        "",
        *roof,
        *again,
        f"Fastest: **{best['name']}**. Commands:",
        "",
        *[f"    {s['command']}" for s in summaries],
        "",
        *sorted({f"Machine of {s['name']}: {s['hardware']}" for s in summaries}),
        "",
        "![curves](curves.png)",
        "",
    ]
    atomic.write_text(os.path.join(out, "results.md"), "\n".join(lines))
    print("\n".join(lines))


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    own, train_args = split_argv(argv)
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", help="candidate name (its folder under --out)")
    parser.add_argument("--target", type=float, default=0.94)
    parser.add_argument("--budget", type=float, default=900.0, help="seconds")
    parser.add_argument("--out", default=OUT)
    parser.add_argument(
        "--baseline", default="resnet20-b128-e16", help="the old best, shown beside the fastest"
    )
    parser.add_argument("--report", action="store_true", help="only gather the candidates into results.md")
    args = parser.parse_args(own)
    if args.report:
        report(args.out, args.target, args.budget, args.baseline)
        return 0
    if not args.name:
        parser.error("--name is required to run a candidate")
    try:
        run(args, train_args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
