"""Time to accuracy on Fashion-MNIST on this machine's CPU: how long a kzoo recipe takes
to reach a test top-1 target (94% by default), and how far it gets in a time budget
(15 minutes by default).

A recipe is one ``kzoo.train`` run on all 60,000 training images (no validation
carve-out), its cosine schedule sized to end within the budget, with the test set
evaluated after every epoch. The clock is the sum of the epochs' wall times, test
evaluations included (so the figure is conservative); the rest of the call (data loading
and model building before the first epoch, the final save after the last) is reported
apart as ``setup_seconds``. Each candidate writes its run directory and a
``summary.json`` under ``--out``; ``--report`` gathers every candidate there into
``results.md`` and ``curves.png`` (test top-1 against minutes).

    python applications/time_to_accuracy.py --name resnet20-b128-e16 --model resnet20 --epochs 16
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


def run(args):
    from kzoo.training import train
    from kzoo.training.callbacks import atomic_write_text

    folder = os.path.join(args.out, args.name)
    kwargs = json.loads(args.model_kwargs) if args.model_kwargs else {}
    start = time.perf_counter()
    result = train(
        args.model,
        "fashion_mnist",
        "fashion_mnist_cpu",
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weight_decay=args.weight_decay,
        validation_size=0,
        model_kwargs=kwargs,
        mixed_precision=args.precision,
        seed=args.seed,
        out=os.path.join(folder, "run"),
        test_curve=True,
        verbose=2,
        data_dir=args.data_dir,
        command="python " + " ".join(shlex.quote(a) for a in sys.argv),
    )
    wall = time.perf_counter() - start
    rows = result.history
    epoch_seconds = sum(float(r["seconds"]) for r in rows)
    summary = {
        "name": args.name,
        "model": args.model,
        "model_kwargs": kwargs,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "lr": args.lr,
        "weight_decay": args.weight_decay,
        "precision": result.metrics["precision"],
        "seed": args.seed,
        "target": args.target,
        "budget_seconds": args.budget,
        "params": result.metrics["params"],
        "seconds_to_target": time_to(rows, args.target),
        "top1_within_budget": best_within(rows, args.budget),
        "final_test_top1": result.metrics["test_top1"],
        "epoch_seconds": epoch_seconds,
        "setup_seconds": wall - epoch_seconds if len(rows) == args.epochs else None,
        "curve": [
            {
                "epoch": int(r["epoch"]) + 1,
                "seconds": float(r["seconds"]),
                "test_top1": float(r["test_accuracy"]),
            }
            for r in rows
        ],
        "hardware": result.metrics["hardware"],
        "command": result.metrics["command"],
    }
    atomic_write_text(os.path.join(folder, "summary.json"), json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k not in ("curve", "hardware")}, indent=2))


def report(out, target, budget):
    """``results.md`` and ``curves.png`` from every ``summary.json`` under ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kzoo.training.callbacks import atomic_write_text
    from kzoo.training.report import markdown_table, save_figure

    summaries = []
    for path in sorted(glob.glob(os.path.join(out, "*", "summary.json"))):
        with open(path) as f:
            summaries.append(json.load(f))
    if not summaries:
        raise SystemExit(f"no summary.json under {out}: run a candidate first")
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
        curve = [{"seconds": p["seconds"], "test_accuracy": p["test_top1"]} for p in s["curve"]]
        count = epochs_to(curve, target)
        median = statistics.median(p["seconds"] for p in s["curve"])
        rows.append(
            [
                s["name"],
                s["model"],
                json.dumps(s["model_kwargs"]) if s["model_kwargs"] else "-",
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
        f"Fastest: **{best['name']}**. Commands:",
        "",
        *[f"    {s['command']}" for s in summaries],
        "",
        f"Machine: {summaries[0]['hardware']}",
        "",
        "![curves](curves.png)",
        "",
    ]
    atomic_write_text(os.path.join(out, "results.md"), "\n".join(lines))
    print("\n".join(lines))


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--name", help="candidate name (its folder under --out)")
    parser.add_argument("--model", default="resnet20")
    parser.add_argument("--model-kwargs", help='JSON builder options, e.g. \'{"erase": "last"}\'')
    parser.add_argument("--epochs", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument(
        "--precision", default="float32", help="float32 or bfloat16 (float16 is slow on CPUs)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.94)
    parser.add_argument("--budget", type=float, default=900.0, help="seconds")
    parser.add_argument("--out", default=OUT)
    parser.add_argument("--data-dir")
    parser.add_argument("--report", action="store_true", help="only gather the candidates into results.md")
    args = parser.parse_args(argv)
    if args.report:
        report(args.out, args.target, args.budget)
        return 0
    if not args.name:
        parser.error("--name is required to run a candidate")
    try:
        run(args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
